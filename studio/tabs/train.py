"""Train tab: start, stop and resume the background run, follow it live, and browse the run history.

Each browser session keeps which run it follows and how far it has read that run's metrics file
(a `Following` in gr.State); a timer polls about once a second, only while the run is active, and
reads only the new lines. A reload, a second tab or a restarted studio attaches again from disk.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import gradio as gr
import pandas as pd

from core import config as run_config
from core.errors import ConfigError
from core.planning import preflight
from core.planning.preflight import format_duration
from core.runs import history, metrics, monitor, records
from core.runs.records import RunStatus
from core.system.hardware import max_training_processes
from core.text import N_
from studio import notify, plots
from studio.context import StudioContext
from studio.errors import friendly
from studio.i18n import tr

POLL_SECONDS = 1.0
LOG_LINES = 10
HISTORY_COLUMNS = [N_("Name"), N_("Model"), N_("Dataset"), N_("Status"), N_("Best eval loss"), N_("Tokens/s"),
                   N_("Duration"), N_("Created"), N_("Id")]
DIFF_COLUMNS = [N_("Setting"), N_("Run A"), N_("Run B")]
STATE_LABELS = {"queued": N_("Starting"), "running": N_("Training"), "stopping": N_("Stopping"),
                "finished": N_("✓ Finished"), "stopped": N_("Stopped"), "failed": N_("✗ Failed"),
                "interrupted": N_("Interrupted")}
# The state as one word, for the history table and the run pickers.
STATE_WORDS = {"queued": N_("queued"), "running": N_("running"), "stopping": N_("stopping"), "finished": N_("finished"),
               "stopped": N_("stopped"), "failed": N_("failed"), "interrupted": N_("interrupted")}


@dataclass
class Following:
    """The run a browser session shows, and how far it has read its metrics file."""

    run_id: str | None = None
    offset: int = 0
    file_id: int = 0
    records: list[dict[str, Any]] = field(default_factory=list)
    announced_end: bool = False   # the toast for the run's end was shown


def state_word(state: str) -> str:
    return tr(STATE_WORDS.get(state, state))


def banner(status: RunStatus | None) -> str:
    if status is None:
        return tr("No run yet. Choose settings in the **Configure** tab, then press **Start**.")
    headline = tr("**{state}** · run *{name}* (`{run_id}`)", state=tr(STATE_LABELS.get(status.state, status.state)),
                  name=html.escape(status.name), run_id=status.run_id)
    if status.state == "failed" and status.error:
        why = tr("**Why ({kind}):** {message}", kind=tr(status.error.get("kind", "error")),
                 message=tr(status.error.get("message", status.message)))
        fix = tr("**What to try:** {fix}", fix=tr(status.error.get("fix") or "See the log below."))
        return f"{headline}\n\n{why}\n\n{fix}"
    return f"{headline} — {tr(status.message)}"


def progress_html(status: RunStatus | None) -> str:
    if status is None or not status.total_steps:
        return ""
    share = min(1.0, status.step / status.total_steps)
    parts = [tr("Step {step} of {total}", step=status.step, total=status.total_steps),
             tr("epoch {epoch}", epoch=f"{status.epoch:.2f}")]
    if status.active and status.eta_s is not None:
        parts.append(tr("ETA {duration}", duration=tr(format_duration(status.eta_s))))
    if status.loss is not None:
        parts.append(tr("loss {loss}", loss=f"{status.loss:.4f}"))
    return (f'<div class="train-progress" role="progressbar" aria-valuenow="{status.step}" '
            f'aria-valuemax="{status.total_steps}"><div class="train-progress-fill" style="width:{share:.1%}"></div>'
            f'</div><div class="train-progress-text">{" · ".join(parts)}</div>')


def history_frame(rows: list[history.RunRow]) -> pd.DataFrame:
    def number(value: float | None, digits: int) -> str:
        return "" if value is None else f"{value:.{digits}f}"

    return pd.DataFrame([(row.name, row.model, row.dataset, state_word(row.state), number(row.best_eval_loss, 4),
                          number(row.tokens_per_s, 0), "" if row.duration_s is None else tr(format_duration(row.duration_s)),
                          row.created.replace("T", " ")[:19], row.run_id) for row in rows],
                        columns=[tr(column) for column in HISTORY_COLUMNS])


def build(ctx: StudioContext, app: gr.Blocks, current_config: gr.State) -> None:
    workspace, jobs = ctx.workspace, ctx.jobs
    following = gr.State(Following())
    timer = gr.Timer(POLL_SECONDS, active=False)
    with gr.Row(equal_height=True):
        processes = gr.Dropdown(list(range(1, max_training_processes() + 1)), value=1, label="Processes",
                                elem_id="train-processes", scale=1,
                                info="One per GPU, training together; on a CPU they share the cores.")
        start = gr.Button("Start", variant="primary", elem_id="train-start", scale=1)
        stop = gr.Button("Stop", variant="stop", elem_id="train-stop", interactive=False, scale=1)
        resume = gr.Button("Resume", elem_id="train-resume", interactive=False, scale=1)
    with gr.Accordion("Resume with changed settings", open=False, elem_id="resume-settings"):
        gr.Markdown("A stopped, failed or interrupted run continues from its last checkpoint. These settings "
                    "may change on the way; the others are fixed by the checkpoint.")
        with gr.Row():
            resume_lr = gr.Number(label="Learning rate", elem_id="resume-learning-rate",
                                  info="Lower it when the loss jumped or became NaN.")
            resume_steps = gr.Number(label="Total steps (-1: epochs decide)", precision=0, elem_id="resume-max-steps")
            resume_eval = gr.Number(label="Evaluate every N steps", precision=0, elem_id="resume-eval-steps")
            resume_save = gr.Number(label="Save a checkpoint every N steps", precision=0, elem_id="resume-save-steps")
    status_banner = gr.Markdown(elem_id="train-banner")   # filled on load (attach), so the language switch leaves it
    progress = gr.HTML(elem_id="train-progress")
    with gr.Row():
        loss_chart = gr.Plot(label="Loss", show_label=False, elem_id="train-loss-chart")
        stats_chart = gr.Plot(label="Learning rate, gradient norm, speed, memory", show_label=False,
                              elem_id="train-stats-chart")
    log = gr.Textbox(label="Run log (last lines)", lines=LOG_LINES, max_lines=LOG_LINES, interactive=False,
                     elem_id="train-log")

    with gr.Accordion("Run history", open=True, elem_id="history-section"):
        runs_table = gr.Dataframe(headers=HISTORY_COLUMNS, interactive=False, wrap=True, elem_id="runs-table",
                                  column_widths=["17%", "11%", "12%", "8%", "9%", "8%", "9%", "13%", "13%"])
        with gr.Row():
            chosen = gr.Dropdown([], label="Run", elem_id="history-run", scale=2)
            open_run = gr.Button("Open", elem_id="history-open", scale=1)
            new_name = gr.Textbox(label="New name", elem_id="history-new-name", scale=2)
            rename = gr.Button("Rename", elem_id="history-rename", scale=1)
            delete = gr.Button("Delete…", variant="stop", elem_id="history-delete", scale=1)
        with gr.Row(visible=False, elem_id="history-confirm") as confirm_row:
            confirm_text = gr.Markdown(elem_id="history-confirm-text")
            confirm = gr.Button("Yes, delete it", variant="stop", elem_id="history-delete-confirm")
            cancel = gr.Button("Cancel", elem_id="history-delete-cancel")
        compare = gr.Dropdown([], multiselect=True, max_choices=4, label="Compare runs (up to 4)",
                              elem_id="history-compare")
        compare_chart = gr.Plot(label="Loss curves", elem_id="history-compare-chart")
        with gr.Row():
            diff_a = gr.Dropdown([], label="Config of run A", elem_id="history-diff-a")
            diff_b = gr.Dropdown([], label="Config of run B", elem_id="history-diff-b")
        diff_table = gr.Dataframe(headers=DIFF_COLUMNS, interactive=False, elem_id="history-diff")

    resume_settings = [resume_lr, resume_steps, resume_eval, resume_save]
    # What a poll redraws; it leaves the resume settings alone, so what someone types there is not put back.
    polled = [status_banner, progress, loss_chart, stats_chart, log, following, timer, stop, resume]
    view = [*polled, *resume_settings]
    history_outputs = [runs_table, chosen, compare, diff_a, diff_b]

    def busy(status: RunStatus) -> bool:
        """Active on disk, or its thread here still saving after the status said it ended."""
        return status.active or jobs.active_run_id == status.run_id

    def render(state: Following, snapshot: monitor.Snapshot, charts_changed: bool) -> tuple:
        status = snapshot.status
        charts = ((plots.as_plot(plots.loss_figure(state.records)), plots.as_plot(plots.stats_figure(state.records)))
                  if charts_changed
                  else (gr.skip(), gr.skip()))
        return (banner(status), progress_html(status), *charts, snapshot.log_tail, state,
                gr.Timer(active=busy(status)), gr.Button(interactive=status.active),
                gr.Button(interactive=status.resumable and not busy(status)))

    def follow_from_start(run_id: str) -> tuple:
        snapshot = monitor.follow(workspace, run_id, log_lines=LOG_LINES)
        state = Following(run_id, snapshot.new_metrics.offset, snapshot.new_metrics.file_id,
                          snapshot.new_metrics.records)
        settings = records.load_config(workspace.run_folder(run_id)).train
        return (*render(state, snapshot, charts_changed=True),
                settings.learning_rate, settings.max_steps, settings.eval_steps, settings.save_steps)

    def list_history() -> tuple:
        rows = history.table(workspace)
        choices = [(f"{row.name} ({state_word(row.state)})", row.run_id) for row in rows]
        return (history_frame(rows), *(gr.Dropdown(choices=choices) for _ in range(4)))

    def nothing_followed(message: str) -> tuple:
        return (message, "", None, None, "", Following(), gr.Timer(active=False), gr.Button(interactive=False),
                gr.Button(interactive=False))

    @friendly
    @ctx.allow("view-runs", otherwise=lambda: (gr.skip(),) * len(view))
    def attach() -> tuple:
        status = jobs.attach()
        if status is None:
            return (*nothing_followed(banner(None)), *(gr.skip(),) * len(resume_settings))
        return follow_from_start(status.run_id)

    @friendly
    @ctx.allow("view-runs", otherwise=lambda: (gr.skip(),) * len(polled + history_outputs))
    def poll(state: Following) -> tuple:
        if state.run_id is None:
            return tuple(gr.skip() for _ in polled + history_outputs)
        if not workspace.run_folder(state.run_id).root.exists():   # deleted on another page, or by someone else
            return (*nothing_followed(tr("Run **{run_id}** was deleted (on another page or by another user). "
                                         "Pick a run from the history below.", run_id=state.run_id)), *list_history())
        snapshot = monitor.follow(workspace, state.run_id, state.offset, state.file_id, LOG_LINES)
        chunk = snapshot.new_metrics
        state.records = chunk.records if chunk.reset else state.records + chunk.records
        state.offset, state.file_id = chunk.offset, chunk.file_id
        ended = not busy(snapshot.status)
        if ended and snapshot.status is not None and not state.announced_end:
            state.announced_end = True
            notify.job_ended(N_("training run '{name}'").format(name=snapshot.status.name), snapshot.status.state,
                             snapshot.status.message, snapshot.status.error)
        return (*render(state, snapshot, charts_changed=bool(chunk.records) or chunk.reset),
                *(list_history() if ended else (gr.skip(),) * len(history_outputs)))

    @friendly
    @ctx.allow("train")
    def start_run(config: dict | None, process_count: int) -> tuple:
        if config is None:
            raise ConfigError("The settings in the Configure tab are not valid yet.", "Fix what it points out, then start.")
        checked = run_config.validate(config)
        preflight.ensure_ready(checked, workspace, ctx.path_roots)
        return (*follow_from_start(jobs.start(checked, int(process_count or 1))), *list_history())

    @friendly
    @ctx.allow("train")
    def stop_run(state: Following) -> str:
        if not jobs.stop(state.run_id):
            return gr.skip()
        return tr("**Stopping** · run `{run_id}` — ends after the current step and saves the adapter.", run_id=state.run_id)

    @friendly
    @ctx.allow("train")
    def resume_run(state: Following, learning_rate: float, max_steps: int, eval_steps: int, save_steps: int) -> tuple:
        changes = {"train.learning_rate": learning_rate, "train.max_steps": max_steps,
                   "train.eval_steps": eval_steps, "train.save_steps": save_steps}
        run_id = jobs.resume(state.run_id or "", changes)
        return (*follow_from_start(run_id), *list_history())

    @friendly
    @ctx.allow("view-runs")
    def open_chosen(run_id: str | None) -> tuple:
        if not run_id:
            raise ConfigError("No run chosen.", "Pick a run from the list first.")
        return follow_from_start(run_id)

    @friendly
    @ctx.allow("train")
    def rename_chosen(run_id: str | None, name: str) -> tuple:
        history.rename(workspace, run_id or "", name)
        return ("", *list_history())

    @friendly
    @ctx.allow("train")
    def ask_delete(run_id: str | None) -> tuple:
        if not run_id:
            raise ConfigError("No run chosen.", "Pick a run from the list first.")
        return (gr.Row(visible=True),
                tr("Delete run **{run_id}** with its adapter, checkpoints and metrics? Other runs are not touched.",
                   run_id=run_id))

    @friendly
    @ctx.allow("train")
    def delete_chosen(run_id: str | None) -> tuple:
        history.delete(workspace, run_id or "")
        return (gr.Row(visible=False), *list_history())

    @friendly
    @ctx.allow("view-runs")
    def compare_runs(run_ids: list[str]) -> Any:
        if not run_ids:
            return None
        return plots.as_plot(plots.compare_figure({run_id: metrics.read_all(workspace.run_folder(run_id).metrics)
                                                   for run_id in run_ids}))

    @friendly
    @ctx.allow("view-runs")
    def diff_runs(run_a: str | None, run_b: str | None) -> pd.DataFrame:
        rows = history.config_diff(workspace, run_a, run_b) if run_a and run_b else []
        return pd.DataFrame([(name, str(a), str(b)) for name, a, b in rows], columns=[tr(column) for column in DIFF_COLUMNS])

    @friendly
    @ctx.allow("view-runs")
    def active_status() -> dict | None:
        """The status of the run this studio is training, else of the newest run (None without runs)."""
        status = jobs.attach()
        return status.to_json() if status else None

    quiet = {"show_progress": "hidden"}
    gr.api(active_status, api_name="train_status", queue=False)
    app.load(attach, None, view, api_name="train_attach", **quiet)
    app.load(ctx.allow("view-runs", otherwise=lambda: (gr.skip(),) * len(history_outputs))(list_history), None,
             history_outputs, api_name="history_list", **quiet)
    timer.tick(poll, following, polled + history_outputs, api_name="train_poll", trigger_mode="always_last", **quiet)
    start.click(start_run, [current_config, processes], view + history_outputs, api_name="train_start")
    stop.click(stop_run, following, status_banner, api_name="train_stop")
    resume.click(resume_run, [following, *resume_settings], view + history_outputs, api_name="train_resume")
    open_run.click(open_chosen, chosen, view, api_name="history_open")
    rename.click(rename_chosen, [chosen, new_name], [new_name, *history_outputs], api_name="history_rename")
    delete.click(ask_delete, chosen, [confirm_row, confirm_text], api_name="history_delete_ask")
    confirm.click(delete_chosen, chosen, [confirm_row, *history_outputs], api_name="history_delete")
    cancel.click(lambda: gr.Row(visible=False), None, confirm_row, api_name="history_delete_cancel")
    compare.change(compare_runs, compare, compare_chart, api_name="history_compare", **quiet)
    gr.on([diff_a.change, diff_b.change], diff_runs, [diff_a, diff_b], diff_table, api_name="history_diff", **quiet)
