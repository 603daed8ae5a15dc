"""stocksage.local.browser: finding chromium, and a clear failure when it cannot be had."""

from __future__ import annotations

import pytest

from stocksage.local import browser


def test_an_explicit_binary_wins(monkeypatch, tmp_path):
    binary = tmp_path / "chrome"
    binary.write_text("#!/bin/sh\n")
    monkeypatch.setenv(browser.ENV_VAR, str(binary))
    assert browser.chromium_executable(install=False) == binary


def test_missing_browser_without_install_says_how_to_get_one(monkeypatch):
    monkeypatch.delenv(browser.ENV_VAR, raising=False)
    monkeypatch.setattr(browser.shutil, "which", lambda name: None)
    with pytest.raises(browser.BrowserUnavailable, match="apt-get install chromium"):
        browser.chromium_executable(install=False)


def test_missing_browser_and_no_root_fails_with_the_reason(monkeypatch):
    monkeypatch.delenv(browser.ENV_VAR, raising=False)
    monkeypatch.setattr(browser.shutil, "which",
                        lambda name: "/usr/bin/apt-get" if name == "apt-get" else None)
    monkeypatch.setattr(browser.os, "geteuid", lambda: 1000)
    calls = []
    monkeypatch.setattr(browser.subprocess, "run", lambda *a, **k: calls.append(a))
    with pytest.raises(browser.BrowserUnavailable, match="needs root and apt-get"):
        browser.chromium_executable(install=True)
    assert calls == []  # nothing attempted


def test_a_failing_apt_get_is_reported_with_its_output(monkeypatch):
    monkeypatch.delenv(browser.ENV_VAR, raising=False)
    monkeypatch.setattr(browser.shutil, "which",
                        lambda name: "/usr/bin/apt-get" if name == "apt-get" else None)
    monkeypatch.setattr(browser.os, "geteuid", lambda: 0)

    class Result:
        returncode, stdout, stderr = 100, "", "E: Unable to locate package chromium"

    monkeypatch.setattr(browser.subprocess, "run", lambda *a, **k: Result())
    with pytest.raises(browser.BrowserUnavailable, match="Unable to locate package chromium"):
        browser.chromium_executable(install=True)
