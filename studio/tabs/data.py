"""Data tab: upload a file, see what is wrong with it line by line, clean it into a new version (resolving
contradictions), browse samples, token lengths and the chat template's loss mask, bring rejects back,
split and mix. Every handler turns widget values into one core.data.store call and its result into updates.

`build` lays out the pickers at the top, then one function per inner tab (upload & clean, browse, rejects,
split & mix) builds its widgets and wires its events; what several of them share is passed in `Shared`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
import plotly.graph_objects as go

from core.data import cleaning, formats, splits, store
from core.data.lengths import DEFAULT_MAX_TOKENS, LossPreview
from core.data.reports import ContradictionGroup, LengthSample, StepReport, VersionReport
from core.errors import DataError
from core.models import modeling, templates
from core.progress import Progress
from core.text import N_
from core.workspace import Workspace
from studio.context import Handler, StudioContext
from studio.errors import friendly
from studio.i18n import tr

# Column headers: English here, translated when a handler builds a table (`_headers`).
DATASET_COLUMNS = [N_("Dataset"), N_("Id"), N_("Latest version"), N_("Conversations"), N_("Source file"), N_("Added")]
SAMPLE_COLUMNS = [N_("Line"), N_("Prompt"), N_("Response"), N_("Flags")]
REJECT_COLUMNS = [N_("Line"), N_("Reasons"), N_("Details"), N_("Set aside in"), N_("Prompt / text"), N_("Response")]
COUNT_COLUMNS = [N_("Check"), N_("Rows"), N_("What it means")]
PAGE_SIZE = 20
CELL_CHARS = 300
STEP_LABELS = {
    "low_quality": "Low quality (empty, too short, repeats the prompt, runaway repetition, mojibake, placeholders)",
    "too_long": "Too long for the model (tokens under its chat template)",
    "duplicates": "Exact duplicates (ignoring width, case and spacing)",
    "near_duplicates": "Near-duplicates (MinHash similarity)",
    "contradictions": "Contradictions (same question, different answers)",
    "pii": "Personal data (e-mail, phone, ID numbers, URLs with tokens): flag",
}
REASON_HELP = {
    "invalid": N_("could not be read (see the upload report for line numbers)"),
    "duplicate": N_("the same conversation as an earlier row"),
    "near_duplicate": N_("almost the same question and answer as an earlier row"),
    "contradiction": N_("dropped while resolving a contradiction group"),
    "low_quality": N_("empty, too short, repeats the prompt, repeats itself, garbled or placeholder"),
    "too_long": N_("more tokens than the longest allowed"),
    "template_error": N_("the model's chat template cannot lay the conversation out"),
}
# What people read for a reason (cleaning.REASONS); the reason itself stays the value handlers filter on.
REASON_NAMES = {"invalid": N_("invalid"), "duplicate": N_("duplicate"), "near_duplicate": N_("near duplicate"),
                "contradiction": N_("contradiction"), "low_quality": N_("low quality"), "too_long": N_("too long"),
                "template_error": N_("template error")}
PII_NAMES = {"email": N_("email"), "phone": N_("phone"), "id_card": N_("id_card"), "url_token": N_("url_token")}
VERSION_KINDS = {"upload": N_("upload"), "clean": N_("clean"), "restore": N_("restore"), "split": N_("split"),
                 "mix": N_("mix")}
NO_GROUPS = N_("No contradictions found: no question is answered in two different ways.")
GROUP_POLICIES = {cleaning.KEEP_ALL: "Keep all (flagged)", cleaning.KEEP_FIRST: "Keep the first row",
                  cleaning.DROP_ALL: "Drop all"}
POLICIES_SAID = {cleaning.KEEP_ALL: N_("keep all (flagged)"), cleaning.KEEP_FIRST: N_("keep the first row"),
                 cleaning.DROP_ALL: N_("drop all")}   # GROUP_POLICIES within a sentence
GROUPS_LISTED, GROUPS_IN_PICKER, HIDDEN_LINES_LISTED = 30, 500, 50


@dataclass(frozen=True)
class LastCheck:
    """This session's last check: the version it looked at (the version picker's value) and what cleaning
    would do to it. Contradiction choices made on it belong to that version only."""

    version: str
    report: StepReport

    @property
    def groups(self) -> list[ContradictionGroup]:
        return self.report.contradiction_groups or []


# ---------------------------------------------------------------- formatting (values → widgets)

def _cell(text: str) -> str:
    return text if len(text) <= CELL_CHARS else text[:CELL_CHARS] + "…"


def _headers(columns: list[str]) -> list[str]:
    return [tr(column) for column in columns]


def _reason(reason: str) -> str:
    return tr(REASON_NAMES.get(reason, reason.replace("_", " ")))


def _flags(row: dict[str, Any]) -> str:
    flags = row.get("flags") or {}
    kinds = ", ".join(tr(PII_NAMES.get(kind, kind)) for kind in flags.get("pii", ()))
    shown = [tr("contradiction {group}", group=flags["contradiction"]) if "contradiction" in flags else "",
             tr("personal data: {kinds}", kinds=kinds) if "pii" in flags else "",
             tr("restored") if row.get("restored") else "",
             tr("from {source}", source=row["source"]) if row.get("source") else ""]
    return "; ".join(part for part in shown if part)


def datasets_table(workspace: Workspace) -> pd.DataFrame:
    rows = [(d.name, d.id, f"v{d.latest_version}", d.rows, d.source_file, d.created)
            for d in store.list_datasets(workspace)]
    return pd.DataFrame(rows, columns=_headers(DATASET_COLUMNS))


def dataset_choices(workspace: Workspace) -> list[tuple[str, str]]:
    return [(f"{d.name} ({d.id})", d.id) for d in store.list_datasets(workspace)]


def version_choices(workspace: Workspace, dataset_id: str | None) -> list[tuple[str, str]]:
    """Newest first; each value names its dataset too ("demo-clinic-faq/v2"), so that picking another
    dataset always changes the version value and everything below follows."""
    if not dataset_id:
        return []
    return [(tr("v{version} · {kind} · {rows} rows", version=v.version, kind=tr(VERSION_KINDS.get(v.kind, v.kind)),
                rows=v.rows + v.validation_rows), f"{dataset_id}/v{v.version}")
            for v in reversed(store.versions(workspace, dataset_id))]


def version_markdown(workspace: Workspace, report: VersionReport) -> str:
    folder = workspace.dataset_version_dir(report.dataset, report.version).relative_to(workspace.root)
    parent = report.parent
    made = {"upload": tr("uploaded from `{file}`", file=report.source_file or "?"),
            "clean": tr("cleaned from v{parent}", parent=parent),
            "restore": tr("v{parent} plus restored rows", parent=parent),
            "split": tr("v{parent} split for training", parent=parent),
            "mix": tr("v{parent} {note}", parent=parent, note=tr(report.note))}
    lines = [tr("**v{version}** — {made} · {kept} rows · {rejected} set aside by this step, {total} rejects in all · "
                "sha256 `{sha}` · {created}", version=report.version, made=made.get(report.kind, report.kind),
                kept=report.kept, rejected=report.rejected, total=report.rejects_total, sha=report.sha256[:12],
                created=report.created),
             tr("Train on `{path}`", path=folder / store.DATA_FILE)]
    if report.split:
        split = report.split
        lines.append(tr("Validate on `{path}` — {train} train / {validation} validation, {together} rows kept with "
                        "their near-duplicates, **{leaks} leaks**", path=folder / store.VALIDATION_FILE,
                        train=split.train, validation=split.validation, together=split.kept_together,
                        leaks=split.leaks))
    return "\n\n".join(lines)


def upload_markdown(report: VersionReport, rejects: list[dict[str, Any]]) -> str:
    formats_seen = ", ".join(f"{count} {kind.replace('_', '/')}" for kind, count in (report.record_formats or {}).items())
    text = tr("### Read {rows:,} rows from `{file}`\n**{kept:,} readable** ({formats}), **{rejected:,} could not be "
              "read**. The file is stored exactly as uploaded; nothing is dropped silently.", rows=report.rows_read,
              file=report.source_file, kept=report.kept, formats=formats_seen or tr("none"), rejected=report.rejected)
    invalid = [row for row in rejects if "invalid" in row["reasons"]]
    if invalid:
        text += "\n\n" + "\n".join(tr("- line {line}: {detail}", line=row["source_line"], detail=tr(row["details"][0]))
                                    for row in invalid[:10])
        if len(invalid) > 10:
            text += "\n" + tr("- … {count} more in the Rejects tab", count=len(invalid) - 10)
    return text


def counts_table(report: StepReport) -> pd.DataFrame:
    flags = report.flags or {}
    rows = [(_reason(reason), count, tr(REASON_HELP[reason])) for reason, count in (report.reasons or {}).items()
            if reason != "invalid"]
    rows += [(tr("flagged: personal data"), flags.get("pii", 0), tr("kept, marked (masked if you chose so)")),
             (tr("flagged: contradiction"), flags.get("contradiction", 0), tr("kept until you resolve the group")),
             (tr("kept"), report.kept, tr("of {rows} rows", rows=report.rows_read))]
    return pd.DataFrame(rows, columns=_headers(COUNT_COLUMNS))


def group_choices(groups: list[ContradictionGroup]) -> list[tuple[str, str]]:
    return [(f"{g.id}: {_line_list(g.source_lines)}", g.id) for g in groups[:GROUPS_IN_PICKER]]


def _line_list(lines: list[int], shown: int = 6) -> str:
    listed = ", ".join(map(str, lines[:shown]))
    return tr("lines {listed}", listed=listed) if len(lines) <= shown else \
        tr("{count} rows, lines {listed}…", count=len(lines), listed=listed)


def resolution_choices(group: ContradictionGroup) -> list[tuple[str, str]]:
    return ([(tr(GROUP_POLICIES[cleaning.KEEP_ALL]), cleaning.KEEP_ALL)]
            + [(tr("Keep line {line} only", line=row.source_line), f"{cleaning.KEEP_LINE}{row.source_line}")
               for row in group.rows]
            + [(tr(GROUP_POLICIES[cleaning.DROP_ALL]), cleaning.DROP_ALL)])


def group_html(group: ContradictionGroup) -> str:
    cards = "".join(
        f"<div class='ds-card' style='flex:1;min-width:220px;border:1px solid #cbd5e1;border-radius:8px;padding:10px'>"
        f"<div style='font-weight:700'>{tr('Line {line}', line=row.source_line)}</div>"
        f"<div style='margin-top:6px'><b>{tr('Prompt:')}</b> {html.escape(row.prompt)}</div>"
        f"<div style='margin-top:6px'><b>{tr('Response:')}</b> {html.escape(row.response)}</div></div>"
        for row in group.rows)
    hidden = group.source_lines[len(group.rows):]
    listed = ", ".join(map(str, hidden[:HIDDEN_LINES_LISTED]))
    more = f"<div>{tr('… and {count} more rows: lines {lines}', count=len(hidden), lines=listed)}</div>" if hidden else ""
    return f"<div id='ds-group-cards' style='display:flex;gap:12px;flex-wrap:wrap'>{cards}</div>{more}"


def resolutions_markdown(groups: list[ContradictionGroup], resolutions: dict[str, str], policy: str) -> str:
    if not groups:
        return tr(NO_GROUPS)

    def said(choice: str) -> str:
        if choice in POLICIES_SAID:
            return tr(POLICIES_SAID[choice])
        return tr("keep line {line}", line=choice.removeprefix(cleaning.KEEP_LINE))

    lines = [f"- **{g.id}** ({_line_list(g.source_lines)}): {said(resolutions.get(g.id, policy))}"
             for g in groups[:GROUPS_LISTED]]
    if len(groups) > GROUPS_LISTED:
        lines.append(tr("- … {count} more: {what} unless you resolve them one by one", count=len(groups) - GROUPS_LISTED,
                        what=said(policy)))
    return tr("**{count} contradiction group(s)** — what saving will do:", count=len(groups)) + "\n" + "\n".join(lines)


def lengths_figure(measured: LengthSample | None) -> go.Figure:
    figure = go.Figure()
    if measured:
        figure.add_histogram(x=measured.prompt_tokens, name=tr("Prompt"), opacity=0.7)
        figure.add_histogram(x=measured.response_tokens, name=tr("Response"), opacity=0.7)
        title = (tr("Token lengths of the kept rows (random {measured:,} of {rows:,})", measured=measured.measured,
                    rows=measured.rows) if measured.sampled else tr("Token lengths of the kept rows"))
    else:
        title = tr("Token lengths appear after a check or a cleaning run")
    figure.update_layout(title=title, barmode="overlay", xaxis_title=tr("tokens"), yaxis_title=tr("rows"),
                         height=320, margin={"l": 40, "r": 10, "t": 40, "b": 40})
    return figure


def rows_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame([(row["source_line"], _cell(formats.text_of(row["messages"], "user")),
                          _cell(formats.text_of(row["messages"], "assistant")), _flags(row)) for row in rows],
                        columns=_headers(SAMPLE_COLUMNS))


def rejects_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame([(row["source_line"], ", ".join(map(_reason, row["reasons"])),
                          _cell("; ".join(tr(detail) for detail in row["details"])),
                          f"v{row.get('version', '?')}",
                          _cell(formats.text_of(row["messages"], "user") if "messages" in row else row.get("text", "")),
                          _cell(formats.text_of(row["messages"], "assistant") if "messages" in row else ""))
                         for row in rows], columns=_headers(REJECT_COLUMNS))


def page_of(rows: list[dict[str, Any]], page: float) -> tuple[list[dict[str, Any]], int, str]:
    """(rows on the page, the page number actually shown, 'Rows a–b of n')."""
    pages = max(1, -(-len(rows) // PAGE_SIZE))
    number = min(max(1, int(page or 1)), pages)
    shown = rows[(number - 1) * PAGE_SIZE: number * PAGE_SIZE]
    first = (number - 1) * PAGE_SIZE + 1 if shown else 0
    last = first + len(shown) - 1 if shown else 0
    return shown, number, tr("Rows {first}–{last} of {count:,} · page {number} of {pages}", first=first, last=last,
                             count=len(rows), number=number, pages=pages)


def preview_html(previews: list[tuple[int, LossPreview]]) -> str:
    parts = []
    for line, preview in previews:
        warning = ("<div style='color:#b91c1c;font-weight:700'>"
                   + tr("⚠ No token is trained: this sample teaches nothing (check the template).") + "</div>"
                   if preview.trained == 0 else "")
        spans = "".join(
            f"<span class='{'tok-trained' if trained else 'tok-masked'}' style='"
            f"{'background:#bbf7d0;color:#14532d' if trained else 'background:#e2e8f0;color:#475569'};"
            f"border-right:1px solid #fff'>{html.escape(text).replace(chr(10), '↵<br>')}</span>"
            for text, trained in preview.tokens if text)
        counted = tr("{tokens} tokens, {trained} trained", tokens=len(preview.tokens), trained=preview.trained)
        parts.append(f"<div class='ds-preview' style='margin-bottom:14px'><div><b>{tr('Line {line}', line=line)}</b> · "
                     f"{counted}</div>{warning}"
                     f"<div style='font-family:monospace;white-space:normal;line-height:1.7;border:1px solid #cbd5e1;"
                     f"padding:8px;border-radius:6px'>{spans}</div></div>")
    legend = (f"<div style='margin-bottom:8px'><span style='background:#bbf7d0;padding:2px 6px'>{tr('trained (the answer)')}"
              f"</span> <span style='background:#e2e8f0;padding:2px 6px'>{tr('masked: no loss (prompt, template)')}"
              "</span></div>")
    return legend + "".join(parts)


# ---------------------------------------------------------------- widget values → core arguments

def _lines(text: str) -> list[int]:
    found = re.findall(r"\d+", text or "")
    if not found:
        raise DataError("No line numbers given.", "Type the line numbers to restore, e.g. 31, 84, or click rows in the table.")
    return [int(number) for number in found]


# The pickers' choices are redrawn by several events (page load, upload, save); one that read the list a moment
# earlier can land last, and Gradio would then refuse the newer selection as "not in the list of choices".
# The handlers check every dataset and version against the disk instead (store.version_dir), in words.
PICKER: dict[str, Any] = {"allow_custom_value": True}
# Gradio hands a handler whose parameter defaults to a gr.Progress a bar for its own event (the one object
# stands for "this event's bar", as in Gradio's `progress=gr.Progress()` idiom).
PROGRESS_BAR = gr.Progress()


def _selected(value: str | None) -> tuple[str, int]:
    """("demo-clinic-faq", 2) from the version dropdown's value "demo-clinic-faq/v2"."""
    dataset_id, _, number = (value or "").rpartition("/v")
    if not dataset_id or not number.isdigit():
        raise DataError("No dataset version is selected.", "Pick a dataset and a version at the top of the Data tab.")
    return dataset_id, int(number)


def _clean_options(steps: list[str] | None, near: float, question: float, min_chars: float | None,
                   max_tokens: float | None, model: str | None, mask_pii: bool, policy: str | None,
                   resolutions: dict[str, str] | None = None) -> tuple[cleaning.CleanOptions, str]:
    """The cleaning settings (`CleaningSettings.widgets`, then the group policy) as options, and the model
    that counts tokens."""
    options = cleaning.CleanOptions(steps=tuple(steps or ()), near_duplicate_threshold=float(near),
                                    same_question_threshold=float(question), min_response_chars=int(min_chars or 0),
                                    max_tokens=int(max_tokens or DEFAULT_MAX_TOKENS), mask_pii=bool(mask_pii),
                                    contradictions=policy or cleaning.KEEP_ALL, resolutions=dict(resolutions or {}))
    return options, model or modeling.DEFAULT_MODEL


def _matching(rows: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    needle = (text or "").strip().casefold()
    return [row for row in rows if any(needle in m["content"].casefold() for m in row["messages"])] if needle else rows


# ---------------------------------------------------------------- the tab

@dataclass(frozen=True)
class Shared:
    """What the sections of the tab share: the workspace and the components more than one of them updates."""

    workspace: Workspace
    guard: Callable[[Handler], Handler]   # ctx.allow("data"): every handler of this tab needs it
    max_upload_bytes: int
    table: gr.Dataframe
    dataset: gr.Dropdown
    version: gr.Dropdown      # its value ("demo-clinic-faq/v2") is what every section works on
    other: gr.Dropdown        # the dataset to mix in (Split & mix); its choices follow the dataset list
    lengths_plot: gr.Plot     # shown in Browse; redrawn by a check and by picking a version
    cancelled: set[str] = field(default_factory=set)   # pages (session hashes) whose user cancelled cleaning

    def cleaning_progress(self, request: gr.Request, shown: gr.Progress) -> Progress:
        """Progress for a cleaning started by this page: each stage on the page's progress bar (Gradio adds
        the time left), stopped between stages once the page's Cancel was pressed."""
        page = request.session_hash or ""
        self.cancelled.discard(page)
        return Progress(report=lambda done, total, what: shown((done, total), desc=tr(what)),
                        stop_requested=lambda: page in self.cancelled)

    @property
    def pickers(self) -> list[gr.components.Component]:
        """What `show_version` updates, in its order."""
        return [self.table, self.dataset, self.version, self.other]

    def versions_of(self, dataset_id: str | None) -> dict[str, Any]:
        """A version picker's update for a dataset: its versions, the newest selected."""
        choices = version_choices(self.workspace, dataset_id)
        return gr.update(choices=choices, value=choices[0][1] if choices else None)

    def show_version(self, dataset_id: str, number: int) -> tuple[Any, ...]:
        """Updates for the datasets table, both dataset pickers and the version picker, selecting one version."""
        choices = dataset_choices(self.workspace)
        return (datasets_table(self.workspace), gr.update(choices=choices, value=dataset_id),
                gr.update(choices=version_choices(self.workspace, dataset_id), value=f"{dataset_id}/v{number}"),
                gr.update(choices=choices))


def page_buttons(prefix: str) -> tuple[gr.Number, gr.Button, gr.Button]:
    """A page number with previous/next buttons (elem_ids ds-<prefix>-page, -prev, -next)."""
    return (gr.Number(value=1, precision=0, minimum=1, label="Page", elem_id=f"ds-{prefix}-page", scale=1),
            gr.Button("◀ Previous", elem_id=f"ds-{prefix}-prev", scale=1),
            gr.Button("Next ▶", elem_id=f"ds-{prefix}-next", scale=1))


def _wire_pages(page: gr.Number, previous: gr.Button, following: gr.Button, handler: Any,
                inputs: list[Any], outputs: list[Any]) -> None:
    """Previous/next change the page number at once (no queue), then show that page."""
    def turn(step: int) -> Any:
        return lambda number: max(1, int(number or 1) + step)

    for button, step in ((previous, -1), (following, 1)):
        event = str(button.elem_id).removeprefix("ds-").replace("-", "_")   # e.g. sample_next
        button.click(turn(step), page, page, api_name=event, queue=False).then(
            handler, inputs, outputs, api_name=f"{event}_rows", show_progress="hidden")


@dataclass(frozen=True)
class CleaningSettings:
    steps: gr.CheckboxGroup
    near: gr.Slider
    question: gr.Slider
    min_chars: gr.Number
    max_tokens: gr.Number
    model: gr.Dropdown        # its tokenizer and chat template count tokens (and show the loss mask in Browse)
    mask_pii: gr.Checkbox

    @property
    def widgets(self) -> list[gr.components.Component]:
        """In the order `_clean_options` takes them."""
        return [self.steps, self.near, self.question, self.min_chars, self.max_tokens, self.model, self.mask_pii]


def _cleaning_settings() -> CleaningSettings:
    with gr.Accordion("Cleaning settings", open=False, elem_id="ds-settings"):
        steps = gr.CheckboxGroup([(label, step) for step, label in STEP_LABELS.items()], value=list(cleaning.STEPS),
                                 label="Steps", elem_id="ds-steps")
        with gr.Row():
            near = gr.Slider(0.3, 1.0, value=0.6, step=0.05, label="Near-duplicate similarity",
                             info="How alike two answers must be to count as one (1 = identical).",
                             elem_id="ds-near-threshold")
            question = gr.Slider(0.3, 1.0, value=0.6, step=0.05, label="Same-question similarity",
                                 info="How alike two prompts must be to count as the same question.",
                                 elem_id="ds-question-threshold")
        with gr.Row():
            min_chars = gr.Number(value=2, precision=0, minimum=0, label="Shortest answer (characters)",
                                  elem_id="ds-min-chars")
            max_tokens = gr.Number(value=DEFAULT_MAX_TOKENS, precision=0, minimum=16, label="Longest row (tokens)",
                                   elem_id="ds-max-tokens")
            model = gr.Dropdown([(modeling.DEFAULT_MODEL_LABEL, modeling.DEFAULT_MODEL)], value=modeling.DEFAULT_MODEL,
                                allow_custom_value=True, label="Model (tokenizer and chat template)",
                                info="Type a model folder or hub id to use another.", elem_id="ds-model")
            mask_pii = gr.Checkbox(label="Mask personal data ([EMAIL], [PHONE]…)", elem_id="ds-mask-pii")
    return CleaningSettings(steps, near, question, min_chars, max_tokens, model, mask_pii)


@dataclass(frozen=True)
class ContradictionPanel:
    """Contradiction groups side by side, and how each is to be resolved."""

    summary: gr.Markdown      # what saving will do to every group
    panel: gr.Group           # shown when a check found groups
    policy: gr.Radio          # for the groups not resolved one by one
    group: gr.Dropdown
    view: gr.HTML
    choice: gr.Radio

    @property
    def outputs(self) -> list[gr.components.Component]:
        """What `after_check` updates, in its order."""
        return [self.summary, self.panel, self.group, self.view, self.choice]

    @staticmethod
    def after_check(groups: list[ContradictionGroup], policy: str) -> tuple[Any, ...]:
        """The panel showing a check's groups, the first one picked and nothing resolved yet."""
        first = groups[0] if groups else None
        return (resolutions_markdown(groups, {}, policy), gr.update(visible=first is not None),
                gr.update(choices=group_choices(groups), value=first.id if first else None),
                group_html(first) if first else "",
                gr.update(choices=resolution_choices(first) if first else [], value=cleaning.KEEP_ALL if first else None))


def _contradiction_panel(last_check: gr.State, resolutions: gr.State,
                         guard: Callable[[Handler], Handler]) -> ContradictionPanel:
    """The panel, wired: picking a group shows it; a choice (or the policy) updates `resolutions`."""
    summary = gr.Markdown(elem_id="ds-groups-summary")
    with gr.Group(visible=False, elem_id="ds-group-panel") as panel:
        policy = gr.Radio([(label, key) for key, label in GROUP_POLICIES.items()], value=cleaning.KEEP_ALL,
                          label="Groups you do not resolve one by one", elem_id="ds-group-policy")
        group = gr.Dropdown(label="Contradiction group", elem_id="ds-group")
        view = gr.HTML(elem_id="ds-group-view")
        choice = gr.Radio(label="Resolve this group", elem_id="ds-group-choice")

    @friendly
    @guard
    def show_group(group_id: str, checked: LastCheck | None, chosen: dict[str, str]):
        found = next((g for g in checked.groups if g.id == group_id), None) if checked else None
        if found is None:
            return "", gr.update(choices=[], value=None)
        return group_html(found), gr.update(choices=resolution_choices(found), value=chosen.get(group_id, cleaning.KEEP_ALL))

    @friendly
    @guard
    def resolve_group(group_id: str, resolution: str, policy_value: str, checked: LastCheck | None,
                      chosen: dict[str, str]):
        updated = {**(chosen or {}), group_id: resolution} if group_id and resolution else dict(chosen or {})
        return updated, resolutions_markdown(checked.groups if checked else [], updated, policy_value)

    group.change(show_group, [group, last_check, resolutions], [view, choice], api_name="show_group",
                 show_progress="hidden")
    gr.on([choice.input, policy.input], resolve_group, [group, choice, policy, last_check, resolutions],
          [resolutions, summary], api_name="resolve_group", show_progress="hidden")
    return ContradictionPanel(summary, panel, policy, group, view, choice)


def _upload_and_clean(shared: Shared) -> gr.Dropdown:
    """Upload (with a column mapping for CSV files), check what cleaning would do, resolve contradiction
    groups side by side, save a cleaned version. Returns the model picker, which the template preview uses too."""
    workspace, version = shared.workspace, shared.version
    last_check = gr.State(None)      # LastCheck: the counts and groups the choices below are made on
    resolutions = gr.State({})       # contradiction group id → keep-all | drop-all | keep:<line>
    csv_upload = gr.State("")        # a CSV waiting for its column mapping

    with gr.Row():
        upload = gr.File(label="Upload a dataset (.jsonl, .json or .csv)", file_types=[".jsonl", ".json", ".csv"],
                         elem_id="ds-upload", scale=3)
        name = gr.Textbox(label="Name (optional)", placeholder="e.g. Clinic FAQ 2024", elem_id="ds-name", scale=2)
    with gr.Group(visible=False, elem_id="ds-csv-mapping") as csv_mapping:
        gr.Markdown("This is a CSV file: choose which columns hold the conversation.")
        with gr.Row():
            csv_prompt = gr.Dropdown(label="Prompt column", elem_id="ds-csv-prompt")
            csv_response = gr.Dropdown(label="Response column", elem_id="ds-csv-response")
            csv_system = gr.Dropdown(label="System column (optional)", elem_id="ds-csv-system")
        csv_import = gr.Button("Import CSV", variant="primary", elem_id="ds-csv-import")
    upload_report = gr.Markdown(elem_id="ds-upload-report")
    cleaning_settings = _cleaning_settings()
    check = gr.Button("Check this version", elem_id="ds-check")
    counts = gr.Dataframe(headers=COUNT_COLUMNS, interactive=False, elem_id="ds-counts", label="What cleaning finds")
    contradictions = _contradiction_panel(last_check, resolutions, shared.guard)
    with gr.Row():
        save = gr.Button("Save cleaned version", variant="primary", elem_id="ds-save")
        cancel = gr.Button("Cancel cleaning", variant="stop", elem_id="ds-cancel", scale=0, min_width=160)
    save_report = gr.Markdown(elem_id="ds-save-report")
    settings = [*cleaning_settings.widgets, contradictions.policy]
    check_outputs = [last_check, resolutions, counts, *contradictions.outputs, shared.lengths_plot]

    def import_rows(file_path: str, display_name: str, mapping: formats.CsvMapping | None):
        created = store.import_upload(workspace, Path(file_path), display_name, mapping=mapping,
                                      max_bytes=shared.max_upload_bytes)
        message = upload_markdown(store.read_report(workspace, created.dataset_id, 1),
                                  store.read_rejects(workspace, created.dataset_id, 1))
        return (*shared.show_version(created.dataset_id, 1), gr.update(visible=False), "", *[gr.update()] * 3, message)

    @friendly
    @shared.guard
    def upload_file(file_path: str | None, display_name: str):
        if not file_path:
            raise DataError("No file was uploaded.", "Drop a .jsonl, .json or .csv file on the upload area.")
        original = Path(file_path).name
        if formats.file_format(original) != "csv":
            return import_rows(file_path, display_name, None)
        columns = formats.csv_columns(formats.read_upload(Path(file_path), name=original), original)
        guess = formats.guess_mapping(columns) or formats.CsvMapping(columns[0], columns[-1])
        return (*[gr.update()] * 4, gr.update(visible=True), file_path, gr.update(choices=columns, value=guess.prompt),
                gr.update(choices=columns, value=guess.response), gr.update(choices=["", *columns], value=guess.system or ""),
                tr("`{file}` has the columns {columns}: check the mapping below, then **Import CSV**.", file=original,
                   columns=", ".join(columns)))

    @friendly
    @shared.guard
    def import_csv(file_path: str, display_name: str, prompt_column: str, response_column: str, system_column: str):
        if not file_path:
            raise DataError("No CSV file is waiting to be imported.", "Upload the CSV file first.")
        return import_rows(file_path, display_name, formats.CsvMapping(prompt_column, response_column, system_column or None))

    def cleaning_check(selected: str | None, request: gr.Request, progress: gr.Progress = PROGRESS_BAR,
                       *settings_values: Any):
        options, model_name = _clean_options(*settings_values)
        report = store.check_version(workspace, *_selected(selected), options, model=model_name,
                                     progress=shared.cleaning_progress(request, progress))
        checked = LastCheck(str(selected), report)
        counted = gr.update(value=counts_table(report), label=tr("What cleaning would do to {version}", version=selected))
        return (checked, {}, counted, *ContradictionPanel.after_check(checked.groups, options.contradictions),
                lengths_figure(report.lengths))

    @friendly
    @shared.guard
    def check_upload(csv_waiting: str, selected: str | None, request: gr.Request,
                     progress: gr.Progress = PROGRESS_BAR, *settings_values: Any):
        if csv_waiting:   # an upload that still needs its column mapping: nothing new to check yet
            return tuple(gr.update() for _ in check_outputs)
        return cleaning_check(selected, request, progress, *settings_values)

    check_version = friendly(shared.guard(cleaning_check))

    @friendly
    @shared.guard
    def save_version(selected: str | None, chosen: dict[str, str], checked: LastCheck | None, request: gr.Request,
                     progress: gr.Progress = PROGRESS_BAR, *settings_values: Any):
        dataset_id, number = _selected(selected)
        checked_version = checked.version if checked else None
        if chosen and checked_version != selected:
            raise DataError(f"The contradiction choices were made on {checked_version}, not {selected}.",
                            "Press 'Check this version' and resolve its groups again.")
        options, model_name = _clean_options(*settings_values, resolutions=chosen)
        created = store.clean_version(workspace, dataset_id, number, options, model=model_name,
                                      progress=shared.cleaning_progress(request, progress))
        report = store.read_report(workspace, dataset_id, created.version)
        gr.Info(tr("Saved {version}.", version=f"{dataset_id}/v{created.version}"))
        return (*shared.show_version(dataset_id, created.version),
                tr("✓ Saved **v{version}**: {kept:,} rows kept, {rejected:,} set aside (browse them in Rejects; any of "
                   "them can be restored).", version=created.version, kept=report.kept, rejected=report.rejected))

    upload_outputs = [*shared.pickers, csv_mapping, csv_upload, csv_prompt, csv_response, csv_system, upload_report]
    upload.upload(upload_file, [upload, name], upload_outputs, api_name="upload_dataset").success(
        check_upload, [csv_upload, version, *settings], check_outputs, api_name="check_upload")
    csv_import.click(import_csv, [csv_upload, name, csv_prompt, csv_response, csv_system], upload_outputs,
                     api_name="import_csv").success(check_version, [version, *settings], check_outputs,
                                                    api_name="check_csv_upload")
    check.click(check_version, [version, *settings], check_outputs, api_name="check_dataset")

    @friendly
    @shared.guard
    def cancel_cleaning(request: gr.Request) -> None:
        shared.cancelled.add(request.session_hash or "")

    cancel.click(cancel_cleaning, None, None, api_name="cancel_cleaning", queue=False)
    save.click(save_version, [version, resolutions, last_check, *settings], [*shared.pickers, save_report],
               api_name="save_clean_version")
    return cleaning_settings.model


def _browse(shared: Shared, model: gr.Dropdown) -> gr.Number:
    """Token-length histograms, a searchable page of rows, and the chat template's loss mask on them.
    Returns the page number, which picking a version resets."""
    workspace, version = shared.workspace, shared.version
    shared.lengths_plot.render()
    with gr.Row():
        search = gr.Textbox(label="Find text", placeholder="a word in the prompt or answer", elem_id="ds-search", scale=3)
        page, previous, following = page_buttons("sample")
    info = gr.Markdown(elem_id="ds-sample-info")
    samples = gr.Dataframe(headers=SAMPLE_COLUMNS, interactive=False, wrap=True, elem_id="ds-samples")
    with gr.Row():
        template = gr.Dropdown(["auto", *templates.BUILTIN_TEMPLATES], value="auto", label="Chat template",
                               elem_id="ds-template", scale=2)
        preview_button = gr.Button("Preview the template on this page's first 3 rows", elem_id="ds-preview-button",
                                   scale=3)
    preview = gr.HTML(elem_id="ds-template-preview")

    @friendly
    @shared.guard
    def sample_rows(selected: str | None, page_number: float, text: str):
        if not selected:
            return pd.DataFrame(columns=_headers(SAMPLE_COLUMNS)), 1, ""
        shown, number, described = page_of(_matching(store.read_rows(workspace, *_selected(selected)), text), page_number)
        return rows_table(shown), number, described

    @friendly
    @shared.guard
    def template_preview(selected: str | None, page_number: float, text: str, model_name: str, template_name: str):
        shown = page_of(_matching(store.read_rows(workspace, *_selected(selected)), text), page_number)[0][:3]
        counter = store.token_counter(workspace, model_name or modeling.DEFAULT_MODEL, template_name or "auto")
        return preview_html([(row["source_line"], counter.preview(row["messages"])) for row in shown])

    inputs, outputs = [version, page, search], [samples, page, info]
    gr.on([version.change, page.submit, search.submit], sample_rows, inputs, outputs, api_name="sample_rows",
          show_progress="hidden")
    _wire_pages(page, previous, following, sample_rows, inputs, outputs)
    preview_button.click(template_preview, [version, page, search, model, template], preview, api_name="template_preview")
    return page


def _rejects(shared: Shared) -> gr.Number:
    """Every row set aside in the version's lineage, by reason, and restoring chosen ones into a new version.
    Returns the page number, which picking a version resets."""
    workspace, version = shared.workspace, shared.version
    with gr.Row():
        reason = gr.Dropdown([("All reasons", "")] + [(REASON_NAMES[r], r) for r in cleaning.REASONS], value="",
                             label="Reason", elem_id="ds-reject-reason", scale=2)
        page, previous, following = page_buttons("reject")
    info = gr.Markdown(elem_id="ds-reject-info")
    rejects = gr.Dataframe(headers=REJECT_COLUMNS, interactive=False, wrap=True, elem_id="ds-rejects")
    with gr.Row():
        restore_lines = gr.Textbox(label="Lines to restore", placeholder="e.g. 31, 84 — or click rows above",
                                   elem_id="ds-restore-lines", scale=3)
        restore = gr.Button("Restore into a new version", variant="primary", elem_id="ds-restore", scale=1)
    restore_report = gr.Markdown(elem_id="ds-restore-report")

    @friendly
    @shared.guard
    def reject_rows(selected: str | None, reason_value: str, page_number: float):
        if not selected:
            return pd.DataFrame(columns=_headers(REJECT_COLUMNS)), 1, ""
        rows = store.read_rejects(workspace, *_selected(selected))
        shown, number, described = page_of([row for row in rows if not reason_value or reason_value in row["reasons"]],
                                           page_number)
        return rejects_table(shown), number, described

    @friendly
    @shared.guard
    def pick_reject(current: str, event: gr.SelectData):
        line = str((event.row_value or [""])[0])
        picked = re.findall(r"\d+", current or "")
        return ", ".join(picked if line in picked or not line.isdigit() else [*picked, line])

    @friendly
    @shared.guard
    def restore_rows(selected: str | None, lines_text: str):
        dataset_id, number = _selected(selected)
        created = store.restore_rejects(workspace, dataset_id, number, _lines(lines_text))
        restored = store.read_report(workspace, dataset_id, created.version).restored
        return (*shared.show_version(dataset_id, created.version),
                tr("✓ Restored {count} row(s) into **v{version}**; later cleaning leaves them alone.", count=restored,
                   version=created.version), "")

    inputs, outputs = [version, reason, page], [rejects, page, info]
    gr.on([version.change, reason.change, page.submit], reject_rows, inputs, outputs, api_name="reject_rows",
          show_progress="hidden")
    _wire_pages(page, previous, following, reject_rows, inputs, outputs)
    rejects.select(pick_reject, restore_lines, restore_lines, api_name="pick_reject", show_progress="hidden")
    restore.click(restore_rows, [version, restore_lines], [*shared.pickers, restore_report, restore_lines],
                  api_name="restore_rejects")
    return page


def _split_and_mix(shared: Shared) -> None:
    """Hold out validation rows without leaks, or mix another dataset's rows in at a ratio."""
    workspace, version = shared.workspace, shared.version
    gr.Markdown("**Split** holds out rows for validation. Rows whose prompts are near-duplicates stay on "
                "one side, so validation never tests what training has already seen.")
    with gr.Row():
        validation_ratio = gr.Slider(0.02, 0.5, value=0.1, step=0.01, label="Validation share",
                                     elem_id="ds-validation-ratio")
        seed = gr.Number(value=0, precision=0, label="Seed (same seed, same split)", elem_id="ds-seed")
        split = gr.Button("Split into a new version", variant="primary", elem_id="ds-split-button")
    gr.Markdown("**Mix** adds rows of another dataset (e.g. hard examples) so that they make up a share of "
                "the result: 8:2 keeps every row of this version and adds a quarter as many from the other "
                "(repeating them if there are too few).")
    with gr.Row():
        shared.other.render()
        other_version = gr.Dropdown(label="Its version", elem_id="ds-mix-other-version", **PICKER)
        ratio = gr.Textbox(value="8:2", label="Ratio (this : other)", elem_id="ds-mix-ratio")
        mix = gr.Button("Mix into a new version", variant="primary", elem_id="ds-mix-button")
    split_report = gr.Markdown(elem_id="ds-split-report")

    @friendly
    @shared.guard
    def split_rows(selected: str | None, share: float, seed_value: float | None):
        dataset_id, number = _selected(selected)
        created = store.split_version(workspace, dataset_id, number, float(share), int(seed_value or 0))
        figures = store.read_report(workspace, dataset_id, created.version).split
        assert figures is not None   # a split version always records its figures
        return (*shared.show_version(dataset_id, created.version),
                tr("✓ **v{version}**: {train:,} training and {validation:,} validation rows; {together:,} kept on one "
                   "side with their near-duplicates; leakage check: {leaks} validation prompts near-duplicate a training "
                   "prompt.", version=created.version, train=figures.train, validation=figures.validation,
                   together=figures.kept_together, leaks=figures.leaks))

    @friendly
    @shared.guard
    def mix_rows(selected: str | None, other_selected: str | None, ratio_text: str, seed_value: float | None):
        dataset_id, number = _selected(selected)
        other_id, other_number = _selected(other_selected)
        created = store.mix_versions(workspace, dataset_id, number, other_id, other_number,
                                     splits.parse_ratio(ratio_text), int(seed_value or 0))
        figures = store.read_report(workspace, dataset_id, created.version).mix
        assert figures is not None   # a mixed version always records its figures
        return (*shared.show_version(dataset_id, created.version),
                tr("✓ **v{version}**: {base:,} rows of this version + {other:,} from {other_id} v{other_number} "
                   "({available:,} available).", version=created.version, base=figures.base_rows,
                   other=figures.other_rows, other_id=other_id, other_number=other_number,
                   available=figures.other_available))

    split.click(split_rows, [version, validation_ratio, seed], [*shared.pickers, split_report], api_name="split_dataset")
    shared.other.change(friendly(shared.guard(shared.versions_of)), shared.other, other_version, api_name="select_other",
                        show_progress="hidden")
    mix.click(mix_rows, [version, other_version, ratio, seed], [*shared.pickers, split_report], api_name="mix_datasets")


def build(ctx: StudioContext, app: gr.Blocks) -> None:
    workspace = ctx.workspace
    with gr.Row():
        dataset = gr.Dropdown(label="Dataset", elem_id="ds-dataset", scale=3, **PICKER)
        version = gr.Dropdown(label="Version", elem_id="ds-version", scale=2, **PICKER)
    version_summary = gr.Markdown(elem_id="ds-version-summary")
    with gr.Accordion("All datasets", open=True, elem_id="ds-all"):
        table = gr.Dataframe(headers=DATASET_COLUMNS, interactive=False, elem_id="datasets-table", wrap=True)
    shared = Shared(workspace, ctx.allow("data"), ctx.max_upload_bytes, table, dataset, version,
                    other=gr.Dropdown(label="Other dataset", elem_id="ds-mix-other", render=False, **PICKER),
                    lengths_plot=gr.Plot(elem_id="ds-lengths", label="Token lengths", render=False))

    with gr.Tabs(elem_id="ds-tabs"):
        with gr.Tab("Upload & clean", id="ds-clean", elem_id="ds-clean-tab"):
            model = _upload_and_clean(shared)
        with gr.Tab("Browse", id="ds-browse", elem_id="ds-browse-tab"):
            sample_page = _browse(shared, model)
        with gr.Tab("Rejects", id="ds-rejects", elem_id="ds-rejects-tab"):
            reject_page = _rejects(shared)
        with gr.Tab("Split & mix", id="ds-split", elem_id="ds-split-tab"):
            _split_and_mix(shared)

    @friendly
    @ctx.allow("data", otherwise=lambda: (gr.skip(),) * 3)   # on page load: nothing for other roles
    def list_datasets():
        choices = dataset_choices(workspace)
        return (datasets_table(workspace), gr.update(choices=choices, value=choices[-1][1] if choices else None),
                gr.update(choices=choices))

    @friendly
    @shared.guard
    def select_version(selected: str | None):
        if not selected:
            return "", lengths_figure(None), 1, 1
        report = store.read_report(workspace, *_selected(selected))
        return version_markdown(workspace, report), lengths_figure(report.lengths), 1, 1

    app.load(list_datasets, None, [table, dataset, shared.other], api_name="list_datasets", show_progress="hidden")
    dataset.change(friendly(shared.guard(shared.versions_of)), dataset, version, api_name="select_dataset",
                   show_progress="hidden")
    version.change(select_version, version, [version_summary, shared.lengths_plot, sample_page, reject_page],
                   api_name="select_version", show_progress="hidden")
