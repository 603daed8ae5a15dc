"""The embedded AWS: moto's standalone server with the project's patches.

moto's server is the emulator that Terraform provisions and every local component talks to
(127.0.0.1:4566, LocalStack's edge port). A few of moto's behaviours get in the way of a
faithful local stack; they are changed *in the server process* by the small, idempotent patch
functions of ``stocksage.local.moto_patches`` (``PATCHES``: Kinesis puts that no longer invoke
Lambda and O(1) shard operations, SageMaker ``UpdateEndpoint`` and a training-job lifecycle,
DynamoDB transactions without whole-table copies, EventBridge ``TestEventPattern``, fault
injection for resilience tests). This module runs that server.

Command line::

    python -m stocksage.local.emulator start  [--port 4566] [--state-dir .local]   # background
    python -m stocksage.local.emulator status [--port 4566] [--state-dir .local]
    python -m stocksage.local.emulator stop   [--state-dir .local]
    python -m stocksage.local.emulator serve  [--port 4566]                        # foreground

Python API (tests)::

    with Emulator(port=0) as emu:          # in-process, threaded, patched
        boto3.client("kinesis", endpoint_url=emu.endpoint_url, ...)

``start|stop|status`` run the server as a background process (``stocksage.local.daemon``,
shared with ``stocksage.local.runtime``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Self

from stocksage.local.daemon import (
    DEFAULT_STATE_DIR,
    REPO_ROOT,
    Daemon,
    child_env,
    log_tail,
    port_in_use,
    wait_until,
)
from stocksage.local.moto_patches import PATCHES, Patch, applied_patches, apply_patches
from stocksage.local.moto_patches.fault_routes import FAULTS_PATH
from stocksage.local.moto_patches.sagemaker import FINISH_TRAINING_JOB_PATH

#: Re-exported for existing callers (``wait_until`` and the patch registry lived here).
__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "DEFAULT_STATE_DIR",
    "FAULTS_PATH",
    "FINISH_TRAINING_JOB_PATH",
    "PATCHES",
    "Emulator",
    "Patch",
    "applied_patches",
    "apply_patches",
    "main",
    "probe",
    "serve",
    "wait_until",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4566


# --------------------------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------------------------


def _make_server(host: str, port: int, access_log: bool = False) -> Any:
    """moto's WSGI app (every service, routed by host and headers) on a threaded werkzeug
    server bound to ``host:port`` (0: a free port); requests are logged with ``access_log``."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    handler: type = MotoRequestHandler
    if not access_log:

        class QuietHandler(MotoRequestHandler):
            def log_request(self, *_args: Any, **_kwargs: Any) -> None:
                return None

        handler = QuietHandler
    app = DomainDispatcherApplication(create_backend_app)
    return make_server(host, port, app, threaded=True, request_handler=handler)


def probe(endpoint_url: str, timeout: float = 2.0) -> bool:
    """True when a moto server answers ``GET /moto-api/`` at ``endpoint_url``."""
    try:
        with urllib.request.urlopen(f"{endpoint_url}/moto-api/", timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


class Emulator:
    """The patched moto server for tests and embedding.

    Args:
        port: TCP port; 0 picks a free one (read ``.port`` / ``.endpoint_url`` after start).
        host: Bind address.
        mode: ``"thread"`` runs the server in this process (patches applied here: moto's
            global state is shared by every in-process emulator); ``"process"`` runs
            ``python -m stocksage.local.emulator serve`` as a child (isolated state).
        state_dir: For ``mode="process"``: where the child writes its log and port file
            (default: a temporary directory).
    """

    def __init__(
        self,
        port: int = 0,
        host: str = DEFAULT_HOST,
        mode: str = "thread",
        state_dir: str | Path | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        if mode not in ("thread", "process"):
            raise ValueError("mode must be 'thread' or 'process'")
        self.host = host
        self.port = port
        self.mode = mode
        self.state_dir = Path(state_dir) if state_dir else None
        self.startup_timeout = startup_timeout
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: Any = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        """Start serving and wait until ``GET /moto-api/`` answers.

        Raises:
            RuntimeError: not answering within ``startup_timeout`` (for a child process, with
                its log tail).
        """
        if self.mode == "thread":
            apply_patches()
            self._server = _make_server(self.host, self.port)
            self.port = self._server.server_address[1]
            self._thread = threading.Thread(
                target=self._server.serve_forever, name=f"moto-{self.port}", daemon=True
            )
            self._thread.start()
        else:
            self._start_process()
        if not wait_until(lambda: probe(self.endpoint_url), self.startup_timeout):
            self.stop()
            raise RuntimeError(f"emulator did not answer on {self.endpoint_url}")
        return self

    def _start_process(self) -> None:
        import tempfile

        if self.state_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="stocksage-emu-")
            self.state_dir = Path(self._tmp.name)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        port_file = self.state_dir / "emulator.port"
        port_file.unlink(missing_ok=True)
        log = open(self.state_dir / "emulator.log", "ab")  # noqa: SIM115
        proc = self._proc = subprocess.Popen(
            [sys.executable, "-m", "stocksage.local.emulator", "serve", "--host", self.host,
             "--port", str(self.port), "--port-file", str(port_file)],
            stdout=log, stderr=subprocess.STDOUT, cwd=str(REPO_ROOT),
            env=child_env(),
        )
        log.close()
        ok = wait_until(lambda: port_file.exists() or proc.poll() is not None,
                        self.startup_timeout)
        if not ok or not port_file.exists():
            tail = log_tail(self.state_dir / "emulator.log")
            self.stop()
            raise RuntimeError(f"emulator child failed to start:\n{tail}")
        self.port = int(port_file.read_text().strip())

    def reset(self) -> None:
        """Drop every resource (moto's ``/moto-api/reset``)."""
        req = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        urllib.request.urlopen(req, timeout=10).close()

    def stop(self) -> None:
        """Stop the server (thread) or the child (SIGTERM, then SIGKILL after 10 s)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            self._proc = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          port_file: str | Path | None = None, access_log: bool = False) -> None:
    """Run the patched server in the foreground until SIGINT/SIGTERM."""
    names = apply_patches()
    server = _make_server(host, port, access_log)
    actual = server.server_address[1]
    os.environ.setdefault("MOTO_PORT", str(actual))

    def _stop(_signum: int, _frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(f"stocksage emulator (moto) on http://{host}:{actual}; patches: {', '.join(names)}",
          flush=True)
    if port_file:
        tmp = Path(f"{port_file}.tmp")
        tmp.write_text(str(actual))
        tmp.replace(port_file)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        print("stocksage emulator stopped", flush=True)


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def _daemon(state_dir: str, host: str, port: int) -> Daemon:
    """The background emulator of ``start|stop|status`` (healthy: moto answers at the port)."""
    url = f"http://{host}:{port}"
    return Daemon("emulator", "stocksage.local.emulator", Path(state_dir), lambda: probe(url))


def main(argv: list[str] | None = None) -> int:
    """``python -m stocksage.local.emulator start|stop|status|serve|patches``; exit status 0 on
    success, 1 when ``start`` fails, 3 when ``status`` finds no healthy emulator."""
    parser = argparse.ArgumentParser(prog="python -m stocksage.local.emulator",
                                     description="The embedded AWS (patched moto server).")
    parser.add_argument("command", choices=["start", "stop", "status", "serve", "patches"])
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--state-dir", default=DEFAULT_STATE_DIR)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--access-log", action="store_true", help="log every request (serve)")
    parser.add_argument("--port-file", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    daemon = _daemon(args.state_dir, args.host, args.port)
    url = f"http://{args.host}:{args.port}"

    if args.command == "serve":
        serve(args.host, args.port, args.port_file, args.access_log)
        return 0
    if args.command == "patches":
        for patch in PATCHES:
            print(f"{patch.name}: {patch.summary}")
        return 0
    if args.command == "start":
        if daemon.pid() is None and port_in_use(args.host, args.port):
            print(f"port {args.port} is already in use by another process", file=sys.stderr)
            return 1
        try:
            pid = daemon.start(["--host", args.host, "--port", str(args.port)], args.timeout)
        except RuntimeError as err:
            print(str(err), file=sys.stderr)
            return 1
        print(f"emulator running on {url} (pid {pid}, log {daemon.log_file})")
        return 0
    if args.command == "stop":
        stopped = daemon.stop()
        print("emulator stopped" if stopped else "emulator was not running")
        return 0
    # status
    running = daemon.pid()
    up = probe(url)
    print(json.dumps({"pid": running, "endpoint_url": url, "healthy": up,
                      "log": str(daemon.log_file)}))
    return 0 if up else 3


if __name__ == "__main__":
    sys.exit(main())
