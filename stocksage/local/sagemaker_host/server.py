"""The SageMaker host's HTTP server: the runtime API, the container API, outages and stats.

Routes (``SageMakerHost``, 127.0.0.1:4567 by default)::

    POST   /endpoints/{EndpointName}/invocations   SageMaker runtime InvokeEndpoint
    POST   /invocations                            the container contract (default endpoint)
    GET    /ping                                   200 when up
    GET    /_stocksage/stats                       invocations, errors, loaded model versions
    GET|POST|DELETE /_stocksage/outage             the injected outage (see ``outages``)

Each invocation: outage check, ``DescribeEndpoint`` and the variant's model
(``models.ModelStore``), the program's handlers (``container.LoadedModel``). The response
carries ``x-Amzn-Invoked-Production-Variant``; errors are AWS-shaped JSON with
``x-amzn-ErrorType`` (``errors.HostError``), so boto3 raises ``ClientError`` with the code.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

from stocksage.local.sagemaker_host.errors import HostError, UnsupportedContentType
from stocksage.local.sagemaker_host.models import ModelStore
from stocksage.local.sagemaker_host.outages import Outage, OutageSwitch

log = logging.getLogger("stocksage.local.sagemaker_host")

DEFAULT_PORT = 4567


@dataclass
class HostStats:
    """Invocations served (and failed) since the host started, per endpoint too."""

    invocations: int = 0
    errors: int = 0
    by_endpoint: dict[str, int] = field(default_factory=dict)


class SageMakerHost:
    """The HTTP host; ``start()`` serves in a background thread, ``stop()`` ends it.

    Args:
        client_kwargs: boto3 client kwargs for the emulator (``endpoint_url``, region, creds).
        port: 0 picks a free port (``.port`` after ``start``).
        cache_dir: Where archives are extracted (default: a temporary folder).
        default_endpoint: Endpoint behind ``POST /invocations``.
    """

    def __init__(self, client_kwargs: dict[str, Any], port: int = DEFAULT_PORT,
                 host: str = "127.0.0.1", cache_dir: str | Path | None = None,
                 default_endpoint: str | None = None,
                 local_code_roots: tuple[str | Path, ...] | None = None) -> None:
        import tempfile

        self._tmp = None
        if cache_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="stocksage-sm-")
            cache_dir = self._tmp.name
        self.store = ModelStore(client_kwargs, cache_dir) if local_code_roots is None else \
            ModelStore(client_kwargs, cache_dir, local_code_roots=local_code_roots)
        self.host = host
        self.default_endpoint = default_endpoint
        self.stats = HostStats()
        self._stats_lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), _make_handler(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread: threading.Thread | None = None
        self.outages = OutageSwitch()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        """Serve in a background thread; returns the host (``with`` does it too)."""
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name=f"sagemaker-host-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop the temporary model cache (when the host made one)."""
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
        """The endpoint behind ``POST /invocations``: ``default_endpoint``, else the only
        endpoint in the emulator.

        Raises:
            HostError: 400 when there is none or there are several.
        """
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
        """Run one invocation; returns (body, content type, variant name).

        Raises:
            HostError: unknown endpoint or variant (400), the model could not be loaded or a
                handler failed (424 ``ModelError``, original status 415 for an unsupported
                content type, else 500).
        """
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
        """Make invocations (of ``endpoint``, or all) fail or hang for ``seconds`` (see
        ``OutageSwitch.start``).

        Raises:
            ValueError: unknown ``mode`` or ``seconds`` <= 0.
        """
        return self.outages.start(seconds, mode, endpoint)

    def end_outage(self) -> None:
        """End the injected outage now."""
        self.outages.end()

    # ---------------------------------------------------------------- stats
    def count(self, endpoint: str, ok: bool) -> None:
        """Count one invocation of ``endpoint`` (``ok``: answered 200)."""
        with self._stats_lock:
            self.stats.invocations += 1
            if not ok:
                self.stats.errors += 1
            self.stats.by_endpoint[endpoint] = self.stats.by_endpoint.get(endpoint, 0) + 1


def _endpoint_of(path: str, host: SageMakerHost) -> str:
    """The endpoint an invocation path names (``/endpoints/{name}/invocations``, or the
    default endpoint for ``/invocations``); HostError 404 for any other path."""
    parts = path.strip("/").split("/")
    if len(parts) == 3 and parts[0] == "endpoints" and parts[2] == "invocations":
        return urllib.parse.unquote(parts[1])
    if path == "/invocations":
        return host.resolve_default_endpoint()
    raise HostError(404, "UnknownOperationException", f"no route for {path}")


def _get_response(path: str, host: SageMakerHost) -> tuple[int, bytes, str]:
    """``(status, body, content type)`` of a GET: ``/ping``, the outage and the stats."""
    if path == "/ping":
        return 200, b"", "text/plain"
    if path == "/_stocksage/outage":
        outage = host.outages.current()
        return 200, json.dumps({"outage": None if outage is None else {
            "mode": outage.mode, "endpoint": outage.endpoint,
            "remaining_s": outage.until - time.monotonic()}}).encode(), "application/json"
    if path == "/_stocksage/stats":
        return 200, json.dumps({
            "invocations": host.stats.invocations, "errors": host.stats.errors,
            "by_endpoint": host.stats.by_endpoint,
            "models": host.store.loaded_versions()}).encode(), "application/json"
    return 404, b'{"message": "not found"}', "application/json"


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
            self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
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
            self._send(*_get_response(urllib.parse.urlsplit(self.path).path, host))

        def _post_outage(self, body: bytes) -> None:
            try:
                spec = json.loads(body or b"{}")
                host.outage(float(spec.get("seconds", 60)), spec.get("mode", "fail"),
                            spec.get("endpoint"))
            except (ValueError, TypeError, AttributeError) as err:
                self._error(HostError(400, "ValidationError", str(err)))
                return
            self._send(200, b'{"outage": "on"}', "application/json")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path = urllib.parse.urlsplit(self.path).path
            if path == "/_stocksage/outage":
                self._post_outage(body)
                return
            endpoint = None
            try:
                endpoint = _endpoint_of(path, host)
                host.outages.apply(endpoint)
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


def ping(url: str, timeout: float = 2.0) -> bool:
    """True when a host answers ``GET /ping`` with 200 at ``url``."""
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False

