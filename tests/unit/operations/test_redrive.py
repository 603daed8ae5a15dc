"""redrive validates re-read records exactly like the live path (future times included) and
quarantines a rejected one whole: its data, shard, sequence number and exact kind."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

from stocksage.adapters.memory import memory_ports
from stocksage.bars import frame_to_bars
from stocksage.datasets import load_bars
from stocksage.operations.redrive import redrive

ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/stocksage-local-bars"
SHARD = "shardId-000000000000"


class Queue:
    """The failure queue: one on-failure record (AWS's shape) until it is deleted."""

    def __init__(self, first: str, last: str) -> None:
        self.messages = {"r1": json.dumps({
            "requestContext": {"condition": "RetryAttemptsExhausted"},
            "KinesisBatchInfo": {"shardId": SHARD, "startSequenceNumber": first,
                                 "endSequenceNumber": last, "streamArn": ARN}})}

    def receive(self):
        yield [(body, receipt) for receipt, body in self.messages.items()]

    def delete(self, receipt):
        del self.messages[receipt]


class Stream:
    def __init__(self, records):
        self.records = records

    def read_range(self, stream_arn, shard_id, start, end):
        assert (stream_arn, shard_id) == (ARN, SHARD)
        return [r for r in self.records if int(start) <= int(r["SequenceNumber"]) <= int(end)]


class Quarantine:
    def __init__(self):
        self.sent = []

    def send(self, record, reason, kind="malformed"):
        self.sent.append((record, reason, kind))

    def send_trades(self, record, rejected):
        self.sent.append((record, rejected[0].reason, rejected[0].kind))


def test_a_bar_from_2150_is_quarantined_whole_and_the_good_bars_are_stored():
    bars = frame_to_bars("IBM", load_bars("IBM").iloc[:30])
    arrived = datetime(2024, 1, 3, tzinfo=UTC)
    future = json.dumps({**bars[5].to_dict(), "bar_time": "2150-01-01T00:00:00Z"}).encode()
    payloads = [b.to_json() for b in bars[:5]] + [future] + [b.to_json() for b in bars[6:]]
    records = [{"SequenceNumber": str(1000 + k), "PartitionKey": "IBM", "Data": data,
                "ApproximateArrivalTimestamp": arrived} for k, data in enumerate(payloads)]
    ports, quarantine = memory_ports(), Quarantine()
    queue = Queue("1000", str(1000 + len(records) - 1))
    report = redrive(queue, Stream(records), ports, quarantine)
    assert (report.records, report.bars, report.batches, report.kept) == (30, 29, 1, [])
    assert queue.messages == {}
    (record, reason, kind), = quarantine.sent
    assert kind == "time_in_future" and "2150-01-01" in reason
    assert record["eventID"] == f"{SHARD}:1005" and record["eventSourceARN"] == ARN
    assert base64.b64decode(record["kinesis"]["data"]) == future
    states, _ = ports.states.get_states(["IBM"])
    assert states["IBM"].bars_seen == 29
    assert states["IBM"].last_bar_time == bars[-1].bar_time


def test_a_range_of_trades_records_is_redriven_into_bars_and_each_record_applied_once():
    from stocksage.bars.aggregation import DEFAULT_GRACE_NS
    from stocksage.bars.trades import encode_watermark
    from stocksage.processing import decode_record, process_batch
    from tests.helpers.trades import es_trades, payloads

    trades = es_trades(2_000, start=90_000)
    data = payloads(trades, per_record=250)
    last = int(trades["time_ns"].iloc[-1])
    data.append(encode_watermark("ES", last - last % 60_000_000_000 + 60_000_000_000
                                 + DEFAULT_GRACE_NS))
    bad = json.loads(data[1])
    bad["s"][3] = "lots"
    data[1] = json.dumps(bad).encode()
    records = [{"SequenceNumber": str(2000 + k), "PartitionKey": "ES", "Data": payload,
                "ApproximateArrivalTimestamp": datetime(2024, 1, 3, tzinfo=UTC)}
               for k, payload in enumerate(data)]
    ports, quarantine = memory_ports(), Quarantine()
    # the live path applied the first three records before the batch failed
    live = [decode_record(r["Data"], partition_key="ES", sequence_number=r["SequenceNumber"],
                          shard_id=SHARD).item for r in records[:3]]
    process_batch([], ports, trades=live)
    quarantine_live = len(quarantine.sent)
    report = redrive(Queue("2000", str(2000 + len(records) - 1)), Stream(records), ports,
                     quarantine)
    assert report.kept == [] and report.batches == 1
    assert len(quarantine.sent) - quarantine_live == 1  # the bad tick, reported with reason
    volume = sum(item["volume"] for item in ports.results.items.values())
    assert volume == trades["size"].sum() - trades["size"].iloc[250 + 3]


def test_bars_of_a_batch_whose_state_write_failed_are_late_on_redrive_and_repair_restores_them():
    """Issue 21's case: a batch's results are written, its state write fails until the event
    source mapping gives up, later bars advance the symbol. Redrive must not take the written
    results for duplicates (they are off the state's chain): the bars are late, and repair
    puts them into the series, equal to a clean run."""
    import numpy as np

    from stocksage.config import STACK
    from stocksage.indicators.features import enrich
    from stocksage.operations.redrive import repair
    from stocksage.processing import StreamBar, process_batch

    frame = load_bars("IBM").iloc[:120]
    bars = frame_to_bars("IBM", frame)
    records = [{"SequenceNumber": str(1000 + k), "PartitionKey": "IBM", "Data": b.to_json(),
                "ApproximateArrivalTimestamp": datetime(2024, 1, 3, tzinfo=UTC)}
               for k, b in enumerate(bars)]
    stream = [StreamBar(b, r["SequenceNumber"]) for b, r in zip(bars, records, strict=True)]
    ports = memory_ports()
    process_batch(stream[:40], ports)
    ports.states.fail_write = lambda symbol: True
    for _ in range(3):  # the mapping's retries, then it gives up on the batch
        assert set(process_batch(stream[40:80], ports).failed) == {"IBM"}
    ports.states.fail_write = lambda symbol: False
    process_batch(stream[80:], ports)  # the shard moves on: the state has a gap
    report = redrive(Queue("1040", "1079"), Stream(records), ports, Quarantine())
    assert report.late_symbols == {"IBM"} and report.bars == 0

    items = ports.results.items_for("IBM")
    result, problems = repair("IBM", ports, items, lambda prefix: iter(bars))
    assert problems == {} and result is not None and result.inserted == 0
    expected = enrich(frame)
    got = {t: item for (s, t), item in ports.results.items.items() if s == "IBM"}
    for column in (*STACK.indicator_columns, *STACK.features):
        have = np.array([got[t.strftime("%Y-%m-%dT%H:%M:%SZ")].get(column, np.nan)
                         for t in frame.index], dtype=float)
        np.testing.assert_allclose(have, expected[column].to_numpy(), rtol=1e-9, atol=1e-9,
                                   equal_nan=True, err_msg=column)
    states, _ = ports.states.get_states(["IBM"])
    assert states["IBM"].bars_seen == 120
