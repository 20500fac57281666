"""Configure tab: the run config as a form, presets, and the pre-flight estimate before anything loads.

The current valid config goes into `current_config` (a gr.State owned by the app), which the Train tab
reads when Start is pressed.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import gradio as gr

from core.config import DataSection, ModelSection, to_yaml
from core.data import store
from core.errors import ConfigError
from core.models import modeling
from core.planning import estimate, preflight, presets
from core.text import N_
from core.training import trainset
from core.workspace import Workspace
from studio.context import StudioContext
from studio.errors import friendly
from studio.forms import ConfigForm, field_label
from studio.i18n import tr

VERDICT_MARKS = {"fits": N_("✓ Fits"), "tight": N_("⚠ Tight"), "won't fit": N_("✗ Won't fit")}
LEVEL_MARKS = {"error": N_("✗ Error"), "warning": N_("⚠ Warning")}
NO_ESTIMATE = N_("### Pre-flight estimate\nNot available until the problems below are fixed.")


def model_choices(workspace: Workspace) -> list[tuple[str, str]]:
    """The built-in model, models registered in the workspace, and hub models known offline (labels in the
    reader's language: the app's load event refreshes them)."""
    local = [(tr(label) if name == modeling.DEFAULT_MODEL else label, name)
             for label, name in modeling.local_models(workspace)]
    return local + [(tr("{name} (Hugging Face hub)", name=hub_id), hub_id) for hub_id in estimate.reference_models()]


def preset_choices(workspace: Workspace) -> list[tuple[str, str]]:
    """Every preset, labelled in the reader's language (a saved preset's name stays as typed)."""
    return [(tr(label), key) for label, key in presets.choices(workspace)]


def dataset_choices(workspace: Workspace) -> list[tuple[str, str]]:
    """Every version of every dataset, newest first, as (label, data file relative to the workspace)."""
    choices = []
    for dataset in store.list_datasets(workspace):
        for version in reversed(store.versions(workspace, dataset.id)):
            data_file = workspace.dataset_version_dir(dataset.id, version.version) / store.DATA_FILE
            label = tr("{name} · v{version} ({kind}) · {rows} conversations", name=dataset.name,
                       version=version.version, kind=tr(version.kind), rows=version.rows)
            choices.append((label, str(data_file.relative_to(workspace.root))))
    return choices


def validation_file_of(train_path: str | None, workspace: Workspace) -> str:
    """The validation rows that a split dataset version keeps beside its training rows, or "" for none."""
    if not train_path or not Path(train_path).name:
        return ""
    candidate = str(Path(train_path).with_name(store.VALIDATION_FILE))
    return candidate if trainset.resolve_path(candidate, workspace).is_file() else ""


def preflight_markdown(report: preflight.Preflight) -> str:
    if report.estimate is None:
        return tr(NO_ESTIMATE)
    figures = report.estimate
    needed = preflight.format_bytes(figures.memory[figures.chosen].total)
    rows = "\n".join(f"- **{tr(label)}**: {tr(value)}" for label, value in preflight.summary_rows(figures))
    headline = tr("### Pre-flight estimate\n**{verdict}** — about {needed} needed in {device}",
                  verdict=tr(VERDICT_MARKS[figures.verdict]), needed=needed, device=tr(figures.device.kind))
    return (f"{headline}\n\n{rows}\n\n"
            + tr("*Computed from the model's configuration without loading it; memory is good to about ±30%.*"))


def findings_markdown(findings: list[preflight.Finding]) -> str:
    if not findings:
        return tr("✓ No problems found.")
    return "\n".join(tr("- {level} in **{field}**: {message}", level=tr(LEVEL_MARKS[f.level]),
                        field=tr(field_label(f.field)), message=tr(f.message)) for f in findings)


def train_command(workspace: Workspace) -> str:
    return (tr("# Save the YAML above as run.yaml, then:") + "\n"
            f"lora-studio train run.yaml --workspace {shlex.quote(str(workspace.root))}")


def build(ctx: StudioContext, app: gr.Blocks, current_config: gr.State, page: gr.Tab) -> None:
    workspace = ctx.workspace
    with gr.Row():
        with gr.Column(scale=3):
            with gr.Row():
                preset = gr.Dropdown(preset_choices(workspace), value=None, label="Start from a preset",
                                     info="Sensible settings for a purpose; you can change any field afterwards.",
                                     elem_id="cfg-preset", scale=3)
            model_picker = gr.Dropdown(
                model_choices(workspace), value=modeling.DEFAULT_MODEL, allow_custom_value=True, label="Base model",
                info=ModelSection.model_fields["name"].description + " Type a folder path or hub id to use another.",
                elem_id="cfg-model-name", render=False)
            dataset_picker = gr.Dropdown(
                dataset_choices(workspace), value=DataSection().train_path, allow_custom_value=True,
                label="Training data (dataset version)", info=DataSection.model_fields["train_path"].description,
                elem_id="cfg-data-train-path", render=False)
            form = ConfigForm.build(custom={"model.name": model_picker, "data.train_path": dataset_picker})
            with gr.Accordion("Save as a named preset", open=False, elem_id="cfg-save-section"):
                with gr.Row():
                    preset_name = gr.Textbox(label="Preset name", placeholder="e.g. clinic-faq-r16",
                                             elem_id="cfg-preset-name", scale=3)
                    save = gr.Button("Save preset", elem_id="cfg-save-preset", scale=1)
                saved_note = gr.Markdown(elem_id="cfg-save-note")
        with gr.Column(scale=2):
            # Empty until the load event's check fills it, in the reader's language: a static text here would
            # be relabelled by the language switch over the estimate on screen.
            panel = gr.Markdown(elem_id="preflight-panel")
            checks = gr.Markdown(elem_id="config-checks")
            run_yaml = gr.Code(language="yaml", label="The config that will run", interactive=False,
                               elem_id="config-yaml", buttons=["copy"], max_lines=30)
            command = gr.Code(language="shell", label="The same run from the command line", interactive=False,
                              lines=2, elem_id="config-command", buttons=["copy"])

    fields = form.components
    preflight_outputs = [panel, checks, run_yaml, command, current_config]

    @friendly
    @ctx.allow("configure", otherwise=lambda: (gr.skip(),) * 5)
    def check(**values: Any) -> tuple[str, str, str, str, dict | None]:
        try:
            config = form.read(values)
        except ConfigError as error:
            return tr(NO_ESTIMATE), f"- {tr(LEVEL_MARKS['error'])}: {tr(str(error))}", "", "", None
        report = preflight.check(config, workspace, ctx.path_roots)
        return (preflight_markdown(report), findings_markdown(report.findings), to_yaml(config),
                train_command(workspace), config.model_dump(mode="json"))

    @friendly
    @ctx.allow("configure")
    def choose_preset(key: str | None, **values: Any) -> list[Any]:
        if not key:
            return [gr.skip()] * len(fields)
        return form.show(presets.apply(form.read(values), key, workspace))

    @friendly
    @ctx.allow("configure")
    def save_preset(preset_title: str, **values: Any) -> tuple[str, dict]:
        key = presets.save(workspace, preset_title, form.read(values))
        return (tr("Saved as **{name}**; pick it from the preset list to load it.",
                   name=key.removeprefix(presets.SAVED_PREFIX)),
                gr.update(choices=preset_choices(workspace), value=key))

    @friendly
    @ctx.allow("configure")
    def pair_validation(train_path: str) -> str:
        return validation_file_of(train_path, workspace)

    @friendly
    @ctx.allow("configure", otherwise=lambda: (gr.skip(),) * 3)
    def refresh_choices() -> tuple[dict, dict, dict]:
        return (gr.update(choices=preset_choices(workspace)), gr.update(choices=model_choices(workspace)),
                gr.update(choices=dataset_choices(workspace)))

    gr.on([widget.input for widget in fields], check, None, preflight_outputs, inputs_kwargs=form.inputs,
          api_name="configure_check", trigger_mode="always_last", show_progress="hidden")
    validation_path = form.widget("data.validation_path")
    dataset_picker.input(pair_validation, dataset_picker, validation_path, api_name="configure_dataset",
                         show_progress="hidden").then(check, None, preflight_outputs, inputs_kwargs=form.inputs,
                                                      api_name="configure_check_dataset", show_progress="hidden")
    preset.input(choose_preset, preset, fields, inputs_kwargs=form.inputs, api_name="configure_preset",
                 show_progress="hidden").then(check, None, preflight_outputs, inputs_kwargs=form.inputs,
                                              api_name="configure_check_preset", show_progress="hidden")
    save.click(save_preset, preset_name, [saved_note, preset], inputs_kwargs=form.inputs,
               api_name="configure_save_preset")
    # Opening the tab lists what appeared since the page loaded (a dataset just uploaded, a model, a preset).
    page.select(refresh_choices, None, [preset, model_picker, dataset_picker], api_name="configure_choices_again",
                show_progress="hidden")
    app.load(refresh_choices, None, [preset, model_picker, dataset_picker], api_name="configure_choices",
             show_progress="hidden").then(check, None, preflight_outputs, inputs_kwargs=form.inputs,
                                          api_name="configure_check_load", show_progress="hidden")
