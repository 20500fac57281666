"""The chat engine: streaming, the device lock, and a reply that stops when nobody listens any more."""

import json
import shutil
import threading
from pathlib import Path

import pytest

from core.config import GenerationSection
from core.errors import DeviceBusyError, StudioError
from core.models.chat import ChatEngine
from core.system.device_lock import DeviceLock
from core.workspace import Workspace

QUESTION = [{"role": "user", "content": "When does the clinic open?"}]


def generating() -> bool:
    return any(thread.name == "chat-generate" and thread.is_alive() for thread in threading.enumerate())


def test_chat_streams_from_a_local_model(workspace: Workspace, tiny_model_dir: Path):
    engine = ChatEngine(workspace, DeviceLock(workspace))
    pieces = list(engine.stream(str(tiny_model_dir), QUESTION, GenerationSection(max_new_tokens=12, temperature=0)))
    assert len(pieces) >= 2
    assert all(later.startswith(earlier) for earlier, later in zip(pieces, pieces[1:]))
    assert not generating() and DeviceLock(workspace).holder() is None


def test_chat_refuses_while_another_process_holds_the_device(workspace: Workspace, tiny_model_dir: Path):
    engine = ChatEngine(workspace, DeviceLock(workspace))
    with DeviceLock(workspace).hold("training run 'demo'"):   # a second lock object: as another process
        with pytest.raises(DeviceBusyError, match="training run 'demo'"):
            next(engine.stream(str(tiny_model_dir), [{"role": "user", "content": "hi"}]))
    with pytest.raises(StudioError, match="no question"):
        next(engine.stream(str(tiny_model_dir), []))


def test_a_reply_nobody_reads_stops_before_the_device_is_released(workspace: Workspace, tiny_model_dir: Path,
                                                                 tmp_path: Path):
    # A model without an end-of-sequence token talks until max_new_tokens: here, far longer than the test.
    endless = shutil.copytree(tiny_model_dir, tmp_path / "endless")
    settings = json.loads((endless / "generation_config.json").read_text())
    (endless / "generation_config.json").write_text(json.dumps({**settings, "eos_token_id": None}))
    lock = DeviceLock(workspace)
    engine = ChatEngine(workspace, lock)
    replies = engine.stream(str(endless), QUESTION, GenerationSection(max_new_tokens=32_768, temperature=0))
    next(replies)
    assert generating() and lock.holder().purpose == "a chat reply"
    replies.close()   # what Gradio does when the browser tab closes or the client disconnects
    assert not generating()
    assert lock.holder() is None
    with DeviceLock(workspace).hold("the next job", timeout=1):
        pass
