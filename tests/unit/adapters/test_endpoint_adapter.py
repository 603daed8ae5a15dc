"""SageMakerPredictor: one InvokeEndpoint per batch, split only when the payload limit demands.

The client here is a recording stand-in for ``sagemaker-runtime`` (moto's returns canned bytes);
the real endpoint path is covered by the integration tests through the local endpoint host.
"""

from __future__ import annotations

import io
import json

import pytest

from stocksage.adapters.endpoint import EndpointResponseError, SageMakerPredictor

NAMES = ["a", "b", "c"]


class RecordingRuntime:
    def __init__(self, answer=None):
        self.bodies: list[bytes] = []
        self.answer = answer

    def invoke_endpoint(self, EndpointName, Body, ContentType, Accept):
        self.bodies.append(Body)
        request = json.loads(Body)
        assert request["features"] == NAMES and ContentType == "application/json"
        answer = self.answer or {"predictions": [min(1.0, abs(r[0])) for r in request["instances"]],
                                 "model_version": "v7"}
        return {"Body": io.BytesIO(json.dumps(answer).encode())}


def rows(n):
    return [[i / n, 0.5, -1.25] for i in range(n)]


def test_one_call_when_the_batch_fits():
    runtime = RecordingRuntime()
    prediction = SageMakerPredictor(runtime, "ep").predict(NAMES, rows(500))
    assert len(runtime.bodies) == 1
    assert prediction.probabilities == [i / 500 for i in range(500)]
    assert prediction.model_version == "v7"


def test_split_by_payload_size_keeps_order_and_every_body_under_the_limit():
    runtime = RecordingRuntime()
    limit = 2_000
    prediction = SageMakerPredictor(runtime, "ep", payload_limit=limit).predict(NAMES, rows(300))
    assert len(runtime.bodies) > 1
    assert all(len(body) <= limit for body in runtime.bodies)
    assert prediction.probabilities == [i / 300 for i in range(300)]


@pytest.mark.parametrize("answer, message", [
    ({"nope": 1}, "no 'predictions'"),
    ({"predictions": [0.5]}, "1 predictions for 3 rows"),
    ({"predictions": [0.5, 2.0, 0.1]}, "outside"),
])
def test_bad_answers_raise_a_clear_error(answer, message):
    with pytest.raises(EndpointResponseError, match=message):
        SageMakerPredictor(RecordingRuntime(answer), "ep").predict(NAMES, rows(3))


def test_two_output_response_gives_range_forecasts():
    runtime = RecordingRuntime({"predictions": [0.4, 0.6, 0.5],
                                "range_forecasts": [0.011, 0.02, 0.015], "model_version": "v8"})
    prediction = SageMakerPredictor(runtime, "ep").predict(NAMES, rows(3))
    assert prediction.probabilities == [0.4, 0.6, 0.5]
    assert prediction.range_forecasts == [0.011, 0.02, 0.015]


def test_one_output_response_of_an_older_model_is_still_accepted():
    prediction = SageMakerPredictor(RecordingRuntime(), "ep").predict(NAMES, rows(3))
    assert prediction.range_forecasts is None


@pytest.mark.parametrize("answer, message", [
    ({"predictions": [0.5] * 3, "range_forecasts": [0.01]}, "do not match"),
    ({"predictions": [0.5] * 3, "range_forecasts": [0.01, -0.01, 0.01]}, "not a positive"),
])
def test_bad_range_forecasts_raise_a_clear_error(answer, message):
    with pytest.raises(EndpointResponseError, match=message):
        SageMakerPredictor(RecordingRuntime(answer), "ep").predict(NAMES, rows(3))
