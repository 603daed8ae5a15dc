"""The latency measurement's record matching and percentiles (pure logic, no AWS)."""

from __future__ import annotations

import numpy as np
import pytest

from stocksage.collector.trade_packing import PackedRecord
from stocksage.local.latency import (
    AckLog,
    alert_delays,
    bar_close_delays,
    iso_epoch_s,
    percentiles,
)

MINUTE = 60 * 10**9
GRACE = 2 * 10**9


def record(symbol: str, kind: str, time_ns: int) -> PackedRecord:
    trades = 0 if kind == "watermark" else 3
    return PackedRecord(symbol, b"{}", kind, trades, float(trades), time_ns)  # type: ignore[arg-type]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_nth_acknowledgement_of_a_key_is_its_nth_record_put():
    clock = Clock()
    log = AckLog(clock=clock)
    puts = [record("ES", "trades", 10), record("NQ", "trades", 5), record("ES", "trades", 20),
            record("ES", "watermark", 30)]
    assert list(log.track(puts)) == puts
    clock.now = 1001.0
    log.on_sent({"ES": 1, "NQ": 1})
    clock.now = 1002.5
    log.on_sent({"ES": 2, "XX": 4})  # XX was never put through the log
    assert (log.records("ES"), log.acknowledged("ES"), log.acknowledged("NQ")) == (3, 3, 1)
    assert log.unmatched_acks == 4
    assert log.trade_ack_s("ES", 10) == 1001.0
    assert log.trade_ack_s("ES", 11) == 1002.5  # in the pack whose last trade is at 20
    assert log.trade_ack_s("ES", 21) is None  # after the last pack: no record holds it
    assert log.watermark_ack_s("ES", 25) == 1002.5  # the heartbeat at 30 moved it there
    assert log.watermark_ack_s("ES", 31) is None


def test_an_unacknowledged_record_has_no_time():
    log = AckLog(clock=Clock())
    log.add(record("ES", "trades", 10))
    log.add(record("ES", "trades", 20))
    log.on_sent({"ES": 1})
    assert log.trade_ack_s("ES", 10) == 1000.0
    assert log.trade_ack_s("ES", 15) is None


def test_alert_delay_is_sqs_sent_time_minus_the_ack_of_the_crossing_trades_record():
    clock = Clock()
    log = AckLog(clock=clock)
    log.add(record("ES", "trades", 5_000))
    clock.now = 1700000000.25
    log.on_sent({"ES": 1})
    alerts = [
        {"Payload": {"symbol": "ES", "details": {"phase": "intrabar", "trade_time_ns": 4_000}},
         "SentTimestamp": "1700000000650"},
        {"Payload": {"symbol": "ES", "details": {"phase": "close"}},
         "SentTimestamp": "1700000009000"},  # at close: not a trade's delay
        {"Payload": {"symbol": "ES", "details": {"phase": "intrabar", "trade_time_ns": 9_000}},
         "SentTimestamp": "1700000001000"},  # no record holds that trade
    ]
    delays, unmatched = alert_delays(alerts, log)
    assert delays == pytest.approx([0.4]) and unmatched == 1


def test_bar_close_delay_runs_from_the_record_that_passed_end_plus_grace():
    clock = Clock()
    log = AckLog(clock=clock)
    start = 1_700_000_040 * 10**9
    for at, time_ns in ((10.0, start + 30 * 10**9), (11.0, start + MINUTE + GRACE - 1),
                        (12.0, start + MINUTE + GRACE)):
        log.add(record("ES", "trades" if at < 12 else "watermark", time_ns))
        clock.now = at
        log.on_sent({"ES": 1})
    processed = {start: "1970-01-01T00:00:12.300Z", start + MINUTE: "1970-01-01T00:00:13.000Z"}
    delays, unmatched = bar_close_delays("ES", processed, log, MINUTE, GRACE)
    assert [d.bar_start_ns for d in delays] == [start]
    assert delays[0].closed_by_ack_s == 12.0 and delays[0].seconds == pytest.approx(0.3)
    assert unmatched == 1  # the next bar was never closed by a record of the log


def test_percentiles_interpolate_between_order_statistics():
    assert percentiles([]) == {"n": 0}
    assert percentiles([0.5]) == {"n": 1, "p50": 0.5, "p95": 0.5, "p99": 0.5, "max": 0.5}
    values = [4.0, 1.0, 3.0, 2.0]
    stats = percentiles(values)
    assert stats["n"] == 4 and stats["p50"] == 2.5 and stats["max"] == 4.0
    many = np.random.default_rng(7).exponential(0.3, 10_000)
    stats = percentiles(list(many), digits=6)
    for name, q in (("p50", 50), ("p95", 95), ("p99", 99)):
        assert stats[name] == pytest.approx(np.percentile(many, q), abs=1e-6)


def test_iso_epoch_s_reads_z_and_offsets():
    assert iso_epoch_s("2026-12-03T08:40:01.123Z") == pytest.approx(1796287201.123)
    assert iso_epoch_s("2026-12-03T09:40:01.123+01:00") == iso_epoch_s("2026-12-03T08:40:01.123Z")


def test_the_demo_prints_the_percentiles_of_both_paths():
    from rich.console import Console

    from stocksage.local.latency import BarDelay
    from stocksage.local.live_demo import latency_table
    from stocksage.local.live_replay import LiveResult

    result = LiveResult("ES", trade_to_alert_s=[0.2, 0.4, 0.6],
                        bar_close_s=[BarDelay(0, 10.0, 10.5)])
    console = Console(width=120, record=True)
    console.print(latency_table(result))
    text = console.export_text()
    rows = {label: line.replace("│", " ").split()[-5:] for line in text.splitlines()
            for label in ("intrabar alert", "results item") if label in line}
    assert rows["intrabar alert"] == ["3", "0.400", "0.580", "0.596", "0.600"]
    assert rows["results item"] == ["1", "0.500", "0.500", "0.500", "0.500"]
