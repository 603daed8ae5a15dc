"""Real trades through the running stack, as ``make demo`` replays them (collector's code path,
local runtime's event source mapping, processor Lambda, DynamoDB, SNS -> inbox queue).

Read back with ``stocksage bars`` (the command users export with), the 1-minute bars equal a
pandas resample of the same trades (OHLCV exact) and their indicators equal ``ta`` on those
bars; every intrabar alert is a real crossing of its level by the trade it names and came
with a measured delay. No timing assertion: the delays are measured in
``scripts/bench_latency.py --stack`` (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from stocksage.adapters.results_reader import read_alerts
from stocksage.collector.trade_replay import load_trades
from stocksage.config import STACK
from stocksage.indicators.features import enrich
from stocksage.local.live_replay import select_window

pytestmark = pytest.mark.integration


def stocksage_bars(symbol: str) -> pd.DataFrame:
    """``stocksage bars SYMBOL --interval 1m --format json`` in a subprocess (the user's way)."""
    proc = subprocess.run([sys.executable, "-m", "stocksage.cli", "bars", symbol, "--interval",
                           "1m", "--format", "json"], capture_output=True, text=True,
                          check=True, timeout=120)
    frame = pd.read_json(io.StringIO(proc.stdout), orient="records", convert_dates=False)
    frame.index = pd.to_datetime(frame.pop("bar_time"), utc=True)
    return frame


def resample_1m(times_ns: np.ndarray, prices: np.ndarray, sizes: np.ndarray) -> pd.DataFrame:
    """1-minute OHLCV of the trades, minutes without a trade dropped (pandas' own resample)."""
    trades = pd.DataFrame({"price": prices, "size": sizes},
                          index=pd.to_datetime(times_ns, utc=True))
    bars = trades["price"].resample("1min").ohlc()
    bars["volume"] = trades["size"].resample("1min").sum()
    return bars[trades["price"].resample("1min").count() > 0]


def test_real_trades_make_bars_equal_to_a_resample_and_alerts_on_the_crossing_trade(stack):
    from stocksage.local.live_replay import run_live

    window = select_window(load_trades(None), minutes=6, warmup_minutes=40)
    result = run_live(stack.outputs, window, speed=60.0, timeout_s=300.0)
    assert result.complete, "not every bar and alert arrived"
    assert result.bars_written == result.bars_expected == len(window.bar_starts_ns()) == 6
    assert result.unmatched_bars == 0 and len(result.bar_close_s) == 6

    warm = window.warmup
    assert warm is not None
    times = np.concatenate([warm.times_ns, window.window.times_ns])
    prices = np.concatenate([warm.prices, window.window.prices])
    sizes = np.concatenate([warm.sizes, window.window.sizes])
    want = resample_1m(times, prices, sizes)
    have = stocksage_bars(result.symbol)
    assert list(have.index) == list(want.index)
    for column in ("open", "high", "low", "close", "volume"):
        assert have[column].to_numpy().tolist() == want[column].to_numpy().tolist(), column
    full = enrich(want)
    for name in STACK.indicator_columns:
        expected, stored = full[name].to_numpy(), have[name].to_numpy(dtype=float)
        assert (np.isnan(expected) == np.isnan(stored)).all(), name
        ok = np.isnan(expected) | (np.abs(stored - expected) <= 1e-9 * np.abs(expected) + 1e-9)
        assert ok.all(), name

    levels = {r.rule_id: (r.type, r.params["level"]) for r in result.rules}
    alerts = [a for a in read_alerts(stack.client("sqs"), stack.outputs["alerts_queue_url"],
                                     wait_seconds=0)
              if (a.get("Payload") or {}).get("symbol") == result.symbol]
    ids = [a["Payload"]["alert_id"] for a in alerts]
    assert len(ids) == len(set(ids)) == result.alerts_intrabar + result.alerts_close > 0
    assert result.unmatched_alerts == 0 and len(result.trade_to_alert_s) == result.alerts_intrabar
    for alert in alerts:
        payload = alert["Payload"]
        details = payload["details"]
        kind, level = levels[payload["rule_id"]]
        if details["phase"] != "intrabar":
            continue
        at = int(np.searchsorted(times, int(details["trade_time_ns"]), side="right")) - 1
        assert times[at] == int(details["trade_time_ns"]), json.dumps(payload)
        price = float(details["trade_price"])
        assert price in set(prices[times == times[at]].tolist()), json.dumps(payload)
        assert (price > level) if kind == "price_above" else (price < level), json.dumps(payload)
