"""``make demo``'s progress and batch count from the local runtime's stats file.

The stats files are written the way ``LocalRuntime.write_stats`` writes them (``MappingStats``
of each mapping; ``tests/unit/local/test_esm.py`` reads a real one back with ``runtime_progress``).
"""

from __future__ import annotations

import json
from dataclasses import asdict

from stocksage.local.demo import (
    ReplayCounter,
    RuntimeProgress,
    batches_text,
    runtime_progress,
    wait_processed,
)
from stocksage.local.esm import MappingStats


def write_stats(path, started_at: float, *mappings: MappingStats) -> None:
    path.write_text(json.dumps({"started_at": started_at,
                                "mappings": {m.uuid: asdict(m) for m in mappings}}))


def stats(uuid: str = "m-1", **counters) -> MappingStats:
    return MappingStats(uuid, f"arn:aws:lambda:us-east-1:123456789012:function:{uuid}",
                        "arn:aws:kinesis:us-east-1:123456789012:stream/s", **counters)


def test_runtime_progress_sums_the_mappings(tmp_path):
    path = tmp_path / "runtime-stats.json"
    assert runtime_progress(path) is None  # the runtime wrote nothing yet
    write_stats(path, 100.0,
                stats("a", invocations=12, records_succeeded=1190, records_to_destination=3,
                      records_expired=2, records_discarded=1, caught_up=True),
                stats("b", invocations=5, records_succeeded=40, caught_up=False))
    assert runtime_progress(path) == RuntimeProgress(1236, 17, False, 100.0)
    path.write_text("{not json")
    assert runtime_progress(path) is None


def test_first_demo_counts_the_batches_of_a_runtime_without_stats_yet(tmp_path):
    """The bug: ``make up`` had just started the runtime, which writes its first stats after
    its discovery interval; without a snapshot before the replay the demo counted results in
    DynamoDB and reported 'processed in 0 Lambda batches' after 17 had run."""
    path = tmp_path / "runtime-stats.json"
    snapshots = iter([None, (300, 3, False), None, (1801, 17, True)])

    def progress():
        snapshot = next(snapshots)
        if snapshot is not None:
            handled, invocations, caught_up = snapshot
            write_stats(path, 100.0, stats(invocations=invocations, records_succeeded=handled,
                                           caught_up=caught_up))
        return runtime_progress(path)

    seen = []
    done, batches = wait_processed(ReplayCounter(runtime_progress(path)), 1801,
                                   count_results=lambda: 0, results=1800, timeout=30,
                                   on_progress=lambda *a: seen.append(a), progress=progress,
                                   poll=0)
    assert (done, batches) == (True, 17)
    assert seen == [(0, None), (300, 3), (300, 3), (1801, 17)]  # a stale file is re-read
    assert batches_text(batches) == "processed in 17 Lambda batches"


def test_counts_are_relative_to_the_snapshot_before_the_replay():
    counter = ReplayCounter(RuntimeProgress(500, 9, True, 100.0))
    assert counter.count(RuntimeProgress(500, 9, True, 100.0)) == \
        RuntimeProgress(0, 0, True, 100.0)
    assert counter.count(RuntimeProgress(1300, 16, False, 100.0)) == \
        RuntimeProgress(800, 7, False, 100.0)
    assert counter.count(None) is None


def test_a_runtime_restarted_by_make_up_or_during_the_replay_counts_from_zero():
    old = RuntimeProgress(500, 9, True, 100.0)  # final stats of the runtime make up stopped
    counter = ReplayCounter(old)
    assert counter.count(old) == RuntimeProgress(0, 0, True, 100.0)
    assert counter.count(RuntimeProgress(40, 2, False, 200.0)) == \
        RuntimeProgress(40, 2, False, 200.0)
    # that runtime crashes and another resumes from the checkpoints: both runs' work counts
    assert counter.count(RuntimeProgress(30, 1, True, 300.0)) == \
        RuntimeProgress(70, 3, True, 300.0)
    assert counter.count(RuntimeProgress(60, 4, True, 300.0)) == \
        RuntimeProgress(100, 6, True, 300.0)


def test_without_runtime_stats_the_results_table_decides_and_batches_are_unknown():
    present = iter([100, 1799, 1800])
    done, batches = wait_processed(ReplayCounter(None), 1801, count_results=lambda: next(present),
                                   results=1800, timeout=30, progress=lambda: None, poll=0)
    assert (done, batches) == (True, None)
    assert batches_text(None) == "Lambda batches not known (no .local/runtime-stats.json)"
    assert batches_text(1) == "processed in 1 Lambda batch"


def test_not_done_before_the_runtime_caught_up_or_in_time():
    behind = RuntimeProgress(10, 2, False, 1.0)  # every record handled, shards not read to the end
    done, batches = wait_processed(ReplayCounter(None), 10, count_results=lambda: 0, results=9,
                                   timeout=0.05, progress=lambda: behind, poll=0.01)
    assert (done, batches) == (False, 2)
