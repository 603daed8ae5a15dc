"""The engine: finds the Kinesis event source mappings in the emulator and runs each one.

``EsmEngine`` reads the mappings back with ``list_event_source_mappings`` (``refresh``), keeps
one ``MappingWorker`` per mapping, and invokes the functions in process
(``stocksage.local.lambda_invoker``) with their deployed configuration (re-read when it
changes). It runs the workers in threads or in the caller's thread::

    engine = EsmEngine({"endpoint_url": "http://127.0.0.1:4566", "region_name": "us-east-1"})
    engine.refresh()                   # discover mappings (call again to find new ones)
    engine.drain(timeout=30)           # process until every shard is caught up
    engine.stats()                     # {uuid: MappingStats}
    engine.start(); ...; engine.stop() # or: one polling thread per mapping
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from stocksage.local.checkpoints import CheckpointStore
from stocksage.local.clients import Clients
from stocksage.local.esm.mapping import EsmFaults, MappingConfig, MappingStats
from stocksage.local.esm.worker import Invoker, MappingWorker
from stocksage.local.lambda_invoker import InvocationResult, LambdaFunction

log = logging.getLogger("stocksage.local.esm")


class EsmEngine:
    """Runs every Kinesis event source mapping found in the emulator.

    Args:
        client_kwargs: boto3 client keyword arguments (``endpoint_url``, ``region_name``,
            credentials).
        invoker: ``invoker(function_arn, event) -> InvocationResult``; default: in-process
            ``LambdaFunction`` read from the emulator (re-read when its configuration changes).
        checkpoint_path: JSON file of checkpoints (None: memory only).
        code_roots: Where handler modules are imported from (default: the repository root).
        retry_backoff: (first delay, cap) in seconds between retries of a failed batch.
        idle_sleep: Seconds a mapping's thread sleeps after a round with nothing to do.
        function_filter: Only mappings whose function ARN passes it are run.
        faults: Test-only faults (``EsmFaults``; also reachable as ``engine.faults`` to switch
            them at run time), e.g. ``EsmFaults(redeliver=True)``.
    """

    def __init__(
        self,
        client_kwargs: dict[str, Any],
        invoker: Invoker | None = None,
        checkpoint_path: str | Path | None = None,
        code_roots: Iterable[str | Path] | None = None,
        retry_backoff: tuple[float, float] = (0.05, 2.0),
        idle_sleep: float = 0.2,
        function_filter: Callable[[str], bool] | None = None,
        faults: EsmFaults | None = None,
    ) -> None:
        self.faults = faults or EsmFaults()
        self.clients = Clients(client_kwargs)
        self.checkpoints = CheckpointStore(checkpoint_path)
        self.code_roots = list(code_roots) if code_roots else None
        self.retry_backoff = retry_backoff
        self.idle_sleep = idle_sleep
        self.function_filter = function_filter
        self.invoker: Invoker = invoker or self._invoke_local
        self.workers: dict[str, MappingWorker] = {}
        self._functions: dict[str, LambdaFunction] = {}
        self._lock = threading.RLock()
        self._running = False

    # ---------------------------------------------------------------- functions
    def function(self, function_arn: str, reload: bool = False) -> LambdaFunction:
        """The deployed function, read from the emulator once (``reload``: read it again and
        keep the new one when its code revision, handler or environment changed)."""
        with self._lock:
            fn = self._functions.get(function_arn)
            if fn is None or reload:
                fresh = LambdaFunction.from_deployed(self.clients.lambda_, function_arn,
                                                     self.code_roots)
                if fn is None or fresh.revision != fn.revision or fresh.handler != fn.handler \
                        or fresh.environment != fn.environment:
                    fn = fresh
                self._functions[function_arn] = fn
            return fn

    def _invoke_local(self, function_arn: str, event: dict[str, Any]) -> InvocationResult:
        return self.function(function_arn).invoke_detailed(event)

    def _role_of(self, function_arn: str) -> str:
        try:
            return self.function(function_arn).role
        except Exception:  # noqa: BLE001 - the event still goes out
            return ""

    def _invoke(self, function_arn: str, event: dict[str, Any]) -> InvocationResult:
        return self.invoker(function_arn, event)

    # ---------------------------------------------------------------- mappings
    def list_mappings(self) -> list[MappingConfig]:
        """The Kinesis mappings in the emulator that pass ``function_filter``."""
        out: list[MappingConfig] = []
        kwargs: dict[str, Any] = {}
        while True:
            resp = self.clients.lambda_.list_event_source_mappings(**kwargs)
            for m in resp.get("EventSourceMappings", []):
                config = MappingConfig.from_api(m)
                if config.is_kinesis and (self.function_filter is None
                                          or self.function_filter(config.function_arn)):
                    out.append(config)
            marker = resp.get("NextMarker")
            if not marker:
                return out
            kwargs = {"Marker": marker}

    def refresh(self) -> list[str]:
        """Discover mappings: start new ones, update changed ones, stop deleted ones; re-read
        function configurations. Returns the active mapping UUIDs."""
        configs = {c.uuid: c for c in self.list_mappings()}
        with self._lock:
            for gone in set(self.workers) - set(configs):
                self.workers.pop(gone).stop()
                log.info("mapping %s removed", gone)
            for uid, config in configs.items():
                worker = self.workers.get(uid)
                if worker is None:
                    worker = MappingWorker(config, self.clients, self._invoke, self.checkpoints,
                                           self._role_of, self.retry_backoff, self.idle_sleep,
                                           self.faults)
                    self.workers[uid] = worker
                    log.info("mapping %s: %s -> %s", uid, config.event_source_arn,
                             config.function_arn)
                    if self._running:
                        worker.start()
                elif worker.config != config:
                    with worker.lock:
                        worker.config = config
                        worker.stats.function_arn = config.function_arn
            for arn in {c.function_arn for c in configs.values()}:
                if self.invoker == self._invoke_local:
                    try:
                        self.function(arn, reload=True)
                    except Exception as err:  # noqa: BLE001 - reported at invocation
                        log.warning("function %s: %s", arn, err)
            return list(configs)

    # ---------------------------------------------------------------- running
    def start(self) -> None:
        """One polling thread per mapping (call ``refresh`` periodically to find new ones)."""
        with self._lock:
            self._running = True
            for worker in self.workers.values():
                worker.start()

    def stop(self) -> None:
        """Stop every mapping's thread (checkpoints stay; ``start`` resumes)."""
        with self._lock:
            self._running = False
            workers = list(self.workers.values())
        for worker in workers:
            worker.stop()

    def kill(self) -> None:
        """Simulate a crash of the runtime (e.g. mid-batch): every worker stops applying
        outcomes at once and the checkpoint file is written no more. Build a new engine on the
        same ``checkpoint_path`` to restart: records after the last checkpoint are delivered
        again. (A real ``kill -9`` of ``python -m stocksage.local.runtime`` behaves the same:
        the checkpoint file is replaced atomically.)"""
        with self._lock:
            self._running = False
            workers = list(self.workers.values())
        self.checkpoints.close()
        for worker in workers:
            worker.kill()

    def run_once(self) -> bool:
        """One round over every mapping in the calling thread; True when work was done."""
        busy = False
        for worker in list(self.workers.values()):
            busy = worker.run_round() or busy
        return busy

    def drain(self, timeout: float = 30.0, refresh: bool = True) -> bool:
        """Process until every shard of every mapping is caught up with no batch pending or
        buffered; True when that happened within ``timeout`` seconds. Records put before the
        call are guaranteed to have been handled (or discarded) when it returns True.

        Works with and without ``start()``: with threads it waits for them, without it runs
        rounds in the calling thread.
        """
        deadline = time.monotonic() + timeout
        if refresh:
            self.refresh()
        for worker in list(self.workers.values()):
            if worker.running:
                if not worker.wait_idle(max(0.0, deadline - time.monotonic())):
                    return False
            elif not worker.run_until_idle(deadline):
                return False
        return True

    def stats(self) -> dict[str, MappingStats]:
        """Counters per mapping UUID (live objects: they keep counting)."""
        return {uid: w.stats for uid, w in self.workers.items()}
