"""Retrain Lambda before the endpoint exists: a clear log line and a skip, not an error."""

from __future__ import annotations

import io

import pytest

from tests.helpers.lambda_context import LambdaContext

moto = pytest.importorskip("moto")

ENV = {
    "HISTORY_BUCKET": "b", "JOB_PREFIX": "stocksage-test-retrain",
    "TRAINING_ROLE_ARN": "arn:aws:iam::123456789012:role/training",
    "TRAINING_IMAGE": "683313688378.dkr.ecr.us-east-1.amazonaws.com/"
                      "sagemaker-scikit-learn:1.9-0-cpu-py3",
    "ENDPOINT_NAME": "stocksage-test-predictor", "VERSIONS_TABLE": "stocksage-test-model-versions",
    "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled", "POWERTOOLS_METRICS_NAMESPACE": "stocksage",
}


def test_retrain_without_endpoint_skips_with_a_clear_log_line(monkeypatch):
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    for key in [k for k in __import__("os").environ if k.startswith("AWS_ENDPOINT_URL")]:
        monkeypatch.delenv(key)
    from lambdas import retrain

    # The Powertools handler keeps the stream it was created with (module import time).
    stream = io.StringIO()
    monkeypatch.setattr(retrain.logger.registered_handler, "stream", stream)
    retrain._clients.cache_clear()
    with moto.mock_aws():
        result = retrain.lambda_handler(
            {"source": "stocksage.scheduler", "scheduled_time": "2026-01-02T03:04:00Z"},
            LambdaContext(function_name="retrain", memory_limit_in_mb=256, aws_request_id="r-1"))
    retrain._clients.cache_clear()
    assert result == {"training_job_name": None, "created": False, "status": "Skipped",
                      "reason": "no endpoint"}
    out = stream.getvalue()
    assert "retrain skipped: endpoint stocksage-test-predictor does not exist yet" in out


def test_other_errors_are_not_taken_for_a_missing_endpoint():
    from botocore.exceptions import ClientError

    from lambdas.retrain import is_missing_endpoint

    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}},
                         "DescribeEndpoint")
    missing = ClientError({"Error": {"Code": "ValidationException",
                                     "Message": 'Could not find endpoint "x".'}},
                          "DescribeEndpoint")
    assert not is_missing_endpoint(denied) and is_missing_endpoint(missing)
    assert not is_missing_endpoint(ValueError("Could not find endpoint"))
