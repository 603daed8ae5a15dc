"""Upload the packaged real datasets to the history bucket in the ``stocksage.history`` layout.

Usage::

    AWS_ENDPOINT_URL=http://127.0.0.1:4566 python scripts/backfill_history.py --bucket B \\
        [--symbols TSLA AAPL ...] [--until 2012-12-31 | --exclude-last 50] [--create-bucket]

Default symbols: ``stocksage.datasets.DEMO_SYMBOLS``. ``--until`` keeps bars up to that date
(inclusive, UTC); ``--exclude-last N`` holds back each symbol's last N bars (to stream them
later). One object per symbol and month named ``backfill``: a re-run overwrites the same keys.
boto3 honours ``AWS_ENDPOINT_URL`` (the emulator) by itself.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

def main(argv: list[str] | None = None) -> int:
    from stocksage.datasets import DEMO_SYMBOLS

    parser = argparse.ArgumentParser(description="Backfill bar history to S3.")
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--symbols", nargs="+", default=list(DEMO_SYMBOLS))
    cut = parser.add_mutually_exclusive_group()
    cut.add_argument("--until", help="keep bars up to this date/time (UTC, inclusive)")
    cut.add_argument(
        "--exclude-last", type=int, default=0, help="hold back each symbol's last N bars"
    )
    parser.add_argument(
        "--create-bucket", action="store_true", help="create the bucket when it does not exist"
    )
    args = parser.parse_args(argv)

    import boto3

    from stocksage.adapters.s3_history import BACKFILL_OBJECT_NAME, put_history
    from stocksage.datasets import dataset_bars

    s3 = boto3.client("s3")
    if args.create_bucket:
        try:
            s3.head_bucket(Bucket=args.bucket)
        except Exception:  # noqa: BLE001 - missing bucket: create it
            s3.create_bucket(Bucket=args.bucket)
    total_bars = total_objects = 0
    for symbol in args.symbols:
        bars = dataset_bars(symbol.upper(), args.until, args.exclude_last)
        summary = put_history(s3, args.bucket, bars, name=BACKFILL_OBJECT_NAME)
        total_bars += summary.bars
        total_objects += len(summary.keys)
        span = f"{bars[0].bar_time:%Y-%m-%d}..{bars[-1].bar_time:%Y-%m-%d}" if bars else "-"
        print(
            f"{symbol.upper():8s} bars={summary.bars:6d} objects={len(summary.keys):4d} "
            f"bytes={summary.bytes:9d} {span}",
            flush=True,
        )
    print(f"total bars={total_bars} objects={total_objects} bucket={args.bucket}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
