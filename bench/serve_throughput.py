"""The API server's dynamic batching: 8 streaming clients at once against the same 8 requests one at a
time, on the built-in model with two adapters, the requests alternating between them (mixed batches).

    .venv/bin/python bench/serve_throughput.py               # about 4 minutes on 2 quiet cores
    .venv/bin/python bench/serve_throughput.py --tokens 16 --rounds 1

The server is `lora-studio serve`'s own app (core.serve.server.load) under uvicorn on 127.0.0.1; the
clients are the unmodified `openai` package, streaming. Aggregate tokens/s is the completion tokens of
all 8 replies (as the server counts them) over the wall time from the first request to the last reply.
Target: concurrent ≥ 3× one at a time. Rounds alternate; each side's best round counts.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import openai
import uvicorn
from adapters import PROMPTS, workspace_with_runs

from core.serve import server
from core.system.device_lock import DeviceLock

CLIENTS = 8


def connect(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key="unused", max_retries=0)


def one_request(client: openai.OpenAI, model: str, prompt: str, tokens: int) -> int:
    stream = client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}], stream=True,
                                            max_tokens=tokens, temperature=0, stream_options={"include_usage": True})
    return [chunk for chunk in stream][-1].usage.completion_tokens


def requests() -> list[tuple[str, str]]:
    return [("run:a" if index % 2 == 0 else "run:b", PROMPTS[index % len(PROMPTS)]) for index in range(CLIENTS)]


def one_at_a_time(url: str, tokens: int) -> float:
    started = time.perf_counter()
    client = connect(url)
    total = sum(one_request(client, model, prompt, tokens) for model, prompt in requests())
    return total / (time.perf_counter() - started)


def all_at_once(url: str, tokens: int) -> float:
    counts: list[int] = []
    start = threading.Barrier(CLIENTS + 1)

    def client(model: str, prompt: str) -> None:
        connection = connect(url)   # each client is ready before they all send at once
        start.wait()
        counts.append(one_request(connection, model, prompt, tokens))

    threads = [threading.Thread(target=client, args=request) for request in requests()]
    for thread in threads:
        thread.start()
    start.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=64, help="max tokens per reply (default 64)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (default 2)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        workspace = workspace_with_runs(Path(folder) / "ws", ["a", "b"])
        app, batcher = server.load(workspace, ["run:a", "run:b"], DeviceLock(workspace), max_batch=CLIENTS)
        running = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        thread = threading.Thread(target=running.run, daemon=True)
        thread.start()
        while not running.started:
            time.sleep(0.05)
        port = running.servers[0].sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}/v1"
        try:
            one_request(connect(url), "run:a", PROMPTS[0], 4)   # warm up
            alone, together = [], []
            for _ in range(args.rounds):
                alone.append(one_at_a_time(url, args.tokens))
                together.append(all_at_once(url, args.tokens))
            sizes = [size for size in batcher.batch_sizes if size > 1]
        finally:
            running.should_exit = True
            thread.join(30)
            batcher.close()
    print(f"{CLIENTS} streaming clients, two adapters mixed, up to {args.tokens} tokens each: one at a time "
          f"{max(alone):.1f} tokens/s, all at once {max(together):.1f} tokens/s: ratio {max(together) / max(alone):.2f} "
          f"(target ≥ 3); batches of more than one request: {sizes}")


if __name__ == "__main__":
    main()
