"""Plotly figures of a run's metrics (records of core.runs.metrics: step, loss, eval_loss, lr, grad_norm,
tokens_per_s, memory_mb…), built as plain plotly JSON.

The live charts are rebuilt about once a second in the process that trains; plotly's graph objects
validate every property and took ~150 ms per update on this 2-core machine, time taken from training.
Plain dicts cost well under a millisecond and plotly.js draws them the same. Only scatter traces:
no map or geo traces, which would fetch data from a CDN.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from gradio.components.plot import PlotData

from core.text import N_
from studio.i18n import tr

Record = dict[str, Any]
Figure = dict[str, Any]
SMOOTHING = 0.8          # weight of the past in the smoothed loss (TensorBoard's slider default range 0.6-0.9)
MAX_POINTS = 2000        # longer series are thinned for the browser; the smoothed line uses every point
COLOURS = ["#0d9488", "#e11d48", "#2563eb", "#d97706", "#7c3aed", "#64748b"]
_AXIS = {"gridcolor": "#e2e8f0", "zeroline": False, "automargin": True}
_LAYOUT = {"margin": {"l": 50, "r": 20, "t": 40, "b": 40}, "height": 320, "paper_bgcolor": "white",
           "plot_bgcolor": "white", "font": {"size": 12},
           "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0}}
_STATS = (("lr", N_("Learning rate")), ("grad_norm", N_("Gradient norm")), ("tokens_per_s", N_("Tokens/s")),
          ("memory_mb", N_("Memory (MB)")))


def smooth(values: list[float], weight: float = SMOOTHING) -> list[float]:
    """Exponential moving average with bias correction (the first points are not pulled to zero)."""
    smoothed, average = [], 0.0
    for count, value in enumerate(values, start=1):
        average = weight * average + (1 - weight) * value
        smoothed.append(average / (1 - weight ** count))
    return smoothed


def _series(records: Iterable[Record], key: str) -> tuple[list[int], list[float]]:
    points = [(r["step"], r[key]) for r in records if r.get(key) is not None and "step" in r]
    return [step for step, _ in points], [value for _, value in points]


def _thin(steps: list[int], values: list[float]) -> tuple[list[int], list[float]]:
    stride = max(1, -(-len(steps) // MAX_POINTS))
    return steps[::stride], values[::stride]


def _trace(name: str, steps: list[int], values: list[float], colour: str, **style: Any) -> dict[str, Any]:
    mode = "lines+markers" if "marker" in style else "lines"
    return {"type": "scatter", "mode": mode, "name": name, "x": steps, "y": values,
            "line": {"color": colour, **style.pop("line", {})}, **style}


def _loss_traces(records: list[Record], label: str, colour: str, raw_points: bool) -> list[dict[str, Any]]:
    traces = []
    steps, losses = _series(records, "loss")
    if steps and raw_points:
        traces.append(_trace(label + tr("train loss"), *_thin(steps, losses), colour, opacity=0.35,
                             marker={"size": 4}, line={"width": 1}))
    if steps:
        traces.append(_trace(label + tr("train loss (smoothed)"), steps, smooth(losses), colour, line={"width": 2}))
    eval_steps, eval_losses = _series(records, "eval_loss")
    if eval_steps:
        traces.append(_trace(label + tr("eval loss"), eval_steps, eval_losses, colour, marker={"size": 8, "symbol": "diamond"},
                             line={"dash": "dash"}))
    return traces


def loss_figure(records: list[Record]) -> Figure:
    """Train loss (points and smoothed line) and eval loss on the same axes."""
    return {"data": _loss_traces(records, "", COLOURS[0], raw_points=True),
            "layout": {**_LAYOUT, "xaxis": {**_AXIS, "title": {"text": tr("step")}},
                       "yaxis": {**_AXIS, "title": {"text": tr("loss")}}}}


def stats_figure(records: list[Record]) -> Figure:
    """Learning rate, gradient norm, tokens/s and memory, one small chart each in a 2×2 grid."""
    columns, rows = ([0.0, 0.44], [0.56, 1.0]), ([0.6, 1.0], [0.0, 0.4])
    data, layout = [], {**_LAYOUT, "height": 420, "showlegend": False, "annotations": []}
    for index, (key, english) in enumerate(_STATS):
        title = tr(english)
        suffix = "" if index == 0 else str(index + 1)
        x_domain, y_domain = columns[index % 2], rows[index // 2]
        data.append({**_trace(title, *_thin(*_series(records, key)), COLOURS[index + 1]),
                     "xaxis": f"x{suffix}", "yaxis": f"y{suffix}"})
        layout[f"xaxis{suffix}"] = {**_AXIS, "domain": x_domain, "anchor": f"y{suffix}"}
        layout[f"yaxis{suffix}"] = {**_AXIS, "domain": y_domain, "anchor": f"x{suffix}"}
        layout["annotations"].append({"text": title, "showarrow": False, "xref": "paper", "yref": "paper",
                                      "x": sum(x_domain) / 2, "y": y_domain[1] + 0.02, "xanchor": "center",
                                      "yanchor": "bottom"})
    return {"data": data, "layout": layout}


def compare_figure(runs: dict[str, list[Record]]) -> Figure:
    """The smoothed train loss (solid) and eval loss (dashed) of several runs, one colour per run."""
    data = [trace for index, (name, records) in enumerate(runs.items())
            for trace in _loss_traces(records, f"{name}: ", COLOURS[index % len(COLOURS)], raw_points=False)]
    return {"data": data, "layout": {**_LAYOUT, "xaxis": {**_AXIS, "title": {"text": tr("step")}},
                                     "yaxis": {**_AXIS, "title": {"text": tr("loss")}}}}


def as_plot(figure: Figure) -> PlotData:
    """What a gr.Plot shows for a plain plotly figure."""
    return PlotData(type="plotly", plot=json.dumps(figure))


def _level_colour(rank: int, levels: int) -> str:
    """Red for a criterion's lowest level through amber to teal for its highest."""
    ramp = ["#e11d48", "#f97316", "#eab308", "#84cc16", "#0d9488"]
    return ramp[round(rank * (len(ramp) - 1) / max(1, levels - 1))]


def rating_distribution_figure(rows: list[tuple[str, list[str], list[int]]]) -> Figure:
    """How each row's ratings spread over its levels: `rows` are (label, level labels from lowest to highest,
    how many ratings gave each), one horizontal bar per row, stacked by level as shares of the row."""
    data, named = [], set()
    for label, levels, counts in rows:
        total = sum(counts) or 1
        for rank, (level, count) in enumerate(zip(levels, counts)):
            data.append({"type": "bar", "orientation": "h", "y": [label], "x": [count / total], "name": level,
                         "legendgroup": level, "showlegend": level not in named, "customdata": [count],
                         "marker": {"color": _level_colour(rank, len(levels))},
                         "hovertemplate": f"{level}: %{{x:.0%}} (%{{customdata}} {tr('ratings')})<extra>%{{y}}</extra>"})
            named.add(level)
    return {"data": data, "layout": {**_LAYOUT, "barmode": "stack", "height": 120 + 40 * len(rows),
                                     "xaxis": {**_AXIS, "tickformat": ".0%", "range": [0, 1]},
                                     "yaxis": {**_AXIS, "autorange": "reversed"},
                                     "legend": {**_LAYOUT["legend"], "traceorder": "normal"}}}
