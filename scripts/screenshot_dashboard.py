"""Regenerate the README pictures from the local pages, in headless chromium (offline).

    .venv/bin/python scripts/screenshot_dashboard.py [--pages out/dashboards] [--symbol TSLA]

Reads the pages ``make demo`` writes (``out/dashboards``: ``index.html`` and one page per
symbol) and writes:

- ``docs/img/dashboard.png``: the symbol page (price with SMA/EMA/Bollinger and alert markers,
  RSI, MACD, prediction) - the local equivalent of the QuickSight "Symbol" sheet;
- ``docs/img/index.png``: the index (newest bar, last close, P(up), alerts per symbol) - the
  local equivalent of the "Freshness" sheet.

Chromium is Debian's package launched by path (stocksage.local.browser; installed with apt when
missing and run as root). Every non-``file:`` request is refused, so the pictures show what an
offline user sees. Exit status 2 when the pages are missing (run ``make demo`` first), 3 when no
browser can be found or installed.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stocksage.dashboard import page_name
from stocksage.local.browser import BrowserUnavailable, chromium_executable, launch

READY_JS = """() => { const g = [...document.querySelectorAll('.plotly-graph-div')];
  return g.every(d => d._fullLayout && d._fullData); }"""


def screenshot(browser, page_path: Path, target: Path, width: int, height: int) -> list[str]:
    """Open ``page_path`` offline, wait until plotly has drawn, save a full-page PNG to
    ``target``; return the console errors and refused requests (empty when all is well)."""
    errors: list[str] = []
    context = browser.new_context(viewport={"width": width, "height": height},
                                  device_scale_factor=1)
    context.route(re.compile(r"^(?!file:).*"),
                  lambda route: (errors.append(f"refused {route.request.url}"), route.abort()))
    page = context.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(page_path.resolve().as_uri(), wait_until="load")
    page.wait_for_function(READY_JS, timeout=30_000)
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target), full_page=True)
    context.close()
    return errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=Path, default=REPO / "out" / "dashboards",
                        help="folder of the pages (default: what make demo writes)")
    parser.add_argument("--symbol", default="TSLA", help="symbol page to picture")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img")
    parser.add_argument("--width", type=int, default=1280)
    args = parser.parse_args(argv)

    symbol_page = args.pages / page_name(args.symbol)
    index_page = args.pages / "index.html"
    missing = [p for p in (symbol_page, index_page) if not p.exists()]
    if missing:
        print(f"missing {', '.join(map(str, missing))}: run `make demo` first "
              "(or pass --pages / --symbol)", file=sys.stderr)
        return 2
    try:
        executable = chromium_executable(install=True)
    except BrowserUnavailable as err:
        print(f"no browser: {err}", file=sys.stderr)
        return 3

    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright, executable)
        problems = {}
        for page, name, height in ((symbol_page, "dashboard.png", 1000),
                                   (index_page, "index.png", 400)):
            target = args.out / name
            errors = screenshot(browser, page, target, args.width, height)
            if errors:
                problems[page.name] = errors
            print(f"{target.relative_to(REPO) if target.is_relative_to(REPO) else target} "
                  f"<- {page}")
        browser.close()
    for page, errors in problems.items():
        print(f"{page}: {len(errors)} browser errors: {errors[:3]}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
