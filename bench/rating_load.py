"""How quickly does a rater get the next item while other raters save at the same time?

    .venv/bin/python bench/rating_load.py                      # 100 prompts × 2 models, 8 raters
    .venv/bin/python bench/rating_load.py --prompts 10 --raters 2   # a quick check that it runs

Builds a throw-away workspace with two tiny models, generates a scale session's responses (4 tokens each:
the model is not what is measured), then times one rater's step (save the ratings of an item, get the next
one: ratings.submit + queue.following, what the Rate tab's "Save and next" does) first with that rater
alone, then with every rater rating the whole session at once through the core API (SQLite in WAL mode,
one write transaction per save). Prints the median and p95 of a step, the ratio of p95 under load to
alone, the target (p95 under load ≤ 300 ms, a click that feels instant), and the time to compute the
session's results (means, intervals, agreement) from all its ratings.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]   # this checkout's code, and the tests' tiny models

from tiny import build_tiny_model  # noqa: E402

from core.rating import generation, queue, ratings, results, sessions  # noqa: E402
from core.workspace import Workspace  # noqa: E402

TARGET_P95_S = 0.3


def rate_all(workspace: Workspace, session_id: str, rater: str, steps: list[float]) -> None:
    """Rate every item handed to `rater`, recording how long each save-and-next took."""
    rng = random.Random(rater)
    view = queue.current(workspace, session_id, rater)
    while view.item is not None:
        values = {"fluency": str(rng.randint(1, 4)), "relevance": str(rng.randint(1, 3)), "safety": "safe"}
        started = time.perf_counter()
        ratings.submit(workspace, session_id, view.item.number, rater, values)
        view = queue.following(workspace, session_id, rater, view.item.number)
        steps.append(time.perf_counter() - started)


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, round(0.95 * len(values)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=100)
    parser.add_argument("--raters", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        workspace = Workspace.open(Path(folder) / "ws")
        build_tiny_model(workspace.model_dir("tiny-a"), seed=1)
        build_tiny_model(workspace.model_dir("tiny-b"), seed=2)
        prompts = Path(folder) / "prompts.jsonl"
        prompts.write_text("".join(json.dumps({"prompt": f"Question {n}: when do you open?"}) + "\n"
                                   for n in range(args.prompts)))
        session = sessions.create(workspace, sessions.SessionSpec("Load", ["base:tiny-a", "base:tiny-b"], f"file:{prompts}",
                                                                  overlap=args.raters + 1, max_new_tokens=4))
        generation.generate(workspace, session.id)

        alone: list[float] = []
        rate_all(workspace, session.id, "solo", alone)
        loaded: list[list[float]] = [[] for _ in range(args.raters)]
        threads = [threading.Thread(target=rate_all, args=(workspace, session.id, f"rater-{n}", loaded[n]))
                   for n in range(args.raters)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
        under_load = [step for steps in loaded for step in steps]
        started = time.perf_counter()
        found = results.session_results(workspace, session.id)
        results_s = time.perf_counter() - started

    items = len(alone)
    print(f"session: {args.prompts} prompts × 2 models = {items} items, {args.raters} raters at once + 1 alone first")
    print(f"save and next, alone:            median {statistics.median(alone) * 1000:.1f} ms, p95 {p95(alone) * 1000:.1f} ms")
    print(f"save and next, {args.raters} raters at once: median {statistics.median(under_load) * 1000:.1f} ms, "
          f"p95 {p95(under_load) * 1000:.1f} ms ({p95(under_load) / p95(alone):.1f}× alone)")
    print(f"throughput under load: {len(under_load) / wall:.0f} items rated per second ({len(under_load) * 3} ratings "
          f"in {wall:.1f} s)")
    print(f"target p95 under load ≤ {TARGET_P95_S * 1000:.0f} ms: {p95(under_load) / TARGET_P95_S:.2f}×")
    print(f"results of {found.ratings} ratings (means, intervals, alpha, kappa per pair): {results_s * 1000:.0f} ms")


if __name__ == "__main__":
    main()
