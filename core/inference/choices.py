"""What can answer a prompt: a base model, a training run's adapter on its base, or a merged export.

Evaluation, rating sessions, the Chat tab and the API server all offer the same list and name a choice
by one key that survives a restart:

    "base:default"          the built-in model (or any model name: a local folder, a registered model)
    "run:faq-r16"           run faq-r16's adapter on the base it was trained from
    "export:faq-r16-merged" a merged export, a full model of its own

A run's choice also carries what its training used, so its answers are laid out and prompted the same
way: the chat template, the system prompt and the run's reply settings (generation.*).
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from core.config import GenerationSection
from core.errors import ConfigError, StudioError
from core.models import modeling
from core.models.templates import TemplateName
from core.runs import records
from core.text import N_
from core.workspace import ExportFolder, Workspace, read_json, safe_id

ChoiceKind = Literal["base", "run", "export"]
# An export job writes export.json last, once its output is verified (core.export.records.complete):
# {"complete": true, "kind": …, and for exports that load with plain transformers (merged, int8, nf4)
# "model_dir": the folder inside the export, with the chat layout ("template", "system_prompt") and the
# run's reply settings ("generation")}.


@dataclass(frozen=True)
class ModelChoice:
    key: str                      # "base:default", "run:faq-r16", "export:faq-r16-merged"
    label: str                    # for people: "Run 'clinic FAQ, r16' (adapter on default)"
    base: str                     # the model to load: a name core.models.modeling resolves, or a folder
    adapter: Path | None = None   # the LoRA adapter to put on it (runs only)
    template: TemplateName = "auto"
    system_prompt: str = ""
    generation: GenerationSection = field(default_factory=GenerationSection)

    @property
    def kind(self) -> ChoiceKind:
        return self.key.split(":", 1)[0]  # type: ignore[return-value]


def base_choice(name: str = modeling.DEFAULT_MODEL, label: str | None = None) -> ModelChoice:
    return ModelChoice(f"base:{name}", label or N_(f"Base model: {name}"), name)


def run_choice(workspace: Workspace, run_id: str) -> ModelChoice:
    """A run's adapter on its base, as the run was trained (refused when the run has no adapter yet)."""
    folder = workspace.run_folder(run_id)
    if not (folder.adapter / "adapter_config.json").is_file():
        raise ConfigError(f"Run '{run_id}' has no adapter yet.", "Pick a run that finished or was stopped.")
    config = records.load_config(folder)
    name = records.read_status(folder).name
    return ModelChoice(f"run:{run_id}", N_(f"Run '{name}' (adapter on {config.model.name})"), config.model.name,
                       folder.adapter, config.model.template, config.data.system_prompt, config.generation)


def _answering_export(manifest: dict) -> bool:
    return bool(manifest.get("complete") and manifest.get("model_dir"))


def export_choice(workspace: Workspace, export_id: str) -> ModelChoice:
    """A complete export that loads with plain transformers (merged, int8) as a model of its own."""
    folder = workspace.export_folder(export_id)
    manifest = read_json(folder.manifest, {}) or {}
    if not _answering_export(manifest):
        raise ConfigError(f"Export '{export_id}' is not a complete model that can answer.", "Pick another export.")
    kind = manifest.get("kind", "merged")
    return ModelChoice(f"export:{export_id}", N_(f"Export '{export_id}' ({kind})"), str(folder.root / manifest["model_dir"]),
                       template=manifest.get("template", "auto"), system_prompt=manifest.get("system_prompt", ""),
                       generation=GenerationSection(**manifest.get("generation", {})))


def resolve(workspace: Workspace, key: str | None) -> ModelChoice:
    """The choice a key names ("base:…", "run:…", "export:…"); a bare name means a base model."""
    key = key or ""
    kind, _, name = key.partition(":") if ":" in key else ("base", "", key)
    if not name:
        raise ConfigError(f"'{key}' names no model.", "Use base:NAME, run:RUN_ID or export:EXPORT_ID.")
    if kind == "base":
        return base_choice(name)
    if kind == "run":
        return run_choice(workspace, name)
    if kind == "export":
        return export_choice(workspace, name)
    raise ConfigError(f"'{key}' is not a model choice.", "Use base:NAME, run:RUN_ID or export:EXPORT_ID.")


def find(workspace: Workspace, name: str) -> ModelChoice:
    """What the command line accepts: a key, or a bare name looked up as a run, then a complete export,
    then a base model (`lora-studio chat faq-r16` means run faq-r16)."""
    if ":" in name:
        return resolve(workspace, name)
    if safe_id(name) == name and (workspace.run_folder(name).adapter / "adapter_config.json").is_file():
        return run_choice(workspace, name)
    if safe_id(name) == name and _answering_export(read_json(workspace.export_folder(name).manifest, {}) or {}):
        return export_choice(workspace, name)
    return base_choice(name)


def available(workspace: Workspace) -> list[ModelChoice]:
    """Everything that can answer now: the base models, every run with an adapter, complete exports."""
    found = [base_choice(name, label) for label, name in modeling.local_models(workspace)]
    for status in records.list_runs(workspace):
        if (workspace.run_folder(status.run_id).adapter / "adapter_config.json").is_file():
            with suppress(StudioError):   # a run whose config.yaml cannot be read cannot answer as trained
                found.append(run_choice(workspace, status.run_id))
    for folder in sorted(workspace.exports_dir.iterdir()) if workspace.exports_dir.is_dir() else []:
        if _answering_export(read_json(ExportFolder(folder).manifest, {}) or {}):
            found.append(export_choice(workspace, folder.name))
    return found
