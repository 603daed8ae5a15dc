"""Local SageMaker training-job executor (script mode), following the platform's contract.

moto records ``CreateTrainingJob`` but runs nothing and writes no artifact. This module runs
such a job for real on this machine from its ``describe_training_job`` description:

1. make an ``/opt/ml``-like tree in a temp directory: ``input/config/*.json``,
   ``input/data/<channel>/``, ``model/``, ``output/`` (``output/data/``), ``code/``;
2. download every channel's ``S3Prefix`` objects, keeping key paths relative to the prefix;
3. download and extract ``sagemaker_submit_directory`` (``s3://.../sourcedir.tar.gz``);
4. run ``sagemaker_program`` with this venv's Python (cwd and ``PYTHONPATH`` = the source
   dir) with ``SM_MODEL_DIR``, ``SM_CHANNEL_<NAME>``, ``SM_CHANNELS``, ``SM_HPS``,
   ``SM_HP_<NAME>``, ``SM_OUTPUT_DATA_DIR``, ``SM_OUTPUT_DIR``, ``SM_CURRENT_HOST``,
   ``SM_HOSTS``, ``TRAINING_JOB_NAME``... and the hyperparameters (minus ``sagemaker_*``) as
   ``--key value`` arguments, stdout+stderr captured to a log;
5. parse the metric definitions' regexes over the log (last value wins);
6. tar ``model/`` into ``model.tar.gz`` and upload it to
   ``{S3OutputPath}/{TrainingJobName}/output/model.tar.gz`` (``output/data`` goes to
   ``output.tar.gz`` next to it when non-empty).

Hyperparameter values are decoded like the SageMaker training toolkit does: a value that is
valid JSON (the SDK JSON-encodes them, e.g. ``"\\"train.py\\""``) is decoded, else used as is.

Example::

    desc = sm.describe_training_job(TrainingJobName=name)
    result = run_training_job(s3, desc)
    result.status, result.model_artifact, result.final_metrics
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stocksage.model.artifact import extract_tar, pack_model_dir
from stocksage.model.metrics import METRIC_DEFINITIONS, parse_metric_lines

CURRENT_HOST = "algo-1"
DEFAULT_TIMEOUT_S = 3600
DEFAULT_IMAGE = "local/sagemaker-scikit-learn:script-mode"
LOG_TAIL_CHARS = 2000


@dataclass
class TrainingResult:
    """Outcome of one local training job (the fields describe_training_job would report)."""

    job_name: str
    status: str  # "Completed" | "Failed"
    failure_reason: str | None
    model_artifact: str | None  # s3:// URI of model.tar.gz
    final_metrics: dict[str, float]
    log: str
    started_at: datetime
    ended_at: datetime
    exit_code: int | None = None
    output_artifact: str | None = None
    workdir: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        parts = [f"job={self.job_name}", f"status={self.status}"]
        if self.failure_reason:
            parts.append(f"reason={self.failure_reason!r}")
        if self.model_artifact:
            parts.append(f"artifact={self.model_artifact}")
        for name in (
            "validation:log_loss",
            "baseline:majority_log_loss",
            "validation:margin_log_loss_ci_low",
            "validation:beats_baselines",
        ):
            if name in self.final_metrics:
                parts.append(f"{name}={self.final_metrics[name]:.6g}")
        seconds = (self.ended_at - self.started_at).total_seconds()
        return f"TrainingResult({', '.join(parts)}, {seconds:.1f} s)"

    __repr__ = __str__

    @property
    def ok(self) -> bool:
        return self.status == "Completed"

    def final_metric_data_list(self) -> list[dict[str, Any]]:
        """``FinalMetricDataList`` as ``describe_training_job`` returns it."""
        return [
            {"MetricName": k, "Value": v, "Timestamp": self.ended_at}
            for k, v in sorted(self.final_metrics.items())
        ]


class TrainingJobError(RuntimeError):
    """A training job did not complete (carries the result with log and reason)."""

    def __init__(self, result: TrainingResult):
        tail = result.log[-LOG_TAIL_CHARS:]
        super().__init__(
            f"training job {result.job_name} failed: {result.failure_reason}\n"
            f"--- log tail ---\n{tail}"
        )
        self.result = result


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key/prefix`` -> ``("bucket", "key/prefix")``."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    if not bucket:
        raise ValueError(f"s3 URI without a bucket: {uri!r}")
    return bucket, key


def decode_hyperparameter(value: Any) -> Any:
    """Decode a JSON-encoded hyperparameter value; leave plain strings alone."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except (json.JSONDecodeError, ValueError):
        return value


def _arg_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value)


def download_prefix(s3_client, uri: str, dest: Path) -> int:
    """Download every object under an S3 prefix into ``dest`` keeping relative paths."""
    bucket, prefix = parse_s3_uri(uri)
    count = 0
    paginator = s3_client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            if key.endswith("/"):
                continue
            rel = key[len(prefix) :].lstrip("/") if prefix else key
            if not rel:  # the prefix is the object itself
                rel = key.rsplit("/", 1)[-1]
            target = (dest / rel).resolve()
            if not str(target).startswith(str(dest.resolve())):
                raise ValueError(f"object key escapes the channel directory: {key!r}")
            target.parent.mkdir(parents=True, exist_ok=True)
            s3_client.download_file(bucket, key, str(target))
            count += 1
    return count


def _fetch_source(s3_client, location: str, dest: Path) -> None:
    if location.startswith("s3://"):
        bucket, key = parse_s3_uri(location)
        data = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
        extract_tar(data, dest)
        return
    path = Path(location.removeprefix("file://"))
    if path.is_dir():
        shutil.copytree(path, dest, dirs_exist_ok=True)
    else:
        extract_tar(path.read_bytes(), dest)


def _upload(s3_client, uri: str, data: bytes) -> None:
    bucket, key = parse_s3_uri(uri)
    s3_client.put_object(Bucket=bucket, Key=key, Body=data)


def run_training_job(
    s3_client,
    description: Mapping[str, Any],
    *,
    python: str | None = None,
    work_root: str | Path | None = None,
    keep_workdir: bool = False,
    extra_env: Mapping[str, str] | None = None,
) -> TrainingResult:
    """Run a script-mode training job described by ``describe_training_job`` output.

    Args:
        s3_client: boto3 S3 client (channels, source bundle and artifact upload).
        description: ``describe_training_job`` dict (or ``create_training_job`` kwargs).
        python: Interpreter for the program (default: this one, i.e. the venv's).
        work_root: Where to create the temp ``/opt/ml`` tree (default: system temp).
        keep_workdir: Keep the tree after the run (its path is in ``result.workdir``).
        extra_env: Extra environment variables for the program.

    Never raises for a failing job: the result says ``Failed`` with the reason and log.
    """
    started = datetime.now(UTC)
    job_name = description.get("TrainingJobName") or "local-training-job"
    root = Path(tempfile.mkdtemp(prefix=f"sm-{job_name[:40]}-", dir=work_root))
    log_path = root / "output" / "training.log"
    result = TrainingResult(
        job_name=job_name,
        status="Failed",
        failure_reason=None,
        model_artifact=None,
        final_metrics={},
        log="",
        started_at=started,
        ended_at=started,
        workdir=str(root),
    )
    try:
        _run(
            s3_client,
            description,
            root,
            log_path,
            result,
            python or sys.executable,
            extra_env or {},
        )
    except Exception as exc:  # noqa: BLE001 - the job fails, the caller gets a result
        result.status = "Failed"
        result.failure_reason = result.failure_reason or f"ClientError: {type(exc).__name__}: {exc}"
    finally:
        result.ended_at = datetime.now(UTC)
        if log_path.exists():
            result.log = log_path.read_text(errors="replace")
        if not keep_workdir:
            shutil.rmtree(root, ignore_errors=True)
            result.workdir = None
    return result


def _run(
    s3_client,
    description,
    root: Path,
    log_path: Path,
    result: TrainingResult,
    python: str,
    extra_env: Mapping[str, str],
) -> None:
    job_name = result.job_name
    spec = description.get("AlgorithmSpecification") or {}
    raw_hps = dict(description.get("HyperParameters") or {})
    hps = {k: decode_hyperparameter(v) for k, v in raw_hps.items()}
    program = hps.get("sagemaker_program")
    submit_dir = hps.get("sagemaker_submit_directory")
    if not program or not submit_dir:
        result.failure_reason = (
            "ClientError: only script mode is supported locally: "
            "hyperparameters need sagemaker_program and "
            "sagemaker_submit_directory"
        )
        return
    output_path = (description.get("OutputDataConfig") or {}).get("S3OutputPath")
    if not output_path:
        result.failure_reason = "ClientError: OutputDataConfig.S3OutputPath is missing"
        return

    ml = {name: root / name for name in ("input", "model", "output", "code")}
    for path in ml.values():
        path.mkdir(parents=True, exist_ok=True)
    config_dir = root / "input" / "config"
    data_dir = root / "input" / "data"
    output_data = root / "output" / "data"
    for path in (config_dir, data_dir, output_data):
        path.mkdir(parents=True, exist_ok=True)

    channels: dict[str, Path] = {}
    input_config = {}
    counts = {}
    for channel in description.get("InputDataConfig") or []:
        name = channel["ChannelName"]
        source = channel.get("DataSource", {}).get("S3DataSource", {})
        if source.get("S3DataType", "S3Prefix") != "S3Prefix":
            result.failure_reason = (
                f"ClientError: channel {name}: only S3Prefix data is supported locally"
            )
            return
        target = data_dir / name
        target.mkdir(parents=True, exist_ok=True)
        counts[name] = download_prefix(s3_client, source["S3Uri"], target)
        channels[name] = target
        input_config[name] = {
            "TrainingInputMode": "File",
            "S3DistributionType": source.get("S3DataDistributionType", "FullyReplicated"),
            "RecordWrapperType": "None",
        }
    _fetch_source(s3_client, str(submit_dir), ml["code"])
    if not (ml["code"] / program).is_file():
        result.failure_reason = (
            f"ClientError: sagemaker_program {program!r} is not in the source bundle {submit_dir}"
        )
        return

    user_hps = {k: v for k, v in hps.items() if not k.startswith("sagemaker_")}
    resource = {
        "current_host": CURRENT_HOST,
        "hosts": [CURRENT_HOST],
        "network_interface_name": "eth0",
    }
    (config_dir / "hyperparameters.json").write_text(json.dumps(raw_hps))
    (config_dir / "inputdataconfig.json").write_text(json.dumps(input_config))
    (config_dir / "resourceconfig.json").write_text(json.dumps(resource))

    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.update(
        {
            "PYTHONPATH": str(ml["code"]),
            "PYTHONUNBUFFERED": "1",
            "TRAINING_JOB_NAME": job_name,
            "SM_TRAINING_ENV": json.dumps(
                {
                    "job_name": job_name,
                    "hyperparameters": user_hps,
                    "channel_input_dirs": {k: str(v) for k, v in channels.items()},
                    "model_dir": str(ml["model"]),
                    "current_host": CURRENT_HOST,
                }
            ),
            "SM_MODEL_DIR": str(ml["model"]),
            "SM_INPUT_DIR": str(ml["input"]),
            "SM_INPUT_DATA_CONFIG": json.dumps(input_config),
            "SM_INPUT_CONFIG_DIR": str(config_dir),
            "SM_OUTPUT_DIR": str(ml["output"]),
            "SM_OUTPUT_DATA_DIR": str(output_data),
            "SM_CHANNELS": json.dumps(sorted(channels)),
            "SM_HPS": json.dumps(user_hps),
            "SM_CURRENT_HOST": CURRENT_HOST,
            "SM_HOSTS": json.dumps([CURRENT_HOST]),
            "SM_NUM_CPUS": str(os.cpu_count() or 1),
            "SM_NUM_GPUS": "0",
            "SM_USER_ENTRY_POINT": str(program),
            "SM_MODULE_DIR": str(submit_dir),
            "SM_FRAMEWORK_MODULE": "",
        }
    )
    for name, path in channels.items():
        env[f"SM_CHANNEL_{name.upper()}"] = str(path)
    for key, value in user_hps.items():
        env[f"SM_HP_{key.upper().replace('-', '_')}"] = _arg_text(value)
    env.update(extra_env)
    args = [python, str(ml["code"] / program)]
    for key, value in user_hps.items():
        args += [f"--{key}", _arg_text(value)]
    timeout = (description.get("StoppingCondition") or {}).get(
        "MaxRuntimeInSeconds", DEFAULT_TIMEOUT_S
    )
    with log_path.open("w") as log:
        log.write(
            f"[local-training] job {job_name} image "
            f"{spec.get('TrainingImage', DEFAULT_IMAGE)}\n"
            f"[local-training] channels {json.dumps(counts)} program {program}\n"
        )
        log.flush()
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(
                args,
                cwd=ml["code"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=float(timeout),
                check=False,
            )
            result.exit_code = proc.returncode
        except subprocess.TimeoutExpired:
            result.failure_reason = f"MaxRuntimeExceeded: training exceeded {timeout} s"
            return
        log.write(
            f"[local-training] exit code {result.exit_code} after "
            f"{time.perf_counter() - t0:.1f} s\n"
        )
    log_text = log_path.read_text(errors="replace")
    # moto's describe_training_job returns canned MetricDefinitions (test:dcg), not the ones
    # sent: the job's own definitions are used and the project's defaults added by name.
    definitions = list(spec.get("MetricDefinitions") or [])
    names = {d["Name"] for d in definitions}
    definitions += [d for d in METRIC_DEFINITIONS if d["Name"] not in names]
    result.final_metrics = parse_metric_lines(log_text, definitions)
    result.details["channel_objects"] = counts
    if result.exit_code != 0:
        failure_file = ml["output"] / "failure"
        reason = (
            failure_file.read_text().strip()
            if failure_file.exists()
            else log_text.strip().splitlines()[-1]
            if log_text.strip()
            else "no output"
        )
        result.failure_reason = f"AlgorithmError: exit code {result.exit_code}: {reason}"
        return
    if not any(ml["model"].iterdir()):
        result.failure_reason = "AlgorithmError: the program wrote nothing to SM_MODEL_DIR"
        return
    prefix = f"{output_path.rstrip('/')}/{job_name}/output"
    _upload(s3_client, f"{prefix}/model.tar.gz", pack_model_dir(ml["model"]))
    result.model_artifact = f"{prefix}/model.tar.gz"
    if any(output_data.iterdir()):
        from stocksage.model.artifact import tar_directory

        _upload(s3_client, f"{prefix}/output.tar.gz", tar_directory(output_data))
        result.output_artifact = f"{prefix}/output.tar.gz"
    result.status = "Completed"


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
    s3_client,
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
    if not result.ok:
        raise TrainingJobError(result)
    src_bucket, src_key = parse_s3_uri(result.model_artifact)
    s3_client.copy_object(
        Bucket=bucket, Key=artifact_key, CopySource={"Bucket": src_bucket, "Key": src_key}
    )
    result.details["published_artifact"] = f"s3://{bucket}/{artifact_key}"
    return result
