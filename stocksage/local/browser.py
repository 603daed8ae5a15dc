"""A real browser for the local pages: Debian's ``chromium`` driven by Playwright.

Playwright's own browser download needs the internet; the distribution's chromium works when
launched by path (``executable_path``). :func:`chromium_executable` finds it and, when allowed
and possible (root, ``apt-get``), installs the ``chromium`` package first. Used by the browser
tests (tests/integration/test_pages_browser.py) and scripts/screenshot_dashboard.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
ENV_VAR = "STOCKSAGE_CHROMIUM"


class BrowserUnavailable(RuntimeError):
    """No chromium could be found or installed; the message says what was tried."""


def _find() -> Path | None:
    override = os.environ.get(ENV_VAR)
    if override:
        return Path(override) if Path(override).exists() else None
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def chromium_executable(install: bool = True, timeout: float = 900.0) -> Path:
    """Path of a chromium binary, installing Debian's ``chromium`` package if needed.

    Args:
        install: When no browser is found, run ``apt-get update`` and
            ``apt-get install -y --no-install-recommends chromium`` (root only, no prompt).
        timeout: Seconds allowed for each apt-get call.

    Returns:
        The executable (``$STOCKSAGE_CHROMIUM`` when set, else the first of
        :data:`CANDIDATES` on ``PATH``).

    Raises:
        BrowserUnavailable: nothing found and installing was not allowed, not possible (not
            root, no apt-get) or failed; the message carries apt's last output lines.
    """
    found = _find()
    if found is not None:
        return found
    if not install:
        raise BrowserUnavailable("chromium is not installed (apt-get install chromium)")
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise BrowserUnavailable(
            "chromium is not installed and cannot be installed here (needs root and apt-get): "
            f"run `sudo apt-get install -y chromium` or set {ENV_VAR} to a Chrome/Chromium binary")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"],
                    ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]):
        result = subprocess.run(command, env=env, capture_output=True, text=True,
                                timeout=timeout, stdin=subprocess.DEVNULL, check=False)
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
            raise BrowserUnavailable(f"`{' '.join(command)}` failed ({result.returncode}):\n{tail}")
    found = _find()
    if found is None:
        raise BrowserUnavailable("apt-get installed chromium but no chromium binary is on PATH")
    return found


def launch(playwright: Any, executable: Path | None = None) -> Any:
    """Launch headless chromium through Playwright (``playwright.chromium.launch``).

    Args:
        playwright: The object ``sync_playwright().start()`` returns.
        executable: Browser binary; :func:`chromium_executable` by default.

    Returns:
        A Playwright ``Browser``. As root, chromium needs ``--no-sandbox``.
    """
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    return playwright.chromium.launch(executable_path=str(executable or chromium_executable()),
                                      headless=True, args=args)


__all__ = ["BrowserUnavailable", "chromium_executable", "launch"]
