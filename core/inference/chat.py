"""Streaming chat: the engine behind the Chat tab and `lora-studio chat`.

    engine = ChatEngine(workspace, lock)
    for replies in engine.stream([Turn("run:faq-r16", messages)]):            # one model
        show(replies[0].text, replies[0].tokens_per_s)
    for a, b in engine.stream([Turn("base:default", messages), Turn("run:faq-r16", messages)]):   # side by side
        ...

Models are named by their choice key (core.inference.choices). Choices on one base share one loaded
base with every adapter on it (core.inference.answering.Answerer), so moving between runs and the base
costs an adapter switch, never a reload, and two choices on one base answer side by side as one batch of
two rows. Choices on different bases (a merged export beside the base) each have their own loaded model
and generate in two threads at once. At most `max_loaded` bases stay loaded; the least recently used
one goes first.

A reply holds the device lock while it is generated, so chatting while a job has the device gets a clear
"busy" message. When the reader stops listening (the browser's Stop button, a closed tab, Ctrl-C), the
rows are stopped by a stopping criterion and their threads have ended before the lock is given back.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Sequence
from dataclasses import dataclass

from core.config import GenerationSection
from core.errors import StudioError
from core.inference import choices
from core.inference.answering import Answerer, Request
from core.inference.choices import ModelChoice
from core.inference.streaming import Reply
from core.models.templates import Message
from core.system.device_lock import DeviceLock
from core.workspace import Workspace

LOCK_WAIT_S = 0.5   # a chat message waits this long for the device before saying who has it


@dataclass(frozen=True)
class Turn:
    """One model answering one conversation (whose last message is the user's)."""

    key: str                  # a model choice: "base:default", "run:faq-r16", "export:faq-merged"
    messages: list[Message]


class ChatEngine:
    def __init__(self, workspace: Workspace, lock: DeviceLock, max_loaded: int = 2) -> None:
        self.workspace = workspace
        self.lock = lock
        self.max_loaded = max_loaded
        self._loaded: list[Answerer] = []   # least recently used first
        self._loading = threading.Lock()

    def preload(self, key: str) -> None:
        """Load a model ahead of the first message (the studio does this for the default model)."""
        self._answerers([choices.resolve(self.workspace, key)])

    def stream(self, turns: Sequence[Turn], settings: GenerationSection | None = None) -> Generator[list[Reply]]:
        """Yield every turn's reply (in the order of `turns`) each time one of them grows; the last item
        has them all finished. `settings` default to the first model's reply settings (a run's
        generation.*, as it was configured)."""
        if not turns:
            raise StudioError("No model was chosen to answer.", "Pick a model.")
        for turn in turns:
            last = turn.messages[-1] if turn.messages else {}
            if last.get("role") != "user" or not last.get("content", "").strip():
                raise StudioError("There is no question to answer.", "Type a message first.")
        picked = [choices.resolve(self.workspace, turn.key) for turn in turns]
        settings = settings or picked[0].generation
        with self.lock.hold("a chat reply", timeout=LOCK_WAIT_S):
            answerers = self._answerers(picked)
            yield from self._generate(turns, picked, answerers, settings)

    def _generate(self, turns: Sequence[Turn], picked: list[ModelChoice], answerers: list[Answerer],
                  settings: GenerationSection) -> Generator[list[Reply]]:
        """One thread per loaded base, each generating its turns as one batch, heard through one queue (an
        adapter that cannot share a batch, DoRA, gets a thread of its own and waits for its base)."""
        replies = [Reply() for _ in turns]
        updates: queue.Queue[tuple[int, Reply] | BaseException | None] = queue.Queue()
        stop = threading.Event()
        groups: dict[tuple[int, str | None], list[int]] = {}
        for index, (answerer, choice) in enumerate(zip(answerers, picked)):
            groups.setdefault((id(answerer), None if answerer.mixes(choice) else choice.key), []).append(index)

        def generate(answerer: Answerer, indices: list[int]) -> None:
            try:
                answerer.stream([Request(turns[i].messages, picked[i], settings) for i in indices],
                                lambda row, reply: updates.put((indices[row], reply)), lambda row: stop.is_set())
            except BaseException as error:  # noqa: BLE001 - re-raised in the reader's thread
                updates.put(error)
            finally:
                updates.put(None)

        workers = [threading.Thread(target=generate, args=(answerers[indices[0]], indices), name="chat-generate",
                                    daemon=True) for indices in groups.values()]
        for worker in workers:
            worker.start()
        try:
            running = len(workers)
            while running:
                update = updates.get()
                if update is None:
                    running -= 1
                elif isinstance(update, BaseException):
                    raise StudioError(f"The model failed while answering: {update}") from update
                else:
                    index, reply = update
                    replies[index] = reply
                    yield list(replies)
        finally:  # also when the reader went away mid-reply (GeneratorExit): stop, then free the device
            stop.set()
            for worker in workers:
                worker.join()

    def _answerers(self, picked: list[ModelChoice]) -> list[Answerer]:
        """The loaded answerer of each choice, loading bases not yet loaded and unloading the least
        recently used beyond max_loaded."""
        with self._loading:
            found: list[Answerer] = []
            for choice in picked:
                answerer = next((loaded for loaded in self._loaded if loaded.serves(choice)), None)
                if answerer is None:
                    answerer = Answerer(self.workspace, choice.base)
                else:
                    self._loaded.remove(answerer)
                self._loaded.append(answerer)
                found.append(answerer)
            while len(self._loaded) > max(self.max_loaded, len(set(map(id, found)))):
                self._loaded.pop(0)
            return found
