"""Trade records: encode -> parse round trip, every trade-only rejection kind from a
real-looking record, and one bad tick rejected alone while its record's other trades stay."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from stocksage.bars import MalformedBarError
from stocksage.bars.trade_parsing import parse_trade_record
from stocksage.bars.trades import (
    MAX_TRADES_PER_RECORD,
    TRADE_REJECTION_KINDS,
    Trade,
    encode_trades,
    encode_watermark,
    time_ns,
)

T0 = time_ns(datetime(2013, 9, 3, 13, 30, 0, 83000, tzinfo=UTC))  # an ES fill, 08:30:00.083 CT


def es(offset_ms: int, price: float = 1640.25, size: float = 3, **kw) -> Trade:
    return Trade("ES", T0 + offset_ms * 1_000_000, price, size, **kw)


def record(**columns) -> bytes:
    body = {"type": "trades", "symbol": "ES", "t": [T0], "p": [1640.25], "s": [3]}
    body.update(columns)
    return json.dumps(body).encode()


def test_time_ns_is_exact_and_trade_time_round_trips():
    moment = datetime(2024, 3, 10, 7, 0, 0, 123456, tzinfo=UTC)  # the DST change day (US)
    assert time_ns(moment) == 1710054000123456000
    assert Trade("AAPL", time_ns(moment), 170.1, 100).time == moment


def test_encode_parse_round_trip_keeps_identical_fills():
    trades = [es(0), es(0), es(0), es(1, 1640.5, 1, trade_id="x9", conditions=("@", "I"))]
    parsed = parse_trade_record(encode_trades("ES", trades, "mlfinpy:tick_data.csv"),
                                partition_key="ES")
    assert parsed.symbol == "ES" and parsed.source == "mlfinpy:tick_data.csv"
    assert parsed.rejected == () and len(parsed.trades) == 4  # identical fills all kept
    assert parsed.trades.times_ns.tolist() == [t.time_ns for t in trades]
    assert np.array_equal(parsed.trades.prices, [1640.25, 1640.25, 1640.25, 1640.5])
    assert parsed.trades.sizes.sum() == 10
    assert parsed.trades.trade_ids == (None, None, None, "x9")
    assert parsed.conditions == ((), (), (), ("@", "I"))


def test_watermark_record():
    parsed = parse_trade_record(encode_watermark("ES", T0), partition_key="ES")
    assert parsed.watermark_ns == T0 and len(parsed.trades) == 0


@pytest.mark.parametrize(("kind", "data"), [
    ("record_type_unknown", json.dumps({"type": "quote", "symbol": "ES"}).encode()),
    ("columns_invalid", record(p=[1640.25, 1640.5])),
    ("columns_invalid", json.dumps({"type": "trades", "symbol": "ES", "t": [], "p": [],
                                    "s": []}).encode()),
    ("unknown_field", record(q=[1])),
    ("partition_key_mismatch", record()),
    ("symbol_invalid", record(symbol="ES; DROP")),
    ("time_before_epoch", json.dumps({"type": "watermark", "symbol": "ES", "t": -1}).encode()),
])
def test_unreadable_records_raise_with_their_kind(kind, data):
    with pytest.raises(MalformedBarError) as caught:
        parse_trade_record(data, partition_key="NQ" if kind == "partition_key_mismatch" else None)
    assert caught.value.kind == kind


BAD_TRADES = {
    "time_not_integer": {"t": ["2013-09-03T13:30:00Z"]},
    "number_too_small": {"s": [5e-324]},
    "trade_id_invalid": {"i": [""]},
    "conditions_invalid": {"c": [["@", "\n"]]},
    "price_zero": {"p": [0]},
    "value_negative": {"s": [-1]},
    "not_a_number": {"p": ["1640.25"]},
    "number_is_boolean": {"s": [True]},
    "price_implausible": {"p": [2e9]},
    "time_out_of_range": {"t": [8_000_000_000_000_000_000]},
}


@pytest.mark.parametrize("kind", sorted(BAD_TRADES))
def test_one_bad_trade_is_rejected_alone(kind):
    body = {"type": "trades", "symbol": "ES", "t": [T0, T0 + 1, T0 + 2],
            "p": [1640.25, 1640.5, 1640.75], "s": [3, 1, 2]}
    for column, values in BAD_TRADES[kind].items():
        body.setdefault("i", [None, None, None])
        body.setdefault("c", [None, None, None])
        body[column][1] = values[0]
    parsed = parse_trade_record(json.dumps(body).encode())
    assert [r.kind for r in parsed.rejected] == [kind]
    assert parsed.rejected[0].index == 1 and parsed.rejected[0].raw["t"] == body["t"][1]
    assert parsed.trades.times_ns.tolist() == [T0, T0 + 2]


def test_every_trade_only_kind_has_a_case():
    covered = set(BAD_TRADES) | {"record_type_unknown", "columns_invalid"}
    assert "number_too_small" in BAD_TRADES  # a bar kind that trades share
    assert set(TRADE_REJECTION_KINDS) <= covered


def test_trade_in_the_future_of_its_arrival_is_rejected():
    arrived = datetime(2013, 9, 3, 13, 30, tzinfo=UTC)
    data = record(t=[T0, T0 + int(timedelta(minutes=6).total_seconds() * 1e9)],
                  p=[1640.25, 1640.5], s=[3, 1])
    parsed = parse_trade_record(data, arrived_at=arrived)
    assert [r.kind for r in parsed.rejected] == ["time_in_future"]
    assert len(parsed.trades) == 1


def test_encoder_refuses_what_the_parser_would():
    with pytest.raises(ValueError, match=r"1 \.\. 2000"):
        encode_trades("ES", [es(0)] * (MAX_TRADES_PER_RECORD + 1))
    with pytest.raises(ValueError, match="every trade"):
        encode_trades("NQ", [es(0)])
    with pytest.raises(MalformedBarError) as caught:
        Trade("ES", T0, 1640.25, 1e-300)
    assert caught.value.kind == "number_too_small"


def test_the_vectorised_check_of_a_record_agrees_with_the_per_trade_rules():
    """parse_trade_record checks a record vectorised when all of it is valid; any value the
    per-trade rules refuse must still be refused and named, and nothing valid dropped."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from stocksage.bars.trades import trade_problem

    times = st.one_of(st.integers(-10, 10**20), st.booleans(), st.just(1.5e18),
                      st.sampled_from([0, 1_378_000_000_000_000_000, 7_258_118_400_000_000_000]))
    numbers = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-5, 10**40),
                        st.sampled_from([0, 0.0, 1e-131, 1e-130, 1e9, 1e9 + 1, 5e-324, 2.5]),
                        st.booleans(), st.text(max_size=2))
    ids = st.one_of(st.none(), st.text(max_size=70), st.integers())
    trade = st.tuples(times, numbers, numbers, ids)

    @settings(max_examples=300, deadline=None)
    @given(st.lists(trade, min_size=1, max_size=6))
    def check(rows):
        record = {"type": "trades", "symbol": "ES", "t": [r[0] for r in rows],
                  "p": [r[1] for r in rows], "s": [r[2] for r in rows],
                  "i": [r[3] for r in rows]}
        parsed = parse_trade_record(json.dumps(record))
        valid = [k for k, r in enumerate(rows) if trade_problem(*r, None) is None]
        assert [r.index for r in parsed.rejected] == [k for k in range(len(rows))
                                                      if k not in valid]
        assert parsed.trades.times_ns.tolist() == [rows[k][0] for k in valid]
        assert parsed.trades.prices.tolist() == [float(rows[k][1]) for k in valid]

    check()
