"""Two training processes on one CPU (gloo), started the way users start them:
`accelerate launch --config_file assets/accelerate/<config> -m cli train …`, with DDP and with FSDP2."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from support import REPO
from test_train import tiny_config, write_rows
from tiny import build_tokenizer

from core.errors import ConfigError
from core.runs import metrics
from core.training import packing, trainset
from core.training.train import adapter_digest, evaluate, fresh_accelerator, train_step
from core.workspace import Workspace

ACCELERATE = Path(sys.executable).with_name("accelerate")
CONFIGS = REPO / "assets" / "accelerate"
END_OF_RUN = re.compile(r"Processes agree at the end of the run \(step 12\): 2 processes hold identical adapter "
                        r"weights \(sha256 ([0-9a-f]{16}) of the full adapter, 28 tensors, 8,192 values, ([^)]*)\)")


def launch(accelerate_config: str, workspace: Path, *cli_args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """`accelerate launch … -m cli train …`. On a hang (a process waiting in a collective for one that never
    comes) the test fails saying so, after the launcher has ended its workers (each runs in a session of
    its own: only the launcher can reach them, with SIGKILL 30 s after SIGTERM)."""
    command = [str(ACCELERATE), "launch", "--config_file", str(CONFIGS / accelerate_config), "-m", "cli", "train",
               *cli_args, "--workspace", str(workspace)]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.terminate()
        stdout, stderr = process.communicate()
        pytest.fail(f"{' '.join(command[3:])} did not end within {timeout:.0f} s:\n{stdout[-1500:]}\n{stderr[-1500:]}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def write_config(path: Path, tiny_model_dir: Path, data: Path, **train: object) -> Path:
    # 12 steps: the loss-spike guard needs 10 before it judges; checkpoints at steps 5 and 10; one
    # evaluation, at the end, so the kept best adapter is the final one; 5 validation conversations in
    # batches of 2, so one process has a batch more than the other. Precision: the default.
    path.write_text(yaml.safe_dump({
        "model": {"name": str(tiny_model_dir)}, "data": {"train_path": str(data), "validation_ratio": 0.25},
        "lora": {"r": 8, "target_modules": "all-linear"},
        "train": {"max_steps": 12, "batch_size": 2, "learning_rate": 0.01, "eval_steps": 12, "save_steps": 5,
                  **train}}))
    return path


@pytest.mark.parametrize("accelerate_config, sharing, compared, model_checkpoint", [
    ("cpu-2-processes.yaml", "(DDP: a full copy each)", "each process's own copy", "model.safetensors"),
    ("cpu-2-processes-fsdp.yaml", "(FSDP2: weights sharded)", "gathered from the shards of every process",
     "pytorch_model_fsdp_0"),
])
def test_two_processes_end_with_identical_adapters_and_resume_exactly(
        tmp_path: Path, tiny_model_dir: Path, accelerate_config: str, sharing: str, compared: str,
        model_checkpoint: str):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    workspace = tmp_path / "ws"
    data = write_rows(tmp_path / "faq.jsonl", repeat=5)

    # One uninterrupted run.
    done = launch(accelerate_config, workspace, str(write_config(tmp_path / "run.yaml", tiny_model_dir, data)))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    (folder,) = (workspace / "runs").iterdir()
    assert done.stdout.strip().splitlines()[-1] == str(folder)
    log = (folder / "train.log").read_text()
    assert f"Starting run {folder.name}: 2 process(es) {sharing} on cpu" in log
    assert "Data: 15 training and 5 validation conversations" in log
    assert "Processes agree after step 1: 2 processes hold identical adapter weights" in log
    digest, what = END_OF_RUN.search(log).groups()
    assert what == compared
    assert [r["step"] for r in metrics.read_all(folder / "metrics.jsonl")] == list(range(1, 13))  # one writer
    assert {"random_states_0.pkl", "random_states_1.pkl", model_checkpoint} <= \
        {p.name for p in (folder / "checkpoints" / "step-0000010").iterdir()}
    # What process 0 saved is, byte for byte, the adapter every process held at the end.
    saved = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), folder / "adapter",
                                      is_trainable=True)
    assert adapter_digest(saved).sha256[:16] == digest

    # The same run stopped by the loss-spike guard at step 11, then resumed from its step-10 checkpoint
    # with the guard raised, as the failure message says: it ends with the very same weights.
    spiking = write_config(tmp_path / "spiking.yaml", tiny_model_dir, data, loss_spike_factor=0.01)
    failed = launch(accelerate_config, workspace, str(spiking))
    assert failed.returncode == 1 and "The loss jumped" in failed.stderr and "at step 11" in failed.stderr
    (second,) = set((workspace / "runs").iterdir()) - {folder}
    assert not (second / "adapter").exists()
    resumed = launch(accelerate_config, workspace, "--resume", second.name, "--set", "train.loss_spike_factor=5")
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-3000:]
    log = (second / "train.log").read_text()
    assert "Resumed from the checkpoint of step 10" in log
    assert END_OF_RUN.search(log).groups() == (digest, compared)
    assert [r["step"] for r in metrics.read_all(second / "metrics.jsonl")] == list(range(1, 13))


def test_padding_passes_that_keep_sharded_processes_in_step_change_nothing(
        monkeypatch: pytest.MonkeyPatch, workspace: Workspace, tiny_model_dir: Path, tmp_path: Path):
    # Under FSDP2 a process with fewer forward passes than the others (fewer validation batches, or rows
    # packed differently) repeats one so that nobody waits; those passes must not count.
    from transformers import AutoModelForCausalLM

    data = trainset.build(tiny_config(tiny_model_dir, write_rows(tmp_path / "faq.jsonl", repeat=5), "data.validation_ratio=0.3"),
                          build_tokenizer(), workspace)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    accelerator = fresh_accelerator("no")
    passes: list[int] = []
    model.register_forward_hook(lambda *_: passes.append(1))

    def step_and_evaluation() -> tuple[float, list[torch.Tensor], float, int]:
        passes.clear()
        loss, _ = train_step(model, accelerator, [data.train[:2], data.train[2:4]], True, packing.ONE_ROW, 0)
        gradients = [p.grad.clone() for p in model.parameters()]
        model.zero_grad()
        return loss, gradients, evaluate(model, accelerator, data.validation, 2, True, packing.ONE_ROW, 0), len(passes)

    loss, gradients, eval_loss, own_passes = step_and_evaluation()
    monkeypatch.setattr("core.training.train._most_passes", lambda accelerator, passes: passes + 2)
    padded_loss, padded_gradients, padded_eval_loss, all_passes = step_and_evaluation()
    assert all_passes == own_passes + 4  # two more in the step, two more in the evaluation
    assert padded_loss == loss and padded_eval_loss == eval_loss
    assert all(torch.equal(a, b) for a, b in zip(padded_gradients, gradients))


def test_fsdp_version_1_is_refused_with_the_fix(monkeypatch: pytest.MonkeyPatch):
    # What `accelerate launch` sets for a config with fsdp_version: 1.
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    monkeypatch.setenv("FSDP_VERSION", "1")
    with pytest.raises(ConfigError, match="FSDP version 1") as refused:
        fresh_accelerator("no")
    assert "fsdp_version: 2" in refused.value.fix


def test_accelerate_example_configs_parse():
    from accelerate.commands.config.config_args import load_config_from_file

    kinds = {path.stem: load_config_from_file(str(path)).distributed_type.value for path in CONFIGS.glob("*.yaml")}
    assert kinds == {"cpu-2-processes": "MULTI_GPU", "cpu-2-processes-fsdp": "FSDP", "multi-gpu-ddp": "MULTI_GPU",
                     "fsdp": "FSDP", "deepspeed-zero2": "DEEPSPEED"}
