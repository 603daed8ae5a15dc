"""DynamoDB table ``model-versions``: one item per model version (``stocksage.lifecycle.versions``).

Why DynamoDB and not the SageMaker Model Registry: the record needs fields the registry has no
place for (gate verdict with its checks, the serving/retired/rolled-back history, the
bootstrap model deployed by Terraform), the table is tiny (one item per 3-day tick), it works
the same on the emulator (moto has no model-package approval flow to speak of), and every
part of the stack already reads DynamoDB. ``all()`` scans: a few hundred items at most.
"""

from __future__ import annotations

from typing import Any

from stocksage.lifecycle.versions import ModelVersion


class DynamoModelRegistry:
    def __init__(self, dynamodb_resource: Any, table_name: str) -> None:
        self.table = dynamodb_resource.Table(table_name)

    def get(self, model_version: str) -> ModelVersion | None:
        item = self.table.get_item(Key={"model_version": model_version},
                                   ConsistentRead=True).get("Item")
        return ModelVersion.from_item(item) if item else None

    def put(self, version: ModelVersion) -> None:
        self.table.put_item(Item=version.to_item())

    def create(self, version: ModelVersion) -> bool:
        """Insert unless the version exists; False when it did (idempotent ticks)."""
        from botocore.exceptions import ClientError

        try:
            self.table.put_item(Item=version.to_item(),
                                ConditionExpression="attribute_not_exists(model_version)")
        except ClientError as err:
            if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def all(self) -> list[ModelVersion]:
        items, kwargs = [], {"ConsistentRead": True}
        while True:
            page = self.table.scan(**kwargs)
            items += page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        versions = [ModelVersion.from_item(i) for i in items]
        return sorted(versions, key=lambda v: (v.created_at, v.model_version))
