"""Training runs on the tiny model: learning, outputs, stop, NaN guard, two-stage, early stopping."""

import json
import math
import threading
from contextlib import closing
from pathlib import Path

import pytest
import torch

from core import config
from core.errors import StudioError
from core.jobs.worker import run_job
from core.runs import metrics, records
from core.training import train
from core.workspace import Workspace

FAQ = [
    ("When do you open?", "At eight in the morning."),
    ("When do you close?", "At six in the evening."),
    ("What should I bring?", "Your insurance card and a photo ID."),
    ("Can I book online?", "Yes, by phone or online."),
]


def write_rows(path: Path, pairs=FAQ, repeat: int = 1) -> Path:
    path.write_text("".join(json.dumps({"prompt": p, "response": r}) + "\n" for p, r in pairs * repeat))
    return path


def tiny_config(model_dir: Path, data_path: Path, *overrides: str) -> config.RunConfig:
    """A small, fast, deterministic run on the tiny model (fp32, one thread)."""
    return config.build(None, None, [
        f"model.name={model_dir}", f"data.train_path={data_path}", "data.validation_ratio=0.2",
        "lora.r=8", "lora.alpha=16", "lora.target_modules=all-linear", "train.learning_rate=0.01",
        "train.batch_size=4", "train.max_steps=8", "train.eval_steps=4", "train.save_steps=4",
        "train.precision=fp32", "train.num_threads=1", "train.warmup_ratio=0", *overrides])


def start_run(workspace: Workspace, cfg: config.RunConfig, stop_event: threading.Event | None = None):
    folder = records.create(workspace, cfg)
    return folder, run_job(folder, workspace, stop_event)


def test_loss_goes_down_and_the_run_leaves_a_complete_folder(workspace: Workspace, learnable_model_dir: Path,
                                                             tmp_path: Path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    data = write_rows(tmp_path / "faq.jsonl", repeat=5)
    folder, summary = start_run(workspace, tiny_config(learnable_model_dir, data, "train.max_steps=30",
                                                       "train.learning_rate=0.02", "train.eval_steps=10",
                                                       "train.save_steps=10"))
    logged = metrics.read_all(folder.metrics)
    assert [r["step"] for r in logged] == list(range(1, 31))
    losses = [r["loss"] for r in logged]
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5, losses
    evals = [r["eval_loss"] for r in logged if "eval_loss" in r]
    assert len(evals) == 3 and evals[-1] < evals[0]
    assert {"epoch", "lr", "grad_norm", "tokens_per_s", "elapsed_s", "memory_mb"} <= logged[0].keys()

    for key in ("final_loss", "best_eval_loss", "tokens_trained", "wall_s", "tokens_per_s", "peak_memory_mb"):
        assert summary[key] and summary[key] > 0, key
    assert summary == json.loads(folder.summary.read_text())
    assert summary["best_eval_loss"] == min(evals) and summary["adapter_step"] == summary["best_step"]
    status = records.read_status(folder)
    assert status.state == "finished" and status.step == 30 and status.total_steps == 30
    log = folder.log.read_text()
    assert log.index("Trainable parameters:") < log.index("step 1/30")
    trainable = int(log.split("Trainable parameters: ")[1].split(" ")[0].replace(",", ""))
    assert trainable == summary["trainable_parameters"]

    # Standard peft format, loadable on a fresh base; the tokenizer travels with it.
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json"} <= {p.name for p in folder.adapter.iterdir()}
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(learnable_model_dir), folder.adapter)
    assert sum(p.numel() for n, p in model.named_parameters() if "lora_" in n) == trainable
    # Only the newest save_total_limit (2) checkpoints are kept, and hold the adapter, not the base.
    kept = sorted(p.name for p in folder.checkpoints.iterdir())
    assert kept == ["step-0000010", "step-0000020"]
    base_size = (learnable_model_dir / "model.safetensors").stat().st_size
    assert (folder.checkpoints / kept[-1] / "model.safetensors").stat().st_size < 0.5 * base_size
    with closing(workspace.connect()) as connection:
        row = connection.execute("SELECT status, final_loss FROM runs WHERE id = ?", (folder.run_id,)).fetchone()
    assert row["status"] == "finished" and row["final_loss"] == pytest.approx(summary["final_loss"])


def test_stop_between_steps_still_saves_the_adapter(workspace: Workspace, tiny_model_dir: Path, tmp_path: Path):
    data = write_rows(tmp_path / "faq.jsonl", repeat=5)
    stop = threading.Event()
    folder = records.create(workspace, tiny_config(tiny_model_dir, data, "train.max_steps=50"))
    real_step = train.train_step

    def step_then_stop(*args, **kwargs):
        result = real_step(*args, **kwargs)
        stop.set()  # as if the user pressed Stop during step 1
        return result

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train, "train_step", step_then_stop)
        summary = run_job(folder, workspace, stop)
    assert summary["state"] == "stopped" and summary["steps"] == 1
    assert (folder.adapter / "adapter_model.safetensors").is_file()
    status = records.read_status(folder)
    assert status.state == "stopped" and status.resumable and status.last_checkpoint_step == 1


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(workspace: Workspace, tiny_model_dir: Path,
                                                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    data = write_rows(tmp_path / "faq.jsonl", repeat=5)
    folder = records.create(workspace, tiny_config(tiny_model_dir, data, "train.max_steps=10"))
    real_step, steps = train.train_step, {"n": 0}

    def nan_at_step_6(*args, **kwargs):
        loss, tokens = real_step(*args, **kwargs)
        steps["n"] += 1
        return (math.nan if steps["n"] == 6 else loss), tokens

    monkeypatch.setattr(train, "train_step", nan_at_step_6)
    with pytest.raises(StudioError) as caught:
        run_job(folder, workspace)
    assert caught.value.kind == "NaN" and "step 6" in str(caught.value)
    status = records.read_status(folder)
    assert status.state == "failed" and status.error["kind"] == "NaN" and status.error["fix"]
    assert status.resumable and status.last_checkpoint_step == 4
    assert [r["step"] for r in metrics.read_all(folder.metrics)] == [1, 2, 3, 4, 5]
    assert not folder.adapter.exists()  # nothing from the diverged state is saved


def test_loss_spike_guard():
    train.check_loss(2.0, 1.0, [1.0] * 10, 5.0, 11)
    with pytest.raises(StudioError, match="jumped"):
        train.check_loss(6.0, 1.0, [1.0] * 10, 5.0, 11)
    train.check_loss(6.0, 1.0, [1.0] * 9, 5.0, 10)  # too few steps to judge
    train.check_loss(60.0, 1.0, [1.0] * 10, 0.0, 11)  # guard off
    with pytest.raises(StudioError, match="gradient norm"):
        train.check_loss(1.0, math.inf, [], 5.0, 1)


def test_two_stage_run_starts_from_the_earlier_adapter(workspace: Workspace, tiny_model_dir: Path, tmp_path: Path):
    from safetensors.torch import load_file

    first, _ = start_run(workspace, tiny_config(tiny_model_dir, write_rows(tmp_path / "a.jsonl", repeat=3),
                                                "train.max_steps=3", "train.keep_best=false"))
    # One question asked eight times cannot be split without a leak: no validation rows.
    other_data = write_rows(tmp_path / "b.jsonl", [("Is there parking?", "Yes, behind the clinic.")], repeat=8)
    second, _ = start_run(workspace, tiny_config(tiny_model_dir, other_data, f"lora.init_from={first.run_id}",
                                                 "lora.r=4", "train.max_steps=1", "train.learning_rate=1e-12",
                                                 "train.keep_best=false", "data.validation_ratio=0"))
    assert json.loads((second.adapter / "adapter_config.json").read_text())["r"] == 8  # the first run's adapter
    before = load_file(first.adapter / "adapter_model.safetensors")
    after = load_file(second.adapter / "adapter_model.safetensors")
    assert before.keys() == after.keys()
    assert all(torch.allclose(before[name], after[name], atol=1e-6) for name in before)
    with pytest.raises(StudioError, match="init_from"):
        start_run(workspace, tiny_config(tiny_model_dir, other_data, "lora.init_from=no-such-run", "data.validation_ratio=0"))


def test_early_stopping_and_keep_best(workspace: Workspace, tiny_model_dir: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch):
    scripted = iter([3.0, 2.0, 2.5, 2.6, 1.0])
    monkeypatch.setattr(train, "evaluate", lambda *args, **kwargs: next(scripted))
    data = write_rows(tmp_path / "faq.jsonl", repeat=5)
    folder, summary = start_run(workspace, tiny_config(tiny_model_dir, data, "train.max_steps=20", "train.eval_steps=1",
                                                       "train.early_stopping_patience=2"))
    assert summary["stop_reason"] == "early stopping" and summary["steps"] == 4
    assert summary["best_eval_loss"] == 2.0 and summary["best_step"] == summary["adapter_step"] == 2
    assert json.loads((folder.adapter / "training_note.json").read_text())["step"] == 2
    assert "Early stopping" in folder.log.read_text()
