"""``make report``: one HTML page about the model versions (plotly; never imported by Lambdas).

Sections:

1. the versions table (status, data range, holdout size, log losses, margins with CIs, verdict);
2. walk-forward log-loss margin over the best naive baseline and over the serving model, per
   version, with the 95 % block-bootstrap CIs (above 0 = better than the baseline);
3. a backtest of the signal on each shown version's walk-forward holdout: long the next bar
   when ``p_up > 0.5``, else flat; against buy-and-hold of the same symbols. Equal weight
   across the symbols of a date, no leverage, a stated cost per position change, no
   slippage, borrow or taxes. It shows what the holdout predictions would have done on that
   one historical path; it does not show that the signal will earn anything later.

The page works offline: plotly.js is written as ``plotly.min.js`` next to the report (as the
dashboards do) and loaded once in the page head; no CDN.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from stocksage.lifecycle.versions import ModelVersion

DEFAULT_COST_BPS = 5.0
PLOTLY_JS = "plotly.min.js"
DISCLAIMER = (
    "Backtest on the walk-forward holdout: each prediction comes from a fold model trained "
    "only on earlier dates. Long the next bar when p_up > 0.5, else flat; buy-and-hold holds "
    "the same symbols; equal weight across the symbols of a date; no leverage; {cost:g} bps "
    "charged per position change (entry or exit); no slippage, spread, borrow or taxes. One "
    "historical path on a few hundred dates: it does not prove the signal earns anything "
    "after costs in the future, and a model that does not beat the naive baselines (see the "
    "gate) should be expected to add nothing."
)


def backtest(holdout: pd.DataFrame, cost_bps: float = DEFAULT_COST_BPS) -> pd.DataFrame:
    """Daily equal-weight returns of the signal and of buy-and-hold, and their equity curves.

    Args:
        holdout: Columns ``symbol``, ``bar_time``, ``p_model``, ``ret_next``.
        cost_bps: Cost per position change in basis points.

    Returns:
        Index ``bar_time``; columns ``signal``, ``buy_hold`` (mean return across symbols),
        ``signal_equity``, ``buy_hold_equity`` (growth of 1), ``exposure`` (share long).
    """
    h = holdout.dropna(subset=["ret_next", "p_model"]).copy()
    h["bar_time"] = pd.to_datetime(h["bar_time"], utc=True)
    h = h.sort_values(["symbol", "bar_time"])
    h["position"] = (h["p_model"] > 0.5).astype(float)
    changes = h.groupby("symbol")["position"].diff().abs()
    changes = changes.fillna(h["position"])  # entering on the first holdout bar costs too
    h["signal"] = h["position"] * h["ret_next"] - changes * cost_bps / 1e4
    daily = h.groupby("bar_time").agg(signal=("signal", "mean"), buy_hold=("ret_next", "mean"),
                                      exposure=("position", "mean"))
    daily["signal_equity"] = (1 + daily["signal"]).cumprod()
    daily["buy_hold_equity"] = (1 + daily["buy_hold"]).cumprod()
    return daily


def _fmt(value: object, digits: int = 5) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:+.{digits}f}" if isinstance(value, float) else str(value)


def _ci(m: dict, name: str) -> str:
    est, low, high = m.get(name), m.get(f"{name}_ci_low"), m.get(f"{name}_ci_high")
    if est is None:
        return "-"
    return f"{est:+.5f} [{_fmt(low)}, {_fmt(high)}]"


def write_plotly_js(folder: Path) -> Path:
    """Write plotly.js (the version of the installed plotly package, ~4.6 MB) as
    ``{folder}/plotly.min.js`` unless an identical copy is there; return its path."""
    from plotly.offline import get_plotlyjs

    target = folder / PLOTLY_JS
    script = get_plotlyjs()
    if not target.exists() or target.stat().st_size != len(script.encode("utf-8")):
        target.write_text(script, encoding="utf-8")
    return target


def build_report(versions: Sequence[ModelVersion], holdouts: dict[str, pd.DataFrame],
                 path: str | Path, *, serving_version: str | None = None,
                 cost_bps: float = DEFAULT_COST_BPS) -> Path:
    """Write the report to ``path`` (and ``plotly.min.js`` beside it) and return ``path``.

    Args:
        versions: Model versions, oldest first (one table row each).
        holdouts: ``{label: holdout frame}`` (columns ``symbol``, ``bar_time``, ``p_model``,
            ``ret_next``) backtested in section 3; empty frames are left out.
        path: HTML file to write; its folder is created.
        serving_version: Version marked "(serving)".
        cost_bps: Cost per position change, basis points.

    Returns:
        ``path``. Graphs: the versions table (a plotly table), the margins bar chart when a
        version has scored margins, one backtest panel per holdout.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_plotly_js(path.parent)
    rows = []
    for v in versions:
        m = v.metrics or {}
        rows.append({
            "version": v.model_version + (" (serving)" if v.model_version == serving_version
                                          else ""),
            "status": v.status,
            "source": v.source,
            "created": v.created_at,
            "data": f"{(v.data_range or {}).get('first_bar_time', '-')[:10]} .. "
                    f"{(v.data_range or {}).get('last_bar_time', '-')[:10]}",
            "holdout rows": int(m["validation:rows"]) if "validation:rows" in m else "-",
            "model LL": _fmt(m.get("validation:log_loss")),
            "majority LL": _fmt(m.get("baseline:majority_log_loss")),
            "persistence LL": _fmt(m.get("baseline:persistence_log_loss")),
            "margin vs best baseline [95% CI]": _ci(m, "validation:margin_log_loss"),
            "margin vs serving [95% CI]": _ci(m, "validation:margin_champion_log_loss"),
            "range model MSE": _fmt(m.get("range:validation_mse")),
            "best range baseline MSE": _fmt(m.get("range:baseline_best_mse")),
            "range margin vs best baseline [95% CI]": _ci(m, "range:margin_mse"),
            "range margin vs serving [95% CI]": _ci(m, "range:margin_champion_mse"),
            "range served": ("yes" if m.get("range:in_artifact") == 1.0 else "no")
            if "range:in_artifact" in m else "-",
            "gate": (v.gate or {}).get("summary", "-"),
        })
    table = pd.DataFrame(rows)
    parts = [(f"<h1>stocksage model lifecycle</h1><p>{len(versions)} versions; serving: "
             f"<b>{html.escape(serving_version or 'unknown')}</b>. Log loss (LL) in nats/row on "
             "the walk-forward holdout, lower is better; margins are baseline (or serving "
             "model) minus candidate, positive = candidate better; the gate needs the lower "
             "CI end above 0. Range: MSE of the next bar's ln(ln(high/low)) of the range model "
             "and of the best of last value, 22-bar mean and EWMA(0.94) "
             "(stocksage.model.volatility); the range output is served only when its margin's "
             "lower CI end is above 0.</p>")]
    if not table.empty:
        fig = go.Figure(go.Table(
            header={"values": list(table.columns), "align": "left"},
            cells={"values": [table[c].tolist() for c in table.columns], "align": "left"}))
        fig.update_layout(title="Model versions", height=140 + 60 * len(table))
        parts.append(fig.to_html(full_html=False, include_plotlyjs=False))
        scored = [v for v in versions if "validation:margin_log_loss" in (v.metrics or {})]
        panels = (("P(up)", "nats/row", (("validation:margin_log_loss", "vs best naive baseline"),
                   ("validation:margin_champion_log_loss", "vs serving model"))),
                  ("next-bar range", "MSE of ln range/row",
                   (("range:margin_mse", "vs best volatility baseline"),
                    ("range:margin_champion_mse", "vs serving range model"))))
        for target, unit, keys in panels if scored else ():
            fig = go.Figure()
            for key, label in keys:
                xs, ys, lo, hi = [], [], [], []
                for v in scored:
                    m = v.metrics
                    if not all(isinstance(m.get(k), float) and math.isfinite(m[k])
                               for k in (key, f"{key}_ci_low", f"{key}_ci_high")):
                        continue
                    xs.append(v.model_version)
                    ys.append(m[key])
                    lo.append(m[key] - m[f"{key}_ci_low"])
                    hi.append(m[f"{key}_ci_high"] - m[key])
                if xs:
                    fig.add_trace(go.Bar(x=xs, y=ys, name=label, error_y={
                        "type": "data", "symmetric": False, "array": hi, "arrayminus": lo}))
            fig.add_hline(y=0, line_dash="dash")
            fig.update_layout(title=f"{target}: walk-forward margin with 95% block-bootstrap "
                                    "CI (above 0 = model better)", barmode="group",
                              yaxis_title=unit)
            parts.append(fig.to_html(full_html=False, include_plotlyjs=False))
    shown = [(name, h) for name, h in holdouts.items() if h is not None and not h.empty]
    if shown:
        fig = make_subplots(rows=len(shown), cols=1, subplot_titles=[n for n, _ in shown])
        stats = []
        for i, (name, holdout) in enumerate(shown, start=1):
            daily = backtest(holdout, cost_bps)
            for col, label in (("signal_equity", "long if p_up > 0.5 else flat"),
                               ("buy_hold_equity", "buy and hold")):
                fig.add_trace(go.Scatter(x=daily.index, y=daily[col], name=f"{name}: {label}",
                                         mode="lines"), row=i, col=1)
            stats.append(f"<li>{html.escape(name)}: {len(daily)} dates, signal "
                         f"{daily['signal_equity'].iloc[-1] - 1:+.1%}, buy-and-hold "
                         f"{daily['buy_hold_equity'].iloc[-1] - 1:+.1%}, average exposure "
                         f"{daily['exposure'].mean():.0%}</li>")
        fig.update_layout(title="Backtest on the walk-forward holdout (growth of 1)",
                          height=320 * len(shown))
        parts.append(fig.to_html(full_html=False, include_plotlyjs=False))
        parts.append("<ul>" + "".join(stats) + "</ul>")
        parts.append(f"<p><i>{html.escape(DISCLAIMER.format(cost=cost_bps))}</i></p>")
    path.write_text("<!doctype html><html><head><meta charset='utf-8'><title>stocksage model "
                    f"lifecycle</title><script src='{PLOTLY_JS}'></script></head>"
                    "<body style='font-family:sans-serif'>"
                    + "\n".join(parts) + "</body></html>")
    return path
