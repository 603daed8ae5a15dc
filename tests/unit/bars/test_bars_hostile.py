"""Hostile stream records: every ``MalformedBarError.kind`` of ``parse_bar``, one real-looking
record each, with the Kinesis context (partition key, arrival time) the processor passes."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stocksage.bars import REJECTION_KINDS, MalformedBarError, parse_bar

DESIGN = Path(__file__).resolve().parents[3] / "docs" / "DESIGN.md"

#: A real AAPL 1-minute bar as the collector writes it (Alpaca IEX, 2024-01-03 14:30 UTC).
GOOD = {"symbol": "AAPL", "bar_time": "2024-01-03T14:30:00Z", "interval": "1m",
        "open": 184.22, "high": 184.5, "low": 184.1, "close": 184.3, "volume": 3810,
        "source": "alpaca:iex"}
ARRIVED = datetime(2024, 1, 3, 14, 31, 2, tzinfo=UTC)


def rec(**changes: object) -> bytes:
    data = dict(GOOD)
    for key, value in changes.items():
        if value is ...:
            del data[key]
        else:
            data[key] = value
    return json.dumps(data).encode()


def raw(text: str) -> bytes:
    return text.encode()


BASE = rec().decode()

CASES: list[tuple[str, object, dict[str, object]]] = [
    ("bad_input_type", 1704292200, {}),
    ("payload_too_large", rec(source="x" * 70_000), {}),
    ("empty_payload", b"", {}),
    ("invalid_utf8", b'{"symbol": "AAPL\xc3\x28"}', {}),
    ("invalid_utf8", '{"symbol": "\ud800"}', {}),
    ("invalid_json", raw(BASE[:-1]), {}),
    ("invalid_json", raw("{'symbol': 'AAPL'}"), {}),
    ("json_too_deep", raw('{"symbol": ' + "[" * 20 + "]" * 20 + "}"), {}),
    ("json_too_deep", b"[" * 30_000 + b"]" * 30_000, {}),
    ("non_finite_literal", raw(BASE.replace("184.22", "NaN")), {}),
    ("non_finite_literal", raw(BASE.replace("3810", "-Infinity")), {}),
    ("duplicate_field", raw(BASE.replace('"symbol": "AAPL"', '"symbol": "AAPL", "symbol": "MSFT"')),
     {}),
    ("not_an_object", raw(f"[{BASE}]"), {}),
    ("missing_field", rec(close=...), {}),
    ("unknown_field", rec(vw=184.28), {}),
    ("unknown_field", rec(currency="EUR", adjusted=True), {}),
    ("symbol_not_string", rec(symbol=["AAPL"]), {}),
    ("symbol_not_ascii", rec(symbol="ß"), {}),
    ("symbol_not_ascii", rec(symbol="ＡＡＰＬ"), {}),  # noqa: RUF001 - full-width letters on purpose
    ("symbol_invalid", rec(symbol="AAPL; DROP"), {}),
    ("symbol_invalid", rec(symbol=""), {}),
    ("partition_key_mismatch", rec(), {"partition_key": "MSFT"}),
    ("time_not_string", rec(bar_time=1704292200), {}),
    ("time_too_long", rec(bar_time="2024-01-03T14:30:00.000000000000000000000Z"), {}),
    ("time_unparseable", rec(bar_time="03/01/2024 14:30"), {}),
    ("time_unparseable", rec(bar_time="2024-02-30T14:30:00Z"), {}),
    ("time_unparseable", rec(bar_time="2024-W01-3T14:30:00Z"), {}),
    ("time_no_offset", rec(bar_time="2024-01-03T14:30:00"), {}),
    ("time_out_of_range", rec(bar_time="2999-01-03T14:30:00Z"), {}),
    ("time_out_of_range", rec(bar_time="9999-12-31T23:59:59-23:59"), {}),
    ("time_before_epoch", rec(bar_time="1969-12-31T23:59:00Z"), {}),
    ("time_not_aligned", rec(bar_time="2024-01-03T14:30:30Z"), {}),
    ("time_not_aligned", rec(bar_time="2024-01-03T14:30:00.5Z"), {}),
    ("time_not_aligned", rec(bar_time="2024-01-03T00:00:00-05:00", interval="1d"), {}),
    ("time_not_aligned", rec(bar_time="2024-01-03T14:35:00Z", interval="15m"), {}),
    ("time_in_future", rec(bar_time="2024-01-03T14:40:00Z"), {"arrived_at": ARRIVED}),
    ("time_in_future", rec(bar_time="2024-01-03T14:33:00Z"),
     {"arrived_at": ARRIVED.timestamp(), "max_future_skew": timedelta(seconds=60)}),
    ("number_is_boolean", rec(volume=True), {}),
    ("not_a_number", rec(close="184.3"), {}),
    ("not_a_number", rec(open=None), {}),
    ("number_not_finite", raw(BASE.replace("184.5", "1e999")), {}),
    ("number_not_finite", raw(BASE.replace("3810", "9" * 400)), {}),
    ("value_negative", rec(volume=-3810), {}),
    ("price_zero", rec(open=0, low=0), {}),
    ("number_too_small", rec(volume=5e-324), {}),
    ("number_too_small", rec(volume=1e-300), {}),
    ("price_implausible", rec(high=2e9), {}),
    ("volume_implausible", rec(volume=1e17), {}),
    ("ohlc_inconsistent", rec(high=184.2), {}),
    ("ohlc_inconsistent", rec(low=184.25), {}),
    ("interval_not_string", rec(interval=1), {}),
    ("interval_unknown", rec(interval="7x"), {}),
    ("interval_unknown", rec(interval="1Min"), {}),
    ("source_invalid", rec(source="x" * 300), {}),
    ("source_invalid", rec(source="alpaca\n{\"injected\": 1}"), {}),
]


@pytest.mark.parametrize(("kind", "data", "context"), CASES,
                         ids=[f"{i}-{c[0]}" for i, c in enumerate(CASES)])
def test_hostile_record_rejected_with_kind_and_reason(kind: str, data: object,
                                                      context: dict[str, object]) -> None:
    with pytest.raises(MalformedBarError) as caught:
        parse_bar(data, **context)  # type: ignore[arg-type]
    assert caught.value.kind == kind, caught.value.reason
    assert caught.value.kind in REJECTION_KINDS
    assert str(caught.value) == caught.value.reason
    assert 0 < len(caught.value.reason) < 120


def test_every_kind_has_a_case() -> None:
    assert {case[0] for case in CASES} == set(REJECTION_KINDS)
    assert len(REJECTION_KINDS) >= 25


def test_design_table_lists_every_kind() -> None:
    text = DESIGN.read_text()
    table = text.split("## Rejected input", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `([a-z0-9_]+)` \|", table, flags=re.MULTILINE))
    assert listed == set(REJECTION_KINDS)


def test_context_accepts_good_records() -> None:
    bar = parse_bar(rec(), partition_key="AAPL", arrived_at=ARRIVED)
    assert bar.symbol == "AAPL" and bar.interval == "1m"
    # a lower-case symbol is folded first, then compared with the key
    assert parse_bar(rec(symbol="aapl"), partition_key="AAPL").symbol == "AAPL"
    # within the skew, and epoch-seconds arrival times
    assert parse_bar(rec(bar_time="2024-01-03T14:35:00Z"), arrived_at=ARRIVED.timestamp())
    # historic bars (replays) arrive years later: fine
    assert parse_bar(rec(bar_time="1999-01-22T00:00:00Z", interval="1d"), arrived_at=ARRIVED)
    # zero volume is a real thing (no trades in a quiet minute)
    assert parse_bar(rec(volume=0)).volume == 0.0


def test_positional_signature_still_works() -> None:
    assert parse_bar(rec()) == parse_bar(rec().decode())
