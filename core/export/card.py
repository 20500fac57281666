"""The model card (README.md) that travels with every export: what the model is, what it was trained on and
how, how well it did, how the export was checked, and how to use it.

    render(facts)                                           # what the export job writes today
    render(facts, evaluation=summary, ratings=summary)      # with the Evaluate and Rate tabs' results

`evaluation` and `ratings` are flat summaries (name -> value, e.g. {"BLEU": 31.2, "ROUGE-L": 0.44} or
{"Fluency (1-4)": "3.4 ± 0.2", "Raters": 3}); each becomes a table, and a card without one says where
to get it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.export.formats import ExportFormat
from core.export.source import RunSource
from core.runs.records import dataset_label

Summary = Mapping[str, Any]
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class CardFacts:
    export_id: str
    export_format: ExportFormat
    source: RunSource
    verification: Summary      # the export's own check (core.export.merge/quantise/gguf/adapter)
    files: list[str]           # what to load: "model/", "<id>-q8_0.gguf", …
    created: str


def render(facts: CardFacts, evaluation: Summary | None = None, ratings: Summary | None = None) -> str:
    source, config = facts.source, facts.source.config
    lora = config.lora
    targets = lora.target_modules if isinstance(lora.target_modules, str) else ", ".join(lora.target_modules)
    steps = f"{config.train.max_steps} steps" if config.train.max_steps > 0 else f"{config.train.epochs:g} epochs"
    sections = [
        _front_matter(facts),
        f"# {source.name} — {facts.export_format.label}\n\n"
        f"Made with LoRA Studio on {facts.created[:10]} from training run `{source.run_id}`. "
        f"{facts.export_format.description}",
        "## Model\n\n" + _facts({
            "Base model": source.base, "Method": f"LoRA, rank {lora.r}, alpha {lora.alpha:g}, dropout {lora.dropout:g}",
            "Adapted layers": targets, "Chat template": config.model.template,
            "Export": f"{facts.export_format.label} ({', '.join(facts.files)})"}),
        "## Training data\n\n" + _facts({
            "Dataset version": dataset_label(config),
            "Validation": config.data.validation_path or f"{config.data.validation_ratio:.0%} held out",
            "System prompt": config.data.system_prompt or "(none)"}),
        "## Training settings\n\n" + _facts({
            "Learning rate": config.train.learning_rate, "Length": steps,
            "Batch": f"{config.train.batch_size} × {config.train.gradient_accumulation_steps} accumulation",
            "Max length (tokens)": config.train.max_seq_length, "Precision": config.train.precision,
            "Seed": config.train.seed}),
        "## Training results\n\n" + (_facts({name: source.summary[key] for key, name in _RESULTS.items()
                                              if source.summary.get(key) is not None})
                                     or "The run recorded no results (it was stopped before its first save)."),
        "## Evaluation\n\n" + (_facts(evaluation) if evaluation else
                               "Not evaluated yet: the Evaluate tab measures BLEU, ROUGE and perplexity on held-out data."),
        "## Human ratings\n\n" + (_facts(ratings) if ratings else
                                  "Not rated yet: the Rate tab runs blind rating sessions (fluency, relevance, safety)."),
        "## How this export was checked\n\n" + _facts(_flat(facts.verification)),
        "## How to use it\n\n" + _usage(facts),
    ]
    return "\n\n".join(sections) + "\n"


_RESULTS = {"final_loss": "Final training loss", "best_eval_loss": "Best validation loss",
            "tokens_trained": "Tokens trained", "wall_s": "Training time (s)"}


def without_front_matter(card: str) -> str:
    """The card as people read it (the YAML block at the top is for the Hugging Face hub)."""
    if card.startswith("---\n"):
        return card.split("\n---\n", 1)[-1].lstrip()
    return card


def _front_matter(facts: CardFacts) -> str:
    library = {"adapter": "peft", "gguf-f16": "gguf", "gguf-q8_0": "gguf"}.get(facts.export_format.key, "transformers")
    lines = ["---", f"library_name: {library}", "pipeline_tag: text-generation",
             f"tags: [lora, lora-studio, {facts.export_format.key}]"]
    if _HUB_ID.match(facts.source.base):
        lines.append(f"base_model: {facts.source.base}")
    return "\n".join([*lines, "---"])


def _flat(summary: Summary, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in summary.items():
        if isinstance(value, Mapping):
            flat.update(_flat(value, f"{prefix}{key} · "))
        else:
            flat[f"{prefix}{key}".replace("_", " ")] = value
    return flat


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    return str(value).replace("\n", " ")


def _facts(rows: Summary) -> str:
    return "\n".join(f"- **{name}:** {_value(value)}" for name, value in rows.items())


def _usage(facts: CardFacts) -> str:
    key = facts.export_format.key
    if key == "adapter":
        return ("```python\nfrom peft import PeftModel\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
                f'base = AutoModelForCausalLM.from_pretrained("{facts.source.base}")\n'
                f'model = PeftModel.from_pretrained(base, "{facts.export_id}")   # the unzipped folder\n'
                f'tokenizer = AutoTokenizer.from_pretrained("{facts.export_id}")\n```')
    if key.startswith("gguf"):
        return (f"With Ollama, in this folder: `ollama create {facts.source.run_id} -f Modelfile`, then "
                f"`ollama run {facts.source.run_id}`. With llama.cpp: `llama-cli -m {facts.files[0]} -cnv`.")
    extra = " (needs `pip install torchao`)" if key == "int8" else " (needs a CUDA GPU and bitsandbytes)" if key == "nf4" else ""
    return (f"A standard transformers folder{extra}:\n\n```python\n"
            "from transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
            'model = AutoModelForCausalLM.from_pretrained("model")\ntokenizer = AutoTokenizer.from_pretrained("model")\n'
            "```\n\nFor production serving on a GPU, hand the folder to vLLM (`vllm serve model`) or TGI "
            "(`text-generation-launcher --model-id model`); `transformers serve --continuous-batching` also serves it.")
