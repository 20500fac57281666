"""Merging a run's adapter into its base and saving a standard transformers folder, then proving it:
the saved folder, reloaded with plain `AutoModelForCausalLM`, must give the logits the adapter model gave.

    figures = merge.write(workspace, source, target, steps)   # raises when the check fails

The folder holds safetensors weights (sharded above `max_shard_size`), the tokenizer with the chat
template the run trained with (built-in layouts are written in, so the folder is self-contained), and a
generation config with the run's reply settings.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import torch

from core.errors import StudioError
from core.export import checks
from core.export.source import RunSource
from core.export.steps import Steps
from core.models import modeling
from core.models.templates import template_source
from core.text import N_
from core.workspace import Workspace

STEPS = 3
MAX_SHARD_SIZE = "2GB"
VERIFY_SAMPLES, VERIFY_TOKENS = 4, 128
# The merged weights are W + B·A·scale computed once: in float32 the logits differ by rounding only
# (about 1e-5 here); in 16-bit they differ by 16-bit rounding, so there only the chosen tokens must agree.
FP32_TOLERANCE = 1e-3
HALF_PRECISION_AGREEMENT = 0.98


def write(workspace: Workspace, source: RunSource, target: Path, steps: Steps,
          max_shard_size: str = MAX_SHARD_SIZE) -> dict[str, Any]:
    """Merge, save into `target`, reload and compare; returns the check's figures."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    steps(N_(f"Loading the base model '{source.base}' with the adapter of run '{source.run_id}'"))
    tokenizer = modeling.load_tokenizer(source.base, workspace)
    base = modeling.load_model(source.base, workspace)   # never 4-bit: merging needs the real weights
    adapted = PeftModel.from_pretrained(base, str(source.adapter)).eval()
    data = checks.samples(workspace, source, tokenizer, VERIFY_SAMPLES, VERIFY_TOKENS)
    expected = checks.logits(adapted, data.token_ids)
    dtype = base.dtype

    steps(N_("Merging the adapter into the base and saving the model"))
    merged = adapted.merge_and_unload()
    generation = source.config.generation
    sampling = {"temperature": generation.temperature, "top_p": generation.top_p} if generation.temperature > 0 \
        else {"temperature": None, "top_p": None}   # greedy: transformers refuses sampling settings without sampling
    merged.generation_config.update(do_sample=generation.temperature > 0, repetition_penalty=generation.repetition_penalty,
                                    max_new_tokens=generation.max_new_tokens, **sampling)
    tokenizer.chat_template = template_source(tokenizer, source.config.model.template)
    merged.save_pretrained(target, max_shard_size=max_shard_size)
    tokenizer.save_pretrained(target)
    del merged, adapted, base
    gc.collect()

    steps(N_("Reloading the saved model with plain transformers and comparing its logits with the adapter's"))
    reloaded = AutoModelForCausalLM.from_pretrained(target, device_map=modeling.plan_device().device_map).eval()
    agreement = checks.compare(expected, checks.logits(reloaded, data.token_ids))
    del reloaded
    gc.collect()
    exact = dtype == torch.float32
    passed = agreement.max_abs_diff <= FP32_TOLERANCE if exact else agreement.top_token_agreement >= HALF_PRECISION_AGREEMENT
    figures = {**agreement.to_json(), "dtype": str(dtype).removeprefix("torch."), "compared_on": data.origin,
               "tolerance": f"max |Δlogit| ≤ {FP32_TOLERANCE}" if exact else
               f"same top token at ≥ {HALF_PRECISION_AGREEMENT:.0%} of positions"}
    if not passed:
        raise StudioError(f"The merged model does not reproduce the adapter: max |Δlogit| {agreement.max_abs_diff:.3g}, "
                          f"same top token at {agreement.top_token_agreement:.1%} of {agreement.positions} positions.",
                          "Nothing was exported. Check the run's adapter and base model, then try again.")
    return figures

