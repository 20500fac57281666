"""Ten people on one studio while a run trains: each polls the Train tab's status and rates items, all at once.

    .venv/bin/python bench/studio_load.py [--clients 10] [--ratings 30]

Starts the studio on a throw-away workspace (the real default model linked from the test cache, a tiny model
to train and a rating session answered by it), then runs the same load twice through gradio_client on
127.0.0.1: first with nothing training (the baseline), then while a run trains. Prints p95 and median latency
per endpoint and overall, ratings acknowledged and lost, errors, and the ratio of the busy p95 to the 1 s
target and to the idle p95.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

TARGET_P95_S = 1.0
MODEL = "tiny-llama"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--ratings", type=int, default=30, help="items each client rates (default 30)")
    args = parser.parse_args()

    from gradio_client import Client
    from load import Load, run_load
    from support import CACHE, RunningStudio, workspace_with_default_model
    from tiny import build_tiny_model

    from core.models import modeling
    from core.rating import generation, sessions
    from core.workspace import Workspace

    converted = modeling.ensure_default_model(Workspace.open(CACHE / "default-model-workspace"))
    with tempfile.TemporaryDirectory() as folder:
        workspace = workspace_with_default_model(Path(folder) / "ws", converted)
        build_tiny_model(workspace.model_dir(MODEL))
        session = sessions.create(workspace, sessions.SessionSpec("Load", [f"base:{MODEL}"], max_prompts=args.ratings,
                                                                  overlap=2 * args.clients, max_new_tokens=4))
        generation.generate(workspace, session.id)
        studio = RunningStudio(workspace.root, Path(folder) / "studio.log")
        try:
            studio.wait_ready()
            idle = run_load(studio.url, session.id, args.clients, args.ratings, raters="idle")
            client = Client(studio.url, analytics_enabled=False, verbose=False)
            client.predict(model_name=MODEL, train_max_steps=1_000_000, train_max_seq_length=256,
                           api_name="/configure_check")
            client.predict(api_name="/train_start")
            while (client.predict(api_name="/train_status") or {}).get("step", 0) < 3:
                time.sleep(0.5)
            busy = run_load(studio.url, session.id, args.clients, args.ratings, raters="busy")
            training = client.predict(api_name="/train_status")
            client.predict(api_name="/train_stop")
        finally:
            studio.stop()

        def show(label: str, load: Load) -> None:
            per = " · ".join(f"{endpoint} p95 {load.p95(endpoint) * 1000:.0f} ms, median "
                             f"{load.median(endpoint) * 1000:.0f} ms" for endpoint in load.latencies)
            print(f"{label:<15} overall p95 {load.p95() * 1000:6.0f} ms, median {load.median() * 1000:5.0f} ms · {per}")
            print(f"{'':<15} {len(load.acknowledged)} ratings acknowledged in {load.seconds:.1f} s, "
                  f"{len(load.lost(workspace.root, session.id))} lost, {len(load.errors)} errors "
                  f"{load.errors[:3] if load.errors else ''}")

        print(f"{args.clients} clients, {args.ratings} ratings each, a status poll before every rating")
        show("nothing training", idle)
        show(f"while training (run {training['state']}, step {training['step']})", busy)
        print(f"p95 while training {busy.p95():.2f} s: {busy.p95() / TARGET_P95_S:.2f}x the {TARGET_P95_S:.0f} s target "
              f"({'met' if busy.p95() <= TARGET_P95_S else 'NOT met'}), {busy.p95() / idle.p95():.2f}x idle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
