import shutil
from pathlib import Path

import pytest
import torch
from support import workspace_with_default_model

from core.config import GenerationSection
from core.errors import ModelLoadError
from core.inference.chat import ChatEngine, Turn
from core.models import modeling
from core.system.device_lock import DeviceLock
from core.workspace import Workspace


def test_resolve_kinds(workspace: Workspace, tiny_model_dir: Path, tmp_path: Path):
    assert modeling.resolve("default", workspace).kind == "default"
    assert modeling.resolve(str(tiny_model_dir), workspace).kind == "local"
    assert modeling.resolve("deepseek-ai/deepseek-llm-7b-chat", workspace).kind == "hub"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelLoadError, match="no config.json"):
        modeling.resolve(str(empty), workspace)
    with pytest.raises(ModelLoadError, match="neither"):
        modeling.resolve("not a model!", workspace)


def test_registered_local_model_by_name(workspace: Workspace, tiny_model_dir: Path):
    shutil.copytree(tiny_model_dir, workspace.models_dir / "my-model")
    assert modeling.resolve("my-model", workspace).path == workspace.models_dir / "my-model"


def test_hub_id_without_network_fails_fast_with_remedy(workspace: Workspace, monkeypatch: pytest.MonkeyPatch):
    """Offline, the download gives up after one short connection attempt instead of hanging in the hub client."""
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    attempts = []

    def unreachable(address, timeout=None, *args, **kwargs):
        attempts.append((address, timeout))
        raise TimeoutError("timed out")

    def no_download(*args, **kwargs):
        raise AssertionError(f"a download started although the hub was unreachable: {args}")

    monkeypatch.setattr(modeling.socket, "create_connection", unreachable)
    monkeypatch.setattr(modeling.subprocess, "run", no_download)
    with pytest.raises(ModelLoadError) as caught:
        modeling.load_model("deepseek-ai/deepseek-llm-7b-chat", workspace)
    assert len(attempts) == 1
    address, timeout = attempts[0]
    assert address == ("127.0.0.1", 9)
    assert timeout is not None and 0 < timeout <= 5
    message = str(caught.value)
    assert "deepseek-ai/deepseek-llm-7b-chat" in message and "not reachable" in message
    assert "hf download deepseek-ai/deepseek-llm-7b-chat --local-dir DIR" in message and "model.name" in message


def test_cpu_plan_and_qlora_refusal():
    assert modeling.plan_device() == modeling.DevicePlan("cpu", torch.float32, None, False)
    with pytest.raises(ModelLoadError, match="needs an NVIDIA GPU"):
        modeling.plan_device(load_in_4bit=True)


def test_gpu_plan_uses_16_bit_and_device_map_auto(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert modeling.plan_device() == modeling.DevicePlan("cuda", torch.bfloat16, "auto", False)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert modeling.plan_device().dtype == torch.float16
    monkeypatch.setattr(modeling.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelLoadError, match="bitsandbytes"):
        modeling.plan_device(load_in_4bit=True)


@pytest.mark.slow
def test_real_default_model_converts_loads_and_answers(tmp_path: Path, converted_default_model: Path):
    assert (converted_default_model / "model.safetensors").is_file()
    workspace = workspace_with_default_model(tmp_path / "ws", converted_default_model)
    model = modeling.load_model("default", workspace)
    assert not getattr(model.config, "quantization_config", None)
    assert sum(p.numel() for p in model.parameters()) > 100_000_000
    engine = ChatEngine(workspace, DeviceLock(workspace))
    question = [{"role": "user", "content": "What is the capital of France?"}]
    reply = list(engine.stream([Turn("base:default", question)], GenerationSection(max_new_tokens=20, temperature=0)))[-1]
    assert "Paris" in reply[0].text


def test_a_model_runs_its_own_code_only_once_trusted(workspace: Workspace, tiny_model_dir: Path,
                                                     monkeypatch: pytest.MonkeyPatch, capsys):
    from transformers import AutoModelForCausalLM

    from cli.main import main as cli

    seen: list[bool] = []
    real = AutoModelForCausalLM.from_pretrained

    def spy(*args, **kwargs):
        seen.append(kwargs["trust_remote_code"])
        return real(*args, **kwargs)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", spy)
    modeling.load_model(str(tiny_model_dir), workspace)
    assert cli(["models", "trust", str(tiny_model_dir), "--workspace", str(workspace.root)]) == 0
    assert "WARNING" in capsys.readouterr().err
    modeling.load_model(str(tiny_model_dir), workspace)
    assert cli(["models", "distrust", str(tiny_model_dir), "--workspace", str(workspace.root)]) == 0
    modeling.load_model(str(tiny_model_dir), workspace)
    assert seen == [False, True, False]
