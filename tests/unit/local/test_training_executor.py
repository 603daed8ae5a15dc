"""Local SageMaker training-job executor against the patched emulator with real history objects."""

from __future__ import annotations

import io
import json
import tarfile

import boto3
import pytest

from stocksage.bars import frame_to_bars
from stocksage.config import STACK
from stocksage.datasets import load_bars
from stocksage.local.training import (
    TrainingJobError,
    run_training_job,
    script_mode_job,
    train_initial_model,
)
from stocksage.model.metrics import METRIC_NAMES
from stocksage.model.sourcedir import SOURCEDIR_KEY, build_sourcedir

BUCKET = "stocksage-test-history"
SYMBOLS = ("IBM", "FB", "TSLA")


@pytest.fixture(scope="module")
def s3(kw):
    client = boto3.client("s3", **kw)
    client.create_bucket(Bucket=BUCKET)
    from stocksage.adapters.s3_history import put_history

    for symbol in SYMBOLS:
        put_history(
            client, BUCKET, frame_to_bars(symbol, load_bars(symbol), source="test"), name="backfill"
        )
    client.put_object(Bucket=BUCKET, Key=SOURCEDIR_KEY, Body=build_sourcedir())
    return client


def _members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_runs_a_job_described_by_moto(s3, kw):
    sm = boto3.client("sagemaker", **kw)
    spec = script_mode_job(
        job_name="job-from-moto", bucket=BUCKET, hyperparameters={"folds": 3, "bootstrap-reps": 200}
    )
    sm.create_training_job(**spec)
    description = sm.describe_training_job(TrainingJobName="job-from-moto")
    result = run_training_job(s3, description)
    assert result.status == "Completed", result.failure_reason + "\n" + result.log
    assert result.model_artifact == (
        f"s3://{BUCKET}/model-artifacts/training-jobs/job-from-moto/output/model.tar.gz"
    )
    body = s3.get_object(
        Bucket=BUCKET, Key="model-artifacts/training-jobs/job-from-moto/output/model.tar.gz"
    )["Body"].read()
    files = _members(body)
    meta = json.loads(files["metadata.json"])
    # range_model.joblib is there exactly when the range model beat its baselines
    expected = {"model.joblib", "metadata.json", "metrics.json"}
    if meta.get("range_model"):
        expected.add("range_model.joblib")
    assert set(files) == expected
    assert meta["features"] == list(STACK.features)
    assert meta["model_version"] == "job-from-moto"  # TRAINING_JOB_NAME is the default
    assert meta["symbols"] == sorted(SYMBOLS)
    assert meta["hyperparameters"]["folds"] == 3
    assert set(result.final_metrics) == set(METRIC_NAMES)
    assert 0.0 < result.final_metrics["validation:log_loss"] < 1.0
    assert "validation:auc=" in result.log and "[local-training] exit code 0" in result.log
    assert result.details["channel_objects"]["train"] > 0
    assert result.output_artifact and result.final_metric_data_list()[0]["MetricName"]
    text = str(result)
    assert "status=Completed" in text and "validation:log_loss=" in text and len(text) < 600


def test_train_initial_model_publishes_the_artifact(s3):
    result = train_initial_model(
        s3,
        BUCKET,
        "model-artifacts/initial/model.tar.gz",
        job_name="initial-test",
        hyperparameters={"folds": 3, "bootstrap-reps": 200},
    )
    assert result.ok
    published = s3.get_object(Bucket=BUCKET, Key="model-artifacts/initial/model.tar.gz")[
        "Body"
    ].read()
    original = s3.get_object(
        Bucket=BUCKET, Key="model-artifacts/training-jobs/initial-test/output/model.tar.gz"
    )["Body"].read()
    assert published == original
    assert json.loads(_members(published)["metadata.json"])["model_version"] == "initial-test"


def test_non_script_mode_job_is_rejected(s3):
    spec = script_mode_job(job_name="job-bad", bucket=BUCKET)
    del spec["HyperParameters"]["sagemaker_program"]
    result = run_training_job(s3, spec)
    assert result.status == "Failed" and "script mode" in result.failure_reason


def test_initial_model_failure_raises(s3):
    s3.create_bucket(Bucket="stocksage-empty")
    with pytest.raises(TrainingJobError, match=r"no \*\.json\.gz") as caught:
        train_initial_model(s3, "stocksage-empty", "m/model.tar.gz", job_name="empty-initial")
    result = caught.value.result
    assert result.status == "Failed" and result.failure_reason.startswith("AlgorithmError")
    assert result.model_artifact is None and "exit code 1" in result.log
    listed = s3.list_objects_v2(Bucket="stocksage-empty", Prefix="model-artifacts/")
    assert listed.get("KeyCount", 0) == 0
    assert "Contents" not in s3.list_objects_v2(Bucket="stocksage-empty", Prefix="m/")


def test_failure_without_failure_file_reports_the_programs_last_line(s3):
    """A program that exits non-zero without writing /opt/ml/output/failure: the reason is
    its own last output line (as SageMaker's AlgorithmError), not the executor's log line."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        script = (b"import sys\nprint('loading data')\n"
                  b"print('ValueError: no usable rows', file=sys.stderr)\nsys.exit(3)\n")
        info = tarfile.TarInfo("fail.py")
        info.size = len(script)
        tar.addfile(info, io.BytesIO(script))
    s3.put_object(Bucket=BUCKET, Key="code/failing.tar.gz", Body=buffer.getvalue())
    spec = script_mode_job(job_name="job-exits-3", bucket=BUCKET,
                           source_key="code/failing.tar.gz", program="fail.py")
    result = run_training_job(s3, spec)
    assert result.status == "Failed" and result.exit_code == 3
    assert result.failure_reason == "AlgorithmError: exit code 3: ValueError: no usable rows"
    assert "[local-training] exit code 3" in result.log
