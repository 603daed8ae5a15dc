"""The project's training job: its ``CreateTrainingJob`` request, and the bootstrap model.

``script_mode_job`` builds the request the retrain schedule sends (train ``sagemaker/train.py``
from ``sourcedir.tar.gz`` on the S3 history); the same dict is a valid description for
``run_training_job``. ``train_initial_model`` runs that job once, locally, so that a fresh
stack has a model behind its endpoint before the first retrain::

    result = train_initial_model(boto3.client("s3"), bucket)
    result.details["published_artifact"]    # s3://<bucket>/<model.artifact_key of stack.json>
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from stocksage.local.training.executor import DEFAULT_IMAGE, DEFAULT_TIMEOUT_S, run_training_job
from stocksage.local.training.result import TrainingJobError, TrainingResult
from stocksage.local.training.s3io import parse_s3_uri
from stocksage.model.metrics import METRIC_DEFINITIONS


def script_mode_job(
    *,
    job_name: str,
    bucket: str,
    channel_prefix: str = "bars/",
    output_prefix: str = "model-artifacts/training-jobs",
    source_key: str = "code/sourcedir.tar.gz",
    program: str = "train.py",
    hyperparameters: Mapping[str, Any] | None = None,
    image: str = DEFAULT_IMAGE,
    role_arn: str = "arn:aws:iam::000000000000:role/sagemaker",
    region: str = "us-east-1",
    instance_type: str = "ml.m5.large",
    max_runtime_s: int = DEFAULT_TIMEOUT_S,
    metric_definitions: Sequence[Mapping[str, str]] = METRIC_DEFINITIONS,
) -> dict[str, Any]:
    """``CreateTrainingJob`` kwargs for the script-mode job (also a valid description).

    Hyperparameter values are JSON-encoded strings, as the SageMaker SDK sends them.
    """
    hps = {
        "sagemaker_program": program,
        "sagemaker_submit_directory": f"s3://{bucket}/{source_key}",
        "sagemaker_region": region,
    }
    hps.update(hyperparameters or {})
    return {
        "TrainingJobName": job_name,
        "AlgorithmSpecification": {
            "TrainingImage": image,
            "TrainingInputMode": "File",
            "MetricDefinitions": [dict(d) for d in metric_definitions],
        },
        "RoleArn": role_arn,
        "HyperParameters": {k: json.dumps(v) for k, v in hps.items()},
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": f"s3://{bucket}/{channel_prefix}",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/{output_prefix}"},
        "ResourceConfig": {"InstanceType": instance_type, "InstanceCount": 1, "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": int(max_runtime_s)},
    }


def train_initial_model(
    s3_client: Any,
    bucket: str,
    artifact_key: str | None = None,
    *,
    job_name: str | None = None,
    hyperparameters: Mapping[str, Any] | None = None,
    python: str | None = None,
) -> TrainingResult:
    """Package and upload the sourcedir, train on ``s3://bucket/bars/``, publish the model.

    The artifact is copied to ``artifact_key`` (default ``stack.json`` ``model.artifact_key``)
    so the endpoint's model data URL exists before the first retrain.

    Raises:
        TrainingJobError: when the job fails (with its reason and log tail).
    """
    from stocksage.config import STACK
    from stocksage.model.sourcedir import SOURCEDIR_KEY, build_sourcedir

    artifact_key = artifact_key or STACK.raw["model"]["artifact_key"]
    s3_client.put_object(Bucket=bucket, Key=SOURCEDIR_KEY, Body=build_sourcedir())
    job_name = job_name or f"stocksage-initial-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
    # The bootstrap serves without the promotion gate: P(up) only; the range output reaches the
    # endpoint through a gated retrain (docs/DESIGN.md "Model lifecycle").
    hps = {"model-version": job_name, "range-model": "off"}
    hps.update(hyperparameters or {})
    description = script_mode_job(
        job_name=job_name, bucket=bucket, source_key=SOURCEDIR_KEY, hyperparameters=hps
    )
    result = run_training_job(s3_client, description, python=python)
    if not result.ok or result.model_artifact is None:
        raise TrainingJobError(result)
    src_bucket, src_key = parse_s3_uri(result.model_artifact)
    s3_client.copy_object(
        Bucket=bucket, Key=artifact_key, CopySource={"Bucket": src_bucket, "Key": src_key}
    )
    result.details["published_artifact"] = f"s3://{bucket}/{artifact_key}"
    return result
