"""Build the reproducible SageMaker submit directory ``sourcedir.tar.gz``.

Usage::

    python scripts/package_sourcedir.py [--out build/sourcedir.tar.gz] [--list]
    python scripts/package_sourcedir.py --bucket B      # also upload to s3://B/code/sourcedir.tar.gz

The archive holds ``train.py``, ``inference.py``, ``requirements.txt`` and the ``stocksage``
package (without ``stocksage/local``). S3 uploads use ``AWS_ENDPOINT_URL`` when set.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from stocksage.model.sourcedir import SOURCEDIR_KEY, build_sourcedir, sha256, sourcedir_entries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build sourcedir.tar.gz for SageMaker.")
    parser.add_argument("--out", default=str(ROOT / "build" / "sourcedir.tar.gz"))
    parser.add_argument("--bucket", help="upload to s3://BUCKET/" + SOURCEDIR_KEY)
    parser.add_argument("--key", default=SOURCEDIR_KEY)
    parser.add_argument("--list", action="store_true", help="print the archive members")
    args = parser.parse_args(argv)
    data = build_sourcedir(ROOT, args.out)
    if args.list:
        for arcname, _ in sorted(sourcedir_entries(ROOT)):
            print(arcname)
    print(f"wrote {args.out} ({len(data)} bytes, sha256 {sha256(data)})")
    if args.bucket:
        import boto3

        boto3.client("s3").put_object(Bucket=args.bucket, Key=args.key, Body=data)
        print(f"uploaded s3://{args.bucket}/{args.key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
