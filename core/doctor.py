"""`lora-studio doctor`: what this machine and workspace can do, in one report; `--repair` rebuilds the
workspace's indexes from its folders (the folders are the truth) and clears what interrupted writes left."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import shutil
from contextlib import closing
from pathlib import Path

import psutil
import torch

from core.data import store
from core.models import modeling
from core.runs import records
from core.system.device_lock import DeviceLock
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


def workspace_findings(workspace: Workspace) -> list[tuple[str, str]]:
    """Whether the index agrees with the folders, what interrupted writes left, who holds the device."""
    with closing(workspace.connect()) as connection:
        indexed_runs = connection.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        indexed_datasets = connection.execute("SELECT COUNT(*) FROM datasets").fetchone()[0]
    run_folders = len(records.list_runs(workspace))
    dataset_folders = sum(1 for folder in workspace.datasets_dir.iterdir() if any(folder.glob("v*/report.json")))
    holder = DeviceLock(workspace).holder()
    leftovers = _leftovers(workspace)
    agree = indexed_runs == run_folders and indexed_datasets == dataset_folders
    return [
        ("Index", f"{run_folders} run(s), {dataset_folders} dataset(s) on disk; "
                  + ("the index agrees" if agree else f"the index has {indexed_runs} and {indexed_datasets}: "
                                                      "run 'lora-studio doctor --repair'")),
        ("Left by interrupted writes", f"{len(leftovers)} folder(s)" + (" (--repair removes them)" if leftovers else "")),
        ("Device", f"busy with {holder.purpose} (process {holder.pid})" if holder else "free"),
    ]


def repair(workspace: Workspace) -> list[str]:
    """Rebuild the indexes from the folders and remove leftovers of interrupted writes; what was done."""
    done = [f"Runs indexed: {len(records.reindex(workspace))}"]
    datasets, versions = store.reindex(workspace)
    done.append(f"Datasets indexed: {datasets} ({versions} versions)")
    if DeviceLock(workspace).holder() is not None:   # a running job may be writing one of them right now
        done.append("Leftovers kept: a job holds the device; repair again when it has ended")
        return done
    leftovers = _leftovers(workspace)
    for folder in leftovers:
        shutil.rmtree(folder, ignore_errors=True)
    done.append(f"Leftovers of interrupted writes removed: {len(leftovers)}")
    return done


def _leftovers(workspace: Workspace) -> list[Path]:
    """Staging folders that a write in progress renames into place; found later, their writer died."""
    patterns = ("datasets/*/.staging-*", "runs/*/checkpoints/.partial-*", "runs/*/.*.saving", "models/.*.converting")
    return sorted(path for pattern in patterns for path in workspace.root.glob(pattern) if path.is_dir())
