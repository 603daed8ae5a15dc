"""SNS alert publisher: exactly one message per alert id, via Powertools idempotency.

Each publish runs inside ``idempotent_function`` keyed by ``alert_id``
(``{rule_id}#{symbol}#{bar_time}``) with a DynamoDB persistence layer: the first call stores an
INPROGRESS record, publishes, then stores COMPLETED; a redelivered batch finds the record and
publishes nothing. If the publish fails the record is deleted, so the retry publishes.

Message format (``MessageStructure="json"``: one message, a text per protocol):

- ``default`` (SQS, Lambda, HTTP subscribers): the JSON payload of ``Alert.payload()``;
- ``email``: the readable body (``Alert.body``), with ``Subject`` as the e-mail subject;
- ``sms``: one short line (``Alert.sms_text()``, <= 140 characters).

Message attributes ``symbol``, ``rule_type`` and ``severity`` (String) are what subscription
filter policies match on (``filter_policy_scope = "MessageAttributes"``).
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

from stocksage.alerts import Alert

ALERT_IDEMPOTENCY_DAYS = 30
"""Days an alert id is remembered (the idempotency table's TTL)."""


class SnsAlertPublisher:
    """Publishes alerts to the alerts topic with message attributes for filter policies.

    Args:
        client: ``boto3.client("sns")``.
        topic_arn: ``ALERTS_TOPIC_ARN``.
        idempotency_table: ``IDEMPOTENCY_TABLE`` (partition key ``id``, TTL ``expiration``).
        dynamodb_client: ``boto3.client("dynamodb")`` for the persistence layer.
        lambda_context: Registered so an INPROGRESS record expires with the invocation.
    """

    def __init__(self, client: Any, topic_arn: str, idempotency_table: str,
                 dynamodb_client: Any | None = None) -> None:
        self._client = client
        self._topic_arn = topic_arn
        self.config = IdempotencyConfig(event_key_jmespath="alert_id",
                                        expires_after_seconds=ALERT_IDEMPOTENCY_DAYS * 86400)
        persistence = DynamoDBPersistenceLayer(table_name=idempotency_table,
                                               boto3_client=dynamodb_client)
        self._publish_once = idempotent_function(
            self._send, data_keyword_argument="alert", persistence_store=persistence,
            config=self.config, key_prefix="stocksage.alert",
        )
        self._sent_now: set[str] = set()

    def register_lambda_context(self, context: Any) -> None:
        """Let INPROGRESS records expire with the current invocation (Powertools)."""
        self.config.register_lambda_context(context)

    def _send(self, alert: dict[str, Any]) -> dict[str, str]:
        attributes = {name: {"DataType": "String", "StringValue": value}
                      for name, value in alert["attributes"].items()}
        message = {"default": json.dumps(alert["payload"], sort_keys=True),
                   "email": alert["email"], "sms": alert["sms"]}
        response = self._client.publish(
            TopicArn=self._topic_arn, Subject=alert["subject"], MessageStructure="json",
            Message=json.dumps(message), MessageAttributes=attributes,
        )
        self._sent_now.add(alert["alert_id"])
        return {"message_id": response["MessageId"]}

    def publish(self, alert: Alert) -> bool:
        """Publish unless this alert id was published before; True when it was sent now."""
        return self.publish_message(alert.message())

    def publish_message(self, message: dict[str, Any]) -> bool:
        """Publish an ``Alert.message()`` dict (e.g. from a state's outbox) at most once per
        ``alert_id``; True when it was sent now, False when it had been sent before.

        Raises:
            botocore.exceptions.ClientError, Powertools idempotency errors: SNS or the
            idempotency table failed; nothing is recorded as sent, a later call retries.
        """
        self._publish_once(alert=message)
        sent_now = message["alert_id"] in self._sent_now
        self._sent_now.discard(message["alert_id"])
        return sent_now
