"""`lora-studio doctor`: what this machine and workspace can do, in one report."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform

import psutil
import torch

from core.models import modeling
from core.system.hardware import cpu_has_bf16
from core.workspace import Workspace

_PACKAGES = ("torch", "transformers", "peft", "accelerate", "datasets", "gradio", "pydantic", "gguf")


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _gpus() -> str:
    if not torch.cuda.is_available():
        return "none (training and chat run on the CPU)"
    names = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        names.append(f"{props.name} ({props.total_memory / 2**30:.0f} GiB)")
    return ", ".join(names)


def _bitsandbytes() -> str:
    if importlib.util.find_spec("bitsandbytes") is None:
        return "not installed (4-bit QLoRA unavailable)"
    if not torch.cuda.is_available():
        return f"{_version('bitsandbytes')}, but no CUDA: 4-bit QLoRA unavailable"
    return f"{_version('bitsandbytes')}, usable"


def report(workspace: Workspace) -> list[tuple[str, str]]:
    memory = psutil.virtual_memory()
    rows = [
        ("LoRA Studio", _version("lora-studio")),
        ("Python", platform.python_version()),
        *[(package, _version(package)) for package in _PACKAGES],
        ("CPU", f"{platform.machine()}, {psutil.cpu_count(logical=False) or '?'} cores "
                f"({os.cpu_count()} threads), bf16 instructions: {'yes' if cpu_has_bf16() else 'no'}"),
        ("RAM", f"{memory.total / 2**30:.1f} GiB total, {memory.available / 2**30:.1f} GiB free"),
        ("GPU", _gpus()),
        ("CUDA", torch.version.cuda or "not in this torch build"),
        ("bitsandbytes", _bitsandbytes()),
        ("Workspace", str(workspace.root)),
        ("Hub access", "offline by default; a hub model downloads only when a config names one"
                       if os.environ.get("HF_HUB_OFFLINE") == "1" else "allowed (HF_HUB_OFFLINE is not 1)"),
    ]
    try:
        gguf = modeling.default_gguf_path()
        state = "converted, ready" if modeling.default_model_ready(workspace) else "installed, converted on first use"
        rows.append(("Default model", f"{modeling.DEFAULT_MODEL_LABEL}: {state} ({gguf.name})"))
    except Exception as error:  # noqa: BLE001 - the doctor reports problems instead of raising them
        rows.append(("Default model", f"PROBLEM: {error}"))
    return rows
