"""The SageMaker endpoint host against a real (patched) emulator, through boto3.

Artifacts are built from ``tests/fixtures/sagemaker_program`` (a tiny inference program) and a
JSON "model"; boto3 ``sagemaker-runtime`` reaches the host through its ``endpoint_url``.
"""

from __future__ import annotations

import io
import json
import tarfile
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from stocksage.local.sagemaker_host import SageMakerHost
from tests.helpers.aws import client_kwargs

PROGRAM_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "sagemaker_program"
ROLE = "arn:aws:iam::123456789012:role/sagemaker"


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture(scope="module")
def host(kw, tmp_path_factory):
    with SageMakerHost(kw, port=0, cache_dir=tmp_path_factory.mktemp("sm-cache")) as h:
        yield h


@pytest.fixture(scope="module")
def runtime(kw, host):
    return boto3.client("sagemaker-runtime", **client_kwargs(host.url),
                        config=Config(retries={"max_attempts": 1}))


@pytest.fixture(scope="module")
def deploy(kw):
    s3 = boto3.client("s3", **kw)
    sm = boto3.client("sagemaker", **kw)
    bucket = f"models-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    source = _tar({p.name: p.read_bytes() for p in PROGRAM_DIR.glob("*.py")})
    s3.put_object(Bucket=bucket, Key="code/sourcedir.tar.gz", Body=source)

    def _deploy(version: str, weights: list[float], bias: float = 0.0,
                endpoint: str | None = None, program: str = "inference.py") -> dict:
        model_tar = _tar({"model.json": json.dumps(
            {"version": version, "weights": weights, "bias": bias}).encode()})
        key = f"artifacts/{version}/model.tar.gz"
        s3.put_object(Bucket=bucket, Key=key, Body=model_tar)
        model = f"m-{version}-{uuid.uuid4().hex[:6]}"
        sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={
            "Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1",
            "ModelDataUrl": f"s3://{bucket}/{key}",
            "Environment": {"SAGEMAKER_PROGRAM": program,
                            "SAGEMAKER_SUBMIT_DIRECTORY": f"s3://{bucket}/code/sourcedir.tar.gz"}})
        config = f"c-{model}"
        sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": model,
            "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 2}}])
        if endpoint is None:
            endpoint = f"ep-{uuid.uuid4().hex[:8]}"
            sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
        else:
            sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=config)
        return {"endpoint": endpoint, "config": config, "model": model}

    _deploy.sagemaker = sm
    return _deploy


def _invoke(runtime, endpoint, instances, **kwargs):
    resp = runtime.invoke_endpoint(
        EndpointName=endpoint, ContentType="application/json", Accept="application/json",
        Body=json.dumps({"features": ["a", "b"], "instances": instances}), **kwargs)
    return json.loads(resp["Body"].read()), resp


def test_ping(host):
    with urllib.request.urlopen(f"{host.url}/ping", timeout=5) as resp:
        assert resp.status == 200


def test_invoke_endpoint_runs_the_program(runtime, deploy):
    d = deploy("v1", [1.0, -1.0])
    out, resp = _invoke(runtime, d["endpoint"], [[0.0, 0.0], [2.0, 0.0]])
    assert out["model_version"] == "v1"
    assert out["predictions"][0] == 0.5
    assert out["predictions"][1] == pytest.approx(0.880797, abs=1e-6)
    assert resp["ContentType"] == "application/json"
    assert resp["InvokedProductionVariant"] == "AllTraffic"


def test_endpoint_switches_model_version_on_update(runtime, deploy):
    d1 = deploy("v1", [1.0, 0.0])
    out, _ = _invoke(runtime, d1["endpoint"], [[0.0, 0.0]])
    assert out["model_version"] == "v1"
    deploy("v2", [0.0, 0.0], bias=1.0, endpoint=d1["endpoint"])  # UpdateEndpoint (patched)
    desc = deploy.sagemaker.describe_endpoint(EndpointName=d1["endpoint"])
    assert desc["EndpointStatus"] == "InService"
    out, _ = _invoke(runtime, d1["endpoint"], [[0.0, 0.0]])
    assert out["model_version"] == "v2"
    assert out["predictions"][0] == pytest.approx(0.731059, abs=1e-6)


def test_endpoint_name_is_percent_decoded(host, deploy):
    d = deploy("v3", [1.0, 1.0])
    quoted = "".join(f"%{ord(c):02X}" for c in d["endpoint"])  # every character encoded
    req = urllib.request.Request(
        f"{host.url}/endpoints/{quoted}/invocations",
        data=json.dumps({"instances": [[0.0, 0.0]]}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert json.loads(resp.read())["model_version"] == "v3"


def test_unknown_endpoint_is_validation_error(runtime):
    with pytest.raises(ClientError) as info:
        _invoke(runtime, "does-not-exist", [[0.0, 0.0]])
    err = info.value.response
    assert err["Error"]["Code"] == "ValidationError"
    assert "does-not-exist" in err["Error"]["Message"]
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_model_error(runtime, deploy):
    d = deploy("v4", [1.0, 1.0])
    with pytest.raises(ClientError) as info:
        _invoke(runtime, d["endpoint"], ["boom"])
    err = info.value.response
    assert err["Error"]["Code"] == "ModelError"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert "boom requested" in err["Error"]["Message"]
    assert err["OriginalStatusCode"] == 500
    # unsupported content type is a client error from the model
    with pytest.raises(ClientError) as info:
        runtime.invoke_endpoint(EndpointName=d["endpoint"], ContentType="text/csv", Body=b"1,2")
    assert info.value.response["Error"]["Code"] == "ModelError"


def test_broken_program_is_model_error(runtime, deploy):
    d = deploy("v5", [1.0], program="missing.py")
    with pytest.raises(ClientError) as info:
        _invoke(runtime, d["endpoint"], [[1.0]])
    assert info.value.response["Error"]["Code"] == "ModelError"
    assert "missing.py" in info.value.response["Error"]["Message"]


def test_container_invocations_path_and_default_handlers(kw, deploy, tmp_path):
    """``POST /invocations`` with the default endpoint; a program with only model_fn uses the
    scikit-learn container's default input/predict/output handlers."""
    prog = tmp_path / "prog"
    prog.mkdir()
    (prog / "only_model.py").write_text(
        "class Doubler:\n"
        "    def predict(self, x):\n"
        "        return x * 2\n"
        "def model_fn(model_dir):\n"
        "    return Doubler()\n")
    d = deploy("v6", [1.0])
    sm = deploy.sagemaker
    model = f"local-{uuid.uuid4().hex[:6]}"
    desc = sm.describe_model(ModelName=d["model"])
    sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": desc["PrimaryContainer"]["Image"],
        "ModelDataUrl": desc["PrimaryContainer"]["ModelDataUrl"],
        "Environment": {"SAGEMAKER_PROGRAM": "only_model.py",
                        "SAGEMAKER_SUBMIT_DIRECTORY": str(prog)}})
    sm.create_endpoint_config(EndpointConfigName=f"c-{model}", ProductionVariants=[{
        "VariantName": "v", "ModelName": model, "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName=f"ep-{model}", EndpointConfigName=f"c-{model}")
    with SageMakerHost(kw, port=0, default_endpoint=f"ep-{model}",
                       local_code_roots=(prog,)) as h:
        req = urllib.request.Request(f"{h.url}/invocations", data=b"[[1, 2], [3, 4]]",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert json.loads(resp.read()) == [[2, 4], [6, 8]]
        req = urllib.request.Request(f"{h.url}/invocations", data=b"1,2\n3,4\n",
                                     headers={"Content-Type": "text/csv", "Accept": "text/csv"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.read().decode().split() == ["2.0,4.0", "6.0,8.0"]


def test_a_model_cannot_make_the_host_import_code_from_anywhere(kw, deploy, tmp_path):
    """A local SAGEMAKER_SUBMIT_DIRECTORY outside the host's code roots, or a SAGEMAKER_PROGRAM
    that leaves its code directory, is a ModelError: nothing is imported."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "evil.py").write_text("import pathlib\npathlib.Path(__file__).with_suffix("
                                     "'.ran').write_text('x')\n")
    d = deploy("v7", [1.0])
    sm = deploy.sagemaker
    desc = sm.describe_model(ModelName=d["model"])
    cases = {"outside": {"SAGEMAKER_PROGRAM": "evil.py",
                         "SAGEMAKER_SUBMIT_DIRECTORY": str(outside)},
             "escape": {"SAGEMAKER_PROGRAM": "../elsewhere/evil.py",
                        "SAGEMAKER_SUBMIT_DIRECTORY": f"file://{tmp_path / 'code'}"}}
    (tmp_path / "code").mkdir()
    for label, environment in cases.items():
        model = f"bad-{label}-{uuid.uuid4().hex[:6]}"
        sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={
            "Image": desc["PrimaryContainer"]["Image"],
            "ModelDataUrl": desc["PrimaryContainer"]["ModelDataUrl"],
            "Environment": environment})
        sm.create_endpoint_config(EndpointConfigName=f"c-{model}", ProductionVariants=[{
            "VariantName": "v", "ModelName": model, "InitialInstanceCount": 1,
            "InstanceType": "ml.m5.large"}])
        sm.create_endpoint(EndpointName=f"ep-{model}", EndpointConfigName=f"c-{model}")
        with SageMakerHost(kw, port=0, default_endpoint=f"ep-{model}",
                           local_code_roots=(tmp_path / "code",)) as h:
            req = urllib.request.Request(f"{h.url}/invocations", data=b"[[1, 2]]",
                                         headers={"Content-Type": "application/json"})
            with pytest.raises(urllib.error.HTTPError) as info:
                urllib.request.urlopen(req, timeout=10)
            body = info.value.read().decode()
            expected = {"outside": "is outside the host's code roots",
                        "escape": "is not a file inside the code directory"}[label]
            assert expected in body, body
    assert not (outside / "evil.ran").exists()
