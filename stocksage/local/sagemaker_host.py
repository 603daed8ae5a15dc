"""The SageMaker endpoint host: runs the deployed models behind the SageMaker runtime API.

moto's ``invoke_endpoint`` returns canned bytes. This host serves, on 127.0.0.1:4567:

* ``POST /endpoints/{EndpointName}/invocations`` - the SageMaker runtime API path that boto3
  ``sagemaker-runtime.invoke_endpoint`` calls when ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` (or
  ``endpoint_url``) points here;
* ``GET /ping`` and ``POST /invocations`` - the inference container contract (the default
  endpoint: ``default_endpoint``, else the only endpoint in the emulator).

Per invocation the host calls ``DescribeEndpoint`` once; everything behind the endpoint
configuration is cached by configuration name (re-checked every ``revalidate_s`` seconds, so a
configuration deleted and recreated under the same name is noticed): production variant ->
``DescribeModel`` ->
``PrimaryContainer.ModelDataUrl`` (``model.tar.gz``) and ``Environment``
(``SAGEMAKER_PROGRAM``, ``SAGEMAKER_SUBMIT_DIRECTORY`` = ``s3://.../sourcedir.tar.gz`` or a local
folder). Both archives are downloaded from the emulator's S3 and extracted under
``cache_dir/<model>-<etag>/{model,code}``; the program is imported in isolation
(``importlib`` from its file, a unique module name per model version, its folder on
``sys.path`` while it is imported) and ``model_fn(model_dir)`` runs once per model version.
Requests then go through ``input_fn(body, content_type)``, ``predict_fn(data, model)``,
``output_fn(prediction, accept)`` - or ``transform_fn(model, body, content_type, accept)`` when
the program defines it - with the SageMaker scikit-learn container's defaults for a missing
handler (JSON/CSV/NPY input, ``model.predict``, JSON/CSV/NPY output). ``output_fn`` may return
the body or ``(body, content_type)``.

When the endpoint is updated to a new configuration (``UpdateEndpoint``, patched into the
emulator by ``stocksage.local.emulator``) the next invocation uses the new model version.

Errors, shaped so that boto3 raises ``ClientError`` with the AWS code:

* unknown endpoint -> 400 ``ValidationError`` "Endpoint X of account Y not found.";
* no model/program, download or load failure, or an exception in a handler -> 424
  ``ModelError`` with ``OriginalStatusCode`` (500, or 415 for an unsupported content type),
  ``OriginalMessage`` and ``LogStreamArn``.

Outages (resilience tests; client: ``stocksage.local.faults.endpoint_outage``):
``POST /_stocksage/outage`` with ``{"seconds": 90, "mode": "fail"|"model_error"|"hang",
"endpoint": null}`` (null = every endpoint) makes invocations, for that long, fail with 503
``ServiceUnavailable`` (boto3 retries it), fail with 424 ``ModelError`` (not retried), or hang
until the outage ends (a client read timeout fires first when shorter) and then be served;
``DELETE /_stocksage/outage`` ends it (``SageMakerHost.outage`` / ``end_outage`` in process).

Variants: ``TargetVariant`` (``X-Amzn-SageMaker-Target-Variant``) picks a variant; otherwise the
variant is drawn by ``InitialVariantWeight`` like AWS. The response carries
``x-Amzn-Invoked-Production-Variant``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import logging
import random
import shutil
import sys
import tarfile
import threading
import time
import types
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

log = logging.getLogger("stocksage.local.sagemaker_host")

DEFAULT_PORT = 4567
_IMPORT_LOCK = threading.Lock()


class HostError(Exception):
    """An error answered to the client in AWS's shape."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


class UnsupportedContentType(ValueError):
    """Raised by default handlers (maps to original status 415)."""


# --------------------------------------------------------------------------------------------
# Default handlers (SageMaker scikit-learn container behaviour)
# --------------------------------------------------------------------------------------------


def default_model_fn(model_dir: str) -> Any:
    for name in ("model.joblib", "model.pkl"):
        path = Path(model_dir) / name
        if path.exists():
            import joblib

            return joblib.load(path)
    raise NotImplementedError(
        "the inference program defines no model_fn and the model has no model.joblib")


def default_input_fn(body: bytes, content_type: str) -> Any:
    import numpy as np

    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype == "application/json":
        return np.array(json.loads(body))
    if ctype == "text/csv":
        text = body.decode() if isinstance(body, bytes) else body
        return np.array([[float(x) for x in line.split(",")] for line in text.splitlines()
                         if line.strip()])
    if ctype == "application/x-npy":
        return np.load(io.BytesIO(body), allow_pickle=False)
    raise UnsupportedContentType(f"Content type {content_type} is not supported by this framework")


def default_predict_fn(data: Any, model: Any) -> Any:
    return model.predict(data)


def default_output_fn(prediction: Any, accept: str) -> tuple[bytes, str]:
    accept = (accept or "application/json").split(",")[0].split(";")[0].strip().lower()
    if accept in ("application/json", "*/*", ""):
        value = prediction.tolist() if hasattr(prediction, "tolist") else prediction
        return json.dumps(value).encode(), "application/json"
    if accept == "text/csv":
        import numpy as np

        buf = io.StringIO()
        np.savetxt(buf, np.atleast_2d(np.asarray(prediction)), delimiter=",", fmt="%s")
        return buf.getvalue().encode(), "text/csv"
    if accept == "application/x-npy":
        import numpy as np

        buf = io.BytesIO()
        np.save(buf, np.asarray(prediction))
        return buf.getvalue(), "application/x-npy"
    raise UnsupportedContentType(f"Accept type {accept} is not supported by this framework")


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


@dataclass
class LoadedModel:
    """One model version: the program's handlers and ``model_fn``'s result."""

    model_name: str
    version_key: str
    model_dir: Path
    code_dir: Path | None
    module: types.ModuleType | None
    model: Any
    loaded_at: float = field(default_factory=time.time)

    def handler(self, name: str, default: Callable[..., Any] | None) -> Callable[..., Any] | None:
        fn = getattr(self.module, name, None) if self.module else None
        return fn if callable(fn) else default

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        transform = self.handler("transform_fn", None)
        if transform is not None:
            out = transform(self.model, body, content_type, accept)
        else:
            data = self.handler("input_fn", default_input_fn)(body, content_type)  # type: ignore
            prediction = self.handler("predict_fn", default_predict_fn)(data, self.model)  # type: ignore
            out = self.handler("output_fn", default_output_fn)(prediction, accept)  # type: ignore
        if isinstance(out, tuple) and len(out) == 2:
            payload, ctype = out
        else:
            payload, ctype = out, accept
        if isinstance(payload, str):
            payload = payload.encode()
        elif not isinstance(payload, (bytes, bytearray)):
            payload = json.dumps(payload).encode()
        return bytes(payload), ctype or "application/json"


@dataclass
class Variant:
    name: str
    model_name: str
    weight: float


@dataclass
class EndpointConfigEntry:
    config_name: str
    variants: list[Variant]


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80]


class ModelStore:
    """Resolves endpoint configurations and loads model versions from the emulator."""

    def __init__(self, client_kwargs: dict[str, Any], cache_dir: str | Path,
                 revalidate_s: float = 10.0) -> None:
        import boto3
        from botocore.config import Config

        kwargs = dict(client_kwargs)
        kwargs.setdefault("config", Config(retries={"max_attempts": 2, "mode": "standard"}))
        self.sagemaker = boto3.client("sagemaker", **kwargs)
        self.s3 = boto3.client("s3", **kwargs)
        self.cache_dir = Path(cache_dir)
        self.account = "123456789012"
        self._configs: dict[str, EndpointConfigEntry] = {}
        self._models: dict[str, LoadedModel] = {}  # version key -> model
        self._model_keys: dict[str, str] = {}  # model name -> version key
        self._lock = threading.RLock()
        self._load_locks: dict[str, threading.Lock] = {}
        # (endpoint config, variant) -> (model, monotonic time it was checked)
        self._by_variant: dict[tuple[str, str], tuple[LoadedModel, float]] = {}
        self.revalidate_s = revalidate_s

    # ---------------------------------------------------------------- resolution
    def endpoint_config(self, endpoint_name: str) -> EndpointConfigEntry:
        try:
            desc = self.sagemaker.describe_endpoint(EndpointName=endpoint_name)
        except Exception as err:  # noqa: BLE001
            code = getattr(err, "response", {}).get("Error", {}).get("Code", "")
            if code in ("ValidationException", "ValidationError", "ResourceNotFound"):
                raise HostError(400, "ValidationError",
                                f"Endpoint {endpoint_name} of account {self.account} not found."
                                ) from None
            raise HostError(500, "InternalFailure", f"describe_endpoint failed: {err}") from None
        arn = desc.get("EndpointArn", "")
        if arn.count(":") >= 5:
            self.account = arn.split(":")[4]
        status = desc.get("EndpointStatus", "InService")
        if status not in ("InService", "Updating", "SystemUpdating"):
            raise HostError(400, "ValidationError",
                            f"Endpoint {endpoint_name} is not in service (status {status}).")
        name = desc["EndpointConfigName"]
        with self._lock:
            entry = self._configs.get(name)
        if entry is None:
            conf = self.sagemaker.describe_endpoint_config(EndpointConfigName=name)
            variants = [Variant(v["VariantName"], v["ModelName"],
                                float(v.get("InitialVariantWeight") or 1.0))
                        for v in conf.get("ProductionVariants", [])]
            entry = EndpointConfigEntry(name, variants)
            with self._lock:
                self._configs[name] = entry
        return entry

    def pick_variant(self, entry: EndpointConfigEntry, target: str | None) -> Variant:
        if not entry.variants:
            raise HostError(424, "ModelError", "The endpoint configuration has no variants",
                            OriginalStatusCode=500, OriginalMessage="no production variants")
        if target:
            for v in entry.variants:
                if v.name == target:
                    return v
            raise HostError(400, "ValidationError",
                            f"Target variant {target} is not in the endpoint configuration.")
        if len(entry.variants) == 1:
            return entry.variants[0]
        weights = [max(v.weight, 0.0) for v in entry.variants]
        if sum(weights) <= 0:
            return entry.variants[0]
        return random.choices(entry.variants, weights=weights, k=1)[0]

    # ---------------------------------------------------------------- loading
    def model_for(self, entry: EndpointConfigEntry, variant: Variant) -> LoadedModel:
        """The loaded model of a variant; cached by configuration name and re-checked (model
        description and archive ETags) every ``revalidate_s`` seconds, so a configuration
        recreated under the same name is noticed."""
        key = (entry.config_name, variant.name)
        with self._lock:
            cached = self._by_variant.get(key)
        if cached and time.monotonic() - cached[1] < self.revalidate_s:
            return cached[0]
        if cached:  # re-read the configuration too
            with self._lock:
                self._configs.pop(entry.config_name, None)
        loaded = self.model(variant.model_name)
        with self._lock:
            self._by_variant[key] = (loaded, time.monotonic())
        return loaded

    def model(self, model_name: str) -> LoadedModel:
        """Load (or reuse) the current version of a SageMaker model."""
        desc = self.sagemaker.describe_model(ModelName=model_name)
        container = desc.get("PrimaryContainer") or (desc.get("Containers") or [{}])[0]
        env = dict(container.get("Environment") or {})
        data_url = container.get("ModelDataUrl") or (
            (container.get("ModelDataSource") or {}).get("S3DataSource") or {}).get("S3Uri")
        source_dir = env.get("SAGEMAKER_SUBMIT_DIRECTORY", "")
        program = env.get("SAGEMAKER_PROGRAM", "")
        key_parts = [model_name, str(desc.get("CreationTime", "")), data_url or "", program,
                     source_dir, self._etag(data_url), self._etag(source_dir)]
        version_key = hashlib.sha256("|".join(key_parts).encode()).hexdigest()[:16]
        with self._lock:
            loaded = self._models.get(version_key)
            if loaded is not None:
                return loaded
            lock = self._load_locks.setdefault(version_key, threading.Lock())
        with lock:
            with self._lock:
                if version_key in self._models:
                    return self._models[version_key]
            loaded = self._load(model_name, version_key, data_url, source_dir, program)
            with self._lock:
                self._models[version_key] = loaded
                self._model_keys[model_name] = version_key
            return loaded

    def _etag(self, url: str | None) -> str:
        if not url or not url.startswith("s3://"):
            return ""
        bucket, _, key = url[5:].partition("/")
        try:
            return self.s3.head_object(Bucket=bucket, Key=key).get("ETag", "").strip('"')
        except Exception as err:  # noqa: BLE001
            raise HostError(424, "ModelError", f"Could not read {url}: {err}",
                            OriginalStatusCode=500, OriginalMessage=str(err)) from None

    def _download_extract(self, url: str, dest: Path) -> None:
        bucket, _, key = url[5:].partition("/")
        body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        dest.mkdir(parents=True, exist_ok=True)
        if key.endswith((".tar.gz", ".tgz", ".tar")):
            with tarfile.open(fileobj=io.BytesIO(body), mode="r:*") as tar:
                tar.extractall(dest, filter="data")
        else:
            (dest / Path(key).name).write_bytes(body)

    def _load(self, model_name: str, version_key: str, data_url: str | None, source_dir: str,
              program: str) -> LoadedModel:
        root = self.cache_dir / f"{_safe(model_name)}-{version_key}"
        model_dir, code_dir = root / "model", root / "code"
        try:
            if root.exists():
                shutil.rmtree(root)
            model_dir.mkdir(parents=True)
            if data_url:
                if not data_url.startswith("s3://"):
                    raise ValueError(f"ModelDataUrl must be an s3:// URL, got {data_url!r}")
                self._download_extract(data_url, model_dir)
            module = None
            code: Path | None = None
            if source_dir.startswith("s3://"):
                self._download_extract(source_dir, code_dir)
                code = code_dir
            elif source_dir:
                code = Path(source_dir.removeprefix("file://"))
            elif (model_dir / "code").is_dir():  # the PyTorch/sklearn "model.tar.gz/code" layout
                code = model_dir / "code"
            if program:
                if code is None:
                    code = model_dir
                module = self._import_program(code / program, version_key)
            elif code is not None and (code / "inference.py").exists():
                module = self._import_program(code / "inference.py", version_key)
            model_fn = getattr(module, "model_fn", None) if module else None
            model = (model_fn or default_model_fn)(str(model_dir))
        except HostError:
            raise
        except Exception as err:
            log.exception("loading model %s", model_name)
            raise HostError(424, "ModelError",
                            f"Received server error (500) from primary with message "
                            f'"{type(err).__name__}: {err}". Loading model {model_name} failed.',
                            OriginalStatusCode=500,
                            OriginalMessage=f"{type(err).__name__}: {err}") from None
        log.info("loaded model %s version %s", model_name, version_key)
        return LoadedModel(model_name, version_key, model_dir, code, module, model)

    @staticmethod
    def _import_program(path: Path, version_key: str) -> types.ModuleType:
        if not path.exists():
            raise FileNotFoundError(f"inference program {path} not found")
        module_name = f"stocksage_sm_{_safe(path.stem)}_{version_key}"
        folder = str(path.parent)
        with _IMPORT_LOCK:
            before = set(sys.modules)
            sys.path.insert(0, folder)
            try:
                spec = importlib.util.spec_from_file_location(module_name, path)
                assert spec and spec.loader
                module = importlib.util.module_from_spec(spec)
                sys.modules[module_name] = module
                spec.loader.exec_module(module)
            finally:
                sys.path.remove(folder)
                # sibling modules imported by the program belong to this version only
                for name in set(sys.modules) - before - {module_name}:
                    mod = sys.modules.get(name)
                    if str(getattr(mod, "__file__", "") or "").startswith(folder):
                        del sys.modules[name]
        return module

    def loaded_versions(self) -> dict[str, str]:
        with self._lock:
            return dict(self._model_keys)


# --------------------------------------------------------------------------------------------
# HTTP server
# --------------------------------------------------------------------------------------------


@dataclass
class HostStats:
    invocations: int = 0
    errors: int = 0
    by_endpoint: dict[str, int] = field(default_factory=dict)


OUTAGE_MODES = ("fail", "model_error", "hang")


@dataclass(frozen=True)
class Outage:
    """An injected endpoint outage: ``mode`` until ``until`` (monotonic), one or all
    endpoints."""

    mode: str
    until: float
    endpoint: str | None = None


class SageMakerHost:
    """The HTTP host. ``start()`` serves in a background thread; ``serve_forever()`` blocks.

    Args:
        client_kwargs: boto3 client kwargs for the emulator (``endpoint_url``, region, creds).
        port: 0 picks a free port (``.port`` after ``start``).
        cache_dir: Where archives are extracted (default: a temporary folder).
        default_endpoint: Endpoint behind ``POST /invocations``.
    """

    def __init__(self, client_kwargs: dict[str, Any], port: int = DEFAULT_PORT,
                 host: str = "127.0.0.1", cache_dir: str | Path | None = None,
                 default_endpoint: str | None = None) -> None:
        import tempfile

        self._tmp = None
        if cache_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="stocksage-sm-")
            cache_dir = self._tmp.name
        self.store = ModelStore(client_kwargs, cache_dir)
        self.host = host
        self.default_endpoint = default_endpoint
        self.stats = HostStats()
        self._stats_lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), _make_handler(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread: threading.Thread | None = None
        self._outage: Outage | None = None
        self._outage_cv = threading.Condition()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> SageMakerHost:
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name=f"sagemaker-host-{self.port}", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=10)
            self._thread = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- requests
    def resolve_default_endpoint(self) -> str:
        if self.default_endpoint:
            return self.default_endpoint
        names = [e["EndpointName"] for e in
                 self.store.sagemaker.list_endpoints(MaxResults=2).get("Endpoints", [])]
        if len(names) == 1:
            return names[0]
        raise HostError(400, "ValidationError",
                        "POST /invocations needs a default endpoint (none or several exist)")

    def invoke(self, endpoint_name: str, body: bytes, content_type: str, accept: str,
               target_variant: str | None = None) -> tuple[bytes, str, str]:
        """Run one invocation; returns (body, content type, variant name)."""
        entry = self.store.endpoint_config(endpoint_name)
        variant = self.store.pick_variant(entry, target_variant)
        loaded = self.store.model_for(entry, variant)
        try:
            payload, ctype = loaded.invoke(body, content_type, accept)
        except Exception as err:  # noqa: BLE001 - any handler failure is a ModelError
            status = 415 if isinstance(err, UnsupportedContentType) else 500
            log.warning("model %s failed: %s", variant.model_name, err)
            raise HostError(
                424, "ModelError",
                f"Received {'client' if status < 500 else 'server'} error ({status}) from "
                f'primary with message "{type(err).__name__}: {err}". See '
                f"/aws/sagemaker/Endpoints/{endpoint_name} in account {self.store.account} "
                f"for more information.",
                OriginalStatusCode=status, OriginalMessage=f"{type(err).__name__}: {err}",
                LogStreamArn=f"arn:aws:logs:us-east-1:{self.store.account}:log-group:"
                             f"/aws/sagemaker/Endpoints/{endpoint_name}",
            ) from None
        return payload, ctype, variant.name

    # ---------------------------------------------------------------- outages
    def outage(self, seconds: float, mode: str = "fail", endpoint: str | None = None) -> Outage:
        """Make invocations (of ``endpoint``, or all) fail or hang for ``seconds``.

        Raises:
            ValueError: unknown ``mode`` or ``seconds`` <= 0.
        """
        if mode not in OUTAGE_MODES or seconds <= 0:
            raise ValueError(f"mode must be one of {OUTAGE_MODES} and seconds > 0")
        with self._outage_cv:
            self._outage = Outage(mode, time.monotonic() + seconds, endpoint)
            self._outage_cv.notify_all()
            return self._outage

    def end_outage(self) -> None:
        with self._outage_cv:
            self._outage = None
            self._outage_cv.notify_all()

    def current_outage(self, endpoint: str | None = None) -> Outage | None:
        with self._outage_cv:
            outage = self._outage
            if outage is None or time.monotonic() >= outage.until:
                return None
            if endpoint is not None and outage.endpoint not in (None, endpoint):
                return None
            return outage

    def apply_outage(self, endpoint: str) -> None:
        """Raise (``fail``, ``model_error``) or block (``hang``) while an outage hits
        ``endpoint``; return at once otherwise."""
        outage = self.current_outage(endpoint)
        if outage is None:
            return
        if outage.mode == "hang":
            with self._outage_cv:
                self._outage_cv.wait_for(lambda: self.current_outage(endpoint) is None,
                                         timeout=max(0.0, outage.until - time.monotonic()))
            return
        if outage.mode == "model_error":
            raise HostError(424, "ModelError", f"Received server error (500) from primary with "
                            f"message \"endpoint {endpoint} is down (outage)\".",
                            OriginalStatusCode=500, OriginalMessage="outage")
        raise HostError(503, "ServiceUnavailable", f"endpoint {endpoint} is unavailable (outage)")

    def count(self, endpoint: str, ok: bool) -> None:
        with self._stats_lock:
            self.stats.invocations += 1
            if not ok:
                self.stats.errors += 1
            self.stats.by_endpoint[endpoint] = self.stats.by_endpoint.get(endpoint, 0) + 1


def _make_handler(host: SageMakerHost) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "stocksage-sagemaker-host"

        def log_message(self, fmt: str, *args: Any) -> None:
            log.debug("%s " + fmt, self.client_address[0], *args)

        def _send(self, status: int, body: bytes, ctype: str,
                  headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("x-amzn-RequestId", _request_id())
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def _error(self, err: HostError) -> None:
            doc = {"__type": err.code, "message": err.message, "Message": err.message,
                   **err.extra}
            self._send(err.status, json.dumps(doc).encode(), "application/json",
                       {"x-amzn-ErrorType": err.code})

        def do_GET(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            if path == "/ping":
                self._send(200, b"", "text/plain")
            elif path == "/_stocksage/outage":
                outage = host.current_outage()
                self._send(200, json.dumps({"outage": None if outage is None else {
                    "mode": outage.mode, "endpoint": outage.endpoint,
                    "remaining_s": outage.until - time.monotonic()}}).encode(),
                    "application/json")
            elif path == "/_stocksage/stats":
                self._send(200, json.dumps({
                    "invocations": host.stats.invocations, "errors": host.stats.errors,
                    "by_endpoint": host.stats.by_endpoint,
                    "models": host.store.loaded_versions()}).encode(), "application/json")
            else:
                self._send(404, b'{"message": "not found"}', "application/json")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path = urllib.parse.urlsplit(self.path).path
            parts = path.strip("/").split("/")
            endpoint = None
            if path == "/_stocksage/outage":
                try:
                    spec = json.loads(body or b"{}")
                    host.outage(float(spec.get("seconds", 60)), spec.get("mode", "fail"),
                                spec.get("endpoint"))
                except (ValueError, TypeError, AttributeError) as err:
                    self._error(HostError(400, "ValidationError", str(err)))
                    return
                self._send(200, b'{"outage": "on"}', "application/json")
                return
            try:
                if len(parts) == 3 and parts[0] == "endpoints" and parts[2] == "invocations":
                    endpoint = urllib.parse.unquote(parts[1])
                elif path == "/invocations":
                    endpoint = host.resolve_default_endpoint()
                else:
                    raise HostError(404, "UnknownOperationException", f"no route for {path}")
                host.apply_outage(endpoint)
                payload, ctype, variant = host.invoke(
                    endpoint, body,
                    self.headers.get("Content-Type") or "application/json",
                    self.headers.get("Accept") or "application/json",
                    self.headers.get("X-Amzn-SageMaker-Target-Variant"))
            except HostError as err:
                host.count(endpoint or "?", ok=False)
                self._error(err)
                return
            except Exception as err:
                log.exception("invocation failed")
                host.count(endpoint or "?", ok=False)
                self._error(HostError(500, "InternalFailure", f"{type(err).__name__}: {err}"))
                return
            host.count(endpoint, ok=True)
            self._send(200, payload, ctype, {"x-Amzn-Invoked-Production-Variant": variant})

        def do_DELETE(self) -> None:
            if urllib.parse.urlsplit(self.path).path == "/_stocksage/outage":
                host.end_outage()
                self._send(200, b'{"outage": null}', "application/json")
            else:
                self._send(404, b'{"message": "not found"}', "application/json")

    return Handler


def _request_id() -> str:
    import uuid

    return str(uuid.uuid4())


def ping(url: str, timeout: float = 2.0) -> bool:
    """True when a host answers ``GET /ping`` with 200 at ``url``."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False
