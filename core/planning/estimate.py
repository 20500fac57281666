"""Pre-flight figures for a run, computed before a single weight is loaded.

The base model is built from its config.json on PyTorch's meta device (shapes, no storage: a 7B model
takes well under a second), the run's LoRA settings are applied with peft, and the parameters are
counted, so the trainable count is exactly the one peft reports when training starts. Hub models work
offline from the reference configs shipped in assets/model_configs/ (or from the local hub cache).

Memory, in bytes, is weights + LoRA state + activations + logits + runtime overhead:
  weights      base parameters × bytes per parameter: 2 for 16-bit, 4 for 32-bit. QLoRA quantises only
               the linear layers inside the decoder blocks (bitsandbytes leaves embeddings, norms and the
               LM head in 16 bits): LLM.int8 stores 1 byte per weight (its per-row scales add under 0.1%;
               Dettmers et al. 2022, "LLM.int8()"); NF4 with double quantisation stores 0.5 byte plus
               1/64 byte of block constants plus 4/(64·256) byte for their own scales (Dettmers et al.
               2023, "QLoRA", §2 and §3).
  LoRA state   trainable parameters × 16 bytes: fp32 weight, fp32 gradient and AdamW's two fp32 moments
               (peft keeps adapters in fp32 on a 16-bit base; Loshchilov & Hutter 2019 for AdamW's state).
  activations  the tensors autograd keeps per decoder layer, counted as Korthikanti et al. 2022 ("Reducing
               Activation Recomputation in Large Transformer Models", §4) do, for a Llama-style block with
               SDPA/flash attention, which keeps no seq² score matrix: per token 6·h + 2·h_kv + 4·i values
               (both norms' inputs and outputs, q, attention output, k and v, then gate, up, act(gate) and
               act·up), × batch × seq × layers × bytes per value (2 under 16-bit compute, including
               bf16 autocast over fp32 weights on a CPU with AVX512-BF16; 4 in plain fp32).
               With gradient checkpointing each layer keeps only its input (h values per token) plus one
               layer's full set while it is recomputed.
  logits       batch × seq × vocab × (compute bytes + 8): the logits, their fp32 copy for the loss and the
               gradient of that copy (transformers upcasts logits to fp32 for cross-entropy).
  overhead     0.75 GiB on a GPU (CUDA context, cuBLAS workspace, allocator slack), 0.5 GiB on a CPU
               (the Python process and its libraries).
Checked against the published 7B figures (LLaMA-Factory's hardware table: 16 GB for 16-bit LoRA,
10 GB for 8-bit and 6 GB for 4-bit QLoRA, at batch 1) in tests/test_estimate.py.

Time = training FLOPs / the sustained FLOP/s of this machine. A LoRA step costs about 4·N FLOPs per
token, N being the parameters of the matmul layers: 2·N forward and 2·N for the backward pass through
the frozen weights, which need no weight gradients (Kaplan et al. 2020 count 6·N for full training,
the third 2·N being weight gradients); recomputing activations adds another 2·N. Evaluation costs 2·N
per validation token. The sustained rate comes from earlier runs in this workspace (their measured
tokens/s × their FLOPs per token) when there are any; otherwise from a short matmul calibration on this
machine × 0.35, the share of matmul peak a LoRA step reached on the reference CPU (32-48% measured,
measured by bench/train_speed.py); the lower end keeps the estimate from promising too much.
"""

from __future__ import annotations

import functools
import json
import math
import statistics
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import psutil
import torch

from core.config import LoraSection, RunConfig, TrainSection
from core.data import store
from core.errors import ConfigError, ModelLoadError, StudioError
from core.models import modeling, templates
from core.runs import records
from core.text import N_
from core.training import trainset
from core.workspace import ASSETS_DIR, Workspace, read_json

REFERENCE_CONFIGS = ASSETS_DIR / "model_configs"
DEFAULT_MODEL_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"

Precision = Literal["lora_32bit", "lora_16bit", "qlora_8bit", "qlora_4bit"]
PUBLISHED_PRECISIONS: tuple[Precision, ...] = ("lora_16bit", "qlora_8bit", "qlora_4bit")
Verdict = Literal["fits", "tight", "won't fit"]

_GIB = 1024 ** 3
_LORA_STATE_BYTES = 4 + 4 + 8          # fp32 weight + gradient + AdamW moments
_NF4_BYTES = 0.5 + 1 / 64 + 4 / (64 * 256)
_OVERHEAD = {"GPU": int(0.75 * _GIB), "RAM": int(0.5 * _GIB)}
_TIGHT_SHARE = 0.85                    # above this share of the free memory a run is "tight"
_CALIBRATED_EFFICIENCY = 0.35
_RECENT_RUNS = 5


@dataclass(frozen=True)
class ModelAnatomy:
    """A base model's shape and parameter counts with the run's LoRA applied, all from the meta device."""

    config_source: str        # where config.json came from, in words
    hidden_size: int
    num_layers: int
    intermediate_size: int
    kv_size: int              # width of k (and of v): kv heads × head dim
    vocab_size: int
    max_context: int
    total_params: int         # the base model, tied weights once
    quantisable_params: int   # linear layers inside the decoder blocks: what bitsandbytes quantises
    matmul_params: int        # every linear layer including the LM head: what costs FLOPs per token
    trainable_params: int     # exactly what peft reports
    adapter_bytes: int        # adapter_model.safetensors as peft saves it (fp32 tensors + header)

    @property
    def trainable_share(self) -> float:
        return self.trainable_params / self.total_params


@dataclass(frozen=True)
class MemoryEstimate:
    """Estimated peak memory of one training step, in bytes, by what takes it."""

    weights: int
    lora_state: int
    activations: int
    logits: int
    overhead: int

    @property
    def total(self) -> int:
        return self.weights + self.lora_state + self.activations + self.logits + self.overhead


@dataclass(frozen=True)
class DeviceMemory:
    kind: Literal["GPU", "RAM"]
    name: str
    total_bytes: int
    available_bytes: int


@dataclass(frozen=True)
class TimeEstimate:
    steps: int
    train_samples: int
    train_tokens: int         # tokens processed over the whole run, all epochs
    tokens_per_s: float
    seconds: float            # training plus evaluation
    basis: str                # where the speed comes from, in words


@dataclass(frozen=True)
class Estimate:
    model: str
    anatomy: ModelAnatomy
    memory: dict[Precision, MemoryEstimate]
    chosen: Precision         # the precision this config will train in
    device: DeviceMemory
    verdict: Verdict
    time: TimeEstimate | None  # None when the training data cannot be read
    time_problem: str = ""     # why there is no time estimate

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "config_source": self.anatomy.config_source,
            "trainable_params": self.anatomy.trainable_params,
            "total_params": self.anatomy.total_params,
            "trainable_share": self.anatomy.trainable_share,
            "adapter_bytes": self.anatomy.adapter_bytes,
            **{precision: self.memory[precision].total for precision in PUBLISHED_PRECISIONS},
            "chosen_precision": self.chosen,
            "chosen_memory_bytes": self.memory[self.chosen].total,
            "memory_breakdown": {precision: {**asdict(memory), "total": memory.total}
                                 for precision, memory in self.memory.items()},
            "device": asdict(self.device),
            "verdict": self.verdict,
            "time": asdict(self.time) if self.time else None,
            "time_problem": self.time_problem,
            "max_context": self.anatomy.max_context,
        }


# --- where a model's config.json comes from ------------------------------------------------------

def reference_config_dir(hub_id: str) -> Path | None:
    """The shipped reference config folder for a hub id (matched case-insensitively, as the hub does)."""
    wanted = hub_id.replace("/", "--").lower()
    for folder in REFERENCE_CONFIGS.iterdir():
        if folder.name.lower() == wanted and (folder / "config.json").is_file():
            return folder
    return None


def reference_models() -> list[str]:
    """Hub ids whose architecture ships with the studio, so they can be estimated offline."""
    return sorted((folder.name.replace("--", "/") for folder in REFERENCE_CONFIGS.iterdir()
                   if (folder / "config.json").is_file()), key=str.lower)


def config_folder(name: str, workspace: Workspace) -> tuple[Path, str]:
    """The folder holding `name`'s config.json, and where it comes from in words. Never converts the
    default model nor downloads anything."""
    source = modeling.resolve(name, workspace)
    if source.kind == "default":
        if modeling.default_model_ready(workspace):
            return workspace.model_dir(modeling.DEFAULT_MODEL_DIR), N_("the converted built-in model")
        folder = reference_config_dir(DEFAULT_MODEL_HUB_ID)
        assert folder is not None, "the default model's reference config is shipped with the studio"
        return folder, N_("the shipped reference config")
    if source.path is not None:
        return source.path, N_("the local hub cache") if source.kind == "hub" else N_("the model folder")
    folder = reference_config_dir(name)
    if folder is None:
        known = ", ".join(reference_models())
        raise ModelLoadError(
            f"No architecture is known offline for '{name}': it is not downloaded and has no shipped reference config.",
            f"Download it first, point model.name at a local folder, or pick one of: {known}.")
    return folder, N_("the shipped reference config")


# --- counting parameters on the meta device --------------------------------------------------------

def anatomy(name: str, lora: LoraSection, workspace: Workspace) -> ModelAnatomy:
    folder, source = config_folder(name, workspace)
    config_file = folder / "config.json"
    return _anatomy(str(config_file), config_file.stat().st_mtime, lora.model_dump_json(), source)


@functools.lru_cache(maxsize=64)
def _anatomy(config_file: str, mtime: float, lora_json: str, source: str) -> ModelAnatomy:
    from peft import get_peft_model_state_dict

    lora = LoraSection.model_validate_json(lora_json)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)   # transformers/peft deprecation notes, not ours
        config, model = _meta_model(Path(config_file))
        total = sum(p.numel() for p in model.parameters())
        head = model.get_output_embeddings()
        linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
        peft_model = modeling.add_lora(model, lora)
    trainable, _ = peft_model.get_nb_trainable_parameters()
    text = config.get_text_config()
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    kv_heads = getattr(text, "num_key_value_heads", None) or text.num_attention_heads
    return ModelAnatomy(
        config_source=source, hidden_size=text.hidden_size, num_layers=text.num_hidden_layers,
        intermediate_size=text.intermediate_size, kv_size=kv_heads * head_dim, vocab_size=text.vocab_size,
        max_context=getattr(text, "max_position_embeddings", 0) or 0, total_params=total,
        quantisable_params=sum(m.weight.numel() for m in linears if m is not head),
        matmul_params=sum(m.weight.numel() for m in linears), trainable_params=trainable,
        adapter_bytes=_safetensors_bytes(get_peft_model_state_dict(peft_model)))


def _meta_model(config_file: Path):
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        config = AutoConfig.from_pretrained(config_file.parent)
        with torch.device("meta"):
            return config, AutoModelForCausalLM.from_config(config)
    except (ValueError, KeyError, OSError) as error:
        raise ModelLoadError(f"Cannot build the model described by {config_file}: {error}",
                             "Check that it is a causal language model supported by transformers.") from None




def _safetensors_bytes(state: dict[str, torch.Tensor]) -> int:
    """Size of the safetensors file peft writes for `state`: an 8-byte length, the JSON header padded
    with spaces to 8 bytes, then the tensors, sorted by name (all fp32, so no alignment reordering)."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for key in sorted(state):
        tensor = state[key]
        size = tensor.numel() * 4   # peft saves adapters in fp32 (autocast_adapter_dtype)
        header[key] = {"dtype": "F32", "shape": list(tensor.shape), "data_offsets": [offset, offset + size]}
        offset += size
    header_len = len(json.dumps(header, separators=(",", ":")).encode())
    return 8 + math.ceil(header_len / 8) * 8 + offset


# --- memory --------------------------------------------------------------------------------------------

def weight_bytes(model: ModelAnatomy, precision: Precision) -> int:
    rest = model.total_params - model.quantisable_params   # embeddings, norms, LM head stay 16-bit
    if precision == "lora_32bit":
        return 4 * model.total_params
    if precision == "lora_16bit":
        return 2 * model.total_params
    if precision == "qlora_8bit":
        return model.quantisable_params + 2 * rest
    return math.ceil(_NF4_BYTES * model.quantisable_params) + 2 * rest


def memory(model: ModelAnatomy, precision: Precision, batch_size: int, seq_len: int,
           gradient_checkpointing: bool, device_kind: Literal["GPU", "RAM"], half_compute: bool = True
           ) -> MemoryEstimate:
    """Peak memory of one step; `half_compute`: activations in 16 bits (bf16/fp16 autocast) even over
    32-bit weights, as training does wherever the hardware has 16-bit maths."""
    value_bytes = 2 if half_compute or precision != "lora_32bit" else 4
    tokens = batch_size * seq_len
    per_layer = (6 * model.hidden_size + 2 * model.kv_size + 4 * model.intermediate_size) * tokens * value_bytes
    if gradient_checkpointing:
        activations = model.num_layers * model.hidden_size * tokens * value_bytes + per_layer
    else:
        activations = model.num_layers * per_layer
    return MemoryEstimate(
        weights=weight_bytes(model, precision),
        lora_state=_LORA_STATE_BYTES * model.trainable_params,
        activations=activations,
        logits=tokens * model.vocab_size * (value_bytes + 8),
        overhead=_OVERHEAD[device_kind])


def _half_compute(config: RunConfig) -> bool:
    from core.system.hardware import mixed_precision

    try:
        return mixed_precision(config.train.precision) != "no"
    except ConfigError:   # fp16 without a GPU: preflight reports it; count the fp32 fallback
        return False


def chosen_precision(config: RunConfig, on_gpu: bool) -> Precision:
    if config.model.load_in_4bit:
        return "qlora_4bit"
    if config.model.dtype == "float32" or (config.model.dtype == "auto" and not on_gpu and not _half_compute(config)):
        return "lora_32bit"   # a CPU without bf16 trains on a float32 base (core.training.train.load_model_with_adapter)
    return "lora_16bit"


def detect_device() -> DeviceMemory:
    """The memory a run can use: all GPUs together (device_map="auto" spreads over them), else RAM."""
    if torch.cuda.is_available():
        free, total = 0, 0
        for index in range(torch.cuda.device_count()):
            device_free, device_total = torch.cuda.mem_get_info(index)
            free, total = free + device_free, total + device_total
        count = torch.cuda.device_count()
        name = torch.cuda.get_device_name(0) + (f" ×{count}" if count > 1 else "")
        return DeviceMemory("GPU", name, total, free)
    ram = psutil.virtual_memory()
    return DeviceMemory("RAM", N_(f"CPU ({psutil.cpu_count(logical=False) or 1} cores)"), ram.total, ram.available)


def verdict(needed: int, available: int) -> Verdict:
    if needed <= _TIGHT_SHARE * available:
        return "fits"
    return "tight" if needed <= available else "won't fit"


# --- time ------------------------------------------------------------------------------------------------

def flops_per_token(model: ModelAnatomy, gradient_checkpointing: bool) -> int:
    return (6 if gradient_checkpointing else 4) * model.matmul_params


def _example_lengths(config: RunConfig, workspace: Workspace) -> tuple[list[int], list[int]]:
    """Token lengths of the training and validation examples of this config."""
    # Only what shapes the examples is part of the cache key, so changing the learning rate is instant.
    shaping = RunConfig(model=config.model, data=config.data).model_copy(update={"train": config.train.model_copy(
        update={name: TrainSection.model_fields[name].default for name in TrainSection.model_fields
                if name not in ("max_seq_length", "truncation", "seed")})})
    files = [*(config.data.mix or [config.data.train_path]), config.data.validation_path]
    stamps = tuple(_stamp(trainset.resolve_path(path, workspace)) for path in files if path)
    train, validation = _cached_example_lengths(shaping.model_dump_json(), stamps, str(workspace.root),
                                                _tokenizer_dir(config.model.name, workspace))
    return list(train), list(validation)


def _stamp(path: Path) -> tuple[str, float]:
    return str(path), path.stat().st_mtime if path.exists() else 0.0


@functools.lru_cache(maxsize=8)
def _cached_example_lengths(config_json: str, stamps: tuple, root: str, tokenizer_dir: str | None
                            ) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """With the model's tokenizer on disk: exactly the examples training builds (core.training.trainset: split,
    mix, chat template, truncation). Without it: the training file's rows split the same way, at about
    one token per CJK character and per four other characters plus four per message (a mix is
    approximated by its first file)."""
    config, workspace = RunConfig.model_validate_json(config_json), Workspace(Path(root))
    if tokenizer_dir is not None:
        from transformers import AutoTokenizer

        built = trainset.build(config, AutoTokenizer.from_pretrained(tokenizer_dir), workspace)
        return tuple(map(len, built.train)), tuple(map(len, built.validation))

    def rough_lengths(conversations: list[list[dict[str, str]]]) -> list[int]:
        texts = ["".join(m["content"] for m in templates.with_system_prompt(c, config.data.system_prompt))
                 for c in conversations]
        return [min(config.train.max_seq_length, sum(1 for ch in text if ord(ch) >= 0x2E80)
                    + sum(1 for ch in text if ord(ch) < 0x2E80) // 4 + 4 * (len(c) + 1))
                for text, c in zip(texts, conversations)]

    def read(path: str) -> list[list[dict[str, str]]]:
        return store.load_conversations(trainset.resolve_path(path, workspace))

    train_path = next(iter(config.data.mix), config.data.train_path)
    conversations = read(train_path)
    if config.data.validation_path:
        return tuple(rough_lengths(conversations)), tuple(rough_lengths(read(config.data.validation_path)))
    split = trainset.split_validation(rough_lengths(conversations), conversations, config.data.validation_ratio,
                                      config.train.seed, Path(train_path).name)
    return tuple(split.train), tuple(split.validation)


def _tokenizer_dir(name: str, workspace: Workspace) -> str | None:
    folder, _ = config_folder(name, workspace)
    has_tokenizer = (folder / "tokenizer.json").is_file() or (folder / "tokenizer_config.json").is_file()
    return str(folder) if has_tokenizer and not folder.is_relative_to(REFERENCE_CONFIGS) else None


@functools.lru_cache(maxsize=4)
def calibrated_flops(device: str, dtype_name: str) -> float:
    """Measured matmul FLOP/s on this machine (about 0.2 s)."""
    dtype, size = getattr(torch, dtype_name), 1024
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b  # warm-up
    repeats, started = 0, time.perf_counter()
    while time.perf_counter() - started < 0.2 or repeats < 3:
        a @ b
        repeats += 1
    if device == "cuda":
        torch.cuda.synchronize()
    return 2 * size ** 3 * repeats / (time.perf_counter() - started)


def _measured_flops(workspace: Workspace) -> tuple[float, int] | None:
    """Median sustained FLOP/s of the latest runs in this workspace that wrote a summary, and how many."""
    folders = [workspace.run_folder(status.run_id) for status in records.list_runs(workspace)]
    finished = sorted((f for f in folders if f.summary.is_file()), key=lambda f: f.summary.stat().st_mtime, reverse=True)
    rates = []
    for folder in finished[:_RECENT_RUNS]:
        tokens_per_s = float((read_json(folder.summary, {}) or {}).get("tokens_per_s") or 0)
        try:
            run_config = records.load_config(folder)
            run_model = anatomy(run_config.model.name, run_config.lora, workspace)
        except StudioError:  # a run whose model or config is gone tells nothing about speed
            continue
        if tokens_per_s > 0:
            rates.append(tokens_per_s * flops_per_token(run_model, run_config.train.gradient_checkpointing))
    return (statistics.median(rates), len(rates)) if rates else None


def _sustained_flops(config: RunConfig, workspace: Workspace) -> tuple[float, str]:
    measured = _measured_flops(workspace)
    if measured is not None:
        rate, runs = measured
        return rate, N_(f"measured speed of the last {runs} run(s) in this workspace")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    candidates = {"fp32": ["float32"], "bf16": ["bfloat16"], "fp16": ["float16"],
                  "auto": ["bfloat16"] if device == "cuda" else ["float32", "bfloat16"]}[config.train.precision]
    peak = max(calibrated_flops(device, dtype) for dtype in candidates)
    return _CALIBRATED_EFFICIENCY * peak, N_(f"{_CALIBRATED_EFFICIENCY:.0%} of this machine's measured matmul speed "
                                             f"({peak / 1e9:.0f} GFLOP/s); no finished run to learn from yet")


def time_estimate(config: RunConfig, model: ModelAnatomy, workspace: Workspace) -> TimeEstimate:
    """Steps and seconds for this config on this machine; raises DataError when the data is unreadable."""
    from core.training.steps import StepPlan

    lengths, validation = _example_lengths(config, workspace)
    steps = StepPlan.create(lengths, config.train, processes=1).total_steps
    samples_per_step = config.train.batch_size * config.train.gradient_accumulation_steps
    mean_tokens = statistics.fmean(lengths) if lengths else 0.0
    train_tokens = round(steps * samples_per_step * mean_tokens)
    # Training evaluates every eval_steps and at the last step (once, if that is also an eval step).
    evaluations = math.ceil(steps / config.train.eval_steps) if config.train.eval_steps else 1
    flops_rate, basis = _sustained_flops(config, workspace)
    train_flops = train_tokens * flops_per_token(model, config.train.gradient_checkpointing)
    eval_flops = evaluations * sum(validation) * 2 * model.matmul_params
    seconds = (train_flops + eval_flops) / flops_rate
    return TimeEstimate(steps=steps, train_samples=len(lengths), train_tokens=train_tokens,
                        tokens_per_s=flops_rate / flops_per_token(model, config.train.gradient_checkpointing),
                        seconds=seconds, basis=basis)


# --- everything together -----------------------------------------------------------------------------

def estimate(config: RunConfig, workspace: Workspace) -> Estimate:
    """All pre-flight figures for a config. Raises StudioError when the model's architecture is unknown."""
    model = anatomy(config.model.name, config.lora, workspace)
    device = detect_device()
    precisions: tuple[Precision, ...] = ("lora_32bit", *PUBLISHED_PRECISIONS)
    figures = {precision: memory(model, precision, config.train.batch_size, config.train.max_seq_length,
                                 config.train.gradient_checkpointing, device.kind, _half_compute(config))
               for precision in precisions}
    chosen = chosen_precision(config, device.kind == "GPU")
    try:
        timing, problem = time_estimate(config, model, workspace), ""
    except StudioError as error:
        timing, problem = None, str(error)
    return Estimate(model=config.model.name, anatomy=model, memory=figures, chosen=chosen, device=device,
                    verdict=verdict(figures[chosen].total, device.available_bytes), time=timing,
                    time_problem=problem)
