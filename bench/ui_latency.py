"""Does the UI stay responsive while a run trains in the studio's own process?

    .venv/bin/python bench/ui_latency.py             # 20 calls; prints p95/median and the ratio to 500 ms

Starts the studio on a throw-away workspace (with the real default model linked from the test cache and
a tiny model for a fast run), starts a training run through gradio_client, then times 20 calls of the
cheap /studio_status endpoint while the run is active. Baseline: the same 20 calls with no run active.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from gradio_client import Client  # noqa: E402
from support import CACHE, RunningStudio, workspace_with_default_model  # noqa: E402
from tiny import build_tiny_model  # noqa: E402

from core.models import modeling  # noqa: E402
from core.workspace import Workspace  # noqa: E402

TARGET_P95_S = 0.5
CALLS = 20


def time_calls(client: Client) -> list[float]:
    latencies = []
    for _ in range(CALLS):
        started = time.perf_counter()
        client.predict(api_name="/studio_status")
        latencies.append(time.perf_counter() - started)
    return sorted(latencies)


def main() -> None:
    converted = modeling.ensure_default_model(Workspace.open(CACHE / "default-model-workspace"))
    with tempfile.TemporaryDirectory() as folder:
        workspace = workspace_with_default_model(Path(folder) / "ws", converted)
        build_tiny_model(workspace.model_dir("tiny-llama"))
        studio = RunningStudio(workspace.root, Path(folder) / "studio.log")
        try:
            studio.wait_ready()
            client = Client(studio.url, analytics_enabled=False, verbose=False)
            idle = time_calls(client)
            client.predict(model_name="tiny-llama", train_max_steps=2000, train_max_seq_length=256,
                           api_name="/configure_check")
            client.predict(api_name="/train_start")
            while client.predict(api_name="/train_status")["step"] < 3:
                time.sleep(0.5)
            busy = time_calls(client)
            assert client.predict(api_name="/train_status")["state"] == "running"
            client.predict(api_name="/train_stop")
        finally:
            studio.stop()
    p95 = busy[int(0.95 * CALLS) - 1]
    print(f"/studio_status, no run:      median {statistics.median(idle) * 1000:.0f} ms, "
          f"p95 {idle[int(0.95 * CALLS) - 1] * 1000:.0f} ms")
    print(f"/studio_status, run active:  median {statistics.median(busy) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms")
    print(f"target p95 ≤ {TARGET_P95_S * 1000:.0f} ms: {p95 / TARGET_P95_S:.2f}x the target")


if __name__ == "__main__":
    main()
