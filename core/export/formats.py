"""The kinds of export, and whether this machine can make each one (asked before a job starts).

    merged     the adapter merged into its base: a standard transformers folder (safetensors)
    adapter    the LoRA adapter alone (peft folder), as a zip to download
    int8       the merged model with int8 weights (torchao weight-only), reloads with plain transformers
    nf4        the merged model in 4-bit NF4 (bitsandbytes), on CUDA only
    gguf-f16   the merged model as one GGUF file for llama.cpp and Ollama, 16-bit
    gguf-q8_0  the same, 8-bit (q8_0)
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from core.errors import ConfigError
from core.text import N_

CONVERTER_ENV = "LORA_STUDIO_LLAMA_CPP"   # a folder holding llama.cpp's convert_hf_to_gguf.py


@dataclass(frozen=True)
class ExportFormat:
    key: str
    label: str
    description: str
    model_dir: bool    # the result loads with plain transformers (chat and evaluation can use it)


FORMATS: dict[str, ExportFormat] = {item.key: item for item in (
    ExportFormat("merged", N_("Merged model (safetensors)"),
                 N_("The adapter merged into its base: a standard model folder any transformers code, vLLM or TGI loads."),
                 True),
    ExportFormat("adapter", N_("Adapter only (zip)"),
                 N_("Only the LoRA adapter (a few MB): load it with peft on top of the same base model."), False),
    ExportFormat("int8", N_("int8 quantised (torchao)"),
                 N_("The merged model with 8-bit weights: about a third of the fp32 size, reloads with transformers."), True),
    ExportFormat("nf4", N_("4-bit NF4 (bitsandbytes, GPU)"),
                 N_("The merged model in 4 bits for CUDA GPUs: about an eighth of the fp32 size."), True),
    ExportFormat("gguf-f16", N_("GGUF f16 (llama.cpp, Ollama)"),
                 N_("One file for llama.cpp and Ollama, 16-bit, with an Ollama Modelfile."), False),
    ExportFormat("gguf-q8_0", N_("GGUF q8_0 (llama.cpp, Ollama)"),
                 N_("One file for llama.cpp and Ollama, 8-bit, with an Ollama Modelfile."), False),
)}


def get(key: str) -> ExportFormat:
    if key not in FORMATS:
        raise ConfigError(f"Unknown export format '{key}'.", f"Choose one of: {', '.join(FORMATS)}.")
    return FORMATS[key]


def converter_dir() -> Path:
    """Where llama.cpp's converter is: $LORA_STUDIO_LLAMA_CPP, else <venv>/llama.cpp (scripts/setup.sh)."""
    return Path(os.environ.get(CONVERTER_ENV) or Path(sys.prefix) / "llama.cpp")


def check_available(key: str) -> ExportFormat:
    """The format, or ConfigError saying why this machine cannot make it and what to do instead."""
    import torch

    chosen = get(key)
    if key == "int8" and importlib.util.find_spec("torchao") is None:
        raise ConfigError("The int8 export needs the torchao package, which is not installed.",
                          "pip install 'lora-studio[quantise]' (or torchao), or export merged or GGUF q8_0 instead.")
    if key == "nf4" and not torch.cuda.is_available():
        raise ConfigError(
            "4-bit NF4 export is refused on the CPU: bitsandbytes' NF4 reloads broken here (perplexity about 1.9e7 "
            "measured) and torchao's int4 needs a kernel package this CPU build lacks.",
            "Export int8 or GGUF q8_0 here, or make the 4-bit export on a machine with a CUDA GPU.")
    if key == "nf4" and importlib.util.find_spec("bitsandbytes") is None:
        raise ConfigError("The 4-bit NF4 export needs the bitsandbytes package, which is not installed.",
                          "pip install bitsandbytes")
    if key.startswith("gguf") and not (converter_dir() / "convert_hf_to_gguf.py").is_file():
        raise ConfigError(f"GGUF export needs llama.cpp's converter, which is not at {converter_dir()}.",
                          "Run scripts/get-gguf-converter.sh once (it takes the converter from PyPI's llama-cpp-python "
                          f"source package), or set {CONVERTER_ENV} to a llama.cpp checkout.")
    return chosen
