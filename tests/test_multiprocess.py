"""Two training processes on one CPU (gloo), started the way users start them:
`accelerate launch --config_file assets/accelerate/<config> -m cli train …`, with DDP and with FSDP2."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support import REPO
from test_train import write_rows
from test_train_cli import run

from core.errors import ConfigError
from core.runs import metrics
from core.training.train import adapter_digest, fresh_accelerator

ACCELERATE = Path(sys.executable).with_name("accelerate")
CONFIGS = REPO / "assets" / "accelerate"
END_OF_RUN = re.compile(r"Processes agree at the end of the run \(step 12\): 2 processes hold identical adapter "
                        r"weights \(sha256 ([0-9a-f]{16}) of the full adapter, 28 tensors, 8,192 values, ([^)]*)\)")


def launch(accelerate_config: str, workspace: Path, *cli_args: str) -> subprocess.CompletedProcess:
    return run(str(ACCELERATE), "launch", "--config_file", str(CONFIGS / accelerate_config),
               "-m", "cli", "train", *cli_args, "--workspace", str(workspace))


def write_config(path: Path, tiny_model_dir: Path, data: Path, **train: object) -> Path:
    # 12 steps: the loss-spike guard needs 10 before it judges; checkpoints at steps 5 and 10; one
    # evaluation, at the end, so the kept best adapter is the final one. Precision: the default.
    path.write_text(yaml.safe_dump({
        "model": {"name": str(tiny_model_dir)}, "data": {"train_path": str(data)},
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
    run_config = second / "config.yaml"
    run_config.write_text(run_config.read_text().replace("loss_spike_factor: 0.01", "loss_spike_factor: 5.0"))
    resumed = launch(accelerate_config, workspace, "--resume", second.name)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-3000:]
    log = (second / "train.log").read_text()
    assert "Resumed from the checkpoint of step 10" in log
    assert END_OF_RUN.search(log).groups() == (digest, compared)
    assert [r["step"] for r in metrics.read_all(second / "metrics.jsonl")] == list(range(1, 13))


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
