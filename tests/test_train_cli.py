"""`lora-studio train` end to end on the tiny model, in one process (several: tests/test_multiprocess.py)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from support import REPO
from test_train import write_rows

CLI = [sys.executable, "-m", "cli"]


def write_config(tmp_path: Path, tiny_model_dir: Path, **train: object) -> Path:
    data = write_rows(tmp_path / "faq.jsonl", repeat=5)   # each question five times: a quarter holds out one whole
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({
        "model": {"name": str(tiny_model_dir)}, "data": {"train_path": str(data), "validation_ratio": 0.25},
        "lora": {"r": 8, "target_modules": "all-linear"},
        "train": {"max_steps": 4, "batch_size": 2, "eval_steps": 2, "save_steps": 2, **train}}))
    return path


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})


def test_cli_trains_prints_progress_and_ends_with_the_run_folder(tmp_path: Path, tiny_model_dir: Path):
    config = write_config(tmp_path, tiny_model_dir)  # default precision: bf16 autocast on AVX512-BF16 CPUs
    done = run(*CLI, "train", str(config), "--workspace", str(tmp_path / "ws"), "--set", "train.learning_rate=1e-3")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert any(line.startswith("Trainable parameters:") for line in lines)
    assert [line.split()[1] for line in lines if line.startswith("step ")] == ["1/4", "2/4", "3/4", "4/4"]
    folder = Path(lines[-1])
    assert folder.parent == tmp_path / "ws" / "runs" and (folder / "adapter" / "adapter_model.safetensors").is_file()
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["state"] == "finished" and summary["steps"] == 4
    assert yaml.safe_load((folder / "config.yaml").read_text())["train"]["learning_rate"] == 1e-3


def test_cli_bad_config_is_one_line_and_exit_2(tmp_path: Path, tiny_model_dir: Path):
    config = write_config(tmp_path, tiny_model_dir)
    done = run(*CLI, "train", str(config), "--workspace", str(tmp_path / "ws"), "--set", "train.batch_size=0")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "train.batch_size" in done.stderr and "Traceback" not in done.stderr
