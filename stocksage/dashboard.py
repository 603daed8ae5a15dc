"""Offline HTML dashboards of the processor's results (plotly).

One page per symbol (:func:`render_symbol_dashboard`) and an ``index.html``
(:func:`render_index`) that links them with a summary table. Pages work without internet:
plotly.js is written once as ``plotly.min.js`` next to the pages (``include_plotlyjs=
"directory"``) and every page loads it from there, so a folder of pages costs one copy (~4.6 MB).

Input frames follow DESIGN.md's results item: index ``bar_time`` (UTC), columns OHLCV,
``STACK.indicator_columns``, ``STACK.features``, ``prob_up`` (absent/NaN during warm-up),
``model_version``; :func:`stocksage.adapters.results_reader.read_results` returns exactly that.
Missing columns and NaN warm-up values are drawn as gaps, never errors.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from stocksage.alerts.received import alert_bar_time, alert_symbol

PLOTLY_JS = "plotly.min.js"
_PANEL_TITLES = ("Price, SMA 20, EMA 12/26, Bollinger bands", "RSI 14", "MACD (12, 26, 9)",
                 "Predicted probability up")


def page_name(symbol: str) -> str:
    """File name of a symbol's page (``BRK.B`` -> ``BRK.B.html``, ``^GSPC`` -> ``_GSPC.html``)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", symbol) + ".html"


def _column(frame: pd.DataFrame, name: str) -> pd.Series | None:
    """Float column or None when absent / all NaN."""
    if name not in frame.columns:
        return None
    series = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    return None if series.isna().all() else series


def _alerts_for(
    symbol: str, alerts: Iterable[Mapping[str, Any]]
) -> list[tuple[pd.Timestamp, Mapping[str, Any]]]:
    out = []
    for alert in alerts or ():
        owner = alert_symbol(alert)
        if owner is not None and owner.upper() != symbol.upper():
            continue
        when = alert_bar_time(alert)
        if when is not None:
            out.append((when, alert))
    return out


def _alert_text(alert: Mapping[str, Any]) -> str:
    payload = alert.get("Payload") or {}
    text = alert.get("Subject") or payload.get("text") or str(alert.get("Message", ""))[:200]
    severity = (alert.get("MessageAttributes") or {}).get("severity") or payload.get("severity")
    return f"{text} [{severity}]" if severity else str(text)


def _price_panel(fig: go.Figure, frame: pd.DataFrame, x: pd.Index) -> pd.Series | None:
    """Row 1: OHLC candles (or the close), Bollinger bands, the forecast range band, SMA/EMA.
    Returns the close column (None when absent)."""
    o, h, low, c = (_column(frame, k) for k in ("open", "high", "low", "close"))
    if o is not None and h is not None and low is not None and c is not None:
        fig.add_trace(go.Candlestick(x=x, open=o, high=h, low=low, close=c, name="OHLC",
                                     showlegend=True), row=1, col=1)
    elif c is not None:
        fig.add_trace(go.Scatter(x=x, y=c, name="Close", mode="lines",
                                 line={"color": "#222"}), row=1, col=1)
    bands = [("bb_high", "BB high", "rgba(120,120,200,0.7)", None),
             ("bb_low", "BB low", "rgba(120,120,200,0.7)", "tonexty"),
             ("bb_mavg", "BB mid", "rgba(120,120,200,0.9)", None)]
    for column, name, color, fill in bands:
        series = _column(frame, column)
        if series is None:
            continue
        fig.add_trace(go.Scatter(
            x=x, y=series, name=name, mode="lines",
            line={"color": color, "width": 1, "dash": "dot" if column == "bb_mavg" else "solid"},
            fill=fill if fill and _column(frame, "bb_high") is not None else None,
            fillcolor="rgba(120,120,200,0.08)",
        ), row=1, col=1)
    # Forecast range band: range_low/high of bar t (close[t] * exp(-+range_forecast[t] / 2))
    # bound the range forecast for bar t+1, so they are drawn at bar t+1.
    r_low, r_high = _column(frame, "range_low"), _column(frame, "range_high")
    if r_low is not None and r_high is not None and r_high.notna().any() and len(x) > 1:
        for series, name, fill in ((r_high, "Forecast range high", None),
                                   (r_low, "Forecast range low", "tonexty")):
            fig.add_trace(go.Scatter(
                x=x[1:], y=series.iloc[:-1].to_numpy(), name=name, mode="lines",
                line={"color": "rgba(230,120,20,0.8)", "width": 1, "shape": "hv"},
                fill=fill, fillcolor="rgba(230,120,20,0.10)",
                hovertemplate="%{y:.2f}<extra>" + name + " (made the bar before)</extra>",
            ), row=1, col=1)
    for column, name, color in (("sma_20", "SMA 20", "#ff7f0e"), ("ema_12", "EMA 12", "#2ca02c"),
                                ("ema_26", "EMA 26", "#d62728")):
        series = _column(frame, column)
        if series is not None:
            fig.add_trace(go.Scatter(x=x, y=series, name=name, mode="lines",
                                     line={"color": color, "width": 1.3}), row=1, col=1)

    return c


def _alert_markers(fig: go.Figure, symbol: str, frame: pd.DataFrame, x: pd.Index,
                   alerts: Sequence[Mapping[str, Any]], c: pd.Series | None) -> None:
    """Row 1: a marker above the bar of each alert of ``symbol`` (hover: its text)."""
    h = _column(frame, "high")
    fired = _alerts_for(symbol, alerts)
    if fired and c is not None:
        anchor = h if h is not None else c
        times, ys, texts = [], [], []
        for when, alert in sorted(fired, key=lambda t: t[0]):
            position = x.searchsorted(when, side="right") - 1 if len(x) else -1
            if position < 0:
                continue
            level = anchor.iloc[position]
            if not math.isfinite(level):
                level = c.iloc[position]
            times.append(x[position])
            ys.append(level * 1.02 if math.isfinite(level) else None)
            texts.append(_alert_text(alert))
        if times:
            fig.add_trace(go.Scatter(
                x=times, y=ys, name="Alerts", mode="markers", text=texts,
                hovertemplate="%{x}<br>%{text}<extra>alert</extra>",
                marker={"symbol": "triangle-down", "size": 12, "color": "#e41a1c",
                        "line": {"color": "#000", "width": 1}},
            ), row=1, col=1)



def build_symbol_figure(
    symbol: str, results: pd.DataFrame, alerts: Sequence[Mapping[str, Any]] = ()
) -> go.Figure:
    """The dashboard figure: 4 panels sharing the x axis (see :func:`render_symbol_dashboard`)."""
    frame = results.sort_index() if not results.empty else results
    x = frame.index
    fig = make_subplots(
        rows=4, cols=1, shared_xaxes=True, vertical_spacing=0.03,
        row_heights=[0.5, 0.15, 0.18, 0.17], subplot_titles=_PANEL_TITLES,
    )

    c = _price_panel(fig, frame, x)
    _alert_markers(fig, symbol, frame, x, alerts, c)

    # --- RSI panel
    rsi = _column(frame, "rsi_14")
    if rsi is not None:
        fig.add_trace(go.Scatter(x=x, y=rsi, name="RSI 14", mode="lines",
                                 line={"color": "#9467bd"}), row=2, col=1)
    for level in (30, 70):
        fig.add_hline(y=level, line={"dash": "dash", "color": "grey", "width": 1}, row=2, col=1)
    fig.update_yaxes(range=[0, 100], row=2, col=1)

    # --- MACD panel
    macd, signal, diff = (_column(frame, k) for k in ("macd", "macd_signal", "macd_diff"))
    if diff is not None:
        colors = np.where(diff.fillna(0.0).to_numpy() >= 0, "#2ca02c", "#d62728")
        fig.add_trace(go.Bar(x=x, y=diff, name="MACD histogram", marker_color=colors,
                             opacity=0.6), row=3, col=1)
    if macd is not None:
        fig.add_trace(go.Scatter(x=x, y=macd, name="MACD", mode="lines",
                                 line={"color": "#1f77b4"}), row=3, col=1)
    if signal is not None:
        fig.add_trace(go.Scatter(x=x, y=signal, name="MACD signal", mode="lines",
                                 line={"color": "#ff7f0e"}), row=3, col=1)

    # --- prediction panel
    prob = _column(frame, "prob_up")
    if prob is not None:
        fig.add_trace(go.Scatter(x=x, y=prob, name="P(up)", mode="lines+markers",
                                 marker={"size": 3}, line={"color": "#17becf"}), row=4, col=1)
    else:
        fig.add_annotation(text="no predictions yet (warm-up or no model)", showarrow=False,
                           xref="x4 domain", yref="y4 domain", x=0.5, y=0.5,
                           font={"color": "grey"})
    fig.add_hline(y=0.5, line={"dash": "dash", "color": "grey", "width": 1}, row=4, col=1)
    fig.update_yaxes(range=[0, 1], row=4, col=1)

    if frame.empty:
        fig.add_annotation(text=f"no results for {symbol} yet", showarrow=False,
                           xref="paper", yref="paper", x=0.5, y=0.75, font={"size": 18})

    version = ""
    if "model_version" in frame.columns:
        versions = frame["model_version"].dropna()
        version = f" - model {versions.iloc[-1]}" if len(versions) else ""
    fig.update_layout(
        title=f"{symbol} - {len(frame)} bars{version}",
        height=1000, hovermode="x unified", template="plotly_white",
        legend={"orientation": "h", "y": -0.05},
        margin={"l": 60, "r": 20, "t": 80, "b": 60},
    )
    fig.update_xaxes(rangeslider_visible=False)
    return fig


def render_symbol_dashboard(
    symbol: str,
    results: pd.DataFrame,
    alerts: Sequence[Mapping[str, Any]],
    out_dir: str | Path,
) -> Path:
    """Write ``{out_dir}/{symbol}.html`` (and ``plotly.min.js`` once) and return the page path.

    Panels, sharing the x axis: candlesticks (or close) with SMA 20, EMA 12/26, Bollinger bands
    and red markers at the bars where alerts fired; RSI 14 with 30/70 lines; MACD, signal and
    histogram; predicted probability up with a 0.5 line.

    Args:
        symbol: Symbol shown.
        results: Results frame (index ``bar_time``); columns may be missing or NaN.
        alerts: Alert dicts from :func:`~stocksage.adapters.results_reader.read_alerts`; alerts
            of other symbols are ignored.
        out_dir: Folder (created if needed).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / page_name(symbol)
    fig = build_symbol_figure(symbol, results, alerts)
    fig.write_html(path, include_plotlyjs="directory", full_html=True,
                   config={"displaylogo": False, "responsive": True})
    return path


def summarize(symbol: str, results: pd.DataFrame,
              alerts: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """Index row for a symbol: bars, last bar time, last close, last prob_up, alerts."""
    close = _column(results, "close")
    prob = _column(results, "prob_up")
    last_close = close.dropna().iloc[-1] if close is not None else None
    last_prob = prob.dropna().iloc[-1] if prob is not None else None
    return {
        "symbol": symbol,
        "bars": len(results),
        "last_bar_time": results.index.max().isoformat() if len(results) else None,
        "last_close": float(last_close) if last_close is not None else None,
        "last_prob_up": float(last_prob) if last_prob is not None else None,
        "alerts": len(_alerts_for(symbol, alerts)),
        "href": page_name(symbol),
    }


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "&ndash;"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return html.escape(str(value))


def render_index(
    symbols_summary: Sequence[Mapping[str, Any]] | Mapping[str, Mapping[str, Any]],
    out_dir: str | Path,
) -> Path:
    """Write ``{out_dir}/index.html``: a table linking every symbol's page.

    Args:
        symbols_summary: Rows like :func:`summarize` returns (``symbol``, ``bars``,
            ``last_close``, ``last_prob_up``, ``alerts``, optional ``last_bar_time``/``href``),
            or a mapping ``symbol -> row``.
        out_dir: Folder of the pages.
    """
    if isinstance(symbols_summary, Mapping):
        rows = [{"symbol": s, **dict(r)} for s, r in symbols_summary.items()]
    else:
        rows = [dict(r) for r in symbols_summary]
    rows.sort(key=lambda r: str(r.get("symbol", "")))
    body = []
    for row in rows:
        symbol = str(row.get("symbol", ""))
        href = html.escape(row.get("href") or page_name(symbol), quote=True)
        prob = row.get("last_prob_up")
        css = "" if prob is None else (' class="up"' if prob >= 0.5 else ' class="down"')
        body.append(
            f'<tr><td><a href="{href}">{html.escape(symbol)}</a></td>'
            f"<td>{_fmt(row.get('bars'))}</td><td>{_fmt(row.get('last_bar_time'))}</td>"
            f"<td>{_fmt(row.get('last_close'))}</td><td{css}>{_fmt(prob, 3)}</td>"
            f"<td>{_fmt(row.get('alerts'))}</td></tr>"
        )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>stocksage dashboards</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; }}
table {{ border-collapse: collapse; }}
th, td {{ padding: .35rem .8rem; border-bottom: 1px solid #ddd; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
td.up {{ color: #2ca02c; }} td.down {{ color: #d62728; }}
</style></head>
<body><h1>stocksage</h1>
<p>{len(rows)} symbols. Probability up is the model's prediction for the next bar.</p>
<table><thead><tr><th>Symbol</th><th>Bars</th><th>Last bar</th><th>Last close</th>
<th>P(up)</th><th>Alerts</th></tr></thead>
<tbody>
{chr(10).join(body)}
</tbody></table></body></html>
"""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def render_dashboards(
    results_by_symbol: Mapping[str, pd.DataFrame],
    alerts: Sequence[Mapping[str, Any]],
    out_dir: str | Path,
) -> Path:
    """Every symbol's page plus the index; returns the index path."""
    summaries = []
    for symbol, frame in results_by_symbol.items():
        render_symbol_dashboard(symbol, frame, alerts, out_dir)
        summaries.append(summarize(symbol, frame, alerts))
    return render_index(summaries, out_dir)


__all__ = [
    "build_symbol_figure",
    "page_name",
    "render_dashboards",
    "render_index",
    "render_symbol_dashboard",
    "summarize",
]
