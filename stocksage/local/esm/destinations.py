"""Sending a failure record to a mapping's on-failure destination.

When Lambda gives up on records it sends one invocation record (``event.failure_record``) to
``DestinationConfig.OnFailure.Destination``, by the kind of ARN::

    arn:aws:sqs:<region>:<account>:<queue>    SendMessage to the queue
    arn:aws:sns:<region>:<account>:<topic>    Publish to the topic
    arn:aws:s3:::<bucket>                     PutObject under aws/lambda/<mapping>/<shard>/...

A send that raises leaves the records pending: the worker retries the send (not the function)
until it succeeds, so the checkpoint never moves past records that were neither processed
nor recorded.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from stocksage.local.clients import Clients


def send_failure_record(clients: Clients, arn: str, message: str, mapping_uuid: str,
                        shard_id: str) -> None:
    """Send ``message`` (the JSON failure record) to the destination ``arn``.

    Raises:
        ValueError: the ARN is not an SQS queue, SNS topic or S3 bucket.
        botocore.exceptions.ClientError: the send failed.
    """
    parts = arn.split(":")
    service, region, account = parts[2], parts[3], parts[4]
    if service == "sqs":
        sqs = clients.client("sqs", region)
        url = sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=account)[
            "QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=message)
    elif service == "sns":
        clients.client("sns", region).publish(TopicArn=arn, Message=message)
    elif service == "s3":
        now = datetime.now(UTC)
        key = (f"aws/lambda/{mapping_uuid}/{shard_id}/{now:%Y/%m/%d/%Y-%m-%dT%H.%M.%S}-"
               f"{uuid.uuid4()}")
        clients.client("s3", region).put_object(Bucket=parts[5], Key=key,
                                                Body=message.encode())
    else:
        raise ValueError(f"unsupported on-failure destination {arn}")
