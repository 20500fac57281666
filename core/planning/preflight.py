"""Before a run starts: the estimate plus the reasons a config will not work or is unwise, in words.

Field checks (ranges, choices) are the config's own; these are the checks that need the model, the
data or the machine: QLoRA without CUDA, a max length above the model's context, memory, a learning
rate outside what LoRA usually needs. The UI shows each finding next to its field; the CLI prints them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from core.config import RunConfig
from core.errors import ConfigError, ModelLoadError, StudioError
from core.models import modeling
from core.planning import estimate
from core.runs import records
from core.text import N_
from core.workspace import Workspace, is_within, safe_id

# LoRA learns nothing visible below this and usually diverges above it (peft and QLoRA recipes use 1e-5…5e-4).
SANE_LEARNING_RATES = (1e-6, 1e-3)
PRECISION_LABELS: dict[estimate.Precision, str] = {
    "lora_32bit": N_("32-bit LoRA"), "lora_16bit": N_("16-bit LoRA"), "qlora_8bit": N_("8-bit QLoRA"),
    "qlora_4bit": N_("4-bit QLoRA")}


@dataclass(frozen=True)
class Finding:
    level: Literal["error", "warning"]
    field: str        # the dotted config field it is about
    message: str      # the problem and what to do


@dataclass(frozen=True)
class Preflight:
    estimate: estimate.Estimate | None   # None when the model cannot be described
    findings: list[Finding]

    @property
    def ok(self) -> bool:
        return not any(finding.level == "error" for finding in self.findings)


def check(config: RunConfig, workspace: Workspace, roots: Sequence[Path] | None = None) -> Preflight:
    """The estimate and every finding; never raises for a problem the user can fix. With `roots` (a studio
    shared over a network), files outside the workspace and those folders are refused before any is read."""
    if roots is not None and (outside := _outside_roots(config, workspace, [workspace.root, *roots])):
        return Preflight(None, outside)
    try:
        figures = estimate.estimate(config, workspace)
    except (ModelLoadError, ConfigError) as error:
        # An unknown model, or target modules the model does not have: the two things the estimate rejects.
        field = "model.name" if isinstance(error, ModelLoadError) else "lora.target_modules"
        return Preflight(None, [Finding("error", field, str(error)), *_device_findings(config)])
    return Preflight(figures, findings(config, figures) + _adapter_findings(config, workspace))


def ensure_ready(config: RunConfig, workspace: Workspace, roots: Sequence[Path] | None = None) -> Preflight:
    """check(), raising ConfigError with the first error: a run never starts with a known problem
    (warnings do not stop it)."""
    report = check(config, workspace, roots)
    errors = [finding for finding in report.findings if finding.level == "error"]
    if errors:
        first, more = errors[0].message, len(errors) - 1
        raise ConfigError(f"Cannot start: {first} (and {more} more)" if more else f"Cannot start: {first}",
                          "Fix it in the Configure tab, then start again.")
    return report


def findings(config: RunConfig, figures: estimate.Estimate) -> list[Finding]:
    found = _device_findings(config)
    context = figures.anatomy.max_context
    if context and config.train.max_seq_length > context:
        found.append(Finding("error", "train.max_seq_length",
                             N_(f"Max length {config.train.max_seq_length} is above what this model can read "
                                f"({context} tokens). Set it to {context} or less.")))
    low, high = SANE_LEARNING_RATES
    rate = config.train.learning_rate
    if not low <= rate <= high:
        effect = N_("the adapter will barely change") if rate < low else N_("the loss will likely jump around or blow up")
        found.append(Finding("warning", "train.learning_rate",
                             N_(f"Learning rate {rate:g} is outside the usual LoRA range ({low:g} to {high:g}): {effect}. "
                                "Try 1e-4 to 3e-4.")))
    if figures.time is None:
        found.append(Finding("error", "data.train_path", figures.time_problem))
    elif figures.time.train_samples == 0:
        found.append(Finding("error", "data.train_path",
                             N_("The training data holds no conversation. Pick another dataset version.")))
    if not config.data.validation_path and config.data.validation_ratio == 0:
        found.append(Finding("warning", "data.validation_ratio",
                             N_("No validation data: progress cannot be measured on unseen examples. "
                                "Hold out 0.05 to 0.1.")))
    needed = figures.memory[figures.chosen]
    if figures.verdict != "fits":
        where = N_(f"{figures.device.kind} ({format_bytes(figures.device.available_bytes)} free)")
        if figures.device.kind == "GPU" and figures.chosen != "qlora_4bit":
            tips = N_("lower the batch size or max length, switch on gradient checkpointing, or use 4-bit QLoRA")
        elif figures.device.kind == "RAM":
            tips = N_("lower the batch size or max length, switch on gradient checkpointing, or use a GPU")
        else:
            tips = N_("lower the batch size or max length, switch on gradient checkpointing")
        # A warning, not an error: the estimate is good to about ±30%, so "tight" or "won't fit" may still run.
        found.append(Finding("warning", "train.batch_size",
                             N_(f"About {format_bytes(needed.total)} needed, {figures.verdict} in {where}: {tips}.")))
    return found


def _outside_roots(config: RunConfig, workspace: Workspace, roots: Sequence[Path]) -> list[Finding]:
    """Each path typed into the config (data files, a model or adapter folder) that lies outside `roots`.
    A model name that is no folder (default, a registered model, a hub id) and a run id are not paths."""
    def in_workspace(text: str) -> Path:   # data paths: absolute, or relative to the workspace (trainset)
        path = Path(text).expanduser()
        return path if path.is_absolute() else workspace.root / path

    typed = [("data.train_path", in_workspace(config.data.train_path))]
    typed += [("data.validation_path", in_workspace(config.data.validation_path))] if config.data.validation_path else []
    typed += [("data.mix", in_workspace(path)) for path in config.data.mix or {}]
    if (folder := Path(config.model.name).expanduser()).is_dir():   # modeling reads it as given
        typed.append(("model.name", folder))
    if config.lora.init_from and safe_id(config.lora.init_from) != config.lora.init_from:
        typed.append(("lora.init_from", Path(config.lora.init_from).expanduser()))
    outside = []
    for field, path in typed:
        if not is_within(path, roots):
            outside.append(Finding("error", field, N_(f"{field} points outside the folders this studio may read. "
                                   "Upload the file in the Data tab (or put the model in the workspace's models/ "
                                   "folder), or ask the studio's admin to start it with --allow-path FOLDER.")))
    return outside


def _adapter_findings(config: RunConfig, workspace: Workspace) -> list[Finding]:
    """The run (or folder) a two-stage run continues from must still be there: it may have been deleted
    since the config was written."""
    if not config.lora.init_from:
        return []
    try:
        records.resolve_adapter(config.lora.init_from, workspace)
    except ConfigError as error:
        return [Finding("error", "lora.init_from", str(error))]
    return []


def _device_findings(config: RunConfig) -> list[Finding]:
    """QLoRA without CUDA or bitsandbytes, fp16 without a GPU: the same rules loading and training apply."""
    from core.system.hardware import mixed_precision

    found = []
    for field, rule in (("model.load_in_4bit", lambda: modeling.plan_device(config.model.dtype, config.model.load_in_4bit)),
                        ("train.precision", lambda: mixed_precision(config.train.precision))):
        try:
            rule()
        except StudioError as error:
            found.append(Finding("error", field, str(error)))
    return found


def format_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1000:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} TB"


def format_duration(seconds: float) -> str:
    if seconds < 90:
        return N_(f"about {max(1, round(seconds))} s")
    minutes = round(seconds / 60)
    if minutes < 90:
        return N_(f"about {minutes} min")
    hours, minutes = divmod(minutes, 60)
    return N_(f"about {hours} h {minutes:02d} min") if hours < 48 else N_(f"about {hours / 24:.1f} days")


def format_rate(per_second: float) -> str:
    return f"{per_second:,.0f}" if per_second >= 10 else f"{per_second:.2g}"


def summary_rows(figures: estimate.Estimate) -> list[tuple[str, str]]:
    """The estimate as (label, value) lines, shared by the CLI and the pre-flight panel."""
    model = figures.anatomy
    chosen = figures.memory[figures.chosen]
    rows = [
        (N_("Model"), N_(f"{figures.model} (architecture from {model.config_source})")),
        (N_("Trainable parameters"),
         N_(f"{model.trainable_params:,} of {model.total_params:,} ({model.trainable_share:.2%})")),
        (N_("Adapter on disk"), format_bytes(model.adapter_bytes)),
        (N_("Peak memory by precision"), " · ".join(f"{PRECISION_LABELS[p]} {format_bytes(figures.memory[p].total)}"
                                                    for p in estimate.PUBLISHED_PRECISIONS)),
        (N_("This run"), N_(f"{PRECISION_LABELS[figures.chosen]}: {format_bytes(chosen.total)} "
                            f"(weights {format_bytes(chosen.weights)}, "
                            f"activations {format_bytes(chosen.activations + chosen.logits)}) "
                            f"on {figures.device.name}, {format_bytes(figures.device.available_bytes)} free "
                            f"→ {figures.verdict}")),
    ]
    if figures.time is not None:
        timing = figures.time
        rows.append((N_("Steps and time"), N_(f"{timing.steps:,} steps over {timing.train_samples:,} conversations, "
                                              f"{format_duration(timing.seconds)} at ~{format_rate(timing.tokens_per_s)} "
                                              f"tokens/s ({timing.basis})")))
    return rows
