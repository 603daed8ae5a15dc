"""The local pages in a real browser: Debian's chromium driven by Playwright, offline.

The pages are written the way a user gets them (``make demo``'s ``write_dashboards`` and
``make report``'s ``report``) from the Terraform-provisioned stack, then opened from disk with
every non-``file:`` request refused, so a page that needs the internet fails here as it would
on an offline machine. Each page must log no console error, and every plotly graph must be
drawn (one SVG trace group with a non-empty path per trace) with the expected traces. The
index's numbers are compared with what DynamoDB holds.

The browser set-up installs Debian's ``chromium`` with apt when it is missing (root) and fails
with the reason when it cannot (stocksage.local.browser).
"""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stocksage.adapters.model_registry import DynamoModelRegistry
from stocksage.adapters.results_reader import list_symbols, read_alerts, read_results
from stocksage.alerts.received import alert_symbol
from stocksage.dashboard import build_symbol_figure, page_name
from stocksage.local.browser import BrowserUnavailable, chromium_executable, launch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
from analytics_data import SYMBOLS, stream_with_alerts

pytestmark = pytest.mark.integration

playwright_api = pytest.importorskip("playwright.sync_api")

GRAPHS_JS = """() => [...document.querySelectorAll('.plotly-graph-div')].map(d => ({
  traces: d.data.map(t => [t.type, t.name === undefined ? null : t.name]),
  groups: d.querySelectorAll('g.trace').length + d.querySelectorAll('g.table').length,
  undrawn: [...d.querySelectorAll('g.trace')].filter(g => ![...g.querySelectorAll('path')]
      .some(p => (p.getAttribute('d') || '').length > 2)).map(g => g.getAttribute('class')),
  table_rows: d.data.length && d.data[0].type === 'table' ? d.data[0].cells.values[0].length : null,
  table_text: d.data.length && d.data[0].type === 'table'
      ? [...d.querySelectorAll('g.table text')].map(t => t.textContent).join(' ') : null,
  title: (d._fullLayout.title && d._fullLayout.title.text) || '',
}))"""
RETRAIN_TICK = datetime(2026, 1, 2, 6, 30, tzinfo=UTC)
READY_JS = """() => { const g = [...document.querySelectorAll('.plotly-graph-div')];
  return g.length > 0 && g.every(d => d._fullLayout && d._fullData); }"""


@pytest.fixture(scope="module")
def browser():
    try:
        executable = chromium_executable(install=True)
    except BrowserUnavailable as err:
        pytest.fail(f"the browser tests need chromium: {err}")
    with playwright_api.sync_playwright() as playwright:
        instance = launch(playwright, executable)
        yield instance
        instance.close()


class Opened:
    """A page opened offline, with the errors it logged."""

    def __init__(self, browser, path: Path, graphs: bool = True) -> None:
        self.errors: list[str] = []
        self.context = browser.new_context()
        self.context.route(re.compile(r"^(?!file:).*"), lambda route: (
            self.errors.append(f"network request refused (offline): {route.request.url}"),
            route.abort()))
        self.page = self.context.new_page()
        self.page.on("console", lambda m: self.errors.append(f"console: {m.text}")
                     if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.goto(path.resolve().as_uri(), wait_until="load")
        if graphs:
            try:
                self.page.wait_for_function(READY_JS, timeout=30_000)
            except playwright_api.TimeoutError:
                pytest.fail(f"{path.name}: plotly never drew its graphs; errors: {self.errors}")
        self.graphs = self.page.evaluate(GRAPHS_JS) if graphs else []

    def close(self) -> None:
        self.context.close()


@pytest.fixture(scope="module")
def pages(stack, tmp_path_factory):
    """Stream symbols with rules that fire, then write the dashboards as `make demo` does."""
    from stocksage.local.pages import write_dashboards

    out = stack.outputs
    stream_with_alerts(stack)
    folder = tmp_path_factory.mktemp("dashboards")
    index = write_dashboards(out["environment"], folder, alerts_queue_url=out["alerts_queue_url"])
    return index


def _results(stack, symbol):
    return read_results(stack.client("dynamodb"), stack.outputs["results_table"], symbol)


def test_index_shows_what_dynamodb_holds(stack, browser, pages):
    opened = Opened(browser, pages, graphs=False)
    rows = opened.page.locator("tbody tr")
    cells = [[c.strip() for c in rows.nth(i).locator("td").all_inner_texts()]
             for i in range(rows.count())]
    hrefs = [rows.nth(i).locator("a").get_attribute("href") for i in range(rows.count())]
    opened.close()
    assert opened.errors == []
    symbols = list_symbols(stack.client("dynamodb"), stack.outputs["results_table"])
    assert [row[0] for row in cells] == symbols and set(SYMBOLS) <= set(symbols)
    alerts = read_alerts(stack.client("sqs"), stack.outputs["alerts_queue_url"], wait_seconds=0)
    for row, href in zip(cells, hrefs, strict=True):
        symbol, bars, last_bar, close, prob, fired = row
        frame = _results(stack, symbol)
        assert href == page_name(symbol)
        assert bars == str(len(frame))
        assert last_bar == frame.index.max().isoformat()
        assert close == f"{frame['close'].iloc[-1]:,.2f}"
        predicted = frame["prob_up"].dropna() if "prob_up" in frame else []
        assert prob == (f"{predicted.iloc[-1]:,.3f}" if len(predicted) else "\u2013")
        own = [a for a in alerts if (alert_symbol(a) or "").upper() == symbol.upper()]
        assert fired == str(len(own))


def test_every_symbol_page_draws_its_panels(stack, browser, pages):
    alerts = read_alerts(stack.client("sqs"), stack.outputs["alerts_queue_url"], wait_seconds=0)
    symbols = list_symbols(stack.client("dynamodb"), stack.outputs["results_table"])
    for symbol in symbols:
        frame = _results(stack, symbol)
        opened = Opened(browser, pages.parent / page_name(symbol))
        opened.close()
        assert opened.errors == [], symbol
        assert len(opened.graphs) == 1, symbol
        graph = opened.graphs[0]
        expected = [[t.type, t.name] for t in build_symbol_figure(symbol, frame, alerts).data]
        assert graph["traces"] == expected, symbol
        assert graph["groups"] == len(expected) and graph["undrawn"] == [], symbol
        assert graph["title"].startswith(f"{symbol} - {len(frame)} bars")
        names = {name for _, name in graph["traces"]}
        if len(frame) >= 35:  # past the MACD warm-up: every indicator panel has data
            assert {"OHLC", "SMA 20", "EMA 12", "EMA 26", "BB high", "BB low", "BB mid",
                    "RSI 14", "MACD", "MACD signal", "MACD histogram"} <= names, symbol
        if "prob_up" in frame and frame["prob_up"].notna().any():
            assert "P(up)" in names, symbol
    # the symbols streamed here fired their rules: the alerts are marked on their pages
    for symbol in SYMBOLS:
        opened = Opened(browser, pages.parent / page_name(symbol))
        opened.close()
        assert "Alerts" in {name for _, name in opened.graphs[0]["traces"]}, symbol


def test_lifecycle_report_draws_offline(stack, browser, tmp_path):
    from stocksage.local.model_ops import report

    registry = DynamoModelRegistry(stack.resource("dynamodb"), stack.outputs["versions_table"])
    if not registry.all():  # run alone: no retrain yet (test_lifecycle makes several versions)
        firing = stack.runtime.scheduler.fire(
            stack.outputs["retrain_schedule_name"], scheduled_time=RETRAIN_TICK,
            extra={"overrides": {"symbols": "IBM,MSFT"}})
        assert firing.error is None, firing.error
        assert stack.runtime.wait_training_idle(120)
    path = tmp_path / "report.html"
    assert report(str(path), 5.0, log=lambda *_: None) == 0
    assert (tmp_path / "plotly.min.js").exists()
    versions = registry.all()
    assert len(versions) >= 2  # the bootstrap model and a candidate at least
    opened = Opened(browser, path)
    opened.close()
    assert opened.errors == []
    source = path.read_text()
    assert "cdn.plot.ly" not in source
    assert len(opened.graphs) == source.count("Plotly.newPlot(")
    for graph in opened.graphs:
        assert graph["traces"] and graph["groups"] == len(graph["traces"])
        assert graph["undrawn"] == []
    table = opened.graphs[0]
    assert table["traces"] == [["table", None]]
    assert table["table_rows"] == len(versions)
    for version in versions:
        assert version.model_version in table["table_text"]
