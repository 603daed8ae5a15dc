"""SageMaker (+ S3) operations of the model lifecycle, with boto3.

* ``create_training_job(request)``: idempotent; an existing job of that name is returned as is
  (``ResourceInUse`` on AWS and on the patched emulator).
* ``serving_model(endpoint)``: DescribeEndpoint -> DescribeEndpointConfig -> DescribeModel ->
  the artifact's ``metadata.json`` (the model version the endpoint reports).
* ``artifact_documents(uri)``: ``metadata.json`` and ``metrics.json`` from a ``model.tar.gz``
  (stdlib tarfile; bounded size).
* ``deploy(version, artifact, serving)``: CreateModel (same image, environment and role as the
  serving model, new ModelDataUrl) + CreateEndpointConfig (same variants with the new model,
  same KMS key) + UpdateEndpoint. Names ``{endpoint}-{version suffix}``; existing ones are
  reused, so a redelivered event does not fail.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable
from typing import Any

from stocksage.lifecycle.promotion import ServingModel

MAX_ARTIFACT_BYTES = 64 * 1024 * 1024
MAX_NAME = 63


def parse_s3_uri(uri: str) -> tuple[str, str]:
    if not uri or not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def _code(err: Exception) -> str:
    return getattr(err, "response", {}).get("Error", {}).get("Code", "")


class SageMakerPlatform:
    def __init__(self, sagemaker_client: Any, s3_client: Any) -> None:
        self.sm = sagemaker_client
        self.s3 = s3_client

    # ---------------------------------------------------------------- training
    def find_training_job(self, name: str) -> dict[str, Any] | None:
        try:
            return self.sm.describe_training_job(TrainingJobName=name)
        except Exception as err:
            if _code(err) in ("ValidationException", "ValidationError", "ResourceNotFound"):
                return None
            raise

    def describe_training_job(self, name: str) -> dict[str, Any]:
        return self.sm.describe_training_job(TrainingJobName=name)

    def create_training_job(self, request: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Returns (description, created_now)."""
        existing = self.find_training_job(request["TrainingJobName"])
        if existing is not None:
            return existing, False
        try:
            self.sm.create_training_job(**request)
        except Exception as err:
            if _code(err) != "ResourceInUse":
                raise
            return self.describe_training_job(request["TrainingJobName"]), False
        return self.describe_training_job(request["TrainingJobName"]), True

    # ---------------------------------------------------------------- artifacts
    def artifact_documents(self, uri: str) -> dict[str, Any]:
        bucket, key = parse_s3_uri(uri)
        obj = self.s3.get_object(Bucket=bucket, Key=key)
        if int(obj.get("ContentLength") or 0) > MAX_ARTIFACT_BYTES:
            raise ValueError(f"{uri} is larger than {MAX_ARTIFACT_BYTES} bytes")
        docs: dict[str, Any] = {}
        with tarfile.open(fileobj=io.BytesIO(obj["Body"].read()), mode="r:*") as tar:
            for member in tar.getmembers():
                name = member.name.lstrip("./")
                if name in ("metadata.json", "metrics.json") and member.isfile():
                    handle = tar.extractfile(member)
                    if handle is not None:
                        docs[name.removesuffix(".json")] = json.loads(handle.read())
        return docs

    # ---------------------------------------------------------------- hosting
    def serving_model(self, endpoint_name: str) -> ServingModel:
        endpoint = self.sm.describe_endpoint(EndpointName=endpoint_name)
        config_name = endpoint["EndpointConfigName"]
        config = self.sm.describe_endpoint_config(EndpointConfigName=config_name)
        model_name = config["ProductionVariants"][0]["ModelName"]
        model = self.sm.describe_model(ModelName=model_name)
        container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
        url = container.get("ModelDataUrl")
        metadata: dict[str, Any] = {}
        if url:
            try:
                metadata = self.artifact_documents(url).get("metadata") or {}
            except Exception:  # noqa: BLE001 - a missing artifact means "unknown version"
                metadata = {}
        return ServingModel(endpoint_name, config_name, model_name, url,
                            metadata.get("model_version"), metadata)

    def _names(self, endpoint_name: str, version: str) -> str:
        suffix = version.rsplit("-", 1)[-1] if "-" in version else version
        name = f"{endpoint_name}-{suffix}"[:MAX_NAME].rstrip("-")
        return name

    def deploy(self, version: str, artifact: str, serving: ServingModel) -> tuple[str, str]:
        name = self._names(serving.endpoint_name, version)
        model = self.sm.describe_model(ModelName=serving.model_name)
        container = dict(model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0])
        new_container = {k: v for k, v in container.items()
                         if k in ("Image", "Mode", "Environment", "ImageConfig")}
        new_container["ModelDataUrl"] = artifact
        if not self._exists(self.sm.describe_model, ModelName=name):
            self.sm.create_model(ModelName=name, ExecutionRoleArn=model["ExecutionRoleArn"],
                                 PrimaryContainer=new_container,
                                 Tags=[{"Key": "stocksage:model-version", "Value": version}])
        config = self.sm.describe_endpoint_config(EndpointConfigName=serving.endpoint_config_name)
        variants = []
        for variant in config["ProductionVariants"]:
            keep = {k: v for k, v in variant.items()
                    if k in ("VariantName", "InitialInstanceCount", "InstanceType",
                             "InitialVariantWeight", "ServerlessConfig")}
            keep["ModelName"] = name
            variants.append(keep)
        kwargs: dict[str, Any] = {"EndpointConfigName": name, "ProductionVariants": variants,
                                  "Tags": [{"Key": "stocksage:model-version", "Value": version}]}
        if config.get("KmsKeyId"):
            kwargs["KmsKeyId"] = config["KmsKeyId"]
        if not self._exists(self.sm.describe_endpoint_config, EndpointConfigName=name):
            self.sm.create_endpoint_config(**kwargs)
        self.point_endpoint(serving.endpoint_name, name)
        return name, name

    @staticmethod
    def _exists(describe: Callable[..., object], **kwargs: Any) -> bool:
        try:
            describe(**kwargs)
        except Exception as err:
            if _code(err) in ("ValidationException", "ValidationError", "ResourceNotFound"):
                return False
            raise
        return True

    def point_endpoint(self, endpoint_name: str, endpoint_config_name: str) -> None:
        self.sm.update_endpoint(EndpointName=endpoint_name,
                                EndpointConfigName=endpoint_config_name)
