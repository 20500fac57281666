"""Ten people on one studio while a run trains, through gradio_client as their browsers would talk to it
(127.0.0.1 only): each polls the Train tab's status and rates items. Bounded in time and count; no error,
no lost or doubled rating. The latency is printed here and measured against its target by
bench/studio_load.py (no timing assertions in tests)."""

from pathlib import Path

import pytest
from load import run_load
from support import RunningStudio, workspace_with_default_model
from test_train_api import ONLY_ENDS_WHEN_STOPPED, STUDIO_TINY_MODEL, configure, connect, wait_for
from tiny import build_tiny_model

from core.rating import generation, sessions

CLIENTS, RATINGS_EACH = 10, 4


@pytest.fixture
def workspace_with_a_session(tmp_path: Path, converted_default_model: Path) -> tuple[Path, str]:
    workspace = workspace_with_default_model(tmp_path / "ws", converted_default_model)
    build_tiny_model(workspace.model_dir(STUDIO_TINY_MODEL))
    session = sessions.create(workspace, sessions.SessionSpec("Load", [f"base:{STUDIO_TINY_MODEL}"],
                                                              max_prompts=RATINGS_EACH, overlap=CLIENTS, max_new_tokens=4))
    generation.generate(workspace, session.id)
    return workspace.root, session.id


def test_ten_people_poll_and_rate_while_a_run_trains_with_no_error_and_nothing_lost(workspace_with_a_session,
                                                                                   tmp_path: Path):
    workspace, session_id = workspace_with_a_session
    studio = RunningStudio(workspace, tmp_path / "studio.log")
    try:
        studio.wait_ready()
        client = connect(studio.url)
        configure(client, train_max_steps=ONLY_ENDS_WHEN_STOPPED)
        client.predict(api_name="/train_start")
        before = wait_for(client, lambda status: status["state"] == "running" and status["step"] >= 1)
        load = run_load(studio.url, session_id, CLIENTS, RATINGS_EACH)
        during = client.predict(api_name="/train_status")
        client.predict(api_name="/train_stop")
        wait_for(client, lambda status: status["state"] == "stopped")
    finally:
        studio.stop()
    print(f"\n{CLIENTS} clients while training (steps {before['step']}→{during['step']}): "
          f"p95 {load.p95() * 1000:.0f} ms, median {load.median() * 1000:.0f} ms over "
          f"{sum(map(len, load.latencies.values()))} calls in {load.seconds:.1f} s")
    assert load.errors == []
    assert during["state"] == "running" and during["run_id"] == before["run_id"]   # it trained throughout
    assert sorted(load.acknowledged) == sorted({(item, f"rater-{n}") for n in range(CLIENTS)
                                                for item in range(1, RATINGS_EACH + 1)})   # each rater rated all
    assert load.lost(workspace, session_id) == []
