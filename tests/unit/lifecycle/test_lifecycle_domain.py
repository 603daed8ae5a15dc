"""Model lifecycle domain: the gate, schedule ticks (idempotent job names), promotion, rollback."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pytest

from stocksage.lifecycle import versions as V
from stocksage.lifecycle.gate import GatePolicy, evaluate_gate
from stocksage.lifecycle.promotion import ServingModel, handle_training_job_event, rollback
from stocksage.lifecycle.schedule import (
    RetrainConfig,
    TickError,
    job_name,
    parse_tick,
    training_job_request,
    training_window,
)

GOOD = {
    "validation:rows": 1000.0,
    "validation:margin_log_loss": 0.07,
    "validation:margin_log_loss_ci_low": 0.05,
    "validation:margin_log_loss_ci_high": 0.09,
    "validation:champion_rows": 500.0,
    "validation:margin_champion_log_loss": 0.1,
    "validation:margin_champion_log_loss_ci_low": 0.08,
    "validation:margin_champion_log_loss_ci_high": 0.12,
}


def checks(verdict):
    return {c.name: c for c in verdict.checks}


# --- gate -----------------------------------------------------------------------------------


def test_gate_passes_a_model_that_beats_baselines_and_the_serving_model():
    verdict = evaluate_gate(GOOD, serving_version="v1", trained_against="v1")
    assert verdict.passed and verdict.summary.startswith("PASSED")
    assert checks(verdict)["beats_baselines"].value == pytest.approx(0.05)


def test_gate_rejects_when_the_baseline_margin_ci_touches_zero():
    metrics = {**GOOD, "validation:margin_log_loss": 0.01,
               "validation:margin_log_loss_ci_low": -0.002}
    verdict = evaluate_gate(metrics, serving_version="v1", trained_against="v1")
    assert not verdict.passed
    assert not checks(verdict)["beats_baselines"].passed
    assert "does not beat the best naive baseline" in verdict.summary


def test_gate_margin_threshold_applies_to_the_ci_lower_end():
    verdict = evaluate_gate(GOOD, serving_version=None, trained_against=None,
                            policy=GatePolicy(min_margin=0.06))
    assert not checks(verdict)["beats_baselines"].passed  # ci_low 0.05 < 0.06


def test_gate_rejects_a_model_that_does_not_beat_the_serving_model():
    metrics = {**GOOD, "validation:margin_champion_log_loss_ci_low": -0.01}
    verdict = evaluate_gate(metrics, serving_version="v1", trained_against="v1")
    assert not verdict.passed and not checks(verdict)["beats_serving_model"].passed


def test_gate_needs_enough_rows_after_the_serving_models_data():
    metrics = {**GOOD, "validation:champion_rows": 12.0}
    verdict = evaluate_gate(metrics, serving_version="v1", trained_against="v1")
    assert not checks(verdict)["beats_serving_model"].passed
    assert "only 12 holdout rows" in checks(verdict)["beats_serving_model"].detail


def test_gate_without_a_serving_model_and_with_a_changed_one():
    assert checks(evaluate_gate(GOOD, serving_version=None, trained_against=None)
                  )["beats_serving_model"].passed
    verdict = evaluate_gate(GOOD, serving_version="v2", trained_against="v1")
    assert not verdict.passed and "v2 serves now" in verdict.summary


@pytest.mark.parametrize("missing", ["validation:margin_log_loss_ci_low", "validation:rows"])
def test_gate_fails_on_missing_or_nan_metrics(missing):
    metrics = dict(GOOD)
    metrics.pop(missing)
    assert not evaluate_gate(metrics, serving_version=None, trained_against=None).passed
    metrics[missing] = math.nan
    assert not evaluate_gate(metrics, serving_version=None, trained_against=None).passed


def test_gate_verdict_serialises_without_nan():
    verdict = evaluate_gate({"validation:rows": math.nan}, serving_version=None,
                            trained_against=None)
    json.dumps(verdict.to_dict(), allow_nan=False)


# --- schedule ticks -------------------------------------------------------------------------

CONFIG = RetrainConfig(bucket="b", job_prefix="stocksage-dev-retrain", role_arn="arn:role",
                       image="img:1.2-1", region="us-east-1", kms_key_arn="arn:key",
                       hyperparameters={"model-type": "logreg", "c": "0.001"},
                       metric_definitions=[{"Name": "m", "Regex": "m=(x);"}])


def test_one_tick_one_job_name_whatever_the_seconds_or_the_delivery():
    a = parse_tick({"scheduled_time": "2026-11-20T06:00:00Z"})
    b = parse_tick({"scheduled_time": "2026-11-20T06:00:41.5+00:00"})
    c = parse_tick({"time": "2026-11-20T06:00:00Z"})  # EventBridge scheduled-event shape
    assert job_name("stocksage-dev-retrain", a) == "stocksage-dev-retrain-20261120T0600Z"
    assert job_name("p", a) == job_name("p", b) == job_name("p", c)
    assert job_name("p", parse_tick({"scheduled_time": "2026-11-23T06:00:00Z"})) != \
        job_name("p", a)


def test_tick_without_time_uses_now_and_rejects_unknown_overrides():
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_tick({}, now=now).scheduled_time == datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    with pytest.raises(TickError):
        parse_tick({"overrides": {"sagemaker_program": "evil.py"}})
    with pytest.raises(TickError):
        parse_tick({"scheduled_time": "<aws.scheduler.scheduled-time>"})


def test_training_window_ends_at_the_tick():
    tick = parse_tick({"scheduled_time": "2026-11-20T06:00:00Z"})
    assert training_window(tick, 0) == (None, tick.scheduled_time)
    start, end = training_window(tick, 365)
    assert (end - start).days == 365


def test_request_is_script_mode_with_champion_channel_and_kms():
    tick = parse_tick({"scheduled_time": "2026-11-20T06:00:00Z", "overrides": {"c": "1.0"}})
    request = training_job_request(CONFIG, tick, "s3://b/model-artifacts/initial/model.tar.gz",
                                   "v0")
    hps = {k: json.loads(v) for k, v in request["HyperParameters"].items()}
    assert hps["sagemaker_program"] == "train.py"
    assert hps["sagemaker_submit_directory"] == "s3://b/code/sourcedir.tar.gz"
    assert hps["model-version"] == request["TrainingJobName"]
    assert hps["c"] == "1.0" and hps["end"] == "2026-11-20T06:00:00Z" and hps["start"] == ""
    assert hps["champion-version"] == "v0"
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
                for c in request["InputDataConfig"]}
    assert channels == {"train": "s3://b/bars/",
                        "champion": "s3://b/model-artifacts/initial/model.tar.gz"}
    assert request["OutputDataConfig"]["KmsKeyId"] == "arn:key"
    assert request["ResourceConfig"]["VolumeKmsKeyId"] == "arn:key"
    assert request["AlgorithmSpecification"]["MetricDefinitions"] == [
        {"Name": "m", "Regex": "m=(x);"}]


def test_terraform_metric_definitions_file_is_what_the_retrain_lambda_sends():
    from lambdas.retrain import metric_definitions
    from stocksage.model.metrics import METRIC_DEFINITIONS

    assert metric_definitions() == [dict(d) for d in METRIC_DEFINITIONS]
    assert len(metric_definitions()) <= 40  # SageMaker's limit


# --- promotion and rollback -----------------------------------------------------------------


class FakeRegistry:
    def __init__(self):
        self.items: dict[str, V.ModelVersion] = {}

    def get(self, name):
        item = self.items.get(name)
        return V.ModelVersion.from_item(item.to_item()) if item else None

    def put(self, version):
        self.items[version.model_version] = V.ModelVersion.from_item(version.to_item())

    def all(self):
        return [self.get(n) for n in self.items]


class FakePlatform:
    def __init__(self, jobs):
        self.jobs = jobs
        self.config = "ep-boot"
        self.configs = {"ep-boot": "v0"}
        self.deployed = []

    def describe_training_job(self, name):
        return self.jobs[name]

    def artifact_documents(self, uri):
        return {"metadata": {"data_range": {"first_bar_time": "2016-01-04T00:00:00Z",
                                            "last_bar_time": "2019-01-01T00:00:00Z"},
                             "symbols": ["SYNA"], "rows": 1000}}

    def serving_model(self, endpoint):
        return ServingModel(endpoint, self.config, f"m-{self.config}", "s3://b/m.tar.gz",
                            self.configs[self.config], {"data_range": {}})

    def deploy(self, version, artifact, serving):
        name = f"ep-{version}"
        self.configs[name] = version
        self.point_endpoint(serving.endpoint_name, name)
        self.deployed.append(version)
        return name, name

    def point_endpoint(self, endpoint, config):
        self.config = config


def job(name, status="Completed", metrics=GOOD, champion="v0"):
    return {"TrainingJobName": name, "TrainingJobStatus": status,
            "FailureReason": "AlgorithmError: boom" if status == "Failed" else None,
            "ModelArtifacts": {"S3ModelArtifacts": f"s3://b/{name}/model.tar.gz"},
            "HyperParameters": {"champion-version": json.dumps(champion)},
            "FinalMetricDataList": [{"MetricName": k, "Value": v} for k, v in metrics.items()]}


def event(name, status="Completed"):
    return {"detail-type": "SageMaker Training Job State Change", "source": "aws.sagemaker",
            "detail": {"TrainingJobName": name, "TrainingJobStatus": status}}


def run(registry, platform, name, status="Completed"):
    return handle_training_job_event(event(name, status), registry=registry, platform=platform,
                                     endpoint_name="ep", job_prefix="p")


def test_promotion_flow_failed_rejected_promoted_duplicate_and_rollback():
    bad = {**GOOD, "validation:margin_log_loss_ci_low": -0.01}
    platform = FakePlatform({"p-1": job("p-1", "Failed"), "p-2": job("p-2", metrics=bad),
                             "p-3": job("p-3")})
    registry = FakeRegistry()
    assert run(registry, platform, "p-1", "Failed").action == "failed"
    assert registry.get("p-1").failure_reason.startswith("AlgorithmError")
    assert run(registry, platform, "p-2").action == "rejected"
    assert registry.get("p-2").status == V.REJECTED and platform.deployed == []
    assert registry.get("v0").status == V.SERVING and registry.get("v0").source == "bootstrap"

    outcome = run(registry, platform, "p-3")
    assert outcome.action == "promoted" and platform.config == "ep-p-3"
    assert registry.get("p-3").status == V.SERVING
    assert registry.get("p-3").data_range["last_bar_time"].startswith("2019")
    assert registry.get("v0").status == V.RETIRED
    assert run(registry, platform, "p-3").action == "duplicate"  # at-least-once delivery
    assert platform.deployed == ["p-3"]
    assert run(registry, platform, "other-1").action == "ignored"

    back = rollback(registry=registry, platform=platform, endpoint_name="ep")
    assert back.action == "rolled_back" and back.model_version == "v0"
    assert platform.config == "ep-boot"
    assert registry.get("p-3").status == V.ROLLED_BACK
    assert [h["event"] for h in registry.get("p-3").history][-1] == "rollback"
    assert rollback(registry=registry, platform=platform, endpoint_name="ep").action == "none"


def test_a_candidate_compared_with_an_old_serving_model_is_not_promoted():
    platform = FakePlatform({"p-9": job("p-9", champion="v-old")})
    outcome = run(FakeRegistry(), platform, "p-9")
    assert outcome.action == "rejected" and "v0 serves now" in outcome.detail


# --- gate: the range output --------------------------------------------------------------

RANGE_GOOD = {
    "validation:rows": 1000.0,
    "validation:margin_log_loss": 0.00003,  # P(up) no better than the majority (real data)
    "validation:margin_log_loss_ci_low": -0.0004,
    "validation:margin_log_loss_ci_high": 0.0005,
    "validation:champion_rows": 0.0,
    "range:margin_mse": 0.007,
    "range:margin_mse_ci_low": 0.003,
    "range:margin_mse_ci_high": 0.011,
    "range:beats_baselines": 1.0,
    "range:in_artifact": 1.0,
    "range:champion_has_model": 0.0,
    "range:champion_rows": 0.0,
}


def test_gate_promotes_on_the_range_verdict_when_no_range_model_serves():
    verdict = evaluate_gate(RANGE_GOOD, serving_version="v1", trained_against="v1")
    assert verdict.passed, verdict.summary
    c = checks(verdict)
    assert not c["beats_baselines"].passed and c["range_beats_baselines"].passed
    assert c["range_beats_baselines"].value == pytest.approx(0.003)
    assert "MSE of ln range" in c["range_beats_baselines"].detail


def test_gate_rejects_a_range_model_whose_ci_touches_zero_or_that_is_not_shipped():
    low = {**RANGE_GOOD, "range:margin_mse_ci_low": -0.001}
    assert not evaluate_gate(low, serving_version="v1", trained_against="v1").passed
    off = {**RANGE_GOOD, "range:in_artifact": 0.0}
    assert not evaluate_gate(off, serving_version="v1", trained_against="v1").passed


def test_gate_compares_the_range_output_with_the_serving_one():
    serving = {**RANGE_GOOD, "range:champion_has_model": 1.0, "range:champion_rows": 500.0,
               "range:margin_champion_mse": 0.001, "range:margin_champion_mse_ci_low": -0.002,
               "range:margin_champion_mse_ci_high": 0.004}
    verdict = evaluate_gate(serving, serving_version="v1", trained_against="v1")
    assert not verdict.passed and not checks(verdict)["range_beats_serving_model"].passed
    better = {**serving, "range:margin_champion_mse_ci_low": 0.0005}
    assert evaluate_gate(better, serving_version="v1", trained_against="v1").passed


def test_gate_does_not_drop_a_serving_range_output_or_ship_a_worse_p_up():
    drops = {**GOOD, "range:champion_has_model": 1.0, "range:champion_rows": 500.0,
             "range:in_artifact": 0.0}
    verdict = evaluate_gate(drops, serving_version="v1", trained_against="v1")
    assert not verdict.passed and not checks(verdict)["range_not_worse"].passed
    worse = {**RANGE_GOOD, "validation:champion_rows": 500.0,
             "validation:margin_champion_log_loss": -0.01,
             "validation:margin_champion_log_loss_ci_low": -0.02,
             "validation:margin_champion_log_loss_ci_high": -0.001}
    verdict = evaluate_gate(worse, serving_version="v1", trained_against="v1")
    assert not verdict.passed and not checks(verdict)["direction_not_worse"].passed


def test_report_shows_the_verdict_of_both_outputs(tmp_path):
    from stocksage.lifecycle.report import build_report

    metrics = {**RANGE_GOOD, "validation:log_loss": 0.69329,
               "baseline:majority_log_loss": 0.69336, "range:validation_mse": 0.15566,
               "range:baseline_best_mse": 0.16262}
    version = V.ModelVersion(model_version="stocksage-retrain-20260105T0630Z",
                             status=V.SERVING, created_at="2026-01-05T06:30:00Z",
                             metrics=metrics, gate={"summary": "PASSED: ..."})
    html = build_report([version], {}, tmp_path / "report.html",
                        serving_version=version.model_version).read_text()
    assert "range margin vs best baseline [95% CI]" in html
    assert "+0.00700 [+0.00300, +0.01100]" in html
    assert "next-bar range: walk-forward margin" in html
    assert "P(up): walk-forward margin" in html
