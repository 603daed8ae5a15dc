"""Benchmark of the processor's domain path: bars/s and peak memory per batch shape.

Runs ``stocksage.processing.process_batch`` on real bars with in-memory ports (no AWS), so it
measures what the Lambda spends in pandas/ta per batch: decoding is excluded, indicator and
feature computation over the 600-bar window is included. Also measures a warm window state
(each symbol already has 600 bars), which is the steady state in production.

Usage: ``python scripts/bench_processor.py [--out FILE]``
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stocksage.bars import frame_to_bars
from stocksage.datasets import load_bars
from stocksage.processing import Ports, Prediction, StreamBar, process_batch


@dataclass
class Store:
    states: dict[str, Any] = field(default_factory=dict)

    def get_states(self, symbols):
        return {s: self.states[s] for s in symbols if s in self.states}

    def put_states(self, states):
        for state, last in states:
            self.states[state.symbol] = (state, last)

    def put_results(self, items):
        pass

    def predict(self, names, rows):
        return Prediction([0.5] * len(rows), "bench")

    def rules_for(self, symbols):
        return {s: [] for s in symbols}, []

    def publish(self, alert):
        return True


def bench(symbols: int, bars_per_symbol: int, warm: bool) -> dict[str, float]:
    """Process ``symbols x bars_per_symbol`` bars as one batch; return timings."""
    names = ["AAPL", "IBM", "MSFT", "GOOG", "NVDA", "AMZN", "NFLX"]
    store = Store()
    ports = Ports(states=store, results=store, predictor=store, rules=store, alerts=store)
    batch, seq = [], 0
    for i in range(symbols):
        frame = load_bars(names[i % len(names)]).tail(600 + bars_per_symbol)
        bars = frame_to_bars(f"S{i:03d}", frame)
        if warm:
            process_batch([StreamBar(b, str(j)) for j, b in enumerate(bars[:600])], ports)
        for bar in bars[600:]:
            seq += 1
            batch.append(StreamBar(bar, str(10_000_000 + seq)))
    tracemalloc.start()
    started = time.perf_counter()
    process_batch(batch, ports)
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"bars": len(batch), "seconds": seconds, "bars_per_s": len(batch) / seconds,
            "ms_per_symbol": 1000 * seconds / symbols, "peak_mib": peak / 2**20}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="write a Markdown table here")
    args = parser.parse_args()
    rows = []
    for symbols, per_symbol, warm in ((1, 100, True), (10, 10, True), (100, 1, True),
                                      (100, 10, True), (6, 100, False)):
        bench(1, 5, True)  # warm-up of imports and caches
        result = bench(symbols, per_symbol, warm)
        rows.append((symbols, per_symbol, warm, result))
        print(f"{symbols:4d} symbols x {per_symbol:3d} bars ({'warm' if warm else 'cold'} state): "
              f"{result['bars_per_s']:8.0f} bars/s, {result['ms_per_symbol']:6.1f} ms/symbol, "
              f"peak {result['peak_mib']:.1f} MiB")
    if args.out:
        lines = [
            "| symbols in batch | bars per symbol | window state | bars/s | ms per symbol | peak MiB (tracemalloc) |",
            "|---:|---:|---|---:|---:|---:|",
        ]
        for symbols, per_symbol, warm, r in rows:
            lines.append(f"| {symbols} | {per_symbol} | {'600 bars' if warm else 'empty'} | "
                         f"{r['bars_per_s']:.0f} | {r['ms_per_symbol']:.1f} | {r['peak_mib']:.1f} |")
        header = (f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, "
                  f"Python {platform.python_version()}, one core, by `scripts/bench_processor.py`.")
        args.out.write_text("\n".join([header, "", *lines, ""]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
