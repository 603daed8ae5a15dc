"""Benchmark of the processor's domain path: bars/s, state size and peak memory.

Runs ``stocksage.processing.process_batch`` on real bars with the in-memory ports of
``stocksage.adapters.memory`` (no AWS; the state items are encoded and decoded as they would be for
DynamoDB), so it measures the Lambda's own CPU per batch. Shapes:

- live feed: 500 symbols x 1 bar per batch, warm state, two price rules per symbol (half
  of the batches timed, the other half under tracemalloc for the peak memory);
- burst: 1 symbol x 1,000 bars in one batch;
- previous design, same run: the 600-bar window recomputed with ``ta`` per symbol and batch
  (what ``stocksage.indicators.definition.advance`` did before the O(1) kernel), live-feed shape.

Runs on this machine vary by about +-20 %: the live feed and the previous design are measured
``--repeats`` times in alternation and reported as medians (the runs are listed too).

Usage: ``python scripts/bench_processor.py [--json] [--symbols 500] [--batches 20] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stocksage.adapters.memory import memory_ports
from stocksage.alerts import Rule
from stocksage.bars import OHLCV, frame_to_bars
from stocksage.datasets import load_bars
from stocksage.indicators.features import enrich
from stocksage.processing import StreamBar, process_batch

SOURCES = ["AAPL", "IBM", "MSFT", "GOOG", "NVDA", "AMZN", "NFLX"]
WARM_BARS = 120
OLD_WINDOW = 600


def _series(symbols: int, bars: int) -> dict[str, list]:
    out = {}
    sources = {name: load_bars(name) for name in SOURCES}
    for i in range(symbols):
        frame = sources[SOURCES[i % len(SOURCES)]].iloc[i % 50: i % 50 + bars]
        out[f"S{i:03d}"] = frame_to_bars(f"S{i:03d}", frame)
    return out


def _price_rules(series: dict[str, list]) -> dict[str, list[Rule]]:
    rules = {}
    for symbol, bars in series.items():
        mid = float(np.median([b.close for b in bars]))
        rules[symbol] = [Rule("above", symbol, "price_above", {"level": mid}),
                         Rule("below", symbol, "price_below", {"level": mid})]
    return rules


@contextmanager
def harness_frozen() -> Iterator[None]:
    """The harness's own objects (every bar of the run, built up front: ~140,000 for the
    live feed, and the warm states) moved out of the cyclic GC's walks for the duration.

    A Lambda holds one batch of bars; without this, each full collection during a timed
    run walked all of the run's bars (~70 ms, a fifth of a timed run on this machine).
    Whatever the timed code allocates is collected as usual.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def live_feed(symbols: int, batches: int, rules_for=_price_rules) -> dict[str, Any]:
    """Warm ``symbols`` states, then time ``batches`` batches of one bar per symbol."""
    series = _series(symbols, WARM_BARS + batches)
    ports = memory_ports(rules_for(series))
    seq = 0
    warm = []
    for bars in series.values():
        for bar in bars[:WARM_BARS]:
            seq += 1
            warm.append(StreamBar(bar, str(seq)))
    process_batch(warm, ports)
    timed = []
    for k in range(batches):
        batch = []
        for bars in series.values():
            seq += 1
            batch.append(StreamBar(bars[WARM_BARS + k], str(seq)))
        timed.append(batch)
    half = len(timed) // 2
    with harness_frozen():
        started = time.perf_counter()  # timed without tracemalloc (it slows Python ~5x)
        for batch in timed[:half]:
            outcome = process_batch(batch, ports)
            assert outcome.total("accepted") == symbols and not outcome.failed
        seconds = time.perf_counter() - started
    tracemalloc.start()
    for batch in timed[half:]:
        process_batch(batch, ports)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    sizes = [_item_bytes(item) for item in ports.states.items.values()]
    return {"bars_per_s": symbols * half / seconds, "peak_mib": peak / 2**20,
            "state_item_bytes_p95": float(np.percentile(sizes, 95)),
            "state_item_bytes_max": max(sizes)}


def _item_bytes(item: dict[str, Any]) -> int:
    """DynamoDB item size: attribute names + values (numbers ~ digits/2 + 1 bytes)."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        if isinstance(value, bytes):
            size += len(value)
        elif isinstance(value, str):
            size += len(value.encode())
        elif isinstance(value, int | float):
            size += len(repr(value)) // 2 + 2
        elif isinstance(value, dict):
            size += sum(len(k) + 8 for k in value) + 3
        elif isinstance(value, list):
            size += sum(len(str(v).encode()) + 1 for v in value) + 3
    return size


def burst(bars: int = 1000) -> float:
    """One symbol, ``bars`` bars in one batch (cold state)."""
    series = _series(1, bars)
    ports = memory_ports()
    batch = [StreamBar(bar, str(i + 1)) for i, bar in enumerate(series["S000"])]
    with harness_frozen():
        started = time.perf_counter()
        process_batch(batch, ports)
        return bars / (time.perf_counter() - started)


def previous_design(symbols: int, batches: int = 3) -> float:
    """The 600-bar design's indicator cost: ``ta`` + features over window + new bar, per
    symbol and batch (one bar per symbol per batch)."""
    sources = {name: load_bars(name) for name in SOURCES}
    frames = [sources[SOURCES[i % len(SOURCES)]].iloc[:OLD_WINDOW + batches][list(OHLCV)]
              for i in range(symbols)]
    with harness_frozen():
        started = time.perf_counter()
        for k in range(batches):
            for frame in frames:
                window = frame.iloc[k + 1: k + 1 + OLD_WINDOW]
                enrich(pd.concat([window.iloc[:-1], window.iloc[-1:]]))
        return symbols * batches / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3,
                        help="live feed / previous design pairs (medians reported)")
    args = parser.parse_args()
    burst(50)  # imports and caches
    # Live feed and previous design alternate, so each pair sees the same machine load; the
    # medians are reported, and the speed-up is the median of the pairs' ratios.
    lives, previous, ratios = [], [], []
    for _ in range(args.repeats):
        lives.append(live_feed(args.symbols, args.batches))
        previous.append(previous_design(100))
        ratios.append(lives[-1]["bars_per_s"] / previous[-1])
    live = sorted(lives, key=lambda run: run["bars_per_s"])[len(lives) // 2]
    swings = live_feed(100, 5, rules_for=lambda series: {
        s: [Rule("sr", s, "support_resistance", {"bars": 240})] for s in series})
    result = {
        "live_feed_bars_per_s": round(live["bars_per_s"]),
        "burst_bars_per_s": round(burst(1000)),
        "previous_design_live_feed_bars_per_s": round(statistics.median(previous), 1),
        "state_item_bytes_p95": round(live["state_item_bytes_p95"]),
        "state_item_bytes_p95_support_resistance_240": round(swings["state_item_bytes_p95"]),
        "peak_mib": round(live["peak_mib"], 1),
        "symbols": args.symbols,
        "batches": args.batches,
        "repeats": args.repeats,
        "live_feed_bars_per_s_runs": [round(run["bars_per_s"]) for run in lives],
        "previous_design_bars_per_s_runs": [round(value, 1) for value in previous],
        "machine": f"{platform.machine()}, Python {platform.python_version()}, one core",
        "date": time.strftime("%Y-%m-%d"),
    }
    result["speedup_vs_previous_design"] = round(statistics.median(ratios))
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:50s} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
