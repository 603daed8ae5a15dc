"""The stack's shared facts, read from ``stocksage/stack.json``.

``stack.json`` is the single source of truth for resource names, table keys, the indicator
parameters, the rolling window length and the model's feature list. Terraform reads the same
file with ``jsondecode(file(...))``, so a name changed there changes everywhere.

Example:
    >>> from stocksage.config import STACK, resource_name
    >>> resource_name("local", "results_table")
    'stocksage-local-results'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

ENVIRONMENTS = ("local", "dev", "prod")


@dataclass(frozen=True)
class Stack:
    """Typed view of ``stack.json``.

    Attributes:
        project: Name prefix of every resource (``stocksage``).
        resources: Logical key -> short name, e.g. ``"results_table" -> "results"``.
        keys: Table -> key attribute names, e.g. ``keys["results"]["sort"] == "bar_time"``.
        window_bars: Bars of the former (format-1) window state, read when such items are
            migrated; the processor itself keeps no window (``stocksage.indicators.incremental``).
        indicators: Indicator parameters (window lengths in bars).
        indicator_columns: Names of the indicator columns written per bar.
        features: Ordered model feature names (the model's input vector).
        sessions: ``default_calendar`` and ``symbol_calendars`` (exchange_calendars names) of
            the daily bars built from trades (``stocksage.bars.sessions``).
        bar_building: ``intervals`` built from trades and ``grace_ms`` (event time a bar waits
            after its end; ``stocksage.bars.aggregation``).
        raw: The whole decoded document.
    """

    project: str
    resources: dict[str, str]
    keys: dict[str, dict[str, str]]
    window_bars: int
    indicators: dict[str, float]
    indicator_columns: tuple[str, ...]
    features: tuple[str, ...]
    sessions: dict[str, Any]
    bar_building: dict[str, Any]
    raw: dict[str, Any]


@cache
def load_stack() -> Stack:
    """Read and validate ``stocksage/stack.json`` (cached).

    Raises:
        ValueError: when a required section is missing or the window is not positive.
    """
    raw = json.loads(resources.files("stocksage").joinpath("stack.json").read_text())
    for section in ("project", "resources", "keys", "window_bars", "indicators", "features",
                    "sessions", "bar_building"):
        if section not in raw:
            raise ValueError(f"stack.json lacks the {section!r} section")
    if int(raw["window_bars"]) < 1:
        raise ValueError("stack.json window_bars must be positive")
    return Stack(
        project=raw["project"],
        resources=dict(raw["resources"]),
        keys={k: dict(v) for k, v in raw["keys"].items()},
        window_bars=int(raw["window_bars"]),
        indicators=dict(raw["indicators"]),
        indicator_columns=tuple(raw["indicator_columns"]),
        features=tuple(raw["features"]),
        sessions=dict(raw["sessions"]),
        bar_building=dict(raw["bar_building"]),
        raw=raw,
    )


STACK = load_stack()


def resource_name(env: str, key: str) -> str:
    """Full physical name of a resource: ``{project}-{env}-{short name}``.

    Args:
        env: Environment name, one of ``ENVIRONMENTS``.
        key: Logical key in ``stack.json`` ``resources`` (e.g. ``"stream"``).

    Raises:
        KeyError: for an unknown resource key.
        ValueError: for an unknown environment.
    """
    if env not in ENVIRONMENTS:
        raise ValueError(f"unknown environment {env!r}; expected one of {ENVIRONMENTS}")
    return f"{STACK.project}-{env}-{STACK.resources[key]}"
