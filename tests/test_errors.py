import pytest
import torch

from core.errors import ConfigError, DataError, OutOfMemoryError, StudioError, classify


@pytest.mark.parametrize("error", [ConfigError("Invalid value for 'lora.r': 0 — must be ≥ 1."),
                                   DataError("Line 3 is not JSON.", "Fix the line and upload again."),
                                   StudioError("Something specific.")])
def test_studio_errors_pass_through_unchanged(error: StudioError):
    assert classify(error) is error


@pytest.mark.parametrize("error", [
    MemoryError(),
    torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 23.65 GiB total capacity)"),
    RuntimeError("CUDA out of memory. Tried to allocate 512.00 MiB"),
    RuntimeError("[enforce fail at alloc_cpu.cpp:117] err == 0. DefaultCPUAllocator: can't allocate memory: "
                 "you tried to allocate 34359738368 bytes."),
], ids=["MemoryError", "torch.OutOfMemoryError", "CUDA RuntimeError", "CPU allocator"])
def test_out_of_memory_is_recognised_with_a_fix(error: BaseException):
    classified = classify(error)
    assert type(classified) is OutOfMemoryError and classified.kind == "out of memory"
    assert "out of memory" in classified.problem
    assert "train.batch_size" in classified.fix and "gradient_checkpointing" in classified.fix


def test_anything_else_names_its_type_and_first_line():
    classified = classify(ValueError("the tensor has the wrong shape\n  at layer 3\n  at layer 4"))
    assert type(classified) is StudioError
    assert "ValueError" in classified.problem and "the tensor has the wrong shape" in classified.problem
    assert "layer 3" not in str(classified)
    assert "train.log" in classified.fix


def test_a_long_first_line_is_cut_and_an_empty_message_still_names_the_type():
    long = classify(RuntimeError("k" * 1000))
    assert "RuntimeError" in long.problem and "k" * 300 in long.problem and "k" * 301 not in long.problem
    empty = classify(AssertionError())
    assert type(empty) is StudioError and "AssertionError" in empty.problem


def test_a_full_disk_is_said_in_words():
    import errno

    from core.errors import DiskFullError

    classified = classify(OSError(errno.ENOSPC, "No space left on device", "/srv/ws/runs/x/checkpoints"), "Training")
    assert type(classified) is DiskFullError and classified.problem == "Training stopped: the disk is full."
    assert "Free some space" in classified.fix and "/srv" not in str(classified)
    assert type(classify(OSError(errno.EACCES, "Permission denied"))) is StudioError   # not every OSError
