"""Rating through gradio_client against the real studio process: a session created and generated over the
API, several clients rating at once ending with exactly the expected rows, and a SIGKILL of the studio in
the middle of a burst of ratings losing none that was acknowledged (and raters resuming afterwards).

The rating endpoints are the Rate tab's own events: /rate_open (session, rater) shows where the rater left
off, /rate_save (session, rater, item, four criterion values, comment, corrected answer) saves and moves on.
A client opens before it saves: the panel's radios take the session's levels on opening.
"""

import os
import signal
import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from support import RunningStudio
from tiny import build_tiny_model

from core.rating import generation, sessions
from core.workspace import Workspace

STUDIO_TINY_MODEL = "tiny-llama"   # the `studio` fixture registers a tiny model under this name
ITEM = 9                           # where /rate_open and /rate_save return the item number
VALUES = ("3", "2", "safe", None, "", "")


def connect(url: str) -> Client:
    return Client(url, analytics_enabled=False, verbose=False)


def stored(workspace: Path, session_id: str) -> dict[tuple[int, str, str], str]:
    with closing(sqlite3.connect(workspace / "studio.db")) as connection:
        rows = connection.execute("SELECT item, rater, criterion, value FROM ratings WHERE session_id = ?", (session_id,))
        return {(item, rater, criterion): value for item, rater, criterion, value in rows}


def rate_everything(url: str, session_id: str, rater: str, acknowledged: list, stop: threading.Event | None = None) -> None:
    """Open the session as `rater`, then save every item handed out, recording each acknowledged save."""
    client = connect(url)
    item = client.predict(session_id, rater, api_name="/rate_open")[ITEM]
    while item and not (stop and stop.is_set()):
        following = client.predict(session_id, rater, item, *VALUES, api_name="/rate_save")
        acknowledged.append((item, rater))
        item = following[ITEM]


def test_several_clients_rate_at_once_and_end_with_exactly_the_expected_rows(studio):
    build_tiny_model(Workspace(studio.workspace).model_dir("tiny-b"), seed=3)
    client = connect(studio.url)
    with pytest.raises(AppError, match="A scale session needs a model"):
        client.predict("Nothing", [], "scale", "redteam", None, None, None, 4, 4, 6, ["fluency"], "", api_name="/rate_create")
    client.predict("API burst", [f"base:{STUDIO_TINY_MODEL}", "base:tiny-b"], "scale", "redteam", None, None, None,
                   4, 4, 6, ["fluency", "relevance", "safety"], "", api_name="/rate_create")
    deadline = time.monotonic() + 180
    while "Ready to rate" not in client.predict("api-burst", api_name="/rate_session_status")[0]:
        assert time.monotonic() < deadline, "the responses were never generated"
        time.sleep(0.5)

    acknowledged: list[tuple[int, str]] = []
    raters = [threading.Thread(target=rate_everything, args=(studio.url, "api-burst", f"rater-{n}", acknowledged))
              for n in range(4)]
    for thread in raters:
        thread.start()
    for thread in raters:
        thread.join(300)
    rows = stored(studio.workspace, "api-burst")
    assert len(acknowledged) == len(set(acknowledged)) == 4 * 8   # overlap 4: every rater rated all 8 items
    assert rows == {(item, rater, criterion): value for item, rater in acknowledged
                    for criterion, value in zip(("fluency", "relevance", "safety"), VALUES)}


@pytest.fixture
def workspace_with_a_session(tmp_path: Path, converted_default_model: Path) -> tuple[Path, str]:
    from support import workspace_with_default_model

    workspace = workspace_with_default_model(tmp_path / "ws", converted_default_model)
    build_tiny_model(workspace.model_dir("tiny-a"), seed=1)
    build_tiny_model(workspace.model_dir("tiny-b"), seed=2)
    session = sessions.create(workspace, sessions.SessionSpec("Kill test", ["base:tiny-a", "base:tiny-b"], "redteam",
                                                              max_prompts=40, overlap=4, max_new_tokens=4))
    generation.generate(workspace, session.id)
    return workspace.root, session.id


def test_a_sigkilled_studio_loses_no_acknowledged_rating_and_raters_resume(workspace_with_a_session, tmp_path: Path):
    workspace, session_id = workspace_with_a_session
    studio = RunningStudio(workspace, tmp_path / "first.log")
    acknowledged: list[tuple[int, str]] = []
    stop = threading.Event()
    try:
        studio.wait_ready()
        raters = [threading.Thread(target=lambda n=n: _ignore_the_kill(studio.url, session_id, f"rater-{n}",
                                                                       acknowledged, stop)) for n in range(4)]
        for thread in raters:
            thread.start()
        deadline = time.monotonic() + 180
        while len(acknowledged) < 40:   # in the middle of the burst: 320 saves in all
            assert time.monotonic() < deadline and any(t.is_alive() for t in raters), "the burst never got going"
            time.sleep(0.05)
        os.kill(studio.process.pid, signal.SIGKILL)
        studio.process.wait(30)
        stop.set()
        for thread in raters:
            thread.join(60)
    finally:
        studio.stop()
    rows = stored(workspace, session_id)
    lost = [(item, rater) for item, rater in acknowledged if rows.get((item, rater, "fluency")) != "3"
            or rows.get((item, rater, "safety")) != "safe"]
    print(f"\n{len(acknowledged)} ratings acknowledged before the SIGKILL, {len(rows) // 3} stored, of 320")
    assert acknowledged and lost == []
    with closing(sqlite3.connect(workspace / "studio.db")) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    again = RunningStudio(workspace, tmp_path / "second.log")
    try:
        again.wait_ready()
        client = connect(again.url)
        rated = {item for item, rater, _ in rows if rater == "rater-0"}
        view = client.predict(session_id, "rater-0", api_name="/rate_open")
        assert view[ITEM] not in rated and f"{len(rated)} rated" in view[0]   # back where it left off
    finally:
        again.stop()


def _ignore_the_kill(url: str, session_id: str, rater: str, acknowledged: list, stop: threading.Event) -> None:
    try:
        rate_everything(url, session_id, rater, acknowledged, stop)
    except Exception:  # noqa: BLE001 - the studio was killed under this client: expected
        pass
