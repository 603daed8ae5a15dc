"""sagemaker/inference.py handlers on an artifact written by sagemaker/train.py."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from stocksage.config import STACK

ROOT = Path(__file__).resolve().parents[3]
FEATURES = list(STACK.features)


def _load_inference():
    spec = importlib.util.spec_from_file_location(
        "sm_inference", ROOT / "sagemaker" / "inference.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def inference():
    return _load_inference()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    import os

    from stocksage.bars import frame_to_bars
    from stocksage.datasets import load_bars
    from stocksage.history import encode_objects

    tmp = tmp_path_factory.mktemp("inference")
    channel = tmp / "train"
    for symbol in ("IBM", "FB", "TSLA"):
        bars = frame_to_bars(symbol, load_bars(symbol), source="test")
        for key, body in encode_objects(bars).items():
            (channel / key).parent.mkdir(parents=True, exist_ok=True)
            (channel / key).write_bytes(body)
    env = dict(
        os.environ,
        SM_MODEL_DIR=str(tmp / "model"),
        SM_CHANNEL_TRAIN=str(channel),
        PYTHONPATH=str(ROOT),
    )
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "sagemaker" / "train.py"),
            "--model-version",
            "inf-test",
            "--folds",
            "3",
            "--bootstrap-reps",
            "200",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return tmp / "model"


@pytest.fixture(scope="module")
def model(inference, model_dir):
    return inference.model_fn(str(model_dir))


def _rows(n=4, seed=0):
    rng = np.random.default_rng(seed)
    rows = rng.normal(0, 0.02, (n, len(FEATURES)))
    rows[:, FEATURES.index("rsi_14")] = rng.uniform(20, 80, n)
    rows[:, FEATURES.index("bb_pband")] = rng.uniform(0, 1, n)
    return rows.tolist()


def test_inference_does_not_import_stocksage():
    code = (
        "import sys, runpy; sys.path.insert(0, 'sagemaker'); import inference; "
        "print(any(m == 'stocksage' or m.startswith('stocksage.') for m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


def test_json_round_trip(inference, model):
    body = json.dumps({"features": FEATURES, "instances": _rows(5)})
    data = inference.input_fn(body.encode(), "application/json")
    p = inference.predict_fn(data, model)
    assert p.shape == (5,)
    assert ((p >= 0) & (p <= 1)).all()
    out = json.loads(inference.output_fn(p, "application/json"))
    assert out["model_version"] == "inf-test"
    assert out["predictions"] == pytest.approx(list(p))


def test_predictions_match_the_pipeline(inference, model, model_dir):
    import joblib

    rows = _rows(3, seed=2)
    p = inference.predict_fn(
        inference.input_fn(
            json.dumps({"features": FEATURES, "instances": rows}), "application/json"
        ),
        model,
    )
    expected = joblib.load(model_dir / "model.joblib").predict_proba(np.array(rows))[:, 1]
    np.testing.assert_allclose(np.asarray(p), expected)


def test_csv_with_and_without_header(inference, model):
    rows = _rows(2, seed=3)
    body = "\n".join(",".join(f"{v:.8f}" for v in r) for r in rows) + "\n"
    p1 = inference.predict_fn(inference.input_fn(body, "text/csv"), model)
    p2 = inference.predict_fn(
        inference.input_fn(",".join(FEATURES) + "\n" + body, "text/csv; charset=utf-8"), model
    )
    np.testing.assert_allclose(np.asarray(p1), np.asarray(p2))
    assert json.loads(inference.output_fn(p1, "*/*"))["model_version"] == "inf-test"


@pytest.mark.parametrize(
    "body, match",
    [
        ({"features": FEATURES[::-1], "instances": [[0.0] * len(FEATURES)]}, "different order"),
        (
            {"features": [*FEATURES[:-1], "foo"], "instances": [[0.0] * len(FEATURES)]},
            r"missing \['volume_ratio'\]; unknown \['foo'\]",
        ),
        ({"features": FEATURES[:-1], "instances": [[0.0] * (len(FEATURES) - 1)]}, "missing"),
        ({"features": FEATURES, "instances": [[0.0] * (len(FEATURES) - 1)]}, "has 8 values"),
        ({"features": FEATURES, "instances": [[0.0] * len(FEATURES), [1.0]]}, "instance 1"),
        ({"features": FEATURES, "instances": []}, "empty"),
        ({"features": FEATURES, "instances": [["x"] * len(FEATURES)]}, "not a number"),
        ({"instances": [[0.0] * len(FEATURES)]}, "lacks 'features'"),
        ({"features": FEATURES}, "lacks 'instances'"),
        ([1, 2], "must be an object"),
    ],
)
def test_wrong_names_or_shapes_are_clear_errors(inference, model, body, match):
    with pytest.raises(inference.InvalidInputError, match=match):
        inference.predict_fn(inference.input_fn(json.dumps(body), "application/json"), model)


def test_other_bad_inputs(inference, model):
    nan_row = json.dumps({"features": FEATURES, "instances": [[0.0] * 8 + [float("nan")]]})
    with pytest.raises(inference.InvalidInputError, match="not finite"):
        inference.input_fn(nan_row, "application/json")
    with pytest.raises(inference.InvalidInputError, match="not valid JSON"):
        inference.input_fn(b"{oops", "application/json")
    with pytest.raises(inference.InvalidInputError, match="unsupported content type"):
        inference.input_fn(b"x", "application/x-npy")
    with pytest.raises(inference.InvalidInputError, match="non-numeric"):
        inference.input_fn("1,2,3\n4,x,6\n", "text/csv")
    with pytest.raises(inference.InvalidInputError, match="unsupported accept"):
        inference.output_fn(np.array([0.5]), "text/html")
    with pytest.raises(inference.InvalidInputError, match="columns"):
        inference.predict_fn(inference.input_fn("1,2,3\n", "text/csv"), model)


@pytest.fixture(scope="module")
def artifacts(model_dir, tmp_path_factory):
    """Two artifacts from the trained one: ``old`` without a range model (an endpoint serving
    a model from before the range output) and ``two`` with a range model fitted on real IBM
    and MSFT daily bars (features -> next-bar ln range, ``stocksage.model.volatility``)."""
    import shutil

    import joblib

    from stocksage.datasets import load_bars
    from stocksage.model.dataset import build_training_frame
    from stocksage.model.volatility import RANGE_MODEL_FILE, RANGE_TARGET, make_range_model

    tmp = tmp_path_factory.mktemp("artifacts")
    old, two = tmp / "old", tmp / "two"
    for target in (old, two):
        shutil.copytree(model_dir, target)
        (target / RANGE_MODEL_FILE).unlink(missing_ok=True)
        meta = json.loads((target / "metadata.json").read_text())
        meta.pop("range_model", None)
        if target == two:
            meta["range_model"] = {"file": RANGE_MODEL_FILE}
        (target / "metadata.json").write_text(json.dumps(meta))
    frame = build_training_frame({s: load_bars(s) for s in ("IBM", "MSFT")}, FEATURES)
    frame = frame.dropna(subset=[RANGE_TARGET])
    joblib.dump(make_range_model(FEATURES).fit(frame[FEATURES].to_numpy(float),
                                               frame[RANGE_TARGET].to_numpy(float)),
                two / RANGE_MODEL_FILE)
    return {"old": old, "two": two, "frame": frame}


def test_two_outputs_in_one_call(inference, artifacts):
    import joblib

    model = inference.model_fn(str(artifacts["two"]))
    frame = artifacts["frame"]
    rows = frame[FEATURES].iloc[-50:].to_numpy(float).tolist()
    body = json.dumps({"features": FEATURES, "instances": rows})
    out = json.loads(inference.output_fn(
        inference.predict_fn(inference.input_fn(body, "application/json"), model),
        "application/json"))
    assert len(out["predictions"]) == len(out["range_forecasts"]) == 50
    expected = np.exp(joblib.load(artifacts["two"] / "range_model.joblib").predict(np.array(rows)))
    np.testing.assert_allclose(out["range_forecasts"], expected)
    # real IBM/MSFT daily bars: forecast ranges are positive, a few percent at most, and
    # track the realised next-bar range (volatility clusters)
    realised = np.exp(frame["log_range_next"].iloc[-50:].to_numpy())
    assert all(0.001 < r < 0.1 for r in out["range_forecasts"])
    assert np.corrcoef(np.log(out["range_forecasts"]), np.log(realised))[0, 1] > 0.2


def test_artifact_without_range_model_answers_with_one_output(inference, artifacts):
    model = inference.model_fn(str(artifacts["old"]))
    body = json.dumps({"features": FEATURES, "instances": _rows(3)})
    out = json.loads(inference.output_fn(
        inference.predict_fn(inference.input_fn(body, "application/json"), model),
        "application/json"))
    assert set(out) == {"predictions", "model_version"}


def test_range_model_unpickles_without_stocksage(artifacts):
    code = (
        "import sys, joblib, numpy as np; "
        f"m = joblib.load({str(artifacts['two'] / 'range_model.joblib')!r}); "
        f"m.predict(np.full((1, {len(FEATURES)}), 0.5)); "
        "print(any(k == 'stocksage' or k.startswith('stocksage.') for k in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "False"
