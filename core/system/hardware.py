"""What this machine offers training: bf16 support, the mixed precision a run gets, threads, memory."""

from __future__ import annotations

import os
import resource

import psutil
import torch

from core.errors import ConfigError


def cpu_has_bf16() -> bool:
    """AVX512-BF16 or AMX: bf16 matmuls run natively (about 2x float32 on such CPUs)."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, check, lambda: False)() for check in checks)


def mixed_precision(choice: str) -> str:
    """Accelerate's mixed_precision for train.precision: 'bf16', 'fp16' or 'no'."""
    if torch.cuda.is_available():
        if choice == "auto":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}[choice]
    if choice == "fp16":
        raise ConfigError("train.precision=fp16 needs a GPU, and this machine has none.",
                          "Choose auto (bf16 where the CPU has it) or fp32.")
    if choice == "auto":
        return "bf16" if cpu_has_bf16() else "no"
    return {"fp32": "no", "bf16": "bf16"}[choice]


def thread_count(requested: int) -> int:
    """train.num_threads, or one per physical core shared among the processes on this machine."""
    if requested:
        return requested
    local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(1, (psutil.cpu_count(logical=False) or os.cpu_count() or 1) // local_processes)


def max_training_processes() -> int:
    """How many processes one run can usefully train on here: one per GPU, or one per physical core."""
    if torch.cuda.is_available():
        return torch.cuda.device_count()
    return max(1, psutil.cpu_count(logical=False) or os.cpu_count() or 1)


def memory_mb() -> float:
    if torch.cuda.is_available():
        return round(torch.cuda.memory_allocated() / 2**20, 1)
    return round(psutil.Process().memory_info().rss / 2**20, 1)


def peak_memory_mb() -> float:
    """Peak GPU memory on CUDA; otherwise this process's peak resident memory."""
    if torch.cuda.is_available():
        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
