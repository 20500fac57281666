"""Training driven through gradio_client against the real studio process: the Configure → Train flow, a job
process killed under the studio, SIGTERM to the studio, a restarted studio re-attaching, two processes.

While a run trains, a cheap endpoint keeps answering; its p95 latency is printed here and measured
against the 500 ms target by bench/ui_latency.py (no timing assertions in tests). Runs that must still be
running when the test acts get a million steps: they end when the test stops them, whatever the machine.
"""

import os
import signal
import statistics
import time
from pathlib import Path

import pytest
from gradio_client import Client
from support import RunningStudio
from tiny import build_tiny_model

from core.runs import records
from core.workspace import Workspace

STUDIO_TINY_MODEL = "tiny-llama"   # the `studio` fixture registers a tiny model under this name
ONLY_ENDS_WHEN_STOPPED = 1_000_000


def connect(url: str) -> Client:
    return Client(url, analytics_enabled=False, verbose=False)


def configure(client: Client, **fields) -> None:
    checks = client.predict(model_name=STUDIO_TINY_MODEL, train_max_seq_length=256, **fields,
                            api_name="/configure_check")[1]
    assert "No problems found" in checks


def wait_for(client: Client, condition, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        status = client.predict(api_name="/train_status")
        if status and condition(status):
            return status
        time.sleep(0.3)
    raise TimeoutError(f"the run never reached the expected state: {status}")


def test_a_cheap_endpoint_answers_while_a_run_trains(studio):
    client = connect(studio.url)
    configure(client, train_max_steps=ONLY_ENDS_WHEN_STOPPED)
    client.predict(api_name="/train_start")
    running = wait_for(client, lambda status: status["state"] == "running" and status["step"] >= 3)

    latencies = []
    for _ in range(20):
        started = time.perf_counter()
        client.predict(api_name="/studio_status")
        latencies.append(time.perf_counter() - started)
    p95 = sorted(latencies)[18]   # the 19th of 20
    status = wait_for(client, lambda status: status["step"] > running["step"])   # it trained all along
    print(f"\n/studio_status while training: p95 {p95 * 1000:.0f} ms, median "
          f"{statistics.median(latencies) * 1000:.0f} ms over 20 calls (steps {running['step']}→{status['step']})")
    assert status["state"] == "running"

    client.predict(api_name="/train_stop")
    stopped = wait_for(client, lambda status: status["state"] == "stopped")
    assert stopped["last_checkpoint_step"] == stopped["step"] < ONLY_ENDS_WHEN_STOPPED

    # The history is drivable too: rename, then delete after the confirmation step.
    run_id = stopped["run_id"]
    client.predict(run_id, "clinic demo", api_name="/history_rename")
    assert client.predict(api_name="/train_status")["name"] == "clinic demo"
    client.predict(run_id, api_name="/history_delete_ask")
    client.predict(run_id, api_name="/history_delete")
    assert run_id not in str(client.predict(api_name="/history_list")[0])
    assert not Workspace(studio.workspace).run_dir(run_id).exists()


def test_the_studio_outlives_a_killed_job_and_resumes_it_with_a_lower_rate(studio):
    client = connect(studio.url)
    configure(client, train_max_steps=ONLY_ENDS_WHEN_STOPPED, train_save_steps=3, train_learning_rate=3e-4)
    client.predict(api_name="/train_start")
    saved = wait_for(client, lambda status: (status["last_checkpoint_step"] or 0) >= 3)
    os.kill(saved["pid"], signal.SIGKILL)   # the job process, as the out-of-memory killer would

    # At once the run reads as interrupted (its process is gone); then the studio records how it ended.
    killed = wait_for(client, lambda status: status["state"] == "interrupted" and "killed" in status["message"])
    assert killed["last_checkpoint_step"] >= 3
    assert "Workspace" in client.predict(api_name="/studio_status")   # the studio itself lives on

    total = killed["last_checkpoint_step"] + 3
    client.predict(1e-4, total, 0, 0, api_name="/train_resume")
    finished = wait_for(client, lambda status: status["state"] == "finished")
    assert finished["run_id"] == killed["run_id"] and finished["step"] == total
    folder = Workspace(studio.workspace).run_folder(finished["run_id"])
    assert records.load_config(folder).train.learning_rate == 1e-4
    assert "Resuming with changed settings: train.learning_rate 0.0003 → 0.0001" in folder.log.read_text()


def test_two_training_processes_from_the_studio(studio):
    client = connect(studio.url)
    configure(client, train_max_steps=4, train_eval_steps=2, train_save_steps=2, train_precision="fp32")
    client.predict(2, api_name="/train_start")
    finished = wait_for(client, lambda status: status["state"] in ("finished", "failed"), timeout=300)
    folder = Workspace(studio.workspace).run_folder(finished["run_id"])
    assert finished["state"] == "finished", folder.job_output.read_text()[-3000:]
    log = folder.log.read_text()
    assert finished["processes"] == 2 and "2 process(es)" in log
    assert "2 processes hold identical adapter weights" in log


@pytest.fixture
def workspace_for_restarts(tmp_path: Path, converted_default_model: Path) -> Path:
    from support import workspace_with_default_model

    workspace = workspace_with_default_model(tmp_path / "ws", converted_default_model)
    build_tiny_model(workspace.model_dir(STUDIO_TINY_MODEL))
    return workspace.root


def test_sigterm_to_the_studio_checkpoints_the_job_and_a_new_studio_reattaches(workspace_for_restarts: Path,
                                                                             tmp_path: Path):
    first = RunningStudio(workspace_for_restarts, tmp_path / "first.log")
    try:
        first.wait_ready()
        client = connect(first.url)
        configure(client, train_max_steps=ONLY_ENDS_WHEN_STOPPED, train_save_steps=0)
        client.predict(api_name="/train_start")
        running = wait_for(client, lambda status: status["state"] == "running" and status["step"] >= 2)
        assert running["last_checkpoint_step"] is None   # save_steps=0: no checkpoint unless asked
        first.process.send_signal(signal.SIGTERM)   # as `docker stop` does
        assert first.process.wait(timeout=30) is not None
    finally:
        first.stop()
    folder = Workspace(workspace_for_restarts).run_folder(running["run_id"])
    after = records.read_status(folder)
    assert after.last_checkpoint_step and after.last_checkpoint_step >= running["step"]
    assert after.state == "running"   # the job outlives the studio

    second = RunningStudio(workspace_for_restarts, tmp_path / "second.log")
    try:
        second.wait_ready()
        client = connect(second.url)
        attached = client.predict(api_name="/train_status")
        assert attached["run_id"] == running["run_id"] and attached["state"] == "running"
        client.predict(api_name="/train_attach")
        client.predict(api_name="/train_stop")
        stopped = wait_for(client, lambda status: status["state"] == "stopped")
        assert stopped["step"] > after.last_checkpoint_step
    finally:
        second.stop()
