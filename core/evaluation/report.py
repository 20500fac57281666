"""The report of a run: one self-contained HTML file and the same in Markdown.

    report = build_report(workspace, run_id)             Report(html, markdown)
    html_path, md_path = write_report(workspace, run_id, out=Path("faq.html"))

Sections: the run (state, figures), its config, data lineage (each dataset version back to its upload, and
where hard examples came from), loss curves, automatic metrics with 95% confidence intervals for every model
of the latest finished evaluation, the change against the base with paired intervals, per language,
base-vs-tuned examples (largest gains and losses), and human ratings.

Self-contained: no script, stylesheet, font or image is fetched from anywhere; the charts are inline SVG
drawn here (in the Markdown, the same SVG as a data: image).

Human ratings come from every rating session that rated the run (core.rating.results.summary_for_run): its
mean scores and pass rates with 95% intervals, the run's pairwise wins, and how far the raters agreed.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.config import to_yaml
from core.data import store
from core.errors import StudioError
from core.evaluation import results
from core.rating import results as rating_results
from core.runs import metrics as run_metrics
from core.runs import records
from core.text import N_
from core.workspace import Workspace, atomic_write_text, now_iso, read_json

# Also the Evaluate tab's column names, which it translates (N_: core.text); the report itself is in English.
METRIC_LABELS = {"bleu": "BLEU", "chrf": "chrF", "rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "rougeL": "ROUGE-L",
                 "exact_match": N_("Exact match %"), "perplexity": N_("Perplexity (lower is better)")}
EXAMPLES_EACH_WAY = 3
_COLOURS = ["#0d9488", "#e11d48", "#2563eb", "#d97706"]


@dataclass(frozen=True)
class RatingsTable:
    title: str                       # "Fluency (1-4) by model"
    headers: list[str]               # ["Model", "Mean", "95% CI", "Ratings"]
    rows: list[list[Any]]


@dataclass(frozen=True)
class RatingsSummary:
    """What human rating sessions say about a run, as the report shows it."""

    title: str                                   # "2 sessions, 3 raters, 240 ratings"
    tables: list[RatingsTable] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)   # "Krippendorff's alpha (fluency, ordinal): 0.71"


def ratings_summary(workspace: Workspace, run_id: str) -> RatingsSummary | None:
    """What the rating sessions that rated run `run_id` found, as the report shows it; None if none did."""
    found = rating_results.summary_for_run(workspace, run_id)
    if found is None:
        return None
    raters = {row.rater for rated in found.sessions for row in rated.raters}
    total = sum(rated.ratings for rated in found.sessions)
    tables, notes = [], []
    for rated in found.sessions:
        session = rated.session
        label = {criterion.name: criterion.label for criterion in session.criteria}
        if rated.scores:
            tables.append(RatingsTable(f"{session.name}: mean scores", ["Criterion", "Model", "Mean", "95% CI", "Items"], [
                [label[row.criterion], row.model, _figure(row.mean.value), _interval(row.mean.low, row.mean.high),
                 row.mean.n] for row in rated.scores]))
        passes = [row for row in rated.choices if row.category == rating_results.ALL_PROMPTS]
        if passes:
            tables.append(RatingsTable(f"{session.name}: pass rates", ["Criterion", "Model", "Passed", "95% CI",
                                                                        "Ratings"], [
                [label[row.criterion], row.model, _percent(row.passed.rate), _interval(row.passed.low, row.passed.high,
                                                                                        percent=True),
                 row.passed.total] for row in passes]))
        wins = [row for row in rated.wins if row.model == found.model]
        if wins:
            tables.append(RatingsTable(f"{session.name}: this run against the other side", [
                "Criterion", "Against", "Wins", "Ties", "Losses"], [
                [label[row.criterion], row.opponent, row.wins.words(), row.ties.words(), row.losses.words()]
                for row in wins]))
        for agreed in rated.agreement:
            alpha = agreed.alpha
            value = f"α = {alpha.value:.2f} ({alpha.level}, {alpha.items} items). " if alpha.value is not None else ""
            notes.append(f"{session.name}, agreement on {label[agreed.criterion]}: {value}{alpha.words}")
    title = (f"{len(found.sessions)} session(s), {len(raters)} rater(s), {total} ratings. Raters never saw which "
             "model wrote a response.")
    return RatingsSummary(title, tables, notes)


def _interval(low: float | None, high: float | None, percent: bool = False) -> str:
    if low is None or high is None:
        return "–"
    return f"{_percent(low)} to {_percent(high)}" if percent else f"{low:.2f} to {high:.2f}"


def _percent(share: float | None) -> str:
    return "–" if share is None else f"{share:.0%}"


@dataclass(frozen=True)
class Report:
    run_id: str
    html: str
    markdown: str


# ---------------------------------------------------------------- pieces

def _figure(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _estimate(entry: dict[str, Any] | None) -> str:
    if not entry or entry.get("value") is None:
        return "–"
    low, high = entry.get("ci_low"), entry.get("ci_high")
    bounds = f" [{_figure(low)}, {_figure(high)}]" if low is not None and high is not None else ""
    return f"{_figure(entry['value'])}{bounds}"


def _delta(entry: dict[str, Any]) -> str:
    if entry.get("delta") is None:
        return "–"
    mark = " *" if entry.get("significant") else ""
    return (f"{entry['delta']:+.2f} [{entry['ci_low']:+.2f}, {entry['ci_high']:+.2f}]{mark} "
            f"({entry['better']} better, {entry['worse']} worse, {entry['same']} same)")


def line_chart_svg(series: Sequence[tuple[str, Sequence[float], Sequence[float]]], title: str,
                   width: int = 720, height: int = 280) -> str:
    """A plain SVG line chart of (name, xs, ys) series, with axes, a few ticks and a legend."""
    points = [(x, y) for _, xs, ys in series for x, y in zip(xs, ys) if y is not None and math.isfinite(y)]
    left, right, top, bottom = 56, 16, 34, 36
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             f'font-family="sans-serif" font-size="11" role="img" aria-label="{html.escape(title)}">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{left}" y="18" font-size="13" font-weight="bold">{html.escape(title)}</text>']
    if not points:
        parts.append(f'<text x="{left}" y="{height // 2}">No points recorded.</text></svg>')
        return "".join(parts)
    x_low, x_high = min(p[0] for p in points), max(p[0] for p in points)
    y_low, y_high = min(p[1] for p in points), max(p[1] for p in points)
    x_high, y_high = (x_high if x_high > x_low else x_low + 1), (y_high if y_high > y_low else y_low + 1)
    plot_w, plot_h = width - left - right, height - top - bottom

    def at(x: float, y: float) -> tuple[float, float]:
        return left + (x - x_low) / (x_high - x_low) * plot_w, top + (1 - (y - y_low) / (y_high - y_low)) * plot_h
    parts.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#cbd5e1"/>')
    for share in (0, 0.5, 1):
        y_value = y_low + share * (y_high - y_low)
        _, y = at(x_low, y_value)
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{y_value:.3g}</text>')
        x_value = x_low + share * (x_high - x_low)
        x, _ = at(x_value, y_low)
        parts.append(f'<text x="{x:.1f}" y="{height - bottom + 16}" text-anchor="middle">{x_value:.0f}</text>')
    parts.append(f'<text x="{left + plot_w / 2:.0f}" y="{height - 4}" text-anchor="middle">step</text>')
    for number, (name, xs, ys) in enumerate(series):
        colour = _COLOURS[number % len(_COLOURS)]
        coords = [at(x, y) for x, y in zip(xs, ys) if y is not None and math.isfinite(y)]
        if not coords:
            continue
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.6"/>')
        if len(coords) <= 40:
            parts.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.2" fill="{colour}"/>' for x, y in coords)
        legend_x = left + 8 + number * 150
        parts.append(f'<rect x="{legend_x}" y="{top + 6}" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{legend_x + 14}" y="{top + 15}">{html.escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def loss_chart(workspace: Workspace, run_id: str) -> str:
    logged = run_metrics.read_all(workspace.run_folder(run_id).metrics)
    series = []
    for key, name in (("loss", "training loss"), ("eval_loss", "validation loss")):
        pairs = [(r["step"], r[key]) for r in logged if r.get(key) is not None and "step" in r]
        if pairs:
            series.append((name, [p[0] for p in pairs], [p[1] for p in pairs]))
    return line_chart_svg(series, "Loss curves")


def lineage(workspace: Workspace, path: str) -> list[str]:
    """A data file's history in lines, newest first: each dataset version back to its upload."""
    found = results.dataset_version_of(path, workspace)
    if found is None:
        return [f"{path} (a file outside the dataset store)"]
    dataset, version = found
    lines: list[str] = []
    current: int | None = version
    while current is not None:
        try:
            report = store.read_report(workspace, dataset, current)
        except StudioError:
            lines.append(f"{dataset} v{current} (not found)")
            break
        detail = report.note or report.kind
        if report.kind == "upload":
            detail += f", from the file {report.source_file}"
        source = (report.parameters or {}).get("source")
        if source:
            detail += " (" + ", ".join(f"{key} {value}" for key, value in source.items()) + ")"
        other = (report.parameters or {}).get("other")
        if report.kind == "mix" and other:
            other_id, _, other_version = other.rpartition("/v")
            if other_version.isdigit():
                nested = lineage(workspace, f"datasets/{other_id}/v{other_version}/data.jsonl")
                detail += "; mixed in: " + " ← ".join(nested)
        lines.append(f"{dataset} v{current}: {report.kind}, {report.kept} rows, {report.created[:10]} — {detail}")
        current = report.parent
    return lines


def _examples(workspace: Workspace, run_id: str, eval_id: str) -> list[tuple[str, Any]]:
    """The largest chrF gains and losses of the run against the baseline, as (heading, SampleRow)."""
    scored = [(row.score - row.baseline_score, row) for row in results.samples(workspace, run_id, eval_id, sort_by="chrf")
              if row.baseline_answer is not None and row.score is not None and row.baseline_score is not None]
    ordered = sorted(scored, key=lambda pair: pair[0])
    gains = [("Gain", row) for change, row in reversed(ordered[-EXAMPLES_EACH_WAY:]) if change > 0]
    losses = [("Loss", row) for change, row in ordered[:EXAMPLES_EACH_WAY] if change < 0]
    return gains + losses


# ---------------------------------------------------------------- the document, as blocks

@dataclass
class _Doc:
    """Blocks written once and rendered twice: as HTML and as Markdown."""

    html: list[str] = field(default_factory=list)
    md: list[str] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        self.html.append(f"<h{level}>{html.escape(text)}</h{level}>")
        self.md.append(f"{'#' * level} {text}\n")

    def text(self, text: str) -> None:
        self.html.append(f"<p>{html.escape(text)}</p>")
        self.md.append(f"{text}\n")

    def bullets(self, lines: Sequence[str]) -> None:
        self.html.append("<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ul>")
        self.md.append("".join(f"- {line}\n" for line in lines))

    def code(self, text: str) -> None:
        self.html.append(f"<pre>{html.escape(text)}</pre>")
        self.md.append(f"```yaml\n{text.rstrip()}\n```\n")

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
        self.html.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")

        def cell(value: Any) -> str:
            return str(value).replace("|", "\\|").replace("\n", "<br>")
        self.md.append("| " + " | ".join(map(cell, headers)) + " |\n|" + "---|" * len(headers) + "\n"
                       + "".join("| " + " | ".join(map(cell, row)) + " |\n" for row in rows))

    def svg(self, svg: str, title: str) -> None:
        self.html.append(f'<figure>{svg}</figure>')
        encoded = base64.b64encode(svg.encode("utf-8")).decode("ascii")
        self.md.append(f"![{title}](data:image/svg+xml;base64,{encoded})\n")


_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#0f172a;line-height:1.45}h1{color:#0f766e}h2{border-bottom:2px solid #99f6e4;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}th,td{border:1px solid #cbd5e1;padding:.3em .55em;
text-align:left;vertical-align:top}th{background:#f0fdfa}pre{background:#f8fafc;border:1px solid #e2e8f0;padding:.8em;
overflow:auto;font-size:.85em}figure{margin:.5em 0}.muted{color:#64748b}
"""


def build_report(workspace: Workspace, run_id: str, eval_id: str | None = None,
                 ratings: RatingsSummary | None = None) -> Report:
    """The report of run `run_id`, with the evaluation `eval_id` (default: the latest finished one)."""
    folder = workspace.run_folder(run_id)
    status = records.read_status(folder)
    config = records.load_config(folder)
    summary = read_json(folder.summary, {}) or {}
    doc = _Doc()
    doc.heading(f"LoRA Studio report: {status.name}", 1)
    doc.text(f"Run {run_id} · {status.state} · model {config.model.name} · data {records.dataset_label(config)} · "
             f"report made {now_iso()}")

    doc.heading("Training")
    figures = [("Steps", summary.get("steps", status.step)), ("Final training loss", summary.get("final_loss")),
               ("Best validation loss", summary.get("best_eval_loss")), ("Tokens trained", summary.get("tokens_trained")),
               ("Tokens/s", summary.get("tokens_per_s")), ("Wall time (s)", summary.get("wall_s")),
               ("Trainable parameters", summary.get("trainable_parameters")),
               ("Continued from", config.lora.init_from or "a fresh adapter")]
    doc.table(["Figure", "Value"], [(name, _figure(value, 4)) for name, value in figures])
    doc.svg(loss_chart(workspace, run_id), "Loss curves")

    doc.heading("Data lineage")
    files = [("Training data", path) for path in (config.data.mix or [config.data.train_path])]
    if config.data.validation_path:
        files.append(("Validation data", config.data.validation_path))
    for label, path in files:
        doc.text(f"{label}: {path}")
        doc.bullets(lineage(workspace, path))

    eval_id = eval_id or results.latest_complete(workspace, run_id)
    doc.heading("Automatic metrics")
    if eval_id is None:
        doc.text("No finished evaluation yet. Evaluate the run in the Evaluate tab, or with `lora-studio eval RUN`.")
    else:
        _metrics_section(doc, workspace, run_id, eval_id)

    doc.heading("Human ratings")
    ratings = ratings if ratings is not None else ratings_summary(workspace, run_id)
    if ratings is None:
        doc.text("No rating session has rated this run yet.")
    else:
        doc.text(ratings.title)
        for table in ratings.tables:
            doc.heading(table.title, 3)
            doc.table(table.headers, table.rows)
        if ratings.notes:
            doc.bullets(ratings.notes)

    doc.heading("Configuration")
    doc.code(to_yaml(config))
    page = ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(status.name)} — LoRA Studio report</title><style>{_STYLE}</style></head><body>"
            + "\n".join(doc.html) + "</body></html>\n")
    return Report(run_id, page, "\n".join(doc.md))


def _metrics_section(doc: _Doc, workspace: Workspace, run_id: str, eval_id: str) -> None:
    metrics = results.load_metrics(workspace, run_id, eval_id)
    held_out = metrics["held_out"]
    languages = ", ".join(f"{code} {count}" for code, count in held_out.get("languages", {}).items())
    doc.text(f"Evaluation {eval_id} on the {held_out['name']} (languages: {languages}). Values with bootstrap 95% "
             f"confidence intervals in brackets; scores 0-100.")
    names = list(METRIC_LABELS)
    doc.table(["Model", *(METRIC_LABELS[n] for n in names), "Samples"],
              [[model["label"], *(_estimate(model.get(name)) for name in names), model["counts"]["samples"]]
               for model in metrics["models"].values()])
    for comparison in metrics["comparisons"]:
        model, baseline = metrics["models"][comparison["model"]], metrics["models"][comparison["baseline"]]
        doc.heading(f"{model['label']} against {baseline['label']}", 3)
        doc.text("Difference on the same prompts with a paired-bootstrap 95% interval (* the interval excludes 0), "
                 "and how many answers got better, worse or stayed the same.")
        doc.table(["Metric", "Change"], [(METRIC_LABELS[name], _delta(entry)) for name, entry in comparison["deltas"].items()])
    if any(len(model["by_language"]) > 1 for model in metrics["models"].values()):
        doc.heading("Per language", 3)
        doc.table(["Model", "Language", "Samples", "BLEU", "chrF", "ROUGE-L"],
                  [[model["label"], code, figures["samples"], _estimate(figures["bleu"]), _estimate(figures["chrf"]),
                    _estimate(figures["rougeL"])]
                   for model in metrics["models"].values() for code, figures in model["by_language"].items()])
    settings = "; ".join(f"{model['label']}: " + ", ".join(f"{k} {v}" for k, v in model["generation"].items())
                         for model in metrics["models"].values())
    doc.text(f"Generation settings: {settings}.")
    examples = _examples(workspace, run_id, eval_id)
    if examples:
        doc.heading("Base vs tuned: examples", 3)
        doc.table(["", "Prompt", "Reference", "Baseline answer", "Tuned answer", "chrF baseline → tuned"],
                  [[kind, row.prompt, row.reference, row.baseline_answer, row.answer,
                    f"{row.baseline_score:.1f} → {row.score:.1f}"] for kind, row in examples])


def write_report(workspace: Workspace, run_id: str, out: Path | None = None, eval_id: str | None = None,
                 ratings: RatingsSummary | None = None) -> tuple[Path, Path]:
    """Write the report as HTML at `out` (default runs/<id>/report.html) and as Markdown beside it (.md);
    an `out` ending in .md names the Markdown file, the HTML goes beside it."""
    report = build_report(workspace, run_id, eval_id, ratings)
    chosen = Path(out) if out else workspace.run_folder(run_id).root / "report.html"
    html_path, md_path = (chosen.with_suffix(".html"), chosen) if chosen.suffix.lower() == ".md" else \
        (chosen, chosen.with_suffix(".md"))
    atomic_write_text(html_path, report.html)
    atomic_write_text(md_path, report.markdown)
    return html_path, md_path
