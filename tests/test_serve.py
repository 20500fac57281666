"""The OpenAI-compatible server: the unmodified `openai` client against `lora-studio serve` in its own
process, two adapters on one base chosen by the `model` field, streamed and not; concurrent requests
with mixed adapters batched together, each answered as its adapter alone."""

import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import openai
import pytest
import uvicorn
from support import MEMORISED, QUESTIONS, REPO, MemorisedRuns, free_port

from core.config import GenerationSection
from core.inference import choices
from core.inference.answering import Answerer, Request
from core.serve import server
from core.serve.batcher import Batcher
from core.system.device_lock import DeviceLock


def wait_until_up(url: str, process: subprocess.Popen | None = None, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited early with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@pytest.fixture(scope="module")
def served(memorised_runs: MemorisedRuns, tmp_path_factory: pytest.TempPathFactory):
    """`lora-studio serve clinic run:garage` as a real process; yields its base URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    process = subprocess.Popen([sys.executable, "-m", "cli", "serve", "clinic", memorised_runs.key("garage"),
                                "--port", str(port), "--workspace", str(memorised_runs.workspace.root)],
                               cwd=REPO, stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until_up(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert "Serving clinic, run:garage at" in log.read_text()


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key="not-needed", max_retries=0)


def ask(question: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": question}]


def test_the_openai_client_gets_each_adapter_by_model_name_streamed_and_not(served: str):
    api = client(served)
    assert [model.id for model in api.models.list()] == ["clinic", "run:garage"]

    for model, name in (("clinic", "clinic"), ("run:garage", "garage"), ("run:clinic", "clinic")):
        completion = api.chat.completions.create(model=model, messages=ask(QUESTIONS[0]), temperature=0)
        assert completion.choices[0].message.content == MEMORISED[name]
        assert completion.choices[0].finish_reason == "stop" and completion.model == model
        assert completion.usage.completion_tokens > 0 and completion.usage.prompt_tokens > 0

    chunks = list(api.chat.completions.create(model="run:garage", messages=ask(QUESTIONS[1]), stream=True,
                                              stream_options={"include_usage": True}))
    pieces = [chunk.choices[0].delta.content for chunk in chunks if chunk.choices and chunk.choices[0].delta.content]
    assert "".join(pieces) == MEMORISED["garage"] and len(pieces) >= 3
    assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][-1] == "stop"
    assert chunks[-1].usage.completion_tokens > len(pieces) - 1

    short = api.chat.completions.create(model="clinic", messages=ask(QUESTIONS[0]), max_tokens=2)
    assert short.choices[0].finish_reason == "length" and short.usage.completion_tokens == 2


def test_concurrent_clients_with_mixed_adapters_each_get_their_own_answer(served: str):
    asked = [("clinic", QUESTIONS[i % 4]) if i % 2 else ("run:garage", QUESTIONS[i % 4]) for i in range(8)]
    answers: dict[int, str] = {}

    def one(index: int, model: str, question: str) -> None:
        stream = client(served).chat.completions.create(model=model, messages=ask(question), stream=True)
        answers[index] = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)

    threads = [threading.Thread(target=one, args=(i, model, question)) for i, (model, question) in enumerate(asked)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert answers == {i: MEMORISED["clinic" if model == "clinic" else "garage"] for i, (model, _) in enumerate(asked)}


def test_bad_requests_get_openai_errors(served: str):
    api = client(served)
    with pytest.raises(openai.NotFoundError, match="not served here. Served: clinic, run:garage"):
        api.chat.completions.create(model="run:other", messages=ask("hi"))
    with pytest.raises(openai.BadRequestError, match="Only n=1"):
        api.chat.completions.create(model="clinic", messages=ask("hi"), n=2)
    with pytest.raises(openai.BadRequestError, match="last message must be the user's"):
        api.chat.completions.create(model="clinic", messages=[{"role": "assistant", "content": "hi"}])
    with pytest.raises(openai.BadRequestError, match="temperature"):
        api.chat.completions.create(model="clinic", messages=ask("hi"), temperature=7)


def test_requests_waiting_together_are_answered_as_mixed_batches(memorised_runs: MemorisedRuns):
    workspace = memorised_runs.workspace
    answerer = Answerer(workspace, str(memorised_runs.base))
    batcher = Batcher(answerer, DeviceLock(workspace), max_batch=3, lock_wait_s=120)
    greedy = GenerationSection(temperature=0, max_new_tokens=24)
    rows = [("clinic", greedy), ("clinic", greedy), ("garage", greedy), ("clinic", greedy), ("garage", greedy),
            ("clinic", GenerationSection(temperature=0.5, max_new_tokens=2))]
    done: dict[int, str] = {}
    finished = threading.Event()

    def deliver(index: int):
        def hear(reply) -> None:
            if reply.finish is not None:
                done[index] = reply.text
                if len(done) == len(rows):
                    finished.set()
        return hear

    requests = [Request(ask(QUESTIONS[index % 4]), choices.resolve(workspace, memorised_runs.key(name)), settings)
                for index, (name, settings) in enumerate(rows)]
    with DeviceLock(workspace).hold("another job"):   # the first batch waits for the device; the rest queue up
        batcher.submit(requests[0], deliver(0))
        while not batcher.batch_sizes:
            time.sleep(0.01)
        for index, request in enumerate(requests[1:], 1):
            batcher.submit(request, deliver(index))
    assert finished.wait(120)
    batcher.close()
    # Then: three waiting rows that share sampling settings (two adapters mixed), the fourth in the next
    # batch, and the one that samples differently in a batch of its own.
    assert batcher.batch_sizes == [1, 3, 1, 1]
    assert [done[i] for i in range(5)] == [MEMORISED[name] for name, _ in rows[:5]]


def test_a_busy_device_answers_503(memorised_runs: MemorisedRuns):
    workspace = memorised_runs.workspace
    app, batcher = server.load(workspace, ["clinic"], DeviceLock(workspace), lock_wait_s=0.2)
    port = free_port()
    running = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until_up(url)
        with DeviceLock(workspace).hold("training run 'demo'"):
            with pytest.raises(openai.InternalServerError, match="busy with training run 'demo'") as caught:
                client(url).chat.completions.create(model="clinic", messages=ask("hi"))
            assert caught.value.status_code == 503
        assert client(url).chat.completions.create(model="clinic", messages=ask(QUESTIONS[0]),
                                                   temperature=0).choices[0].message.content == MEMORISED["clinic"]
    finally:
        running.should_exit = True
        thread.join(30)
        batcher.close()


def test_models_on_two_bases_are_refused_before_anything_is_served(memorised_runs: MemorisedRuns, tiny_model_dir: Path):
    from core.errors import ConfigError

    with pytest.raises(ConfigError, match="Serve one base per server"):
        server.load(memorised_runs.workspace, ["clinic", str(tiny_model_dir)], DeviceLock(memorised_runs.workspace))
