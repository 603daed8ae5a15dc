"""KinesisSink's flush timer: a buffered record leaves without a further call; an error of the
timed flush is raised by the caller's next call, never lost.

The client is a fake with ``put_records`` only (what the sink's protocol asks for): it records
each request and sets a ``threading.Event`` so the test waits for the timer's send instead of
sleeping and hoping. No assertion is about durations.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError

from stocksage.collector.run import collect
from stocksage.collector.sink.kinesis_sink import FlushDeadlineError, KinesisPutError, KinesisSink

WAIT_S = 10.0  # generous: the timer fires after 0.2 s


class FakeKinesis:
    """``put_records`` that acknowledges every entry (or raises ``error`` while it is set) and
    sets ``called`` on every request."""

    def __init__(self) -> None:
        self.requests: list[list[dict[str, Any]]] = []
        self.threads: list[str] = []
        self.called = threading.Event()
        self.error: Exception | None = None

    def put_records(self, **kwargs: Any) -> dict[str, Any]:
        self.requests.append(kwargs["Records"])
        self.threads.append(threading.current_thread().name)
        self.called.set()
        if self.error is not None:
            raise self.error
        return {"FailedRecordCount": 0,
                "Records": [{"SequenceNumber": "1", "ShardId": "s"} for _ in kwargs["Records"]]}


def test_one_record_is_sent_by_the_timer_without_any_further_call():
    client = FakeKinesis()
    sink = KinesisSink(client, "s", linger_seconds=None)  # default max_delay_s=0.2
    try:
        sink.put_record("ES", b'{"n":1}')
        assert client.called.wait(WAIT_S), "the timer never sent the buffered record"
        assert client.requests == [[{"Data": b'{"n":1}', "PartitionKey": "ES"}]]
        assert client.threads[0].startswith("kinesis-sink-flusher")
    finally:
        sink.close()
    assert sink.buffered == 0 and sink.stats.sent == 1
    assert len(client.requests) == 1  # close found nothing left to send


def test_timer_restarts_for_the_next_record_and_keeps_order():
    client = FakeKinesis()
    with KinesisSink(client, "s", max_records_per_key=10, linger_seconds=None) as sink:
        sink.put_record("ES", b"1")
        assert client.called.wait(WAIT_S)
        client.called.clear()
        sink.put_record("ES", b"2")  # the buffer was empty again: a new countdown
        assert client.called.wait(WAIT_S)
    sent = [r["Data"] for request in client.requests for r in request]
    assert sent == [b"1", b"2"]


def test_without_the_timer_a_record_waits_for_flush():
    client = FakeKinesis()
    sink = KinesisSink(client, "s", linger_seconds=None, max_delay_s=None)
    sink.put_record("ES", b"1")
    assert sink.buffered == 1 and client.requests == []
    sink.flush()
    assert sink.buffered == 0 and len(client.requests) == 1


def test_an_error_of_the_timed_flush_is_raised_by_the_next_put_then_flush_recovers():
    client = FakeKinesis()
    client.error = ClientError({"Error": {"Code": "ResourceNotFoundException",
                                          "Message": "stream s not found"}}, "PutRecords")
    sink = KinesisSink(client, "s", linger_seconds=None)
    try:
        sink.put_record("ES", b"1")
        assert client.called.wait(WAIT_S)
        # the flusher holds the sink's lock while it sends, so this put sees the stored error
        with pytest.raises(ClientError, match="ResourceNotFound"):
            sink.put_record("ES", b"2")
        assert sink.buffered == 1  # the failed record stays; the rejected put added nothing
        client.error = None
        sink.flush()  # raised once: the caller's flush now sends
        assert sink.stats.sent == 1 and sink.buffered == 0
    finally:
        sink.close()


def test_an_error_of_the_timed_flush_is_raised_by_flush_and_by_close():
    for final in ("flush", "close"):
        client = FakeKinesis()
        client.error = ClientError({"Error": {"Code": "AccessDeniedException",
                                              "Message": "denied"}}, "PutRecords")
        sink = KinesisSink(client, "s", linger_seconds=None)
        sink.put_record("ES", b"1")
        assert client.called.wait(WAIT_S)
        with pytest.raises(ClientError, match="AccessDenied"):
            getattr(sink, final)()
        sink._stop_timer()


def test_exhausted_retries_in_the_timer_reach_collect_which_spills(tmp_path):
    """A KinesisPutError met by the timer surfaces in collect (via the next put or the flush on
    exit) and the records still buffered are spilled, not lost."""
    client = FakeKinesis()
    client.error = ClientError({"Error": {"Code": "ProvisionedThroughputExceededException",
                                          "Message": "slow down"}}, "PutRecords")
    sink = KinesisSink(client, "s", linger_seconds=None, max_attempts=2, sleep=lambda s: None)

    def source():
        yield _Rec(b"1")
        assert client.called.wait(WAIT_S)  # the timer is sending (and failing) now
        yield _Rec(b"2")

    spill = tmp_path / "spill.jsonl"
    with pytest.raises(KinesisPutError, match="kept failing"):
        collect(source(), sink, threading.Event(), spill_path=spill)
    assert sink.buffered == 0 and len(spill.read_text().splitlines()) == 1  # put 2 refused


def test_deadline_passed_in_the_timer_is_raised_and_spilled(tmp_path):
    client = FakeKinesis()
    sink = KinesisSink(client, "s", linger_seconds=None)
    sink.deadline = 0.0  # long past: no request may start
    stop = threading.Event()
    spill = tmp_path / "spill.jsonl"

    def source():
        yield _Rec(b"1")
        stop.set()

    result = collect(source(), sink, stop, spill_path=spill)
    assert result.spilled == 1 and client.requests == []
    assert len(spill.read_text().splitlines()) == 1
    with pytest.raises(FlushDeadlineError):
        bare = KinesisSink(FakeKinesis(), "s", linger_seconds=None)
        bare.deadline = 0.0
        bare.put_record("ES", b"1")
        bare.close()


def test_put_from_many_threads_with_the_timer_loses_nothing():
    client = FakeKinesis()
    with KinesisSink(client, "s", max_records_per_key=500, linger_seconds=None,
                     max_delay_s=0.0) as sink:

        def writer(key: str) -> None:
            for n in range(200):
                sink.put_record(key, str(n).encode())

        threads = [threading.Thread(target=writer, args=(f"K{i}",)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    per_key: dict[str, list[int]] = {}
    for request in client.requests:
        for record in request:
            per_key.setdefault(record["PartitionKey"], []).append(int(record["Data"]))
    assert per_key == {f"K{i}": list(range(200)) for i in range(4)}
    assert sink.stats.sent == 800


class _Rec:
    symbol = "ES"

    def __init__(self, data: bytes) -> None:
        self.data = data

    def to_json(self) -> bytes:
        return self.data
