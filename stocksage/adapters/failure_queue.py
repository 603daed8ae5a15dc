"""SQS adapter of the on-failure destination: the event source mapping's failure records.

``SqsFailureQueue`` implements ``stocksage.operations.redrive.FailureQueue``: it receives the
messages of the failure queue (10 per ReceiveMessage, no long polling, hidden 60 s while a
redrive works on them) and deletes one once its range was stored again.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["SqsFailureQueue"]


class SqsFailureQueue:
    """The failure queue ``queue_url`` through ``client`` (``boto3.client("sqs")``)."""

    def __init__(self, client: Any, queue_url: str, visibility_timeout_s: int = 60) -> None:
        self._client = client
        self._queue_url = queue_url
        self._visibility = visibility_timeout_s

    def receive(self) -> Iterator[list[tuple[str, str]]]:
        """Each ReceiveMessage's ``[(message body, receipt handle), ...]`` (up to 10) until the
        queue answers with no message; the caller stops reading by not asking for more."""
        while True:
            response = self._client.receive_message(
                QueueUrl=self._queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                VisibilityTimeout=self._visibility)
            messages = response.get("Messages", [])
            if not messages:
                return
            yield [(message["Body"], message["ReceiptHandle"]) for message in messages]

    def delete(self, receipt: str) -> None:
        """Delete the message of ``receipt`` (its range was stored)."""
        self._client.delete_message(QueueUrl=self._queue_url, ReceiptHandle=receipt)
