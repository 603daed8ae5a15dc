"""Background processes of the local stack: start, find, stop, and wait for them.

The emulator (``python -m stocksage.local.emulator start``) and the local runtime
(``python -m stocksage.local.runtime start``) both run as a detached ``python -m <module>
serve ...`` with a pid file and a log file in the state folder (``.local`` by default)::

    daemon = Daemon("emulator", "stocksage.local.emulator", Path(".local"),
                    healthy=lambda: probe("http://127.0.0.1:4566"))
    pid = daemon.start(["--port", "4566"])   # waits until healthy, or raises with the log tail
    daemon.pid()                              # None when not running (or the pid was reused)
    daemon.stop()                             # SIGTERM, then SIGKILL after a grace period

Children run from the repository root with it on ``PYTHONPATH`` (``child_env``), so the
``stocksage`` package resolves to this checkout whatever the caller's working folder is.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

#: Where pid files, logs, checkpoints and caches of the local stack live by default.
DEFAULT_STATE_DIR = ".local"
#: The checkout this package belongs to (children run from here).
REPO_ROOT = Path(__file__).resolve().parents[2]


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass.

    Returns:
        True as soon as ``predicate()`` is true (it is always called at least once), False
        when the time ran out.
    """
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def log_tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a log file (for error messages), or a note that none exists."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def port_in_use(host: str, port: int) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def child_env() -> dict[str, str]:
    """This process's environment with the repository root first on ``PYTHONPATH`` and
    unbuffered output (so a child's log is current when it is read)."""
    env = dict(os.environ)
    root = str(REPO_ROOT)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def alive(pid: int) -> bool:
    """True while process ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie child of ours counts as gone
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


@dataclass
class Daemon:
    """A background ``python -m <module> serve ...`` with pid and log files in ``state_dir``.

    Args:
        name: File stem (``emulator`` -> ``emulator.pid``, ``emulator.log``).
        module: Module run with ``-m``; must accept ``serve`` plus ``serve_args``.
        state_dir: Folder of the pid and log files (created).
        healthy: Probe that says the service is up.
    """

    name: str
    module: str
    state_dir: Path
    healthy: Callable[[], bool]

    @property
    def pid_file(self) -> Path:
        return self.state_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / f"{self.name}.log"

    def pid(self) -> int | None:
        """The recorded pid when that process is alive and is ours, else None.

        "Ours" means its command line mentions ``module``: a pid file left behind by a crash
        whose pid was reused by another program does not count.
        """
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            try:
                os.kill(pid, 0)
            except OSError:
                return None
            return pid
        return pid if self.module in cmdline else None

    def start(self, serve_args: list[str], timeout: float = 60.0) -> int:
        """Start in the background (own session, output appended to the log) and wait until
        healthy; return the pid.

        Raises:
            RuntimeError: already running, the process exited, or not healthy in time (the
                message carries the log tail).
        """
        self.state_dir.mkdir(parents=True, exist_ok=True)
        running = self.pid()
        if running:
            raise RuntimeError(f"{self.name} already running (pid {running}, {self.pid_file})")
        with open(self.log_file, "ab") as log:
            log.write(f"\n--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting {self.module}\n"
                      .encode())
            log.flush()
            proc = subprocess.Popen(
                [sys.executable, "-m", self.module, "serve", *serve_args],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=str(REPO_ROOT), env=child_env(), start_new_session=True,
            )
        self.pid_file.write_text(str(proc.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise RuntimeError(
                    f"{self.name} exited with code {proc.returncode}; log tail "
                    f"({self.log_file}):\n{log_tail(self.log_file)}"
                )
            if self.healthy():
                return proc.pid
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(
            f"{self.name} not healthy after {timeout:.0f}s; log tail ({self.log_file}):\n"
            f"{log_tail(self.log_file)}"
        )

    def stop(self, timeout: float = 15.0) -> bool:
        """Stop the recorded process (SIGTERM, then SIGKILL); False when none was running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and alive(pid):
            time.sleep(0.1)
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return True
