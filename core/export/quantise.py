"""Quantised exports made from the verified merged model: int8 weights (torchao, weight-only; CPU and
GPU) or 4-bit NF4 (bitsandbytes, CUDA only). Each is saved, reloaded with plain transformers, asked a
question, and scored: its perplexity on the run's validation split against the unquantised model's.
An export whose perplexity rises past MAX_PERPLEXITY_RATIO reloaded broken and is refused, so a
quantisation that does not survive the round trip (as NF4 does not on the CPU) never counts as done.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

from core.errors import StudioError
from core.export import checks
from core.export.source import RunSource
from core.export.steps import Steps
from core.models import modeling
from core.text import N_
from core.workspace import Workspace

STEPS = 3
PERPLEXITY_SAMPLES, PERPLEXITY_TOKENS = 64, 512
MAX_PERPLEXITY_RATIO = 1.25


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def write(workspace: Workspace, source: RunSource, merged: Path, target: Path, kind: str,
          steps: Steps) -> dict[str, Any]:
    """Quantise the merged model in `merged` into `target` (kind "int8" or "nf4"), reload and score it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    steps(N_(f"Quantising the merged model ({kind})"))
    plan = modeling.plan_device()
    quantised = AutoModelForCausalLM.from_pretrained(merged, quantization_config=_quantisation(kind, plan.dtype),
                                                     device_map=plan.device_map)
    quantised.save_pretrained(target)
    tokenizer = AutoTokenizer.from_pretrained(merged)
    tokenizer.save_pretrained(target)
    del quantised
    gc.collect()

    steps(N_("Reloading the quantised model with plain transformers and asking it a question"))
    reloaded = AutoModelForCausalLM.from_pretrained(target, device_map=plan.device_map).eval()
    data = checks.samples(workspace, source, tokenizer, PERPLEXITY_SAMPLES, PERPLEXITY_TOKENS)
    reply = _reply(reloaded, tokenizer, data)
    after = checks.perplexity(reloaded, data)
    del reloaded
    gc.collect()

    steps(N_("Measuring the unquantised model's perplexity for comparison"))
    unquantised = AutoModelForCausalLM.from_pretrained(merged, device_map=plan.device_map).eval()
    before = checks.perplexity(unquantised, data)
    del unquantised
    gc.collect()
    figures = {"perplexity": after, "perplexity_unquantised": before, "perplexity_change": after / before - 1,
               "measured_on": data.origin, "size_bytes": folder_bytes(target), "size_unquantised_bytes": folder_bytes(merged),
               "sample_reply": reply}
    if not after <= before * MAX_PERPLEXITY_RATIO:   # also refuses NaN
        raise StudioError(f"The {kind} model reloads broken: perplexity {after:.4g} against {before:.4g} unquantised.",
                          "Nothing was exported. Use the merged, int8 or GGUF export instead.")
    return figures


def _quantisation(kind: str, dtype: Any) -> Any:
    if kind == "int8":
        from torchao.quantization import Int8WeightOnlyConfig
        from transformers import TorchAoConfig

        return TorchAoConfig(Int8WeightOnlyConfig())
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype)


def _reply(model: Any, tokenizer: Any, data: checks.Samples) -> str:
    """The model's reply to the first sample's prompt (its conversation up to the first reply), greedy."""
    import torch

    ids, labels = data.token_ids[0], data.labels[0]
    prompt = ids[: next((i for i, label in enumerate(labels) if label != checks.IGNORE_INDEX), len(ids))]
    inputs = torch.tensor([prompt], device=next(model.parameters()).device)
    with torch.inference_mode():
        output = model.generate(inputs, attention_mask=torch.ones_like(inputs), max_new_tokens=24, do_sample=False,
                                pad_token_id=tokenizer.pad_token_id)
    return tokenizer.decode(output[0, inputs.shape[1]:], skip_special_tokens=True).strip()
