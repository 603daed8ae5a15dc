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
* ``os.environ`` is replaced for the duration of the invocation by the process environment +
  the function's ``Environment.Variables`` + Lambda's reserved variables (``AWS_REGION``,
  ``AWS_LAMBDA_FUNCTION_NAME`` ...), under one process-wide lock. Invocations are therefore
  serialised across all functions of the process (enough for a local stack on 2 cores).
  The handler module is imported under that environment too (Powertools reads
  ``POWERTOOLS_SERVICE_NAME`` & co when ``Logger()``/``Metrics()`` are created at import).
  ``POWERTOOLS_TRACE_DISABLED=true`` is set unless the function sets it (no X-Ray daemon).
* An exception is a function error ``{"errorMessage", "errorType", "stackTrace"}``, like AWS's
  ``Unhandled`` error. ``Timeout`` is enforced after the fact: the handler is not killed
  (Python threads cannot be), but an invocation that took longer than ``Timeout`` seconds is a
  ``Sandbox.Timedout`` function error whatever it returned. ``context.get_remaining_time_in_millis``
  counts down from ``Timeout`` so handlers that watch it behave as in AWS.
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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]

#: One lock for ``os.environ`` swaps and handler imports (see the module docstring).
ENV_LOCK = threading.RLock()


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
        with ENV_LOCK, _patched_environ(self.lambda_environment()):
            for root in reversed(self.code_roots):
                if root in sys.path:
                    sys.path.remove(root)
                sys.path.insert(0, root)
            importlib.invalidate_caches()
            module = importlib.import_module(module_name)
        fn = getattr(module, attr, None)
        if not callable(fn):
            raise AttributeError(  # noqa: TRY004 - Lambda reports Runtime.HandlerNotFound
                f"handler {self.handler!r}: {module_name} has no callable {attr}")
        self._callable = fn
        return fn

    def invoke(self, event: Any) -> tuple[Any, dict[str, Any] | None]:
        """Run the handler on ``event``; return ``(response, error)`` (see ``invoke_detailed``)."""
        result = self.invoke_detailed(event)
        return result.payload, result.error

    def invoke_detailed(self, event: Any, request_id: str | None = None) -> InvocationResult:
        """Run the handler synchronously (``RequestResponse``) and report what happened."""
        request_id = request_id or str(uuid.uuid4())
        try:
            payload_in = json.loads(json.dumps(event))
        except (TypeError, ValueError) as err:
            return InvocationResult(None, _error(err, "Runtime.MarshalError"), request_id, 0.0)
        started = time.monotonic()
        with ENV_LOCK:
            try:
                handler = self.load_handler()
            except Exception as err:  # noqa: BLE001 - init failure is a function error
                return InvocationResult(None, _error(err, "Runtime.ImportModuleError"),
                                        request_id, 0.0)
            env = self.lambda_environment(request_id)
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
            started = time.monotonic()
            with _patched_environ(env):
                try:
                    raw = handler(payload_in, context)
                    error = None
                except Exception as err:  # noqa: BLE001 - any exception is a function error
                    raw, error = None, _error(err)
            elapsed = time.monotonic() - started
        duration_ms = elapsed * 1000
        if elapsed > self.timeout:
            return InvocationResult(None, {
                "errorMessage": f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%S.%fZ} "
                                f"{request_id} Task timed out after {self.timeout:.2f} seconds",
                "errorType": "Sandbox.Timedout",
                "stackTrace": [],
            }, request_id, duration_ms)
        if error is not None:
            return InvocationResult(None, error, request_id, duration_ms)
        try:
            payload = json.loads(json.dumps(raw))
        except (TypeError, ValueError) as err:
            return InvocationResult(None, _error(err, "Runtime.MarshalError"), request_id,
                                    duration_ms)
        return InvocationResult(payload, None, request_id, duration_ms)


def _error(err: BaseException, error_type: str | None = None) -> dict[str, Any]:
    return {
        "errorMessage": str(err),
        "errorType": error_type or type(err).__name__,
        "stackTrace": traceback.format_exception(type(err), err, err.__traceback__)[1:],
    }


class _patched_environ:
    """Replace ``os.environ`` wholesale for a ``with`` block (caller holds ``ENV_LOCK``)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = dict(env)
        self.saved: dict[str, str] = {}

    def __enter__(self) -> None:
        self.saved = dict(os.environ)
        _replace_environ(self.env)

    def __exit__(self, *exc: object) -> None:
        _replace_environ(self.saved)


def _replace_environ(target: Mapping[str, str]) -> None:
    for key in list(os.environ):
        if key not in target:
            del os.environ[key]
    for key, value in target.items():
        if os.environ.get(key) != value:
            os.environ[key] = value
