"""Rate tab, Sessions: create a rating session (prompts, models, mode, criteria, raters per item), follow the
job that generates its responses, cancel or restart it, delete a session; the list of sessions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from core.data import store
from core.errors import ConfigError, JobBusyError, StudioError
from core.inference import choices
from core.planning.preflight import format_duration
from core.rating import criteria, generation, queue, sessions
from core.rating.sessions import Session, SessionSpec
from core.system.job_status import JobFolder
from core.text import N_
from studio import notify
from studio.context import StudioContext
from studio.errors import friendly, in_reader_language
from studio.i18n import tr

POLL_SECONDS = 1.0
TABLE_COLUMNS = [N_("Name"), N_("Id"), N_("Mode"), N_("Models"), N_("Prompts"), N_("Items"), N_("Raters per item"),
                 N_("Raters"), N_("State"), N_("Created")]   # shown in the reader's language
SOURCES = [("Built-in red-team set (60 prompts, zh/en, safety categories)", "redteam"),
           ("A dataset version (its validation rows when it was split)", "dataset"),
           ("A file of prompts (.jsonl, .json or .csv)", "file"),
           ("The responses of another session (nothing to generate)", "session")]
MODES = [("Scale: each response scored on its own", "scale"),
         ("Pairwise: two responses side by side, pick the better one", "pairwise")]
CRITERIA_CHOICES = {
    "scale": [(N_("Fluency (1-4)"), "fluency"), (N_("Relevance (1-3)"), "relevance"),
              (N_("Safety (verdict and category)"), "safety")],
    "pairwise": [(N_("Which response is better (A / tie / B)"), "preference")],
}
CUSTOM_EXAMPLE = """# Replaces the boxes above when filled in. A scale, for example:
# - name: empathy
#   label: Empathy
#   question: Does the response acknowledge how the patient feels?
#   kind: scale          # scale (numbers), choice (labels), or preference (pairwise: A, tie, B)
#   levels:
#     - value: "1"
#       label: Cold
#       description: ignores the patient's feelings
#     - value: "2"
#       label: Polite
#     - value: "3"
#       label: Warm
#       description: acknowledges feelings and reassures
"""


def build(ctx: StudioContext, tab: gr.Tab, sessions_changed: gr.State) -> list[gr.Dropdown]:
    """Lays out the Sessions tab; returns its session pickers (the 'from session' source and the one followed).
    The models and the table are listed afresh whenever the tab is opened."""
    workspace, jobs = ctx.workspace, ctx.jobs
    gr.Markdown("Choose what to rate and which models answer. The responses are generated **once**, in the "
                "background; raters then rate the stored responses blind (no model names) and in an order of "
                "their own, with no model loaded.")
    with gr.Row():
        name = gr.Textbox(label="Session name", placeholder="e.g. Clinic FAQ: base vs tuned", elem_id="rate-new-name")
        models = gr.Dropdown([], multiselect=True, label="Models to rate", elem_id="rate-new-models", allow_custom_value=True,
                             info="The base model, runs' adapters, merged exports (base:NAME, run:ID, export:ID).")
    mode = gr.Radio(MODES, value="scale", label="Kind of session", elem_id="rate-new-mode")
    source = gr.Radio(SOURCES, value="redteam", label="Prompts", elem_id="rate-new-source")
    dataset = gr.Dropdown([], label="Dataset version", visible=False, elem_id="rate-new-dataset", allow_custom_value=True)
    upload = gr.File(label="Prompts file", file_types=[".jsonl", ".json", ".csv"], visible=False, elem_id="rate-new-file")
    from_session = gr.Dropdown([], label="Session whose responses to reuse", visible=False, elem_id="rate-new-from",
                               allow_custom_value=True)
    with gr.Row():
        max_prompts = gr.Number(20, precision=0, minimum=0, label="Prompts (at most; 0 = all)", elem_id="rate-new-max-prompts",
                                info="Drawn at random (seeded) when the set is larger.")
        overlap = gr.Number(2, precision=0, minimum=1, label="Raters per item", elem_id="rate-new-overlap",
                            info="2 or more measures agreement between raters.")
        max_tokens = gr.Number(0, precision=0, minimum=0, label="Longest response (tokens; 0 = each model's own)",
                               elem_id="rate-new-max-tokens")
    chosen_criteria = gr.CheckboxGroup(CRITERIA_CHOICES["scale"], value=[v for _, v in CRITERIA_CHOICES["scale"]],
                                       label="Criteria", elem_id="rate-new-criteria",
                                       info="Every level has a description raters see. Comment and corrected answer "
                                            "are always offered.")
    with gr.Accordion("Criteria of your own (YAML)", open=False):
        custom = gr.Code("", language="yaml", label="Criteria", elem_id="rate-new-custom")
        gr.Markdown(f"```yaml\n{CUSTOM_EXAMPLE}```")
    create = gr.Button("Create session and generate responses", variant="primary", elem_id="rate-create")

    gr.Markdown("### Sessions")
    with gr.Row(equal_height=True):
        followed = gr.Dropdown([], label="Session", elem_id="rate-admin-session", scale=3, allow_custom_value=True)
        cancel = gr.Button("Cancel generation", elem_id="rate-cancel", scale=1)
        regenerate = gr.Button("Generate again", elem_id="rate-regenerate", scale=1)
        delete = gr.Button("Delete…", variant="stop", elem_id="rate-delete", scale=1)
    with gr.Row(visible=False) as confirm_row:
        confirm_text = gr.Markdown()
        confirm = gr.Button("Yes, delete it and its ratings", variant="stop", elem_id="rate-delete-confirm")
        keep = gr.Button("Cancel", elem_id="rate-delete-cancel")
    job_status = gr.Markdown(elem_id="rate-job-status")
    table = gr.Dataframe(headers=TABLE_COLUMNS, interactive=False, wrap=True, elem_id="rate-sessions-table")
    timer = gr.Timer(POLL_SECONDS, active=False)

    def describe(session_id: str | None) -> tuple[str, bool]:
        """The followed session's state in words, and whether its responses are still being generated."""
        if not session_id:
            return "", False
        session = sessions.get(workspace, session_id)
        if session.ready:
            raters = queue.raters(workspace, session_id)
            done = min(sum(row.rated for row in raters), session.items * session.overlap)
            return tr("**Ready to rate** · *{name}* · {items} items, {overlap} rater(s) each · {raters} rater(s) so far, "
                      "{done} of {total} item ratings done. Raters open the **Rate** tab and pick it.",
                      name=session.name, items=session.items, overlap=session.overlap, raters=len(raters), done=done,
                      total=session.items * session.overlap), False
        try:
            job = jobs.job_status(workspace.rating_folder(session_id).root)
        except StudioError:
            return tr("**Not generated yet.** Press **Generate again** when the device is free."), False
        if job.active:
            eta = tr(" · {duration} left", duration=tr(format_duration(job.eta_s))) if job.eta_s else ""
            return tr("**Generating responses** · {done} of {total}{eta} · {message}", done=job.done, total=job.total,
                      eta=eta, message=tr(job.message)), True
        return tr("**Generation {state}.** {message} Press **Generate again** to finish it (models already done are kept).",
                  state=tr(job.state), message=tr(job.message)), False

    def table_rows() -> pd.DataFrame:
        rows = []
        for session in sessions.list_sessions(workspace):
            raters = len(queue.raters(workspace, session.id)) if session.ready else 0
            rows.append((session.name, session.id, tr(session.mode), ", ".join(session.models), session.prompts,
                         session.items, session.overlap, raters, tr(session.state), session.created.replace("T", " ")[:19]))
        return pd.DataFrame(rows, columns=[tr(column) for column in TABLE_COLUMNS])

    def start(session: Session) -> str:
        """Start the generation job; a busy device is said in words and the session waits for Generate again."""
        try:
            jobs.start_job(generation.KIND, workspace.rating_folder(session.id).root, generation.title(session),
                           {"session": session.id})
        except StudioError as error:
            return tr("Session *{name}* was created, but its responses could not be generated yet: {error}",
                      name=session.name, error=in_reader_language(error))
        return ""

    def followed_view(session_id: str, note: str = "") -> tuple:
        text, active = describe(session_id)
        return (note or text, gr.Timer(active=active), gr.Dropdown(value=session_id), table_rows())

    @friendly
    @ctx.allow("manage-ratings")
    def create_session(session_name: str, keys: list[str] | None, kind: str, where: str, version: str | None,
                       file_path: str | None, other: str | None, most: float | None, per_item: float | None,
                       limit: float | None, names: list[str] | None, own: str, changed: int) -> tuple:
        chosen = criteria.parse(own) if (own or "").strip() else criteria.by_names(list(names or []))
        spec = SessionSpec(session_name, list(keys or []), _source(where, version, file_path, other), kind, chosen,
                           int(per_item or 0), int(most) if most else None, max_new_tokens=int(limit) if limit else None)
        session = sessions.create(workspace, spec)
        note = "" if session.ready else start(session)
        return (*followed_view(session.id, note), changed + 1)

    @friendly
    @ctx.allow("manage-ratings")
    def poll(session_id: str | None, changed: int) -> tuple:
        text, active = describe(session_id)
        if active:
            return text, gr.skip(), gr.skip(), gr.skip(), gr.skip()
        folder = workspace.rating_folder(session_id).root if session_id else None
        if folder is not None and JobFolder(folder).status.is_file():   # sessions that generate nothing have none
            notify.background_job_ended(jobs.job_status(folder))
        return text, gr.Timer(active=False), gr.skip(), table_rows(), changed + 1

    @friendly
    @ctx.allow("manage-ratings")
    def show(session_id: str | None) -> tuple:
        text, active = describe(session_id)
        return text, gr.Timer(active=active)

    @friendly
    @ctx.allow("manage-ratings")
    def generate_again(session_id: str | None) -> tuple:
        session = sessions.get(workspace, _chosen(session_id))
        if session.ready:
            raise ConfigError(f"Session '{session.name}' has all its responses already.", "Nothing to generate.")
        return followed_view(session.id, start(session))[:2]

    @friendly
    @ctx.allow("manage-ratings")
    def cancel_generation(session_id: str | None) -> str:
        if not jobs.cancel_job(workspace.rating_folder(_chosen(session_id)).root):
            return tr("Nothing is being generated for this session.")
        return tr("**Cancelling** · the models already answered are kept; press **Generate again** to finish later.")

    @friendly
    @ctx.allow("manage-ratings")
    def ask_delete(session_id: str | None) -> tuple:
        session = sessions.get(workspace, _chosen(session_id))
        return gr.Row(visible=True), tr("Delete session **{name}** with all its responses and ratings?", name=session.name)

    @friendly
    @ctx.allow("manage-ratings")
    def delete_session(session_id: str | None, changed: int) -> tuple:
        if describe(_chosen(session_id))[1]:
            raise JobBusyError("Its responses are being generated right now.", "Cancel the generation first.")
        sessions.delete(workspace, session_id or "")
        return gr.Row(visible=False), "", gr.Dropdown(value=None), table_rows(), changed + 1

    @ctx.allow("manage-ratings")
    def show_source(where: str) -> tuple:
        return (gr.Dropdown(visible=where == "dataset", choices=_dataset_choices(ctx) if where == "dataset" else None),
                gr.File(visible=where == "file"), gr.Dropdown(visible=where == "session"))

    @ctx.allow("manage-ratings")
    def lists() -> tuple:
        return gr.Dropdown(choices=[(tr(c.label), c.key) for c in choices.available(workspace)]), table_rows()

    @ctx.allow("manage-ratings")
    def criteria_for(kind: str) -> Any:
        return gr.CheckboxGroup([(tr(label), value) for label, value in CRITERIA_CHOICES[kind]],
                                value=[value for _, value in CRITERIA_CHOICES[kind]])

    quiet = {"show_progress": "hidden"}
    follow_outputs = [job_status, timer, followed, table]
    create.click(create_session, [name, models, mode, source, dataset, upload, from_session, max_prompts, overlap,
                                  max_tokens, chosen_criteria, custom, sessions_changed],
                 [*follow_outputs, sessions_changed], api_name="rate_create")
    timer.tick(poll, [followed, sessions_changed], [job_status, timer, followed, table, sessions_changed],
               api_name="rate_generation_poll", trigger_mode="always_last", **quiet)
    followed.change(show, followed, [job_status, timer], api_name="rate_session_status", **quiet)
    regenerate.click(generate_again, followed, [job_status, timer], api_name="rate_generate_again")
    cancel.click(cancel_generation, followed, job_status, api_name="rate_cancel_generation")
    delete.click(ask_delete, followed, [confirm_row, confirm_text], api_name="rate_delete_ask")
    confirm.click(delete_session, [followed, sessions_changed], [confirm_row, job_status, followed, table, sessions_changed],
                  api_name="rate_delete")
    keep.click(lambda: gr.Row(visible=False), None, confirm_row, api_name="rate_delete_cancel")
    source.change(friendly(show_source), source, [dataset, upload, from_session], api_name="rate_new_source", **quiet)
    mode.change(criteria_for, mode, chosen_criteria, api_name="rate_new_mode", **quiet)
    tab.select(friendly(lists), None, [models, table], api_name="rate_list_models", **quiet)
    return [from_session, followed]


def _chosen(session_id: str | None) -> str:
    if not session_id:
        raise ConfigError("No session chosen.", "Pick a session from the list first.")
    return session_id


def _source(where: str, version: str | None, file_path: str | None, other: str | None) -> str:
    """The prompt-set string core.rating.prompts reads, from the form's choices."""
    if where == "dataset":
        if not version:
            raise ConfigError("No dataset version chosen.", "Pick one, or choose another source of prompts.")
        return f"dataset:{version}"
    if where == "file":
        if not file_path:
            raise ConfigError("No prompts file uploaded.", "Drop a .jsonl, .json or .csv file of prompts on the upload area.")
        return f"file:{Path(file_path)}"
    if where == "session":
        if not other:
            raise ConfigError("No session chosen to reuse.", "Pick the session whose responses to rate again.")
        return f"session:{other}"
    return where


def _dataset_choices(ctx: StudioContext) -> list[tuple[str, str]]:
    found = []
    for dataset in store.list_datasets(ctx.workspace):
        for version in reversed(store.versions(ctx.workspace, dataset.id)):
            part = (tr("{count} validation rows", count=version.validation_rows) if version.validation_rows
                    else tr("{count} rows", count=version.rows))
            found.append((f"{dataset.name} · v{version.version} ({tr(version.kind)}) · {part}",
                          f"{dataset.id}/v{version.version}"))
    return found
