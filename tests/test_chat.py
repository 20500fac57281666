"""The chat engine: streaming, hot-switching adapters on one base, side by side, the device lock, and a
reply that stops when nobody listens any more."""

import json
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from support import MEMORISED, QUESTIONS, REPO, MemorisedRuns

from core.config import GenerationSection
from core.errors import DeviceBusyError, StudioError
from core.inference.chat import ChatEngine, Turn
from core.system.device_lock import DeviceLock
from core.workspace import Workspace

QUESTION = [{"role": "user", "content": "When does the clinic open?"}]


def generating() -> bool:
    return any(thread.name == "chat-generate" and thread.is_alive() for thread in threading.enumerate())


def final(engine: ChatEngine, *turns: Turn, settings: GenerationSection | None = None):
    return list(engine.stream(turns, settings))[-1]


def test_chat_streams_from_a_local_model_with_its_figures(workspace: Workspace, tiny_model_dir: Path):
    engine = ChatEngine(workspace, DeviceLock(workspace))
    updates = list(engine.stream([Turn(str(tiny_model_dir), QUESTION)], GenerationSection(max_new_tokens=12, temperature=0)))
    texts = [replies[0].text for replies in updates]
    assert len(updates) >= 2 and all(later.startswith(earlier) for earlier, later in zip(texts, texts[1:]))
    last = updates[-1][0]
    assert last.finish in ("stop", "length") and 0 < last.tokens <= 12
    assert last.first_token_s > 0 and (last.tokens == 1 or last.tokens_per_s > 0)
    assert not generating() and DeviceLock(workspace).holder() is None


def test_switching_runs_per_message_changes_the_answer_without_reloading_the_base(memorised_runs: MemorisedRuns):
    workspace = memorised_runs.workspace
    engine = ChatEngine(workspace, DeviceLock(workspace))
    question = [{"role": "user", "content": QUESTIONS[0]}]
    # No settings given: each run answers with its own reply settings (greedy, as configured).
    for name in ("clinic", "garage", "clinic", "garage"):
        reply = final(engine, Turn(memorised_runs.key(name), question))[0]
        assert reply.text == MEMORISED[name] and reply.finish == "stop"
    base = final(engine, Turn(f"base:{memorised_runs.base}", question), settings=GenerationSection(temperature=0))[0]
    assert base.text not in MEMORISED.values()
    [answerer] = engine._loaded
    assert answerer.base_loads == 1 and len(answerer._adapters) == 2


def test_side_by_side_answers_the_same_message_at_once(memorised_runs: MemorisedRuns, tiny_model_dir: Path):
    workspace = memorised_runs.workspace
    engine = ChatEngine(workspace, DeviceLock(workspace))
    question = [{"role": "user", "content": QUESTIONS[1]}]
    clinic, garage = Turn(memorised_runs.key("clinic"), question), Turn(memorised_runs.key("garage"), question)
    updates = list(engine.stream([clinic, garage]))
    assert [reply.text for reply in updates[-1]] == [MEMORISED["clinic"], MEMORISED["garage"]]
    # Both grew in the same stream: some update shows both halfway.
    assert any(0 < len(a.text) < len(MEMORISED["clinic"]) and 0 < len(b.text) < len(MEMORISED["garage"])
               for a, b in updates)
    assert len(engine._loaded) == 1

    # A model on another base answers beside it from its own loaded copy, in parallel.
    greedy = GenerationSection(temperature=0, max_new_tokens=6)
    other = final(engine, clinic, Turn(str(tiny_model_dir), question), settings=greedy)
    assert other[0].text.startswith("At") and other[1].finish in ("stop", "length")
    assert len(engine._loaded) == 2
    assert not generating() and DeviceLock(workspace).holder() is None


def test_at_most_max_loaded_bases_stay_in_memory(memorised_runs: MemorisedRuns, tiny_model_dir: Path, tmp_path: Path):
    third = shutil.copytree(tiny_model_dir, tmp_path / "third")
    engine = ChatEngine(memorised_runs.workspace, DeviceLock(memorised_runs.workspace), max_loaded=2)
    short = GenerationSection(max_new_tokens=2)
    for model in (str(memorised_runs.base), str(tiny_model_dir), str(third)):
        final(engine, Turn(model, QUESTION), settings=short)
    assert [answerer.base for answerer in engine._loaded] == [str(tiny_model_dir), str(third)]


def test_chat_refuses_while_another_process_holds_the_device(workspace: Workspace, tiny_model_dir: Path):
    engine = ChatEngine(workspace, DeviceLock(workspace))
    with DeviceLock(workspace).hold("training run 'demo'"):   # a second lock object: as another process
        with pytest.raises(DeviceBusyError, match="training run 'demo'"):
            next(engine.stream([Turn(str(tiny_model_dir), [{"role": "user", "content": "hi"}])]))
    with pytest.raises(StudioError, match="no question"):
        next(engine.stream([Turn(str(tiny_model_dir), [])]))
    with pytest.raises(StudioError, match="not a model choice"):
        next(engine.stream([Turn("checkpoint:x", QUESTION)]))


def test_a_reply_nobody_reads_stops_before_the_device_is_released(workspace: Workspace, tiny_model_dir: Path,
                                                                 tmp_path: Path):
    # A model without an end-of-sequence token talks until max_new_tokens: here, far longer than the test.
    endless = shutil.copytree(tiny_model_dir, tmp_path / "endless")
    settings = json.loads((endless / "generation_config.json").read_text())
    (endless / "generation_config.json").write_text(json.dumps({**settings, "eos_token_id": None}))
    lock = DeviceLock(workspace)
    engine = ChatEngine(workspace, lock)
    replies = engine.stream([Turn(str(endless), QUESTION), Turn(str(endless), QUESTION)],
                            GenerationSection(max_new_tokens=32_768, temperature=0))
    next(replies)
    assert generating() and lock.holder().purpose == "a chat reply"
    replies.close()   # what Gradio does on Stop, when the browser tab closes or the client disconnects
    assert not generating()
    assert lock.holder() is None
    with DeviceLock(workspace).hold("the next job", timeout=1):
        pass


def test_terminal_chat_streams_a_run_and_starts_over_on_reset(memorised_runs: MemorisedRuns):
    command = [sys.executable, "-m", "cli", "chat", "clinic", "--workspace", str(memorised_runs.workspace.root)]
    typed = f"{QUESTIONS[0]}\n/reset\n{QUESTIONS[1]}\n/exit\n"
    done = subprocess.run(command, cwd=REPO, input=typed, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [MEMORISED["clinic"], MEMORISED["clinic"]]
    assert "Chatting with Run 'clinic'" in done.stderr and "(new conversation)" in done.stderr
    assert re.search(r"\(\d+ tokens, first after \d+\.\d\d s, \d+\.\d tokens/s\)", done.stderr)

    refused = subprocess.run([*command, "--temperature", "5"], cwd=REPO, input="", capture_output=True, text=True)
    assert refused.returncode == 2
    assert refused.stderr == "error: Invalid value for 'generation.temperature': 5.0 — must be ≤ 2.0.\n"


def test_a_dora_run_answers_beside_the_base_though_it_cannot_share_a_batch(workspace: Workspace, tiny_model_dir: Path,
                                                                         tmp_path: Path):
    from test_train import start_run, tiny_config, write_rows

    from core.inference import choices
    from core.inference.answering import Answerer, Request

    folder, _ = start_run(workspace, tiny_config(tiny_model_dir, write_rows(tmp_path / "faq.jsonl"), "name=dora",
                                                 "lora.use_dora=true", "train.max_steps=2", "data.validation_ratio=0"))
    dora = Turn(f"run:{folder.run_id}", QUESTION)
    short = GenerationSection(temperature=0, max_new_tokens=4)
    engine = ChatEngine(workspace, DeviceLock(workspace))
    replies = final(engine, dora, Turn(str(tiny_model_dir), QUESTION), settings=short)
    assert all(reply.finish in ("stop", "length") for reply in replies)
    answerer = Answerer(workspace, str(tiny_model_dir))
    with pytest.raises(StudioError, match="uses DoRA, which cannot share a batch"):
        answerer.stream([Request(QUESTION, choices.resolve(workspace, dora.key), short),
                         Request(QUESTION, choices.base_choice(str(tiny_model_dir)), short)])
