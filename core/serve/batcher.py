"""Dynamic batching for the API server: requests that arrive while the model is busy, or within a short
gathering window of each other, are answered together in one generate call, each with its own adapter
(a mixed-adapter batch), its own length limit, and its own reader (a row stops when its client leaves).

    batcher = Batcher(answerer, lock, max_batch=8)
    ticket = batcher.submit(Request(messages, choice, settings), deliver)   # deliver(Reply | StudioError)
    ticket.cancel()                                                          # the client went away
    batcher.close()

`deliver` is called from the batcher's thread with each reply as it grows (the last one has `finish`
set), or once with the error that ended the batch. Rows of one batch must share the sampling settings
(temperature, top-p, repetition penalty) and DoRA adapters cannot mix with others, so the oldest waiting
request decides the group and up to max_batch waiting requests of that group join it. An idle server
lets a burst of requests gather for a moment (at most MAX_GATHER_S) before it starts. Batches form
between generations, not during one: transformers' generate() takes no new rows mid-flight, so a request
arriving mid-batch waits for the next one. Each batch holds the device lock while it generates.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from core.errors import StudioError, classify
from core.inference.answering import Answerer, Request, sampling_key
from core.inference.streaming import Reply
from core.system.device_lock import DeviceLock

GATHER_S = 0.02      # an idle server waits for more requests while they keep coming this close together…
MAX_GATHER_S = 0.1   # …but no longer than this after the first one
LOCK_WAIT_S = 30.0  # how long a batch waits for a device another job holds before failing

Delivery = Callable[[Reply | StudioError], None]


@dataclass
class Ticket:
    request: Request
    deliver: Delivery
    group: Hashable
    cancelled: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        self.cancelled.set()


class Batcher:
    def __init__(self, answerer: Answerer, lock: DeviceLock, max_batch: int = 8, gather_s: float = GATHER_S,
                 max_gather_s: float = MAX_GATHER_S, lock_wait_s: float = LOCK_WAIT_S,
                 purpose: str = "the API server") -> None:
        if max_batch < 1:
            raise StudioError(f"A batch of {max_batch} requests answers nothing.", "Use --max-batch 1 or more.")
        self.answerer = answerer
        self.lock = lock
        self.max_batch = max_batch
        self.gather_s = gather_s
        self.max_gather_s = max_gather_s
        self.lock_wait_s = lock_wait_s
        self.purpose = purpose
        self.batch_sizes: list[int] = []   # every batch answered so far (what the benchmark reports)
        self._pending: deque[Ticket] = deque()
        self._changed = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="serve-batcher", daemon=True)
        self._thread.start()

    def submit(self, request: Request, deliver: Delivery) -> Ticket:
        choice = request.choice
        group = (sampling_key(request.settings), None if self.answerer.mixes(choice) else choice.key)
        ticket = Ticket(request, deliver, group)
        with self._changed:
            if self._closed:
                raise StudioError("The server is shutting down.", "Send the request again once it is back.")
            self._pending.append(ticket)
            self._changed.notify()
        return ticket

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify()
        self._thread.join()

    def _loop(self) -> None:
        idle = True
        while True:
            with self._changed:
                while not self._pending and not self._closed:
                    idle = True
                    self._changed.wait()
                if self._closed:
                    return
            if idle:   # the first request after a quiet spell: let its concurrent neighbours join it
                self._gather()
            batch = self._take()
            if batch:
                self._answer(batch)
            idle = False

    def _gather(self) -> None:
        """Wait while more requests keep arriving (each within gather_s of the last), until max_batch are
        waiting or max_gather_s has passed since the first."""
        deadline = time.monotonic() + self.max_gather_s
        with self._changed:
            while len(self._pending) < self.max_batch and not self._closed:
                waiting = len(self._pending)
                left = min(self.gather_s, deadline - time.monotonic())
                if left <= 0:
                    return
                self._changed.wait(left)
                if len(self._pending) == waiting:   # nobody came: the burst is over
                    return

    def _take(self) -> list[Ticket]:
        """The oldest waiting request and up to max_batch - 1 more of its group, in arrival order."""
        with self._changed:
            waiting = [ticket for ticket in self._pending if not ticket.cancelled.is_set()]
            if not waiting:
                self._pending.clear()
                return []
            group = waiting[0].group
            batch = [ticket for ticket in waiting if ticket.group == group][:self.max_batch]
            taken = {id(ticket) for ticket in batch}
            self._pending = deque(ticket for ticket in waiting if id(ticket) not in taken)
            return batch

    def _answer(self, batch: list[Ticket]) -> None:
        self.batch_sizes.append(len(batch))
        try:
            with self.lock.hold(self.purpose, timeout=self.lock_wait_s):
                self.answerer.stream([ticket.request for ticket in batch],
                                     lambda row, reply: batch[row].deliver(reply),
                                     lambda row: batch[row].cancelled.is_set())
        except Exception as error:  # noqa: BLE001 - every waiting client hears why, the server goes on
            failure = classify(error, "Answering")
            for ticket in batch:
                ticket.deliver(failure)
