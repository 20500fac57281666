"""What tests (and bench/ui_latency.py) share besides fixtures: the repository's paths, a workspace that
links the converted default model, and the studio started as a real subprocess on a free port."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from core.models import modeling
from core.workspace import Workspace

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".cache"

# The `memorised_runs` fixture: two runs on one tiny base, each trained to give its own answer to these.
QUESTIONS = ["When do you open?", "What should I bring?", "Can I book online?", "When do you close?"]
MEMORISED = {"clinic": "At eight in the morning.", "garage": "Bring the car on Monday."}


@dataclass(frozen=True)
class MemorisedRuns:
    workspace: Workspace
    base: Path                 # the tiny model both runs were trained on
    run_ids: dict[str, str]    # "clinic" / "garage" -> run id

    def key(self, name: str) -> str:
        """The model choice key of a run ("run:<id>"), as the Chat tab and the API name it."""
        return f"run:{self.run_ids[name]}"

    def copy_into(self, workspace: Workspace) -> None:
        """Put both runs into another workspace (a studio's), as if trained there."""
        for run_id in self.run_ids.values():
            shutil.copytree(self.workspace.run_dir(run_id), workspace.run_dir(run_id))


def evaluate_memorised(workspace: Workspace, run_id: str, answer: str) -> str:
    """Evaluate a run of `memorised_runs` against its base on QUESTIONS with `answer` as the ideal answer to each
    (the Evaluate tab's engine, in this process); returns the evaluation id."""
    from core.evaluation import job
    from core.evaluation.workflow import EvalRequest, evaluate

    held_out = workspace.root / f"held-out-{run_id}.jsonl"
    held_out.write_text("".join(json.dumps({"prompt": question, "response": answer}) + "\n" for question in QUESTIONS))
    folder, _, settings = job.prepare(workspace, EvalRequest(run_id, data_file=str(held_out)))
    evaluate(workspace, folder, EvalRequest.from_settings(settings))
    return folder.name


def rate_blind(workspace: Workspace, models: list[str], rater: str, values: dict[str, str]) -> str:
    """A rating session over `models` on two red-team prompts with every item rated `values` by `rater` (the
    Rate tab's engine, in this process); returns the session id."""
    from core.rating import generation, queue, ratings, sessions

    session = sessions.create(workspace, sessions.SessionSpec("Demo check", models, max_prompts=2, max_new_tokens=6))
    generation.generate(workspace, session.id)
    view = queue.current(workspace, session.id, rater)
    while view.item is not None:
        ratings.submit(workspace, session.id, view.item.number, rater, values)
        view = queue.following(workspace, session.id, rater, view.item.number)
    return session.id


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
    def __init__(self, workspace: Path, log: Path, *extra_args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.workspace = workspace
        self.log = log
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli", "ui", "--workspace", str(workspace), "--port", str(self.port), *extra_args],
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

    def kill_with_jobs(self) -> None:
        """SIGKILL the studio and every process it started (its jobs), as a power cut or the OOM killer would."""
        import psutil

        family = psutil.Process(self.process.pid).children(recursive=True)   # before they lose their parent
        self.process.kill()
        self.process.wait(timeout=30)
        for child in family:
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass

    def stop(self) -> None:
        """End the studio and its jobs at once, when a test is done with them. Not SIGTERM: Gradio then waits
        up to 5 s for open event streams (gradio_client's), and a job would outlive the test; the graceful
        stop is checked on its own (test_train_api's SIGTERM test)."""
        if self.process.poll() is None:
            self.kill_with_jobs()
