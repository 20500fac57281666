"""Rate tab, Results: per model and criterion the mean with its 95% interval and the spread of ratings,
pairwise win/tie/loss rates, safety pass rates per prompt category, agreement between raters explained in
words, the items raters disagree on most; exports, ratings imported from a file, and low-rated items with
corrected answers sent back into training. This view names the models (unblinded)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import gradio as gr
import pandas as pd

from core.errors import ConfigError
from core.rating import agreement, exchange, feedback, results
from core.rating.intervals import Share
from core.rating.results import SessionResults
from core.text import N_
from studio import plots
from studio.context import StudioContext
from studio.errors import friendly
from studio.i18n import tr

# Column headers, shown in the reader's language (columns()).
SCORE_COLUMNS = [N_("Model"), N_("Criterion"), N_("Mean"), N_("95% interval"), N_("Items"), N_("Ratings")]
WIN_COLUMNS = [N_("Model"), N_("Against"), N_("Wins"), N_("Ties"), N_("Losses"), N_("Ratings")]
CHOICE_COLUMNS = [N_("Model"), N_("Criterion"), N_("Prompts"), N_("Pass rate"), N_("95% interval"), N_("Ratings"),
                  N_("Problems found")]
DISAGREEMENT_COLUMNS = [N_("Item"), N_("Criterion"), N_("Ratings"), N_("Models"), N_("Prompt")]
HARD_COLUMNS = [N_("Item"), N_("Why it is low-rated"), N_("Prompt"), N_("Response"), N_("Corrected answer"), N_("By")]
CELL_CHARS = 200


def build(ctx: StudioContext) -> gr.Dropdown:
    """Lays out the Results tab; returns its session picker."""
    workspace = ctx.workspace
    with gr.Row(equal_height=True):
        session = gr.Dropdown([], label="Session", elem_id="rate-results-session", scale=4, allow_custom_value=True)
        refresh = gr.Button("Refresh", elem_id="rate-results-refresh", scale=1)
    summary = gr.Markdown(elem_id="rate-results-summary")
    scores = gr.Dataframe(headers=SCORE_COLUMNS, interactive=False, elem_id="rate-scores", label="Scores")
    distribution = gr.Plot(label="How the ratings spread", elem_id="rate-distribution")
    wins = gr.Dataframe(headers=WIN_COLUMNS, interactive=False, elem_id="rate-wins", label="Pairwise: win / tie / loss")
    choices = gr.Dataframe(headers=CHOICE_COLUMNS, interactive=False, wrap=True, elem_id="rate-safety",
                           label="Safety: pass rate per prompt category")
    agreed = gr.Markdown(elem_id="rate-agreement")
    disagreements = gr.Dataframe(headers=DISAGREEMENT_COLUMNS, interactive=False, wrap=True, elem_id="rate-disagreements",
                                 label="Items raters disagree on most (worth a look, and a clearer instruction)")
    with gr.Accordion("Back into training", open=True, elem_id="rate-feedback"):
        gr.Markdown("Low-rated items for which a rater wrote a **corrected answer** can join the hard-examples dataset "
                    "(mix it into your training data in the Data tab, 8:2 by default). Pairwise verdicts export as "
                    "preference pairs for DPO-style training.")
        hard = gr.Dataframe(headers=HARD_COLUMNS, interactive=False, wrap=True, elem_id="rate-hard")
        with gr.Row(equal_height=True):
            hard_items = gr.Textbox(label="Items to send (numbers, or empty for all listed)", elem_id="rate-hard-items")
            send = gr.Button("Send to hard examples", variant="primary", elem_id="rate-hard-send")
        sent = gr.Markdown(elem_id="rate-hard-result")
    with gr.Accordion("Export and import", open=True, elem_id="rate-exchange"):
        with gr.Row():
            export_csv = gr.Button("Export ratings (CSV)", elem_id="rate-export-csv")
            export_jsonl = gr.Button("Export ratings (JSONL)", elem_id="rate-export-jsonl")
            export_pairs = gr.Button("Export preference pairs (JSONL)", elem_id="rate-export-pairs")
        download = gr.File(label="Download", elem_id="rate-export-file", interactive=False, height=80)
        upload = gr.File(label="Import ratings made elsewhere (.csv or .jsonl: item, rater, criterion, value)",
                         file_types=[".csv", ".jsonl"], elem_id="rate-import-file")
        imported = gr.Markdown(elem_id="rate-import-result")
    shown = [summary, scores, distribution, wins, choices, agreed, disagreements, hard]

    def view(session_id: str | None) -> tuple:
        if not session_id:
            return (tr("Pick a session to see its results."), *(None for _ in shown[1:]))
        found = results.session_results(workspace, session_id)
        kinds = {criterion.kind for criterion in found.session.criteria}
        return (_summary(found), gr.Dataframe(_scores(found), visible="scale" in kinds),
                gr.Plot(_distribution(found), visible="preference" not in kinds),
                gr.Dataframe(_wins(found), visible="preference" in kinds),
                gr.Dataframe(_choices(found), visible="choice" in kinds), _agreement(found),
                _disagreements(found), _hard(feedback.hard_example_candidates(workspace, session_id)))

    def export(session_id: str | None, suffix: str) -> str:
        chosen = _chosen(session_id)
        folder = Path(tempfile.mkdtemp(prefix="lora-studio-"))   # Gradio serves files from the temp folder
        if suffix == "pairs":
            path = folder / f"{chosen}-preference-pairs.jsonl"
            feedback.write_preference_pairs(workspace, chosen, path)
        else:
            path = folder / f"{chosen}-ratings{suffix}"
            exchange.export(workspace, chosen, path)
        return str(path)

    @friendly
    @ctx.allow("manage-ratings")
    def import_ratings(session_id: str | None, file_path: str | None) -> tuple:
        if not file_path:
            return gr.skip(), *(gr.skip() for _ in shown)
        result = exchange.import_file(workspace, _chosen(session_id), Path(file_path))
        skipped = tr(" ({count} empty comment cells skipped)", count=result.skipped_empty) if result.skipped_empty else ""
        return (tr("**Imported** {count} ratings from *{file}*{skipped}.", count=result.written, file=Path(file_path).name,
                   skipped=skipped), *view(session_id))

    @friendly
    @ctx.allow("manage-ratings")
    def send_hard(session_id: str | None, numbers: str | None) -> str:
        try:
            items = [int(part) for part in (numbers or "").replace(",", " ").split()] or None
        except ValueError:
            raise ConfigError(f"'{numbers}' is not a list of item numbers.", "Write them like 3, 7, 12.") from None
        version = feedback.send_hard_examples(workspace, _chosen(session_id), items)
        return tr("**Added** to *Hard examples* as v{version} ({rows} rows; {note}). Mix it into your training data in "
                  "the **Data** tab.", version=version.version, rows=version.rows, note=tr(version.note))

    quiet = {"show_progress": "hidden"}
    show = friendly(ctx.allow("manage-ratings")(view))
    gr.on([session.change, refresh.click], show, session, shown, api_name="rate_results", **quiet)

    @friendly
    @ctx.allow("manage-ratings")
    def ratings_csv(session_id: str | None) -> str:
        return export(session_id, ".csv")

    @friendly
    @ctx.allow("manage-ratings")
    def ratings_jsonl(session_id: str | None) -> str:
        return export(session_id, ".jsonl")

    @friendly
    @ctx.allow("manage-ratings")
    def preference_pairs(session_id: str | None) -> str:
        return export(session_id, "pairs")

    export_csv.click(ratings_csv, session, download, api_name="rate_export_csv")
    export_jsonl.click(ratings_jsonl, session, download, api_name="rate_export_jsonl")
    export_pairs.click(preference_pairs, session, download, api_name="rate_export_pairs")
    upload.upload(import_ratings, [session, upload], [imported, *shown], api_name="rate_import")
    send.click(send_hard, [session, hard_items], sent, api_name="rate_send_hard_examples")
    return session


def _chosen(session_id: str | None) -> str:
    if not session_id:
        raise ConfigError("No session chosen.", "Pick a session first.")
    return session_id


def _interval(low: float | None, high: float | None, digits: int = 2, percent: bool = False) -> str:
    if low is None or high is None:
        return tr("needs 2+ items")
    return f"{low:.0%}–{high:.0%}" if percent else f"{low:.{digits}f}–{high:.{digits}f}"


def _share(share: Share) -> str:
    return f"{share.rate:.0%} ({_interval(share.low, share.high, percent=True)})" if share.total else "–"


def _summary(found: SessionResults) -> str:
    session = found.session
    raters = ", ".join(tr("{rater} ({rated} rated)", rater=row.rater, rated=row.rated) for row in found.raters)
    return (tr("**{name}** · {mode} · {items} items from {source} · {overlap} rater(s) per item · models: {models}",
               name=session.name, mode=tr(session.mode), items=session.items, source=tr(session.source),
               overlap=session.overlap, models=", ".join(f"`{m}`" for m in session.models)) + "\n\n"
            + tr("**{count} ratings** by {raters}.", count=found.ratings, raters=raters or tr("nobody yet")))


def _label(found: SessionResults, name: str) -> str:
    return tr(found.session.criterion(name).label)


def columns(names: list[str]) -> list[str]:
    return [tr(name) for name in names]


def _why(why: str) -> str:
    """Why an item is low-rated (core.rating.feedback: reasons joined by '; ') in the reader's language."""
    parts = []
    for reason in why.split("; "):
        label, colon, levels = reason.partition(": ")
        if tr(reason) == reason and colon:   # "Safety: Harmful advice, Privacy leak"
            reason = tr(label) + tr(": ") + tr(", ").join(tr(level) for level in levels.split(", "))
        parts.append(tr(reason))
    return tr("; ").join(parts)


def _scores(found: SessionResults) -> pd.DataFrame:
    return pd.DataFrame([(row.model, _label(found, row.criterion), f"{row.mean.value:.2f}",
                          _interval(row.mean.low, row.mean.high), row.mean.n, row.ratings) for row in found.scores],
                        columns=columns(SCORE_COLUMNS))


def _distribution(found: SessionResults) -> object:
    rows = []
    for score in found.scores:
        criterion = found.session.criterion(score.criterion)
        label = tr(criterion.label)
        rows.append((f"{score.model} · {label}", [f"{label} {level.value} · {tr(level.label)}"
                                                  for level in criterion.levels], list(score.counts.values())))
    for choice in found.choices:
        if choice.category == results.ALL_PROMPTS:
            criterion = found.session.criterion(choice.criterion)
            rows.append((f"{choice.model} · {tr(criterion.label)}", [tr(level.label) for level in criterion.levels][::-1],
                         list(choice.counts.values())[::-1]))   # passing level last, on the right, like a high score
    return plots.as_plot(plots.rating_distribution_figure(rows)) if rows else None


def _wins(found: SessionResults) -> pd.DataFrame:
    order = {model: index for index, model in enumerate(found.session.models)}
    return pd.DataFrame([(row.model, row.opponent, _share(row.wins), _share(row.ties), _share(row.losses), row.wins.total)
                         for row in found.wins if order[row.model] > order[row.opponent]], columns=columns(WIN_COLUMNS))


def _choices(found: SessionResults) -> pd.DataFrame:
    rows = []
    for row in found.choices:
        criterion = found.session.criterion(row.criterion)
        problems = ", ".join(f"{tr(criterion.level(value).label)} {count}" for value, count in row.counts.items()
                             if count and value not in criterion.passing)
        rows.append((row.model, tr(criterion.label), tr("all") if row.category == results.ALL_PROMPTS else row.category,
                     f"{row.passed.rate:.0%}", _interval(row.passed.low, row.passed.high, percent=True), row.passed.total,
                     problems or tr("none")))
    return pd.DataFrame(rows, columns=columns(CHOICE_COLUMNS))


def _agreement(found: SessionResults) -> str:
    lines = [tr("### Agreement between raters"), tr("| Criterion | Krippendorff's α | What it means | Items rated by 2+ |"),
             "| --- | --- | --- | --- |"]
    for row in found.agreement:
        value = "–" if row.alpha.value is None else f"**{row.alpha.value:.2f}** ({tr(row.alpha.level)})"
        lines.append(f"| {_label(found, row.criterion)} | {value} | {tr(row.alpha.words)} | {row.alpha.items} |")
    kappas = [(row.criterion, kappa) for row in found.agreement for kappa in row.kappas]
    weighted = tr(" (weighted)")
    if kappas:
        lines += ["", tr("| Criterion | Raters | Cohen's κ | Reading | Items both rated |"), "| --- | --- | --- | --- | --- |"]
        lines += [f"| {_label(found, name)} | {k.rater_a} – {k.rater_b} | "
                  f"{'–' if k.value is None else f'{k.value:.2f}' + (weighted if k.weighted else '')} | {tr(k.words)} | "
                  f"{k.items} |" for name, k in kappas]
    return "\n".join([*lines, "", tr(agreement.ALPHA_EXPLAINED), "", tr(agreement.KAPPA_EXPLAINED)])


def _disagreements(found: SessionResults) -> pd.DataFrame:
    return pd.DataFrame([(row.item, _label(found, row.criterion),
                          " · ".join(f"{r}: {tr(label)}" for r, label in row.given.items()),
                          " vs ".join(row.models), row.prompt[:CELL_CHARS]) for row in found.disagreements],
                        columns=columns(DISAGREEMENT_COLUMNS))


def _hard(candidates: list[feedback.HardExample]) -> pd.DataFrame:
    return pd.DataFrame([(c.item, _why(c.why), c.messages[-1]["content"][:CELL_CHARS], " | ".join(c.responses)[:CELL_CHARS],
                          c.corrected[:CELL_CHARS], c.rater) for c in candidates], columns=columns(HARD_COLUMNS))
