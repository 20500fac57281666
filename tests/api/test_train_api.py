"""The Configure → Train flow driven through gradio_client. While a run trains in the studio's process a
cheap endpoint keeps answering; its p95 latency is printed here and measured against the 500 ms target by
bench/ui_latency.py (no timing assertions in tests: a loaded CI machine must not fail on speed)."""

import statistics
import time

from gradio_client import Client

from core.workspace import Workspace

STUDIO_TINY_MODEL = "tiny-llama"   # the `studio` fixture registers a tiny model under this name


def wait_for(client: Client, condition, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.predict(api_name="/train_status")
        if status and condition(status):
            return status
        time.sleep(0.5)
    raise TimeoutError(f"the run never reached the expected state: {status}")


def test_a_cheap_endpoint_answers_while_a_run_trains(studio):
    client = Client(studio.url, analytics_enabled=False, verbose=False)
    checks = client.predict(model_name=STUDIO_TINY_MODEL, train_max_steps=400, train_max_seq_length=256,
                            api_name="/configure_check")[1]
    assert "No problems found" in checks
    client.predict(api_name="/train_start")
    running = wait_for(client, lambda status: status["state"] == "running" and status["step"] >= 3)

    latencies = []
    for _ in range(20):
        started = time.perf_counter()
        client.predict(api_name="/studio_status")
        latencies.append(time.perf_counter() - started)
    p95 = sorted(latencies)[18]   # the 19th of 20
    status = client.predict(api_name="/train_status")
    print(f"\n/studio_status while training: p95 {p95 * 1000:.0f} ms, median "
          f"{statistics.median(latencies) * 1000:.0f} ms over 20 calls (steps {running['step']}→{status['step']})")
    assert status["state"] == "running" and status["step"] > running["step"]   # it trained all along

    client.predict(api_name="/train_stop")
    stopped = wait_for(client, lambda status: status["state"] == "stopped")
    assert stopped["last_checkpoint_step"] == stopped["step"] < 400

    # The history is drivable too: rename, then delete after the confirmation step.
    run_id = stopped["run_id"]
    client.predict(run_id, "clinic demo", api_name="/history_rename")
    assert client.predict(api_name="/train_status")["name"] == "clinic demo"
    client.predict(run_id, api_name="/history_delete_ask")
    client.predict(run_id, api_name="/history_delete")
    assert run_id not in str(client.predict(api_name="/history_list")[0])
    assert not Workspace(studio.workspace).run_dir(run_id).exists()
