"""The one typed run configuration, shared by the UI form, the CLI and the record of a run.

Every field has a stable dotted name (`lora.r`, `train.learning_rate`, …), a range, a default and a
plain-language description; the UI builds its form from these, and `--set name=value` addresses them.
The same YAML file is a preset, a CLI input and what a run saves as `config.yaml`.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails

from core.errors import ConfigError
from core.text import N_

DEFAULT_MODEL = "default"
MAX_COUNT = 10**9   # steps and cadences: beyond any real run, and within what torch and the scheduler take


class _Section(BaseModel):
    # Unknown keys are typos in a hand-written YAML: refuse them instead of ignoring them.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelSection(_Section):
    name: str = Field(DEFAULT_MODEL, min_length=1, description=(
        "Which model to fine-tune: 'default' (the built-in SmolLM2-135M-Instruct, runs on a laptop CPU), "
        "a local folder with a Hugging Face model, or a hub id such as deepseek-ai/deepseek-llm-7b-chat."))
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field("auto", description=(
        "Number format of the base weights. 'auto' picks bfloat16/float16 on a GPU and float32 on a CPU."))
    load_in_4bit: bool = Field(False, title="QLoRA (4-bit base)", description=(
        "QLoRA: keep the base model in 4 bits to cut memory about 3x. Needs an NVIDIA GPU (bitsandbytes)."))
    template: Literal["auto", "chatml", "llama2", "deepseek", "alpaca"] = Field("auto", description=(
        "How conversations are laid out for the model. 'auto' uses the model's own chat template."))


class DataSection(_Section):
    train_path: str = Field("datasets/demo-clinic-faq/v1/data.jsonl", min_length=1, description=(
        "The training data: a JSONL file, absolute or relative to the workspace."))
    validation_path: str | None = Field(None, description=(
        "Optional separate validation file. When empty, validation_ratio of the training data is held out."))
    validation_ratio: float = Field(0.1, ge=0.0, le=0.5, description=(
        "Share of the training data held out to measure progress when no validation file is given."))
    system_prompt: str = Field("", description=(
        "An instruction put in front of every conversation, e.g. 'You are the front desk of a clinic.'"))
    mix: dict[str, float] = Field({}, title="Dataset mix", description=(
        "Train on several files at once in given shares, e.g. {datasets/faq/v2/data.jsonl: 8, "
        "datasets/hard-cases/v1/data.jsonl: 2}. The first file is used whole, the others are sampled "
        "(repeated if needed) to reach their share. When set, it replaces train_path."))
    keywords: list[str] = Field([], title="Domain keywords", description=(
        "Words or phrases that matter in your domain (e.g. drug names, 医保). Their tokens in the answers "
        "count more in the loss; see train.keyword_loss_weight."))

    @field_validator("mix")
    @classmethod
    def _positive_shares(cls, value: dict[str, float]) -> dict[str, float]:
        if any(not path.strip() for path in value) or any(share <= 0 for share in value.values()):
            raise ValueError(N_("give each file a share above 0, e.g. {a.jsonl: 8, b.jsonl: 2}"))
        return value


class LoraSection(_Section):
    r: int = Field(16, ge=1, le=1024, title="Rank (r)", description=(
        "LoRA rank: how much the adapter can learn. 8-32 suits most tasks; raise it for large, varied data."))
    alpha: float = Field(32.0, gt=0, le=4096, description=(
        "Scales the adapter's effect (effective strength alpha/r). Commonly r to 2·r."))
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description=(
        "Randomly silences part of the adapter's input while training, against overfitting on small data "
        "(0.05-0.1 if validation loss rises while training loss falls). 0 trains about 10% faster on a CPU."))
    target_modules: list[str] | Literal["all-linear"] = Field(["q_proj", "v_proj"], examples=[
            "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], description=(
        "Which layers get an adapter: a list of layer names, or 'all-linear' for every linear layer "
        "(more capacity, more memory)."))
    bias: Literal["none", "all", "lora_only"] = Field("none", description=(
        "Whether bias terms are trained too. 'none' is standard and keeps the adapter small."))
    use_rslora: bool = Field(False, title="rsLoRA", description="Rank-stabilised scaling (alpha/sqrt(r)); helps at high ranks.")
    use_dora: bool = Field(False, title="DoRA", description=(
        "DoRA: splits weights into size and direction; slower, sometimes better."))
    init_from: str = Field("", title="Continue from adapter", description=(
        "Two-stage fine-tuning: start from an earlier run's adapter (its run id, or an adapter folder) "
        "instead of a fresh one. Its rank and layers are kept; the settings above are then not used."))

    @field_validator("target_modules")
    @classmethod
    def _non_empty(cls, value: list[str] | str) -> list[str] | str:
        if isinstance(value, list) and (not value or any(not name.strip() for name in value)):
            raise ValueError(N_("give at least one layer name, or 'all-linear'"))
        return value


class TrainSection(_Section):
    learning_rate: float = Field(2e-4, gt=0, le=1.0, description=(
        "How big each update step is. 1e-4 to 3e-4 is typical for LoRA; too high makes the loss jump."))
    epochs: float = Field(3.0, gt=0, le=1000, description="How many times the model sees the whole dataset.")
    max_steps: int = Field(-1, ge=-1, le=MAX_COUNT, description=(
        "Stop after this many optimizer steps; -1 lets 'epochs' decide."))
    batch_size: int = Field(4, ge=1, le=4096, description=(
        "Conversations per step (per process when several GPUs train together). Larger is smoother "
        "but needs more memory."))
    gradient_accumulation_steps: int = Field(1, ge=1, le=1024, description=(
        "Adds up several batches before each update: a larger effective batch without more memory."))
    warmup_ratio: float = Field(0.1, ge=0.0, le=0.5, description=(
        "Share of the steps over which the learning rate ramps up from zero, for a calm start."))
    max_grad_norm: float = Field(1.0, gt=0, allow_inf_nan=False, description=(
        "Clips oversized updates, against sudden loss spikes."))
    scheduler: Literal["linear", "cosine", "constant"] = Field("linear", description=(
        "How the learning rate falls after warm-up."))
    max_seq_length: int = Field(1024, ge=16, le=131072, title="Max length (tokens)", description=(
        "Longest conversation in tokens; longer ones are truncated or dropped. Memory grows with it."))
    truncation: Literal["truncate", "drop"] = Field("truncate", description=(
        "What happens to a conversation longer than the max length: 'truncate' keeps its beginning, "
        "'drop' leaves it out. Either way the run log says how many."))
    packing: bool = Field(True, description=(
        "Puts the conversations of a batch end to end without padding; each still sees only itself. "
        "Same result, much faster. Turn off only to compare."))
    group_by_length: bool = Field(True, description=(
        "Batches conversations of similar length together, so less time goes into padding."))
    keyword_loss_weight: float = Field(2.0, ge=0.0, le=100.0, title="Keyword weight", description=(
        "How much the domain keywords' answer tokens count in the loss compared with other answer "
        "tokens (1: the same)."))
    seed: int = Field(42, ge=0, le=2**32 - 1, description="Makes runs repeatable: the same seed gives the same result.")
    eval_steps: int = Field(50, ge=0, le=MAX_COUNT, description="Measure validation loss every N steps (0: only at the end).")
    save_steps: int = Field(100, ge=0, le=MAX_COUNT, description=(
        "Save a checkpoint every N steps, to resume after a crash (0: only when the run is stopped)."))
    save_total_limit: int = Field(2, ge=1, le=100, description="How many checkpoints to keep on disk.")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field("auto", description=(
        "'auto' uses 16-bit maths where the hardware has it (GPUs, CPUs with AVX512-BF16), else 32-bit."))
    num_threads: int = Field(0, ge=0, le=1024, description="CPU threads for training; 0 picks one per physical core.")
    gradient_checkpointing: bool = Field(False, description=(
        "Recomputes activations instead of storing them: about 30% slower, much less memory."))
    early_stopping_patience: int = Field(0, ge=0, le=1000, description=(
        "Stop when the validation loss has not improved for this many evaluations in a row (0: never)."))
    keep_best: bool = Field(True, description=(
        "Keep the adapter from the evaluation with the lowest validation loss, not just the last one."))
    loss_spike_factor: float = Field(5.0, ge=0.0, le=1000.0, title="Loss-spike guard", description=(
        "Stop the run if the loss jumps above this many times its recent average, keeping the last good "
        "checkpoint (0: never). A NaN or infinite loss always stops the run."))

    @field_validator("max_steps")
    @classmethod
    def _not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError(N_("0 steps would train nothing; use -1 to let 'epochs' decide"))
        return value


class GenerationSection(_Section):
    max_new_tokens: int = Field(256, ge=1, le=32768, description="Longest reply, in tokens.")
    temperature: float = Field(0.7, ge=0.0, le=2.0, description="Randomness of replies; 0 always picks the likeliest word.")
    top_p: float = Field(0.9, gt=0.0, le=1.0, description="Samples only from the likeliest words that add up to this share.")
    repetition_penalty: float = Field(1.1, ge=1.0, le=2.0, description="Discourages repeating the same words.")


class RunConfig(_Section):
    name: str = Field("", title="Run name", description="A name for the run; a dated one is made up when empty.")
    model: ModelSection = ModelSection()
    data: DataSection = DataSection()
    lora: LoraSection = LoraSection()
    train: TrainSection = TrainSection()
    generation: GenerationSection = GenerationSection()


PRESETS: dict[str, dict[str, Any]] = {
    "quick-demo-cpu": {
        "lora": {"r": 8, "alpha": 16, "target_modules": ["q_proj", "v_proj"]},
        "train": {"epochs": 1, "max_steps": 30, "batch_size": 4, "max_seq_length": 512,
                  "learning_rate": 3e-4, "eval_steps": 10, "save_steps": 10},
    },
    "seed-recommendation": {
        "lora": {"r": 32, "alpha": 16, "dropout": 0.1, "target_modules": ["q_proj", "v_proj"]},
        "train": {"learning_rate": 3e-4, "epochs": 3},
    },
    "balanced": {
        "lora": {"r": 16, "alpha": 32, "target_modules": "all-linear"},
    },
    "low-memory-qlora": {
        "model": {"load_in_4bit": True},
        "lora": {"r": 16, "alpha": 32, "target_modules": "all-linear"},
        "train": {"gradient_checkpointing": True},
    },
}


def field_names(model: type[BaseModel] = RunConfig, prefix: str = "") -> list[str]:
    """Every dotted leaf name, e.g. ['name', 'model.name', …, 'generation.repetition_penalty']."""
    names: list[str] = []
    for key, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names.extend(field_names(annotation, f"{prefix}{key}."))
        else:
            names.append(f"{prefix}{key}")
    return names


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_override(assignment: str) -> tuple[str, Any]:
    """(field, value) of one `name=value` override; the value is read as YAML ([a,b] is a list, -1 a number)."""
    name, sep, raw = assignment.partition("=")
    name = name.strip()
    if not sep or not name:
        raise ConfigError(f"--set '{assignment}' is not of the form name=value.",
                          "Example: --set lora.r=16")
    check_field(name)
    text = _text_field(name)
    if text:   # a name or prompt such as 2024 or yes stays text, as written
        return name, None if text == "optional" and raw.strip() in ("null", "~") else raw
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return name, value


def _text_field(name: str) -> str:
    """"text" when the dotted field holds a str, "optional" for str | None, "" otherwise."""
    section: type[BaseModel] = RunConfig
    *parents, leaf = name.split(".")
    for part in parents:
        section = section.model_fields[part].annotation  # type: ignore[assignment]
    annotation = section.model_fields[leaf].annotation
    return "text" if annotation is str else "optional" if annotation == (str | None) else ""


def check_field(name: str) -> None:
    """Raise ConfigError, with a did-you-mean hint, unless `name` is a dotted config field."""
    known = field_names()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"Did you mean '{close[0]}'?" if close else "Run 'lora-studio config' to see every field."
        raise ConfigError(f"Unknown config field '{name}'.", hint)


def with_value(data: dict[str, Any], name: str, value: Any) -> dict[str, Any]:
    """`data` (a config as nested dicts) with the dotted field `name` set to `value`."""
    nested: Any = value
    for part in reversed(name.split(".")):
        nested = {part: nested}
    return _merge(data, nested)


def apply_override(data: dict[str, Any], assignment: str) -> dict[str, Any]:
    """Apply one `name=value` override (see parse_override)."""
    return with_value(data, *parse_override(assignment))


def flat_values(config: RunConfig) -> dict[str, Any]:
    """Every field by its dotted name, e.g. {'lora.r': 16, 'train.learning_rate': 0.0002, …}."""
    flat: dict[str, Any] = {}
    values = config.model_dump(mode="json")
    for name in field_names():
        value: Any = values
        for part in name.split("."):
            value = value[part]
        flat[name] = value
    return flat


def _describe(error: ErrorDetails) -> str:
    """One clear line from one pydantic error: field, value given, what is allowed."""
    field = ".".join(str(part) for part in error["loc"] if not isinstance(part, int)) or "config"
    kind, ctx = error["type"], error.get("ctx", {})
    if kind == "extra_forbidden":
        known = field_names()
        close = difflib.get_close_matches(field, known, n=1)
        return N_(f"Unknown config field '{field}'. Did you mean '{close[0]}'?") if close else \
            N_(f"Unknown config field '{field}'.")
    given = error.get("input")
    allowed = {
        "greater_than_equal": lambda: N_(f"must be ≥ {ctx.get('ge')}"),
        "greater_than": lambda: N_(f"must be > {ctx.get('gt')}"),
        "less_than_equal": lambda: N_(f"must be ≤ {ctx.get('le')}"),
        "less_than": lambda: N_(f"must be < {ctx.get('lt')}"),
        "literal_error": lambda: N_(f"must be one of {ctx.get('expected')}"),
        "value_error": lambda: str(ctx.get("error", error["msg"])),
    }.get(kind, lambda: error["msg"][0].lower() + error["msg"][1:])()
    return N_(f"Invalid value for '{field}': {given!r} — {allowed}.")


def validate(data: dict[str, Any]) -> RunConfig:
    try:
        return RunConfig.model_validate(data)
    except ValidationError as error:
        details = error.errors(include_url=False)
        # A typed union (list or 'all-linear') reports one error per branch; the first says enough.
        first, more = _describe(details[0]), len(details) - 1
        raise ConfigError(f"{first} (and {more} more problem(s))" if more else first) from None


def load_yaml(path: Path) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"Config file {path} does not exist.",
                          "Check the path, or create one with 'lora-studio config > run.yaml'.") from None
    except (UnicodeDecodeError, IsADirectoryError):
        raise ConfigError(f"Config file {path} is not a UTF-8 text file.", "Give a YAML file.") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        raise ConfigError(f"Config file {path} is not valid YAML at line {line}, column {column}." if mark
                          else f"Config file {path} is not valid YAML.", "Check indentation and quotes there.") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"Config file {path} must hold a mapping of sections (model:, lora:, train:…), "
                          f"not a {type(data).__name__}.")
    return data


def build(path: Path | None = None, preset: str | None = None, overrides: Sequence[str] = ()) -> RunConfig:
    """Defaults, then the preset, then the file, then each --set, validated once at the end."""
    data: dict[str, Any] = {}
    if preset:
        if preset not in PRESETS:
            raise ConfigError(f"Unknown preset '{preset}'.", f"Choose one of: {', '.join(PRESETS)}.")
        data = _merge(data, PRESETS[preset])
    if path is not None:
        data = _merge(data, load_yaml(path))
    for assignment in overrides:
        data = apply_override(data, assignment)
    return validate(data)


def to_yaml(config: RunConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), allow_unicode=True, sort_keys=False)
