"""Generation for evaluation: batched (left padding, KV cache) against one prompt at a time, on the default model.

    .venv/bin/python bench/eval_generation.py [--prompts 16] [--batch 8] [--new-tokens 64]

Both answer the same demo-dataset prompts (Chinese and English) greedily through core.inference.Answerer,
the code evaluation uses. Prints the tokens generated, seconds and tokens/s of each, and the ratio
(target: at least 3x at batch 8 on this CPU). Uses a throw-away workspace that links the converted default
model (converted once into .cache/ when missing).
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

TARGET_RATIO = 3.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=64)
    args = parser.parse_args()

    from support import CACHE, workspace_with_default_model

    from core.config import GenerationSection
    from core.data import store
    from core.evaluation.heldout import items_of
    from core.inference import choices
    from core.inference.answering import Answerer
    from core.models import modeling
    from core.workspace import Workspace

    converted = modeling.ensure_default_model(Workspace.open(CACHE / "default-model-workspace"))
    workspace = workspace_with_default_model(Path(tempfile.mkdtemp(prefix="bench-eval-")) / "ws", converted)
    conversations = store.load_conversations(store.DEMO_DATASET_FILE)
    step = max(1, len(conversations) // args.prompts)
    items = items_of([("demo", messages) for messages in conversations[::step][:args.prompts]])
    contexts = [item.context for item in items]
    settings = GenerationSection(temperature=0, max_new_tokens=args.new_tokens, repetition_penalty=1.0)
    answerer = Answerer(workspace, modeling.DEFAULT_MODEL)
    base = choices.base_choice()
    answerer.answer(contexts[:2], base, settings, batch_size=2)   # warm-up: first calls allocate

    figures = {}
    for label, batch in (("one prompt at a time", 1), (f"batch {args.batch}", args.batch)):
        started = time.perf_counter()
        answers = answerer.answer(contexts, base, settings, batch_size=batch)
        seconds = time.perf_counter() - started
        tokens = sum(answer.new_tokens for answer in answers)
        figures[label] = tokens / seconds
        print(f"{label:<22} {len(contexts)} prompts, {tokens} tokens in {seconds:6.1f} s: {tokens / seconds:7.1f} tokens/s",
              flush=True)
    ratio = figures[f"batch {args.batch}"] / figures["one prompt at a time"]
    print(f"ratio {ratio:.2f}x (target >= {TARGET_RATIO:.0f}x): {'met' if ratio >= TARGET_RATIO else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
