"""Repair: a late bar is rebuilt into the series from the history; the result equals ``ta``."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from stocksage.adapters.memory import MemoryPredictor, memory_ports
from stocksage.bars import frame_to_bars
from stocksage.config import STACK
from stocksage.datasets import load_bars
from stocksage.indicators.features import enrich
from stocksage.operations.recovery import bars_from_results, rebuild
from stocksage.processing import StreamBar, process_batch
from stocksage.state import SymbolState

NOW = datetime(2026, 12, 3, tzinfo=UTC)


def test_late_bar_is_repaired_into_results_and_state_and_the_stream_continues_exactly():
    frame = load_bars("IBM").iloc[:400]
    bars = frame_to_bars("IBM", frame)
    ports = memory_ports()
    stream = [StreamBar(b, str(i + 1)) for i, b in enumerate(bars[:300]) if i != 150]
    process_batch(stream[:200], ports)
    process_batch(stream[200:], ports)
    late = process_batch([StreamBar(bars[150], "999")], ports)
    assert [s.bar for s in late.late] == [bars[150]]

    items = {t: item for (s, t), item in ports.results.items.items() if s == "IBM"}
    current, _ = ports.states.get_states(["IBM"])
    repaired = rebuild("IBM", bars_from_results(items.values()), bars[:300], current["IBM"],
                       items, predictor=MemoryPredictor(), now=NOW)
    assert repaired.inserted == 1 and repaired.bars == 300
    assert len(repaired.items) == 150  # the late bar and every later bar changed
    assert repaired.predicted == 150 and repaired.endpoint_error == ""
    assert ports.results.put_results(repaired.items) == {}
    assert ports.states.put_states([repaired.state]) == {}

    for i, bar in enumerate(bars[300:]):  # the stream goes on from the repaired state
        process_batch([StreamBar(bar, str(1000 + i))], ports)
    expected = enrich(frame)
    got = [ports.results.items[("IBM", t.strftime("%Y-%m-%dT%H:%M:%SZ"))] for t in frame.index]
    for name in (*STACK.indicator_columns, *STACK.features):
        want = expected[name].to_numpy()
        have = np.array([item.get(name, np.nan) for item in got], dtype=float)
        assert (np.isnan(want) == np.isnan(have)).all(), name
        ok = np.isnan(want) | (np.abs(have - want) <= 1e-9 * np.abs(want) + 1e-9)
        assert ok.all(), name
    assert all(item.get("prediction_status") in (None, "ready") for item in got)


def test_repair_conflicts_when_the_stream_advanced_meanwhile():
    bars = frame_to_bars("MSFT", load_bars("MSFT").iloc[:120])
    ports = memory_ports()
    process_batch([StreamBar(b, str(i)) for i, b in enumerate(bars[:100])], ports)
    items = {t: i for (s, t), i in ports.results.items.items()}
    current, _ = ports.states.get_states(["MSFT"])
    repaired = rebuild("MSFT", bars_from_results(items.values()), [], current["MSFT"], items,
                       now=NOW)
    assert repaired.items == [] and repaired.inserted == 0  # nothing was missing
    process_batch([StreamBar(bars[100], "500")], ports)  # the stream moves on
    assert "changed" in ports.states.put_states([repaired.state])["MSFT"] or \
        "version" in ports.states.put_states([repaired.state])["MSFT"]


def test_rebuild_without_any_bar_is_an_error():
    with pytest.raises(ValueError, match="no bar of XYZ"):
        rebuild("XYZ", [], [], SymbolState(symbol="XYZ"), {}, now=NOW)


def test_repair_with_a_two_output_model_writes_the_range_band():
    bars = frame_to_bars("IBM", load_bars("IBM").iloc[:120])
    ports = memory_ports()
    process_batch([StreamBar(b, str(i + 1)) for i, b in enumerate(bars) if i != 90], ports)
    items = {t: item for (s, t), item in ports.results.items.items() if s == "IBM"}
    current, _ = ports.states.get_states(["IBM"])
    repaired = rebuild("IBM", bars_from_results(items.values()), bars, current["IBM"], items,
                       predictor=MemoryPredictor(ranges=True), now=NOW)
    predicted = [i for i in repaired.items if "prob_up" in i]
    assert predicted and all(i["range_forecast"] == pytest.approx(2 * i["atr_norm"])
                             and i["range_low"] < i["close"] < i["range_high"]
                             for i in predicted)
