"""Export tab: turn a run into something to take away (a merged model, an adapter zip, an int8 or 4-bit
model, a GGUF file for llama.cpp and Ollama) as a background job with progress and Cancel; list the
exports with how each was checked; read a model card; download an adapter zip (a copy: studio.downloads);
see how to serve one.

An export counts as done only once its check passed (export.json); until then the list shows its job's
state, and a failed one says why. Models are never offered as downloads (they can be many GB): their
folder is shown instead, and the Chat tab lists merged and quantised exports as models."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from core.export import formats, records
from core.export.card import without_front_matter
from core.export.records import ExportRecord
from core.planning.preflight import format_duration
from core.runs import records as run_records
from core.system.job_status import JobStatus
from core.text import N_
from studio import downloads, notify
from studio.context import StudioContext
from studio.errors import friendly
from studio.i18n import tr

POLL_SECONDS = 1.0
COLUMNS = [N_("Export"), N_("Format"), N_("Run"), N_("State"), N_("Size"), N_("Check")]
# A job's state in words (the values stay English in status.json).
STATES = {"queued": N_("queued"), "running": N_("running"), "stopping": N_("stopping"), "finished": N_("finished"),
          "stopped": N_("stopped"), "failed": N_("failed"), "interrupted": N_("interrupted")}
SERVE_HELP = (
    "**Serve it:** `lora-studio serve RUN_ID …` answers OpenAI-compatible requests on 127.0.0.1 (several runs on "
    "one base, chosen per request by `model`). For production GPU serving, hand a merged export's `model/` "
    "folder to vLLM (`vllm serve DIR`) or TGI (`text-generation-launcher --model-id DIR`); "
    "`transformers serve --continuous-batching` serves it too.")


def _size(size: int) -> str:
    return f"{size / 1e9:.2f} GB" if size >= 1e9 else f"{size / 1e6:.1f} MB" if size else ""


def _label(format_key: str) -> str:
    return tr(formats.FORMATS[format_key].label) if format_key in formats.FORMATS else format_key


def _state(state: str) -> str:
    return tr(STATES.get(state, state))


def banner(status: JobStatus | None) -> str:
    if status is None:
        return tr("Pick a run and a format, then press **Export**.")
    title = html.escape(tr(status.title))
    if status.state == "failed" and status.error:
        return tr("**✗ Failed** · {title}\n\n**Why:** {why}\n\n**What to try:** {fix}", title=title,
                  why=tr(status.error.get("message") or ""), fix=tr(status.error.get("fix") or ""))
    if status.active:
        eta = tr(" · about {duration} left", duration=format_duration(status.eta_s)) if status.eta_s else ""
        return tr("**Exporting** · {title} — step {step} of {total}: {message}{eta}", title=title,
                  step=min(status.done + 1, status.total), total=status.total, message=tr(status.message), eta=eta)
    state = tr("✓ Done") if status.state == "finished" else _state(status.state).capitalize()
    return tr("**{state}** · {title} — {message}", state=state, title=title, message=tr(status.message))


def build(ctx: StudioContext, tab: gr.Tab) -> None:
    workspace, jobs = ctx.workspace, ctx.jobs
    watching = gr.State(None)   # the folder of the export job this page follows
    timer = gr.Timer(POLL_SECONDS, active=False)
    gr.Markdown("Export a trained run. Every export is checked before it counts as done, and carries a model card.")
    with gr.Row(equal_height=True):
        run = gr.Dropdown([], label="Run", elem_id="export-run", scale=2)
        chosen_format = gr.Dropdown([(item.label, item.key) for item in formats.FORMATS.values()], value="merged",
                                    label="Format", elem_id="export-format", scale=2)
        name = gr.Textbox(label="Name (optional)", elem_id="export-name", scale=2, placeholder="run id and format")
        start = gr.Button("Export", variant="primary", elem_id="export-start", scale=1)
        cancel = gr.Button("Cancel", variant="stop", elem_id="export-cancel", interactive=False, scale=1)
    about = gr.Markdown(elem_id="export-format-help")   # drawn in the reader's language when the tab opens
    status_banner = gr.Markdown(banner(None), elem_id="export-banner")
    table = gr.Dataframe(headers=COLUMNS, interactive=False, wrap=True, elem_id="exports-table")
    with gr.Row(equal_height=True):
        picked = gr.Dropdown([], label="Export", elem_id="export-picked", scale=3)
        download = gr.DownloadButton("Download adapter (zip)", visible=False, elem_id="export-download", scale=1)
    location = gr.Markdown(elem_id="export-location")
    with gr.Accordion("Model card", open=False, elem_id="export-card-section"):
        model_card = gr.Markdown(elem_id="export-card")
    gr.Markdown(SERVE_HELP, elem_id="export-serve-help")

    def job_status(record: ExportRecord) -> JobStatus | None:
        return jobs.job_status(record.folder) if (record.folder / "status.json").is_file() else None

    def state_of(record: ExportRecord) -> str:
        status = job_status(record)
        if record.complete:
            return tr("✓ complete")
        if status is None:
            return tr("incomplete")
        return f"{_state(status.state)} ({status.done}/{status.total})" if status.active else _state(status.state)

    def list_all() -> tuple:
        """The exports table and the run and export pickers (the other handlers call it too)."""
        exported = records.list_exports(workspace)
        frame = pd.DataFrame([(record.export_id, _label(record.format), record.run_id, state_of(record),
                               _size(record.size_bytes), tr(records.check_in_words(record.verification)))
                              for record in exported], columns=[tr(column) for column in COLUMNS])
        runs = [(f"{status.name} ({_state(status.state)})", status.run_id) for status in run_records.list_runs(workspace)
                if (workspace.run_folder(status.run_id).adapter / "adapter_config.json").is_file()]
        return frame, gr.Dropdown(choices=runs), gr.Dropdown(choices=[record.export_id for record in exported])

    def view(folder: str | None) -> tuple:
        status = jobs.job_status(Path(folder)) if folder else None
        active = bool(status and status.active)
        return banner(status), gr.Timer(active=active), gr.Button(interactive=active), gr.Button(interactive=not active)

    @friendly
    @ctx.allow("export", otherwise=lambda: (gr.skip(),) * 5)
    def attach() -> tuple:
        holder = ctx.lock.holder()
        job = holder.job if holder else None
        folder = str(workspace.root / job) if job and job.startswith("exports/") else None
        return (folder, *view(folder))

    @friendly
    @ctx.allow("export")
    def start_export(run_id: str | None, format_key: str, export_name: str) -> tuple:
        folder, title, settings = records.new_export(workspace, run_id or "", format_key, export_name or "")
        jobs.start_job(records.KIND, folder, title, settings)
        return (str(folder), *view(str(folder)), *list_all())

    @friendly
    @ctx.allow("export", otherwise=lambda: (gr.skip(),) * 7)
    def poll(folder: str | None) -> tuple:
        shown = view(folder)
        status = jobs.job_status(Path(folder)) if folder else None
        if status is not None and not status.active:
            notify.background_job_ended(status)
        return (*shown, *(list_all() if status is None or not status.active else (gr.skip(),) * 3))

    @friendly
    @ctx.allow("export")
    def cancel_export(folder: str | None) -> str:
        if not folder or not jobs.cancel_job(Path(folder)):
            return gr.skip()
        return tr("**Cancelling** · the export stops after its current step and removes its partial files.")

    @friendly
    @ctx.allow("export")
    def show(export_id: str | None) -> tuple:
        if not export_id:
            return gr.DownloadButton(visible=False), "", ""
        record = records.read(workspace.export_folder(export_id))
        folder = workspace.export_folder(export_id)
        card = without_front_matter(folder.card.read_text(encoding="utf-8")) if folder.card.is_file() else ""
        if not record.complete:
            status = job_status(record)
            why = banner(status) if status else tr("This export did not complete.")
            return gr.DownloadButton(visible=False), why, card
        zip_file = folder.adapter_zip if record.format == "adapter" else None
        where = tr("**Folder:** `{folder}` · files: {files}", folder=folder.root,
                   files=", ".join(f"`{name}`" for name in record.files))
        if formats.FORMATS[record.format].model_dir:
            where += tr(" · listed in the **Chat** tab as *Export '{export_id}'*", export_id=export_id)
        return (gr.DownloadButton(value=downloads.offer(zip_file), visible=True) if zip_file
                else gr.DownloadButton(visible=False), where, card)

    @ctx.allow("export")
    def describe(format_key: str) -> str:
        return tr(formats.FORMATS[format_key].description)

    outputs = [status_banner, timer, cancel, start]
    listing = [table, run, picked]
    quiet: dict[str, Any] = {"show_progress": "hidden"}
    tab.select(friendly(ctx.allow("export", otherwise=lambda: (gr.skip(),) * 3)(list_all)), None, listing,
               api_name="export_list", **quiet)
    tab.select(attach, None, [watching, *outputs], api_name="export_attach", **quiet)
    gr.on([tab.select, chosen_format.change], describe, chosen_format, about, api_name="export_describe", **quiet)
    start.click(start_export, [run, chosen_format, name], [watching, *outputs, *listing], api_name="export_start")
    timer.tick(poll, watching, [*outputs, *listing], api_name="export_poll", trigger_mode="always_last", **quiet)
    cancel.click(cancel_export, watching, status_banner, api_name="export_cancel")
    picked.change(show, picked, [download, location, model_card], api_name="export_show", **quiet)
