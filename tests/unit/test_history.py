"""S3 history layout: keys, gzip NDJSON bodies, tolerant but strict decoding."""

from __future__ import annotations

import gzip
from datetime import datetime, timedelta, timezone

import pytest

from stocksage.bars import Bar, MalformedBarError, frame_to_bars
from stocksage.datasets import dataset_info, load_bars
from stocksage.history import decode_object, encode_objects, history_key


def real_bars(symbol: str, count: int | None = None) -> list[Bar]:
    info = dataset_info(symbol)
    frame = load_bars(symbol)
    return frame_to_bars(symbol, frame.iloc[:count], info.interval, info.source)


def test_history_key() -> None:
    moment = datetime(2021, 3, 1, 0, 30, tzinfo=timezone(timedelta(hours=2)))  # Feb in UTC
    assert history_key("tsla", moment, "batch-1") == (
        "bars/symbol=TSLA/year=2021/month=02/batch-1.json.gz"
    )
    with pytest.raises(ValueError, match="timezone"):
        history_key("TSLA", datetime(2021, 3, 1), "x")
    with pytest.raises(ValueError, match="name"):
        history_key("TSLA", moment, "a/b")
    with pytest.raises(ValueError, match="ticker"):
        history_key("no way", moment, "x")


def test_encode_groups_by_symbol_year_month_and_decodes_back() -> None:
    tsla, btc = real_bars("TSLA"), real_bars("BTC-USD", 3000)
    objects = encode_objects(tsla + btc)
    tsla_keys = sorted(key for key in objects if "symbol=TSLA/" in key)
    assert len(tsla_keys) == 13  # 2021-03 .. 2022-03
    assert tsla_keys[0].startswith("bars/symbol=TSLA/year=2021/month=03/20210323T000000Z_")
    assert all(key.endswith(".json.gz") for key in objects)
    decoded = [bar for key in tsla_keys for bar in decode_object(objects[key])]
    assert decoded == tsla
    btc_back = [bar for key in sorted(objects) if "BTC-USD" in key for bar in
                decode_object(objects[key])]  # fmt: skip
    assert btc_back == btc
    lines = gzip.decompress(objects[tsla_keys[0]]).split(b"\n")
    assert lines[-1] == b"" and lines[0] == tsla[0].to_json()


def test_encoding_is_deterministic_and_named() -> None:
    bars = real_bars("FB", 40)
    assert encode_objects(bars) == encode_objects(list(bars))
    named = encode_objects(bars, name="part-0001")
    assert sorted(named) == [
        "bars/symbol=FB/year=2012/month=05/part-0001.json.gz",
        "bars/symbol=FB/year=2012/month=06/part-0001.json.gz",
        "bars/symbol=FB/year=2012/month=07/part-0001.json.gz",
    ]
    assert encode_objects([]) == {}


def test_decode_tolerates_trailing_newlines_plain_text_and_glued_records() -> None:
    bars = real_bars("TSLA", 3)
    text = b"".join(bar.to_json() + b"\n" for bar in bars)
    assert decode_object(gzip.compress(text)) == bars
    assert decode_object(gzip.compress(text.rstrip(b"\n"))) == bars
    assert decode_object(gzip.compress(text + b"\n\r\n")) == bars
    assert decode_object(text) == bars
    glued = b"".join(bar.to_json() for bar in bars)  # Firehose without a delimiter
    assert decode_object(gzip.compress(glued)) == bars
    assert decode_object(gzip.compress(b"")) == []


def test_malformed_line_reports_its_number() -> None:
    bars = real_bars("TSLA", 3)
    lines = [bars[0].to_json(), bars[1].to_json().replace(b'"close"', b'"klose"'),
             bars[2].to_json()]  # fmt: skip
    with pytest.raises(MalformedBarError, match=r"^line 2: missing field\(s\): close"):
        decode_object(gzip.compress(b"\n".join(lines)))
    with pytest.raises(MalformedBarError, match=r"^line 1: not valid JSON"):
        decode_object(gzip.compress(b"{oops}\n"))
    with pytest.raises(MalformedBarError, match=r"^line 2: not valid UTF-8"):
        decode_object(gzip.compress(lines[0] + b"\n\xff\n"))


def test_corrupt_gzip() -> None:
    body = gzip.compress(real_bars("TSLA", 1)[0].to_json())
    with pytest.raises(MalformedBarError, match="truncated"):
        decode_object(body[:-12])
    with pytest.raises(MalformedBarError, match="not valid gzip"):
        decode_object(body[:10] + b"\x00" * 30)
