"""Chat decode speed on the built-in model: the Chat tab's engine against a bare `model.generate` loop,
and a merged export against the same adapter unmerged.

    .venv/bin/python bench/chat_decode.py                  # about 3 minutes on 2 quiet cores
    .venv/bin/python bench/chat_decode.py --tokens 32 --rounds 1

1. base model: ChatEngine.stream (streamer, stopping criterion, device lock, chat template) against
   model.generate on the same prompt, greedy, the same tokens (targets: within 10%, ratio ≥ 0.90);
2. a run's adapter on the base (unmerged, as the Chat tab hot-switches it) against that run merged
   into a standalone export, both through the ChatEngine (target: merged ≥ unmerged, ratio ≥ 1.0).
Rounds alternate the contenders; each one's best round counts (other processes only slow a round).
Tokens/s here is generated tokens over the whole reply's time, prompt included, the same for both sides.
The bare loop runs on a worker thread, as the engine runs generate(); it is also timed on the main thread,
which on a busy machine measured 3-5x slower here (an OpenMP threading effect, the same for any caller).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

from adapters import workspace_with_runs

from core.config import GenerationSection
from core.export import job, records
from core.inference.chat import ChatEngine, Turn
from core.models import modeling
from core.progress import QUIET
from core.system import job_status
from core.system.device_lock import DeviceLock

PROMPT = [{"role": "user", "content": "Write a long story about a lighthouse keeper and a storm."}]


def bare_generate(model, tokenizer, tokens: int) -> float:
    import torch

    inputs = tokenizer.apply_chat_template(PROMPT, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    started = time.perf_counter()
    with torch.inference_mode():
        output = model.generate(**inputs, max_new_tokens=tokens, do_sample=False, repetition_penalty=1.0,
                                pad_token_id=tokenizer.pad_token_id)
    return (output.shape[1] - inputs["input_ids"].shape[1]) / (time.perf_counter() - started)


def on_a_thread(measure):
    """`measure()` run on a worker thread (where the chat engine runs generate), its result returned."""
    result: list = []
    worker = threading.Thread(target=lambda: result.append(measure()))
    worker.start()
    worker.join()
    return result[0]


def chat(engine: ChatEngine, key: str, tokens: int) -> tuple[float, float]:
    """(tokens/s over the whole reply, seconds to the first token)."""
    settings = GenerationSection(temperature=0, max_new_tokens=tokens, repetition_penalty=1.0)
    started = time.perf_counter()
    reply = list(engine.stream([Turn(key, PROMPT)], settings))[-1][0]
    return reply.tokens / (time.perf_counter() - started), reply.first_token_s or 0.0


def best_of(rounds: int, *contenders):
    results: list[list] = [[] for _ in contenders]
    for _ in range(rounds):
        for index, contender in enumerate(contenders):
            results[index].append(contender())
    return results


def engine_against_bare_generate(workspace, tokens: int, rounds: int) -> None:
    engine = ChatEngine(workspace, DeviceLock(workspace))
    model = modeling.load_model(modeling.DEFAULT_MODEL, workspace)
    tokenizer = modeling.load_tokenizer(modeling.DEFAULT_MODEL, workspace)
    chat(engine, "base:default", 4)   # load and warm up both before measuring
    bare_generate(model, tokenizer, 4)
    bare, main_thread, ours = best_of(rounds, lambda: on_a_thread(lambda: bare_generate(model, tokenizer, tokens)),
                                      lambda: bare_generate(model, tokenizer, tokens),
                                      lambda: chat(engine, "base:default", tokens))
    (ours_best, ours_ttft), bare_best = max(ours), max(bare)
    print(f"base model, {tokens} tokens: bare generate {bare_best:.1f} tokens/s (on the main thread "
          f"{max(main_thread):.1f}), chat engine {ours_best:.1f} tokens/s (first token {ours_ttft:.2f} s): "
          f"ratio {ours_best / bare_best:.2f} (target ≥ 0.90)")


def merged_against_unmerged(workspace, tokens: int, rounds: int) -> None:
    export_folder, title, settings = records.new_export(workspace, "tuned", "merged")
    job_status.create(job_status.JobFolder(export_folder), records.KIND, title, settings)
    job.run(workspace, export_folder, settings, QUIET)
    engine = ChatEngine(workspace, DeviceLock(workspace))
    merged_key = f"export:{export_folder.name}"
    chat(engine, "run:tuned", 4)
    chat(engine, merged_key, 4)
    unmerged, merged = best_of(rounds, lambda: chat(engine, "run:tuned", tokens), lambda: chat(engine, merged_key, tokens))
    print(f"adapter (r=16 on q_proj, v_proj): unmerged {max(unmerged)[0]:.1f} tokens/s, merged export "
          f"{max(merged)[0]:.1f} tokens/s: ratio {max(merged)[0] / max(unmerged)[0]:.2f} (target ≥ 1.0)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=128, help="tokens per reply (default 128)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        workspace = workspace_with_runs(Path(folder) / "ws", ["tuned"])
        engine_against_bare_generate(workspace, args.tokens, args.rounds)
        merged_against_unmerged(workspace, args.tokens, args.rounds)


if __name__ == "__main__":
    main()
