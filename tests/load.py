"""Many people on one studio at once, through gradio_client as their browsers would: each client polls the
Train tab's status and rates items of a session, timing every call. Used by tests/api/test_load.py (a
short burst: no errors, no lost ratings) and bench/studio_load.py (the latency figures).
"""

from __future__ import annotations

import sqlite3
import statistics
import threading
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from gradio_client import Client

VALUES = ("3", "2", "safe", None, "", "")   # fluency, relevance, safety, an unused slot, comment, corrected
ITEM = 9                                    # where /rate_open and /rate_save return the item number


@dataclass
class Load:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {"/train_status": [], "/rate_save": []})
    acknowledged: list[tuple[int, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def p95(self, endpoint: str | None = None) -> float:
        values = sorted(self.latencies[endpoint] if endpoint else [v for vs in self.latencies.values() for v in vs])
        return values[max(0, round(0.95 * len(values)) - 1)] if values else float("nan")

    def median(self, endpoint: str | None = None) -> float:
        values = self.latencies[endpoint] if endpoint else [v for vs in self.latencies.values() for v in vs]
        return statistics.median(values) if values else float("nan")

    def lost(self, workspace: Path, session_id: str) -> list[tuple[int, str]]:
        """Acknowledged ratings that are not in the database as given."""
        with closing(sqlite3.connect(workspace / "studio.db")) as connection:
            rows = connection.execute("SELECT item, rater, value FROM ratings WHERE session_id = ? AND criterion = "
                                      "'fluency'", (session_id,)).fetchall()
        stored = {(item, rater): value for item, rater, value in rows}
        return [key for key in self.acknowledged if stored.get(key) != VALUES[0]]


def run_load(url: str, session_id: str, clients: int, ratings_each: int, raters: str = "rater") -> Load:
    """`clients` clients at once, each rating up to `ratings_each` items as '<raters>-<n>' and polling the
    training status before every rating."""
    load = Load()
    ready = threading.Barrier(clients + 1)

    def timed(client: Client, endpoint: str, *values: object) -> object:
        started = time.perf_counter()
        result = client.predict(*values, api_name=endpoint)
        load.latencies.setdefault(endpoint, []).append(time.perf_counter() - started)
        return result

    def one_person(number: int) -> None:
        rater = f"{raters}-{number}"
        try:
            client = Client(url, analytics_enabled=False, verbose=False)
            item = client.predict(session_id, rater, api_name="/rate_open")[ITEM]
        except Exception as error:  # noqa: BLE001 - reported, not raised: every client's errors count
            load.errors.append(f"{rater} could not start: {error}")
            ready.wait()
            return
        ready.wait()
        for _ in range(ratings_each):
            if not item:
                break
            try:
                timed(client, "/train_status")
                following = timed(client, "/rate_save", session_id, rater, item, *VALUES)
            except Exception as error:  # noqa: BLE001
                load.errors.append(f"{rater}, item {item}: {error}")
                break
            load.acknowledged.append((item, rater))
            item = following[ITEM]

    threads = [threading.Thread(target=one_person, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    ready.wait()   # every client connected: time the burst only
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    load.seconds = time.perf_counter() - started
    return load
