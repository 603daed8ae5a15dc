"""Run one script-mode training job on this machine, following SageMaker's contract.

``run_training_job(s3, description)`` takes a ``describe_training_job`` description and:

1. makes an ``/opt/ml``-like tree in a temporary folder: ``input/config/*.json``,
   ``input/data/<channel>/``, ``model/``, ``output/`` (``output/data/``), ``code/``;
2. downloads every channel's ``S3Prefix`` objects, keeping key paths relative to the prefix;
3. downloads and extracts ``sagemaker_submit_directory`` (``s3://.../sourcedir.tar.gz``);
4. runs ``sagemaker_program`` with this venv's Python (cwd and ``PYTHONPATH`` = the source
   folder) with ``SM_MODEL_DIR``, ``SM_CHANNEL_<NAME>``, ``SM_CHANNELS``, ``SM_HPS``,
   ``SM_HP_<NAME>``, ``SM_OUTPUT_DATA_DIR``, ``SM_OUTPUT_DIR``, ``SM_CURRENT_HOST``,
   ``SM_HOSTS``, ``TRAINING_JOB_NAME``... and the hyperparameters (minus ``sagemaker_*``) as
   ``--key value`` arguments, stdout and stderr captured to a log;
5. parses the metric definitions' regexes over the log (last value wins);
6. tars ``model/`` into ``model.tar.gz`` and uploads it to
   ``{S3OutputPath}/{TrainingJobName}/output/model.tar.gz`` (``output/data`` goes to
   ``output.tar.gz`` next to it when not empty).

It never raises for a failing job: the result says ``Failed`` with a reason in SageMaker's
words (``ClientError``: the request cannot run; ``AlgorithmError``: the program failed;
``MaxRuntimeExceeded``) and the log.

Hyperparameter values are decoded like the SageMaker training toolkit does: a value that is
valid JSON (the SDK JSON-encodes them, e.g. ``"\\"train.py\\""``) is decoded, else used as is.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stocksage.local.training.result import TrainingResult
from stocksage.local.training.s3io import download_prefix, fetch_source, upload
from stocksage.model.artifact import pack_model_dir, tar_directory
from stocksage.model.metrics import METRIC_DEFINITIONS, parse_metric_lines

CURRENT_HOST = "algo-1"
DEFAULT_TIMEOUT_S = 3600
DEFAULT_IMAGE = "local/sagemaker-scikit-learn:script-mode"


_EXECUTOR_PREFIX = "[local-training]"
"""Start of the lines the executor itself writes into a job's log (the program's are bare)."""


class _JobFailed(Exception):
    """A step found the job cannot complete; ``reason`` is its ``FailureReason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class MlTree:
    """The ``/opt/ml``-like folder tree of one job (``root`` stands for ``/opt/ml``)."""

    root: Path

    @property
    def input(self) -> Path:
        return self.root / "input"

    @property
    def config(self) -> Path:
        return self.root / "input" / "config"

    @property
    def data(self) -> Path:
        return self.root / "input" / "data"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def output(self) -> Path:
        return self.root / "output"

    @property
    def output_data(self) -> Path:
        return self.root / "output" / "data"

    @property
    def code(self) -> Path:
        return self.root / "code"

    @property
    def log(self) -> Path:
        return self.root / "output" / "training.log"

    def make(self) -> None:
        for path in (self.input, self.model, self.output, self.code, self.config, self.data,
                     self.output_data):
            path.mkdir(parents=True, exist_ok=True)


def decode_hyperparameter(value: Any) -> Any:
    """Decode a JSON-encoded hyperparameter value; leave plain strings alone."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except (json.JSONDecodeError, ValueError):
        return value


def _arg_text(value: Any) -> str:
    """A hyperparameter as a command-line / environment value (non-strings as JSON)."""
    if isinstance(value, str):
        return value
    return json.dumps(value)


def run_training_job(
    s3_client: Any,
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

    Example::

        desc = sm.describe_training_job(TrainingJobName=name)
        result = run_training_job(s3, desc)
        result.status, result.model_artifact, result.final_metrics
    """
    started = datetime.now(UTC)
    job_name = description.get("TrainingJobName") or "local-training-job"
    tree = MlTree(Path(tempfile.mkdtemp(prefix=f"sm-{job_name[:40]}-", dir=work_root)))
    result = TrainingResult(
        job_name=job_name,
        status="Failed",
        failure_reason=None,
        model_artifact=None,
        final_metrics={},
        log="",
        started_at=started,
        ended_at=started,
        workdir=str(tree.root),
    )
    try:
        _run(s3_client, description, tree, result, python or sys.executable, extra_env or {})
    except _JobFailed as failed:
        result.failure_reason = failed.reason
    except Exception as exc:  # noqa: BLE001 - the job fails, the caller gets a result
        result.status = "Failed"
        result.failure_reason = result.failure_reason or f"ClientError: {type(exc).__name__}: {exc}"
    finally:
        result.ended_at = datetime.now(UTC)
        if tree.log.exists():
            result.log = tree.log.read_text(errors="replace")
        if not keep_workdir:
            shutil.rmtree(tree.root, ignore_errors=True)
            result.workdir = None
    return result


def _run(s3_client: Any, description: Mapping[str, Any], tree: MlTree, result: TrainingResult,
         python: str, extra_env: Mapping[str, str]) -> None:
    """The job's steps; a step that finds the job cannot complete raises ``_JobFailed``."""
    job_name = result.job_name
    spec = description.get("AlgorithmSpecification") or {}
    raw_hps = dict(description.get("HyperParameters") or {})
    hps = {k: decode_hyperparameter(v) for k, v in raw_hps.items()}
    program = hps.get("sagemaker_program")
    submit_dir = hps.get("sagemaker_submit_directory")
    if not program or not submit_dir:
        raise _JobFailed("ClientError: only script mode is supported locally: hyperparameters "
                         "need sagemaker_program and sagemaker_submit_directory")
    output_path = (description.get("OutputDataConfig") or {}).get("S3OutputPath")
    if not output_path:
        raise _JobFailed("ClientError: OutputDataConfig.S3OutputPath is missing")

    tree.make()
    channels, input_config, counts = _download_channels(s3_client, description, tree)
    fetch_source(s3_client, str(submit_dir), tree.code)
    if not (tree.code / program).is_file():
        raise _JobFailed(f"ClientError: sagemaker_program {program!r} is not in the source "
                         f"bundle {submit_dir}")

    user_hps = {k: v for k, v in hps.items() if not k.startswith("sagemaker_")}
    resource = {"current_host": CURRENT_HOST, "hosts": [CURRENT_HOST],
                "network_interface_name": "eth0"}
    (tree.config / "hyperparameters.json").write_text(json.dumps(raw_hps))
    (tree.config / "inputdataconfig.json").write_text(json.dumps(input_config))
    (tree.config / "resourceconfig.json").write_text(json.dumps(resource))

    env = _environment(tree, job_name, str(program), str(submit_dir), user_hps, channels,
                       input_config)
    env.update(extra_env)
    args = [python, str(tree.code / program)]
    for key, value in user_hps.items():
        args += [f"--{key}", _arg_text(value)]
    timeout = (description.get("StoppingCondition") or {}).get(
        "MaxRuntimeInSeconds", DEFAULT_TIMEOUT_S)
    header = (f"{_EXECUTOR_PREFIX} job {job_name} image "
              f"{spec.get('TrainingImage', DEFAULT_IMAGE)}\n"
              f"{_EXECUTOR_PREFIX} channels {json.dumps(counts)} program {program}\n")
    result.exit_code = _run_program(args, env, tree, timeout, header)

    log_text = tree.log.read_text(errors="replace")
    # moto's describe_training_job returns canned MetricDefinitions (test:dcg), not the ones
    # sent: the job's own definitions are used and the project's defaults added by name.
    definitions = list(spec.get("MetricDefinitions") or [])
    names = {d["Name"] for d in definitions}
    definitions += [d for d in METRIC_DEFINITIONS if d["Name"] not in names]
    result.final_metrics = parse_metric_lines(log_text, definitions)
    result.details["channel_objects"] = counts
    if result.exit_code != 0:
        failure_file = tree.output / "failure"
        if failure_file.exists():
            reason = failure_file.read_text().strip()
        else:  # SageMaker reports the program's own last words, not the platform's
            program_lines = [line for line in log_text.splitlines()
                             if line.strip() and not line.startswith(_EXECUTOR_PREFIX)]
            reason = program_lines[-1].strip() if program_lines else "no output"
        raise _JobFailed(f"AlgorithmError: exit code {result.exit_code}: {reason}")
    if not any(tree.model.iterdir()):
        raise _JobFailed("AlgorithmError: the program wrote nothing to SM_MODEL_DIR")

    prefix = f"{output_path.rstrip('/')}/{job_name}/output"
    upload(s3_client, f"{prefix}/model.tar.gz", pack_model_dir(tree.model))
    result.model_artifact = f"{prefix}/model.tar.gz"
    if any(tree.output_data.iterdir()):
        upload(s3_client, f"{prefix}/output.tar.gz", tar_directory(tree.output_data))
        result.output_artifact = f"{prefix}/output.tar.gz"
    result.status = "Completed"


def _download_channels(s3_client: Any, description: Mapping[str, Any], tree: MlTree
                       ) -> tuple[dict[str, Path], dict[str, Any], dict[str, int]]:
    """Download each ``InputDataConfig`` channel to ``input/data/<name>``; return the channel
    folders, ``inputdataconfig.json`` and the object count per channel."""
    channels: dict[str, Path] = {}
    input_config: dict[str, Any] = {}
    counts: dict[str, int] = {}
    for channel in description.get("InputDataConfig") or []:
        name = channel["ChannelName"]
        source = channel.get("DataSource", {}).get("S3DataSource", {})
        if source.get("S3DataType", "S3Prefix") != "S3Prefix":
            raise _JobFailed(f"ClientError: channel {name}: only S3Prefix data is supported "
                             f"locally")
        target = tree.data / name
        target.mkdir(parents=True, exist_ok=True)
        counts[name] = download_prefix(s3_client, source["S3Uri"], target)
        channels[name] = target
        input_config[name] = {
            "TrainingInputMode": "File",
            "S3DistributionType": source.get("S3DataDistributionType", "FullyReplicated"),
            "RecordWrapperType": "None",
        }
    return channels, input_config, counts


def _environment(tree: MlTree, job_name: str, program: str, submit_dir: str,
                 user_hps: dict[str, Any], channels: dict[str, Path],
                 input_config: dict[str, Any]) -> dict[str, str]:
    """The program's environment: this process's (without ``PYTHONPATH``) plus the training
    toolkit's ``SM_*`` variables."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.update({
        "PYTHONPATH": str(tree.code),
        "PYTHONUNBUFFERED": "1",
        "TRAINING_JOB_NAME": job_name,
        "SM_TRAINING_ENV": json.dumps({
            "job_name": job_name,
            "hyperparameters": user_hps,
            "channel_input_dirs": {k: str(v) for k, v in channels.items()},
            "model_dir": str(tree.model),
            "current_host": CURRENT_HOST,
        }),
        "SM_MODEL_DIR": str(tree.model),
        "SM_INPUT_DIR": str(tree.input),
        "SM_INPUT_DATA_CONFIG": json.dumps(input_config),
        "SM_INPUT_CONFIG_DIR": str(tree.config),
        "SM_OUTPUT_DIR": str(tree.output),
        "SM_OUTPUT_DATA_DIR": str(tree.output_data),
        "SM_CHANNELS": json.dumps(sorted(channels)),
        "SM_HPS": json.dumps(user_hps),
        "SM_CURRENT_HOST": CURRENT_HOST,
        "SM_HOSTS": json.dumps([CURRENT_HOST]),
        "SM_NUM_CPUS": str(os.cpu_count() or 1),
        "SM_NUM_GPUS": "0",
        "SM_USER_ENTRY_POINT": program,
        "SM_MODULE_DIR": submit_dir,
        "SM_FRAMEWORK_MODULE": "",
    })
    for name, path in channels.items():
        env[f"SM_CHANNEL_{name.upper()}"] = str(path)
    for key, value in user_hps.items():
        env[f"SM_HP_{key.upper().replace('-', '_')}"] = _arg_text(value)
    return env


def _run_program(args: list[str], env: dict[str, str], tree: MlTree, timeout: float | str,
                 header: str) -> int:
    """Run the program from the code folder, its output in the job's log; return its exit
    code (``MaxRuntimeExceeded`` after ``timeout`` seconds)."""
    with tree.log.open("w") as log:
        log.write(header)
        log.flush()
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(args, cwd=tree.code, env=env, stdout=log,
                                  stderr=subprocess.STDOUT, timeout=float(timeout),
                                  check=False)
        except subprocess.TimeoutExpired:
            raise _JobFailed(f"MaxRuntimeExceeded: training exceeded {timeout} s") from None
        log.write(f"{_EXECUTOR_PREFIX} exit code {proc.returncode} after "
                  f"{time.perf_counter() - t0:.1f} s\n")
    return proc.returncode
