"""In-process Lambda invocation for functions deployed to the emulator.

moto stores functions but can only run them in Docker. The local runtime instead imports the
handler named by the deployed configuration from the repository and calls it with a Lambda
context, under the function's environment variables::

    fn = LambdaFunction.from_deployed(lambda_client, "stocksage-local-processor")
    response, error = fn.invoke(event)

Semantics (and where they differ from AWS):

* ``Handler`` ``"lambdas.processor.lambda_handler"`` -> module ``lambdas.processor``, attribute
  ``lambda_handler``, imported from the code roots (default: the repository root) put first on
  ``sys.path``. Modules are shared by every function of the process (AWS gives each function
  its own sandbox): a module imported by two functions is initialised once, under the
  environment of the first invocation that imported it.
* The event goes through a JSON round trip (the function cannot mutate the caller's copy) and
  so does the response; a response that is not JSON serialisable is a ``Runtime.MarshalError``
  function error, as in AWS.
* The function's environment (process environment + the function's ``Environment.Variables``
  + Lambda's reserved variables ``AWS_REGION``, ``AWS_LAMBDA_FUNCTION_NAME`` ...) is applied
  per invocation *thread*, without touching the process environment: on the first invocation
  ``os.environ`` is replaced by a layered mapping (``LayeredEnviron``) whose reads and writes go
  to the invoking thread's function environment while a handler runs, and to the real process
  environment everywhere else. So invocations of different functions (and concurrent batches
  of one function) run at the same time without cross-talk and without a global lock.
  ``os.getenv`` and libraries reading ``os.environ`` see it; code that captured the original
  object (``from os import environ``) and threads a handler starts itself see the process
  environment instead (an accepted emulator difference). The handler module is imported under
  the function's environment too (Powertools reads ``POWERTOOLS_SERVICE_NAME`` & co when
  ``Logger()``/``Metrics()`` are created at import). ``POWERTOOLS_TRACE_DISABLED=true`` is set
  unless the function sets it (no X-Ray daemon).
* Module globals are shared by concurrent invocations (AWS gives each concurrent invocation its
  own sandbox): e.g. Powertools ``Logger`` keys or ``Metrics`` of two concurrent invocations of
  the same module can mix in the logs (results and writes are unaffected).
* An exception is a function error ``{"errorMessage", "errorType", "stackTrace"}``, like AWS's
  ``Unhandled`` error. ``Timeout`` stops the invocation as on AWS: the handler runs in its own
  thread and the runtime stops waiting for it ``Timeout`` seconds after the handler started;
  the invocation is then a ``Sandbox.Timedout`` function error (retried or bisected by an event
  source mapping like any error). Python cannot kill a thread: the abandoned handler thread runs
  on in the background and its late writes (DynamoDB items, SNS messages) still happen, where
  AWS would freeze/kill the sandbox. Handlers must be idempotent anyway (a retried batch
  repeats the writes). The import of the handler module (AWS's init phase) is not counted
  against ``Timeout``; it is bounded by ``INIT_TIMEOUT_S``.
  ``context.get_remaining_time_in_millis`` counts down from ``Timeout`` so handlers that watch
  it behave as in AWS.
* ``MemorySize`` is reported to the context only (no memory limit is enforced).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]

#: Serialises handler imports and ``sys.path`` changes (not invocations).
ENV_LOCK = threading.RLock()

#: Longest wait for a handler module's import (Lambda's init phase has 10 s; pandas, ta and
#: boto3 take longer on a busy 2-core machine).
INIT_TIMEOUT_S = 60.0


class LayeredEnviron(MutableMapping[str, str]):
    """``os.environ`` replacement: a per-thread function environment over the process one.

    ``with environ.layer(env):`` makes every read and write *of the calling thread* use the
    dict ``env`` (a full environment); other threads keep seeing the process environment
    (``base``, the original ``os._Environ``, which still calls ``putenv``).
    """

    def __init__(self, base: MutableMapping[str, str]) -> None:
        self.base = base
        self._local = threading.local()

    def _current(self) -> MutableMapping[str, str]:
        layer = getattr(self._local, "env", None)
        return self.base if layer is None else layer

    def layer(self, env: Mapping[str, str]) -> _Layer:
        return _Layer(self, dict(env))

    def __getitem__(self, key: str) -> str:
        return self._current()[key]

    def __setitem__(self, key: str, value: str) -> None:
        self._current()[key] = value

    def __delitem__(self, key: str) -> None:
        del self._current()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._current()))

    def __len__(self) -> int:
        return len(self._current())

    def copy(self) -> dict[str, str]:
        return dict(self._current())

    def __repr__(self) -> str:
        return f"LayeredEnviron({dict(self._current())!r})"


class _Layer:
    def __init__(self, environ: LayeredEnviron, env: dict[str, str]) -> None:
        self.environ, self.env = environ, env
        self.saved: dict[str, str] | None = None

    def __enter__(self) -> None:
        self.saved = getattr(self.environ._local, "env", None)
        self.environ._local.env = self.env

    def __exit__(self, *exc: object) -> None:
        self.environ._local.env = self.saved


_install_lock = threading.Lock()


def layered_environ() -> LayeredEnviron:
    """Install (once) and return the ``LayeredEnviron`` that is ``os.environ``."""
    with _install_lock:
        if not isinstance(os.environ, LayeredEnviron):
            os.environ = LayeredEnviron(os.environ)  # type: ignore[assignment]  # noqa: B003
        return os.environ  # type: ignore[return-value]


@dataclass
class LambdaContext:
    """The ``context`` argument of a Python Lambda handler (same attribute names as AWS)."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    timeout_seconds: float
    identity: Any = None
    client_context: Any = None
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        if not self._deadline:
            self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class InvocationResult:
    """What one invocation produced.

    Attributes:
        payload: The handler's return value after a JSON round trip (None on error).
        error: ``{"errorMessage", "errorType", "stackTrace"}`` for a function error, else None.
        request_id: The ``aws_request_id`` given to the handler.
        duration_ms: Wall time of the handler call.
    """

    payload: Any
    error: dict[str, Any] | None
    request_id: str
    duration_ms: float

    @property
    def function_error(self) -> str | None:
        """``"Unhandled"`` for a function error (the ``X-Amz-Function-Error`` value), else None."""
        return "Unhandled" if self.error is not None else None


@dataclass
class LambdaFunction:
    """A deployed function, runnable in this process.

    Build it with ``from_deployed`` (reads the emulator) or directly (tests).
    """

    function_name: str
    handler: str
    function_arn: str = ""
    role: str = ""
    environment: dict[str, str] = field(default_factory=dict)
    timeout: float = 3.0
    memory_size: int = 128
    version: str = "$LATEST"
    region: str = "us-east-1"
    code_roots: tuple[str, ...] = (str(REPO_ROOT),)
    revision: str = ""
    _callable: Callable[[Any, Any], Any] | None = field(default=None, repr=False)

    @classmethod
    def from_deployed(
        cls,
        lambda_client: Any,
        function_name: str,
        code_roots: Iterable[str | Path] | None = None,
    ) -> LambdaFunction:
        """Read Handler, Environment, Timeout, MemorySize, Role of a deployed function.

        Args:
            lambda_client: boto3 ``lambda`` client pointed at the emulator.
            function_name: Name or ARN.
            code_roots: Folders searched for the handler module, first first (default: the
                repository root).
        """
        conf = lambda_client.get_function_configuration(FunctionName=function_name)
        arn = conf["FunctionArn"]
        roots = tuple(str(Path(r).resolve()) for r in code_roots) if code_roots else (
            str(REPO_ROOT),)
        return cls(
            function_name=conf["FunctionName"],
            handler=conf["Handler"],
            function_arn=arn,
            role=conf.get("Role", ""),
            environment=dict((conf.get("Environment") or {}).get("Variables") or {}),
            timeout=float(conf.get("Timeout") or 3),
            memory_size=int(conf.get("MemorySize") or 128),
            version=conf.get("Version") or "$LATEST",
            region=arn.split(":")[3] if arn.count(":") >= 6 else "us-east-1",
            code_roots=roots,
            revision=f"{conf.get('CodeSha256', '')}|{conf.get('LastModified', '')}|"
                     f"{conf.get('RevisionId', '')}",
        )

    # ---------------------------------------------------------------- environment
    def lambda_environment(self, request_id: str = "") -> dict[str, str]:
        """The environment the handler sees: process env + function env + reserved vars."""
        env = dict(os.environ)
        env.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
        env.update({k: str(v) for k, v in self.environment.items()})
        now = datetime.now(UTC)
        env.update({
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_LAMBDA_FUNCTION_NAME": self.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": self.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_size),
            "AWS_LAMBDA_LOG_GROUP_NAME": self.log_group_name,
            "AWS_LAMBDA_LOG_STREAM_NAME": self._log_stream_name(now),
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
            "_HANDLER": self.handler,
            "LAMBDA_TASK_ROOT": self.code_roots[0],
        })
        if request_id:
            env["_X_AMZN_REQUEST_ID"] = request_id
        return env

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    def _log_stream_name(self, now: datetime) -> str:
        return f"{now:%Y/%m/%d}/[{self.version}]{abs(hash(self.function_arn)) % 16**32:032x}"

    # ---------------------------------------------------------------- handler
    def load_handler(self) -> Callable[[Any, Any], Any]:
        """Import the handler (under the function's environment); cached."""
        if self._callable is not None:
            return self._callable
        module_name, _, attr = self.handler.rpartition(".")
        if not module_name or not attr:
            raise ValueError(f"bad Handler {self.handler!r}: expected 'module.function'")
        environ = layered_environ()
        with ENV_LOCK, environ.layer(self.lambda_environment()):
            for root in reversed(self.code_roots):
                if root in sys.path:
                    sys.path.remove(root)
                sys.path.insert(0, root)
            importlib.invalidate_caches()
            module = importlib.import_module(module_name)
        fn = getattr(module, attr, None)
        if not callable(fn):
            raise AttributeError(
                f"handler {self.handler!r}: {module_name} has no callable {attr}")
        self._callable = fn
        return fn

    def invoke(self, event: Any) -> tuple[Any, dict[str, Any] | None]:
        """Run the handler on ``event``; return ``(response, error)`` (see ``invoke_detailed``)."""
        result = self.invoke_detailed(event)
        return result.payload, result.error

    def invoke_detailed(self, event: Any, request_id: str | None = None) -> InvocationResult:
        """Run the handler synchronously (``RequestResponse``) and report what happened.

        The handler runs in a new thread under the function's environment; the call returns
        at the latest ``timeout`` seconds after the handler started (``Sandbox.Timedout``),
        leaving a handler that overran running in the background (module docstring).
        """
        request_id = request_id or str(uuid.uuid4())
        try:
            payload_in = json.loads(json.dumps(event))
        except (TypeError, ValueError) as err:
            return InvocationResult(None, _error(err, "Runtime.MarshalError"), request_id, 0.0)
        environ = layered_environ()
        env = self.lambda_environment(request_id)
        run = _Run()

        def target() -> None:
            try:
                handler = self.load_handler()
            except BaseException as err:  # noqa: BLE001 - init failure is a function error
                run.error = _error(err, "Runtime.ImportModuleError")
                run.initialised.set()
                run.done.set()
                return
            context = LambdaContext(
                function_name=self.function_name,
                function_version=self.version,
                invoked_function_arn=self.function_arn,
                memory_limit_in_mb=self.memory_size,
                aws_request_id=request_id,
                log_group_name=self.log_group_name,
                log_stream_name=env["AWS_LAMBDA_LOG_STREAM_NAME"],
                timeout_seconds=self.timeout,
            )
            run.started = time.monotonic()
            run.initialised.set()
            with environ.layer(env):
                try:
                    run.raw = handler(payload_in, context)
                except BaseException as err:  # noqa: BLE001 - any exception is a function error
                    run.error = _error(err)
            run.elapsed = time.monotonic() - run.started
            run.done.set()

        thread = threading.Thread(target=target, daemon=True,
                                  name=f"lambda-{self.function_name}-{request_id[:8]}")
        thread.start()
        if not run.initialised.wait(INIT_TIMEOUT_S):
            return InvocationResult(None, {
                "errorMessage": f"init of {self.handler} did not finish in {INIT_TIMEOUT_S} s",
                "errorType": "Runtime.InitTimeout", "stackTrace": []}, request_id, 0.0)
        finished = run.done.wait(max(0.0, run.started + self.timeout - time.monotonic())
                                 if run.started else None)
        if not finished or run.elapsed > self.timeout:
            return InvocationResult(None, {
                "errorMessage": f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%S.%fZ} "
                                f"{request_id} Task timed out after {self.timeout:.2f} seconds",
                "errorType": "Sandbox.Timedout",
                "stackTrace": [],
            }, request_id, self.timeout * 1000)
        duration_ms = run.elapsed * 1000
        if run.error is not None:
            return InvocationResult(None, run.error, request_id, duration_ms)
        try:
            payload = json.loads(json.dumps(run.raw))
        except (TypeError, ValueError) as err:
            return InvocationResult(None, _error(err, "Runtime.MarshalError"), request_id,
                                    duration_ms)
        return InvocationResult(payload, None, request_id, duration_ms)


@dataclass
class _Run:
    """What the handler thread of one invocation reports back."""

    initialised: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    started: float = 0.0
    elapsed: float = 0.0
    raw: Any = None
    error: dict[str, Any] | None = None


def _error(err: BaseException, error_type: str | None = None) -> dict[str, Any]:
    return {
        "errorMessage": str(err),
        "errorType": error_type or type(err).__name__,
        "stackTrace": traceback.format_exception(type(err), err, err.__traceback__)[1:],
    }
