"""S3 history layout: keys, gzip NDJSON bodies, tolerant but strict decoding."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from moto import mock_aws

from stocksage.adapters.s3_history import iter_history
from stocksage.bars import Bar, MalformedBarError, frame_to_bars
from stocksage.datasets import dataset_info, load_bars
from stocksage.history import SkippedLines, decode_object, encode_objects, history_key
from stocksage.model.dataset import read_history_dir


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


def _object_with_bad_lines() -> tuple[bytes, list]:
    bars = frame_to_bars("IBM", load_bars("IBM").iloc[:3])
    quarantined = b'{"symbol":"IBM","bar_time":"2024-01-03T00:00:00Z","open":0}'
    trades = b'{"type":"trades","symbol":"ES","t":[1],"p":[1.0],"s":[1]}'
    lines = [bars[0].to_json(), quarantined, bars[1].to_json(), trades, bars[2].to_json()]
    return gzip.compress(b"\n".join(lines) + b"\n"), bars


def test_readers_skip_and_record_invalid_lines_instead_of_failing(tmp_path) -> None:
    body, bars = _object_with_bad_lines()
    skipped = SkippedLines()
    assert decode_object(body, on_invalid=skipped.recorder("a.json.gz")) == bars
    assert [(name, line) for name, line, _ in skipped.lines] == [("a.json.gz", 2),
                                                                  ("a.json.gz", 4)]
    path = tmp_path / "bars" / "symbol=IBM" / "year=2024" / "month=01" / "x.json.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(body)
    from_dir = SkippedLines()
    assert read_history_dir(tmp_path, from_dir) == bars  # what the training job reads
    assert len(from_dir) == 2 and from_dir.lines[0][0].endswith("x.json.gz")


def test_iter_history_skips_invalid_lines_of_an_s3_object() -> None:
    body, bars = _object_with_bad_lines()
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="history")
        s3.put_object(Bucket="history", Key="bars/symbol=IBM/year=2024/month=01/x.json.gz",
                      Body=body)
        skipped = SkippedLines()
        assert list(iter_history(s3, "history", skipped=skipped)) == bars
    assert [line for _, line, _ in skipped.lines] == [2, 4]


def test_a_daily_bar_stored_at_midnight_new_york_is_read_at_its_session_date():
    """History written before bar times had to start their interval holds Alpaca's daily bars
    at 05:00Z; they are read at 00:00Z of their date, not skipped. Other misaligned bars are
    still skipped with their reason."""
    lines = [
        {"symbol": "AAPL", "bar_time": "2024-01-02T05:00:00Z", "interval": "1d", "open": 1,
         "high": 2, "low": 1, "close": 2, "volume": 10},
        {"symbol": "AAPL", "bar_time": "2024-01-02T14:30:30Z", "interval": "1m", "open": 1,
         "high": 2, "low": 1, "close": 2, "volume": 10},
    ]
    body = "\n".join(json.dumps(line) for line in lines).encode()
    skipped: list[tuple[int, str]] = []
    bars = decode_object(body, on_invalid=lambda n, reason: skipped.append((n, reason)))
    assert [b.to_dict()["bar_time"] for b in bars] == ["2024-01-02T00:00:00Z"]
    assert len(skipped) == 1 and skipped[0][0] == 2 and "1m boundary" in skipped[0][1]
