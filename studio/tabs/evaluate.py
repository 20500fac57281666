"""Evaluate tab: score a run (and the base model beside it) on held-out data, look at the worst answers, fix
their ideal answers, send them to hard examples, train again on a mix, and download the run's report.

The evaluation runs as a background job (core.evaluation.job through the job runner): the page polls its
status about once a second while it runs, and Cancel asks it to stop. Results are read from the eval folder.
"""

from __future__ import annotations

import html
import shutil
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from core.data import splits
from core.errors import ConfigError
from core.evaluation import job, results
from core.evaluation.report import METRIC_LABELS, write_report
from core.evaluation.workflow import EvalRequest
from core.jobs import prepare
from core.planning import preflight
from core.planning.preflight import format_duration
from core.runs import records
from core.text import N_
from studio import notify
from studio.context import StudioContext
from studio.downloads import offer
from studio.errors import friendly
from studio.i18n import tr

POLL_SECONDS = 1.0
VALIDATION, UPLOADED = "The run's validation split", "A file I upload"
FROM_SCRATCH, TWO_STAGE = "From scratch", "Two-stage: continue from this run's adapter"
SAMPLE_COLUMNS = ["#", N_("Lang"), N_("Prompt"), N_("Reference"), N_("Baseline answer"), N_("Answer"), N_("Baseline"),
                  N_("Score"), N_("Change"), N_("Sent to")]
DELTA_COLUMNS = [N_("Compared"), N_("Metric"), N_("Change"), N_("95% CI"), N_("CI excludes 0"), N_("Better"),
                 N_("Worse"), N_("Same")]
PREVIEW_CHARS = 160
# Words core writes into results and statuses, shown translated: a job's or a run's state, and how an answer
# compares with the baseline's (core.evaluation.stats.signs).
STATE_WORDS = (N_("queued"), N_("running"), N_("stopping"), N_("finished"), N_("stopped"), N_("failed"),
               N_("interrupted"))
CHANGE_WORDS = (N_("better"), N_("worse"), N_("same"))


def _short(text: str | None) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS - 1] + "…"


def _estimate(entry: dict[str, Any]) -> str:
    if entry.get("value") is None:
        return "–"
    return f"{entry['value']:.2f} [{entry['ci_low']:.2f}, {entry['ci_high']:.2f}]"


def _columns(*names: str) -> list[str]:
    return [tr(name) for name in names]


def metrics_frame(metrics: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame([[tr(model["label"]), *(_estimate(model[name]) for name in METRIC_LABELS),
                          model["counts"]["samples"]] for model in metrics["models"].values()],
                        columns=_columns(N_("Model"), *METRIC_LABELS.values(), N_("Samples")))


def deltas_frame(metrics: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for comparison in metrics["comparisons"]:
        label = f"{tr(metrics['models'][comparison['model']]['label'])} − " \
                f"{tr(metrics['models'][comparison['baseline']]['label'])}"
        for name, entry in comparison["deltas"].items():
            if entry["delta"] is None:
                continue
            interval = f"[{entry['ci_low']:+.2f}, {entry['ci_high']:+.2f}]"
            rows.append([label, tr(METRIC_LABELS[name]), f"{entry['delta']:+.2f}", interval,
                         tr("yes") if entry["significant"] else tr("no"), entry["better"], entry["worse"], entry["same"]])
    return pd.DataFrame(rows, columns=_columns(*DELTA_COLUMNS))


def languages_frame(metrics: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame([[tr(model["label"]), code, figures["samples"], _estimate(figures["bleu"]),
                          _estimate(figures["chrf"]), _estimate(figures["rougeL"]), _estimate(figures["perplexity"])]
                         for model in metrics["models"].values() for code, figures in model["by_language"].items()],
                        columns=_columns(N_("Model"), N_("Language"), N_("Samples"), "BLEU", "chrF", "ROUGE-L",
                                         N_("Perplexity")))


def summary_markdown(metrics: dict[str, Any], run_id: str) -> str:
    held = metrics["held_out"]
    languages = ", ".join(f"{code} {count}" for code, count in held.get("languages", {}).items())
    lines = [f"**{html.escape(tr(results.headline(metrics, run_id)) or tr('Finished'))}**",
             tr("Held-out data: {name} · languages: {languages} · scores 0-100, 95% bootstrap intervals in brackets.",
                name=html.escape(tr(held["name"])), languages=languages)]
    for model in metrics["models"].values():
        settings = model["generation"]
        lines.append(tr("{model}: temperature {temperature}, top-p {top_p}, at most {tokens} new tokens, repetition "
                        "penalty {penalty}", model=html.escape(tr(model["label"])), temperature=settings["temperature"],
                        top_p=settings["top_p"], tokens=settings["max_new_tokens"],
                        penalty=settings["repetition_penalty"]))
    return "\n\n".join(lines)


def samples_frame(rows: list[results.SampleRow]) -> pd.DataFrame:
    def number(value: float | None) -> str:
        return "" if value is None else f"{value:.1f}"
    return pd.DataFrame([[row.index, row.language, _short(row.prompt), _short(row.reference) + (" ✎" if row.edited else ""),
                          _short(row.baseline_answer), _short(row.answer), number(row.baseline_score), number(row.score),
                          tr(row.change), f"hard-examples v{row.sent}" if row.sent else ""] for row in rows],
                        columns=_columns(*SAMPLE_COLUMNS))


def sample_markdown(row: results.SampleRow, sort_label: str) -> str:
    def block(title: str, text: str | None) -> str:
        body = html.escape(text or "").replace("\n", "<br>") or f"<em>{tr('(empty)')}</em>"
        return f"**{title}**\n\n<div class='eval-text'>{body}</div>"
    scores = ", ".join(f"{tr(METRIC_LABELS.get(name, name))} {value:.2f}" for name, value in row.scores.items()
                       if value is not None)
    sort_label = tr(sort_label)
    parts = [tr("### Item {index} ({language}, {source})", index=row.index, language=row.language,
                source=html.escape(row.source)),
             block(tr("Prompt"), "\n\n".join(f"{m['role']}: {m['content']}" for m in row.context)),
             block(tr("Reference (original; an edited ideal answer is below)") if row.edited else tr("Reference"),
                   row.original_reference)]
    if row.baseline_answer is not None:
        parts.append(block(tr("Baseline answer ({measure} {score})", measure=sort_label, score=f"{row.baseline_score:.1f}")
                           if row.baseline_score is not None else tr("Baseline answer"), row.baseline_answer))
    parts.append(block(tr("Answer ({measure} {score}, {change})", measure=sort_label, score=f"{row.score:.1f}",
                          change=tr(row.change or "no baseline"))
                       if row.score is not None else tr("Answer"), row.answer))
    parts.append(tr("Scores of the answer: {scores}", scores=scores))
    return "\n\n".join(parts)


def progress_html(status: Any) -> str:
    if status is None:
        return ""
    share = status.done / status.total if status.total else 0.0
    parts = [html.escape(tr(status.title)),
             tr("{done} of {total} done", done=status.done, total=status.total) if status.total else tr("starting"),
             html.escape(tr(status.message))]
    if status.active and status.eta_s is not None:
        parts.append(tr("ETA {time}", time=tr(format_duration(status.eta_s))))
    if status.state == "failed" and status.error:
        parts.append(tr("<b>Why:</b> {why} <b>What to try:</b> {fix}", why=html.escape(tr(status.error.get("message", ""))),
                        fix=html.escape(tr(status.error.get("fix", "")))))
    state = tr(status.state)
    state = state[:1].upper() + state[1:]   # "Running"; Chinese has no capitals
    return (f'<div class="train-progress" role="progressbar" aria-valuenow="{status.done}" aria-valuemax="{status.total}">'
            f'<div class="train-progress-fill" style="width:{min(1.0, share):.1%}"></div></div>'
            f'<div class="train-progress-text">{state} · {" · ".join(parts)}</div>')


def build(ctx: StudioContext, app: gr.Blocks) -> None:
    workspace, jobs = ctx.workspace, ctx.jobs
    watching = gr.State(None)   # the folder of the evaluation this page started and follows
    timer = gr.Timer(POLL_SECONDS, active=False)
    gr.Markdown("Score a trained run on data it has not seen: BLEU, chrF and ROUGE (right for Chinese and English), "
                "perplexity and exact match, with the base model answering the same prompts, and 95% confidence "
                "intervals for every difference. Then look at the worst answers, fix them, and train again on them.")
    with gr.Row(equal_height=True):
        run = gr.Dropdown([], label="Run to evaluate", elem_id="eval-run", scale=3)
        compare = gr.Dropdown([], multiselect=True, label="Also compare these runs (same prompts)",
                              elem_id="eval-compare", scale=3)
        refresh = gr.Button("Refresh", elem_id="eval-refresh", scale=1)
    with gr.Row(equal_height=True):
        source = gr.Radio([VALIDATION, UPLOADED], value=VALIDATION, label="Held-out data", elem_id="eval-source",
                          info="The validation rows the run's training held out, or a file in any format the Data tab reads.")
        upload = gr.File(label="Held-out file (.jsonl, .json, .csv)", file_types=[".jsonl", ".json", ".csv"],
                         elem_id="eval-file", visible=False)
        include_base = gr.Checkbox(True, label="The base model answers too", elem_id="eval-base",
                                   info="Compare tuned against base on the same prompts.")
        limit = gr.Number(0, precision=0, minimum=0, label="Only the first N prompts (0: all)", elem_id="eval-limit")
    with gr.Row():
        start = gr.Button("Evaluate", variant="primary", elem_id="eval-start")
        cancel = gr.Button("Cancel", variant="stop", interactive=False, elem_id="eval-cancel")
    progress = gr.HTML(elem_id="eval-progress")

    with gr.Accordion("Results", open=True, elem_id="eval-results-section"):
        evaluation = gr.Dropdown([], label="Evaluation", elem_id="eval-choice")
        summary = gr.Markdown(elem_id="eval-summary")
        metrics_table = gr.Dataframe(interactive=False, wrap=True, elem_id="eval-metrics", label="Metrics per model")
        deltas_table = gr.Dataframe(interactive=False, wrap=True, elem_id="eval-deltas",
                                    label="Tuned minus baseline, paired bootstrap")
        languages_table = gr.Dataframe(interactive=False, wrap=True, elem_id="eval-languages", label="Per language")

    with gr.Accordion("Samples, worst first", open=True, elem_id="eval-samples-section"):
        with gr.Row():
            sort_by = gr.Dropdown([(label, key) for key, label in results.SORT_KEYS.items()], value="chrf",
                                  label="Sort by (worst first)", elem_id="eval-sort")
            model = gr.Dropdown([], label="Answers of", elem_id="eval-model")
        samples_table = gr.Dataframe(headers=SAMPLE_COLUMNS, interactive=False, wrap=True, max_height=420,
                                     elem_id="eval-samples", label="Click a row to open it",
                                     column_widths=["4%", "5%", "17%", "17%", "16%", "16%", "7%", "6%", "6%", "6%"])
        item = gr.Number(None, precision=0, label="Open item # (or click a row above)", elem_id="eval-item")
        detail = gr.Markdown(elem_id="eval-sample")
        ideal = gr.Textbox(label="Ideal answer (edit it, then save)", lines=3, elem_id="eval-ideal")
        with gr.Row():
            save = gr.Button("Save ideal answer", elem_id="eval-save-ideal")
            pick = gr.Button("Add to selection", elem_id="eval-pick")
        selection = gr.Textbox(label="Selected items (numbers, comma-separated)", elem_id="eval-selection")
        send = gr.Button("Send selected to hard examples", variant="primary", elem_id="eval-send")
        sent_report = gr.Markdown(elem_id="eval-send-report")

    with gr.Accordion("Train again with the hard examples", open=True, elem_id="eval-retrain-section"):
        gr.Markdown("Mixes the latest hard examples into this run's training data as a new dataset version (with "
                    "lineage) and starts a run on it. The hard examples came from held-out data: judge the new run "
                    "on other data.")
        with gr.Row(equal_height=True):
            ratio = gr.Textbox("8:2", label="Mix ratio (your data : hard examples)", elem_id="eval-ratio")
            mode = gr.Radio([FROM_SCRATCH, TWO_STAGE], value=TWO_STAGE, label="Start", elem_id="eval-mode")
            retrain = gr.Button("Create the mix and start the run", elem_id="eval-retrain")
        retrain_report = gr.Markdown(elem_id="eval-retrain-report")

    with gr.Accordion("Report", open=True, elem_id="eval-report-section"):
        gr.Markdown("One self-contained HTML file (opens offline, charts included) and the same in Markdown: config, "
                    "data lineage, loss curves, metrics with intervals, base-vs-tuned examples, human ratings.")
        build_report = gr.Button("Build the report", elem_id="eval-report-build")
        report_files = gr.File(label="Report", file_count="multiple", interactive=False, elem_id="eval-report-files")

    # ------------------------------------------------------------ handlers

    def run_choices() -> list[tuple[str, str]]:
        found = []
        for status in records.list_runs(workspace):
            if (workspace.run_folder(status.run_id).adapter / "adapter_config.json").is_file():
                found.append((f"{status.name} ({tr(status.state)})", status.run_id))
        return found

    def eval_choices(run_id: str | None) -> list[tuple[str, str]]:
        if not run_id:
            return []
        return [(f"{s.eval_id} · {tr(s.state)}" + (f" · {tr(s.headline)}" if s.headline else ""), s.eval_id)
                for s in results.list_evals(workspace, run_id)]

    @friendly
    @ctx.allow("view-runs", otherwise=lambda: (gr.skip(), gr.skip()))
    def list_runs(current: str | None) -> tuple:
        found = run_choices()
        ids = [run_id for _, run_id in found]
        chosen = current if current in ids else (ids[0] if ids else None)
        return gr.Dropdown(choices=found, value=chosen), gr.Dropdown(choices=found)

    @friendly
    @ctx.allow("view-runs")
    def list_evals(run_id: str | None) -> Any:
        found = eval_choices(run_id)
        finished = results.latest_complete(workspace, run_id) if run_id else None
        return gr.Dropdown(choices=found, value=finished)

    @friendly
    @ctx.allow("view-runs")
    def show_eval(run_id: str | None, eval_id: str | None) -> tuple:
        if not run_id or not eval_id:
            return "", None, None, None, gr.Dropdown(choices=[], value=None)
        metrics = results.load_metrics(workspace, run_id, eval_id)
        answering = [(tr(m["label"]), key) for key, m in metrics["models"].items() if key != metrics["baseline"]] or \
            [(tr(m["label"]), key) for key, m in metrics["models"].items()]
        default = f"run:{run_id}" if f"run:{run_id}" in metrics["models"] else answering[0][1]
        return (summary_markdown(metrics, run_id), metrics_frame(metrics), deltas_frame(metrics),
                languages_frame(metrics), gr.Dropdown(choices=answering, value=default))

    def samples(run_id: str | None, eval_id: str | None, model_key: str | None, sort_key: str) -> Any:
        if not run_id or not eval_id or not model_key:
            return None
        return samples_frame(results.samples(workspace, run_id, eval_id, model_key, sort_key))

    def _row(run_id: str | None, eval_id: str | None, model_key: str | None, sort_key: str, index: int) -> results.SampleRow:
        if not run_id or not eval_id:
            raise ConfigError("No evaluation is open.", "Pick a run and one of its evaluations first.")
        for row in results.samples(workspace, run_id, eval_id, model_key, sort_key):
            if row.index == index:
                return row
        raise ConfigError(f"There is no item {index}.", "Click a row of the table.")

    def item_view(run_id: str | None, eval_id: str | None, model_key: str | None, sort_key: str,
                  index: float | None) -> tuple:
        if index is None:
            return "", ""
        row = _row(run_id, eval_id, model_key, sort_key, int(index))
        return sample_markdown(row, results.SORT_KEYS[sort_key]), row.reference

    @friendly
    @ctx.allow("view-runs")
    def clicked(run_id: str | None, eval_id: str | None, model_key: str | None, sort_key: str,
                event: gr.SelectData) -> tuple:
        values = event.row_value or []
        if not values or not str(values[0]).strip().isdigit():
            return gr.skip(), gr.skip(), gr.skip()
        index = int(values[0])
        return (index, *item_view(run_id, eval_id, model_key, sort_key, index))

    @friendly
    @ctx.allow("evaluate")
    def save_ideal(run_id: str | None, eval_id: str | None, model_key: str | None, sort_key: str, index: float | None,
                   text: str) -> tuple:
        if index is None:
            raise ConfigError("No item is open.", "Click a row of the table first.")
        results.save_ideal_answer(workspace, run_id or "", eval_id or "", int(index), text or "")
        return (*item_view(run_id, eval_id, model_key, sort_key, index), samples(run_id, eval_id, model_key, sort_key))

    show_samples = friendly(ctx.allow("view-runs")(samples))   # the events' guarded forms (studio.access)
    open_item = friendly(ctx.allow("view-runs")(item_view))

    def add_to_selection(index: float | None, current: str) -> str:
        numbers = [part.strip() for part in (current or "").split(",") if part.strip()]
        if index is not None and str(int(index)) not in numbers:
            numbers.append(str(int(index)))
        return ", ".join(numbers)

    @friendly
    @ctx.allow("evaluate")
    def send_selected(run_id: str | None, eval_id: str | None, model_key: str | None, sort_key: str,
                      chosen: str) -> tuple:
        try:
            indices = [int(part) for part in (chosen or "").replace(" ", "").split(",") if part]
        except ValueError:
            raise ConfigError(f"'{chosen}' is not a list of item numbers.", "Write them like 3, 7, 12.") from None
        version = results.send_to_hard_examples(workspace, run_id or "", eval_id or "", indices)
        return (tr("Sent {count} item(s) to **hard-examples v{version}** ({rows} examples in all; lineage: run "
                   "{run}, evaluation {evaluation}).", count=len(indices), version=version.version, rows=version.rows,
                   run=run_id, evaluation=eval_id), "", samples(run_id, eval_id, model_key, sort_key))

    @friendly
    @ctx.allow("evaluate")
    def start_eval(run_id: str | None, others: list[str] | None, where: str, uploaded: Any, base: bool,
                   first: float | None) -> tuple:
        if not run_id:
            raise ConfigError("No run is chosen.", "Pick a run with an adapter first.")
        data_file = data_name = None
        if where == UPLOADED:
            if not uploaded:
                raise ConfigError("No held-out file is uploaded.", "Upload a file, or evaluate on the validation split.")
            data_file = str(uploaded)
            data_name = Path(getattr(uploaded, "orig_name", None) or data_file).name
        prepare.ensure_device_free(workspace)
        request = EvalRequest(run_id, [r for r in others or [] if r != run_id], bool(base), data_file, data_name,
                              max(0, int(first or 0)))
        folder, title, settings = job.prepare(workspace, request)
        try:
            jobs.start_job(job.KIND, folder, title, settings)
        except Exception:
            if not (folder / "status.json").exists():
                shutil.rmtree(folder, ignore_errors=True)
            raise
        return (str(folder), gr.Timer(active=True), gr.Button(interactive=True), gr.Button(interactive=False),
                progress_html(jobs.job_status(folder)))

    @friendly
    @ctx.allow("view-runs")
    def poll(folder: str | None, run_id: str | None) -> tuple:
        if not folder:
            return gr.skip(), gr.Timer(active=False), gr.skip(), gr.skip(), gr.skip()
        status = jobs.job_status(Path(folder))
        if status.active:
            return progress_html(status), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        chosen = Path(folder).name if status.state == "finished" else results.latest_complete(workspace, run_id or "")
        notify.background_job_ended(status)
        return (progress_html(status), gr.Timer(active=False), gr.Button(interactive=False), gr.Button(interactive=True),
                gr.Dropdown(choices=eval_choices(run_id), value=chosen))

    @friendly
    @ctx.allow("evaluate")
    def cancel_eval(folder: str | None) -> Any:
        if folder and jobs.cancel_job(Path(folder)):
            return progress_html(jobs.job_status(Path(folder)))
        return gr.skip()

    @friendly
    @ctx.allow("train")
    def start_next_run(run_id: str | None, ratio_text: str, how: str) -> str:
        if not run_id:
            raise ConfigError("No run is chosen.", "Pick the run whose hard examples to train on.")
        planned = results.next_run(workspace, run_id, splits.parse_ratio(ratio_text), two_stage=how == TWO_STAGE)
        preflight.ensure_ready(planned.config, workspace, ctx.path_roots)
        new_id = jobs.start(planned.config)
        return tr("Started run **{run}**. {description} Follow it in the **Train** tab.", run=new_id,
                  description=html.escape(tr(planned.description)))

    @friendly
    @ctx.allow("download")
    def make_report(run_id: str | None, eval_id: str | None) -> list[str]:
        if not run_id:
            raise ConfigError("No run is chosen.", "Pick a run first.")
        html_path, md_path = write_report(workspace, run_id, eval_id=eval_id or None)
        return [offer(path, f"report-{run_id}{path.suffix}") for path in (html_path, md_path)]

    def show_upload(where: str) -> Any:
        return gr.File(visible=where == UPLOADED)

    quiet = {"show_progress": "hidden"}
    app.load(list_runs, run, [run, compare], api_name="eval_runs", **quiet)
    refresh.click(list_runs, run, [run, compare], api_name="eval_refresh", **quiet)
    run.change(list_evals, run, evaluation, api_name="eval_list", **quiet)

    source.change(show_upload, source, upload, queue=False, api_name=False)
    results_outputs = [summary, metrics_table, deltas_table, languages_table, model]
    evaluation.change(show_eval, [run, evaluation], results_outputs, api_name="eval_show", **quiet)
    gr.on([model.change, sort_by.change], show_samples, [run, evaluation, model, sort_by], samples_table,
          api_name="eval_samples", **quiet)
    samples_table.select(clicked, [run, evaluation, model, sort_by], [item, detail, ideal], api_name=False, **quiet)
    item.submit(open_item, [run, evaluation, model, sort_by, item], [detail, ideal], api_name="eval_open", **quiet)
    save.click(save_ideal, [run, evaluation, model, sort_by, item, ideal], [detail, ideal, samples_table],
               api_name="eval_save_ideal")
    pick.click(add_to_selection, [item, selection], selection, api_name="eval_pick", queue=False)
    send.click(send_selected, [run, evaluation, model, sort_by, selection], [sent_report, selection, samples_table],
               api_name="eval_send_hard")
    start.click(start_eval, [run, compare, source, upload, include_base, limit],
                [watching, timer, cancel, start, progress], api_name="eval_start")
    timer.tick(poll, [watching, run], [progress, timer, cancel, start, evaluation], api_name="eval_poll",
               trigger_mode="always_last", **quiet)
    cancel.click(cancel_eval, watching, progress, api_name="eval_cancel")
    retrain.click(start_next_run, [run, ratio, mode], retrain_report, api_name="eval_retrain")
    build_report.click(make_report, [run, evaluation], report_files, api_name="eval_report")
