"""Training speed: the studio's engine against the mainstream recipe, measured side by side in one run.

    .venv/bin/python bench/train_speed.py                     # about 6 minutes on 2 quiet cores
    .venv/bin/python bench/train_speed.py --samples 256 --epochs 2 --rounds 1 --levers

Both train the built-in SmolLM2-135M-Instruct with LoRA r=16 on q_proj,v_proj, batch 8, on the same
conversations (multi-turn chats built from the demo clinic FAQ, lengths spread log-uniformly over
32-512 tokens, the same labels from core.models.templates):

  baseline  transformers.Trainer + peft + DataCollatorForSeq2Seq padding to the longest, float32,
            no LoRA dropout (the mainstream recipe, what LLaMA-Factory does by default);
  ours      the studio's engine (core.training.train) with its defaults: a batch packed into one row without
            padding, attention inside each conversation, the output layer only at supervised
            positions, and where the CPU has AVX512-BF16 the frozen base stored in bf16 under bf16
            autocast (LoRA weights and optimizer state stay float32); no LoRA dropout either.

Each runs in its own subprocess, so peak RSS is its own, alternately for `--rounds` rounds (baseline,
ours, baseline, ours…); each recipe's best round counts, since other processes sharing the CPU can
only slow a round down. Printed: real (non-padding) tokens/s of the training steps and their ratio,
wall time, the final validation loss of both (computed the same way, float32, on held-out
conversations), peak RSS, and achieved FLOP/s as a share of this CPU's bf16 matmul peak, measured in
the same run. `--levers` adds a step-level measurement of each lever, variants interleaved.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from core.models import modeling  # noqa: E402
from core.workspace import Workspace  # noqa: E402

SHARED_MODEL_WORKSPACE = REPO / ".cache" / "default-model-workspace"
MAX_TOKENS = 512
MIN_TOKENS = 32


# --- set-up (parent) --------------------------------------------------------------------------------

def bench_workspace(root: Path) -> Workspace:
    """A throw-away workspace whose default model links to the converted copy in .cache/."""
    shared = Workspace.open(SHARED_MODEL_WORKSPACE)
    if not modeling.default_model_ready(shared):
        subprocess.run([sys.executable, "-m", "cli", "prepare", "--workspace", str(SHARED_MODEL_WORKSPACE)],
                       cwd=REPO, check=True)
    workspace = Workspace.open(root)
    workspace.model_dir(modeling.DEFAULT_MODEL_DIR).symlink_to(shared.model_dir(modeling.DEFAULT_MODEL_DIR))
    return workspace


def write_conversations(workspace: Workspace, count: int, seed: int, path: Path) -> list[int]:
    """`count` multi-turn chats from the demo FAQ, each grown until it reaches a log-uniform target
    length in [32, 512] tokens (never past 512; one FAQ turn is the shortest); returns their lengths."""
    from core.data.store import DEMO_DATASET_FILE, load_conversations
    from core.models.templates import tokenize_conversation

    tokenizer = modeling.load_tokenizer(modeling.DEFAULT_MODEL, workspace)
    pairs = [c for c in load_conversations(DEMO_DATASET_FILE) if c[-1]["content"].strip()]
    rng = random.Random(seed)
    rows, lengths = [], []
    for _ in range(count):
        target = MIN_TOKENS * (MAX_TOKENS / MIN_TOKENS) ** rng.random()
        messages = list(rng.choice(pairs))
        length = len(tokenize_conversation(tokenizer, messages).input_ids)
        while length < target:
            grown = messages + list(rng.choice(pairs))
            grown_length = len(tokenize_conversation(tokenizer, grown).input_ids)
            if grown_length > MAX_TOKENS:
                break
            messages, length = grown, grown_length
        rows.append({"messages": messages})
        lengths.append(length)
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return lengths


def matmul_peak(dtype: torch.dtype, threads: int, size: int = 2048, repeats: int = 8) -> float:
    """Best FLOP/s of a large square matmul."""
    torch.set_num_threads(threads)
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return 2 * size ** 3 / best


def run_child(mode: str, spec: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, "--child", mode, "--spec", json.dumps(spec)], cwd=REPO,
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{mode} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- shared by the children -------------------------------------------------------------------------

def run_config(spec: dict[str, Any]):
    from core import config

    return config.build(None, None, [
        f"data.train_path={spec['train']}", f"data.validation_path={spec['validation']}",
        "lora.r=16", "lora.alpha=32", "lora.target_modules=[q_proj,v_proj]", "train.batch_size=8",
        f"train.epochs={spec['epochs']}", f"train.max_seq_length={MAX_TOKENS}", f"train.num_threads={spec['threads']}"])


def examples(spec: dict[str, Any]):
    from core.training import trainset

    workspace = Workspace.open(spec["workspace"])
    tokenizer = modeling.load_tokenizer(modeling.DEFAULT_MODEL, workspace)
    return tokenizer, trainset.build(run_config(spec), tokenizer, workspace)


def validation_loss(model, validation) -> float:
    """Mean token cross-entropy over the held-out conversations, float32, one conversation at a time."""
    from core.training import packing, train

    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for example in validation:
            losses, _ = train.token_losses(model, packing.packed([example]))
            total, count = total + float(losses.sum()), count + losses.numel()
    return total / count


def useful_flops(model_config, lengths: list[int], supervised: int) -> float:
    """FLOPs a LoRA step must do for these conversations, whatever the recipe: forward and input-gradient
    matmuls of the frozen body (4 per weight per token), causal attention, and the output layer at the
    supervised positions. Padding and wasted logits are not counted."""
    text = model_config.get_text_config()
    hidden, layers = text.hidden_size, text.num_hidden_layers
    head_dim = getattr(text, "head_dim", None) or hidden // text.num_attention_heads
    kv = text.num_key_value_heads * head_dim
    per_layer = hidden * hidden * 2 + hidden * kv * 2 + 3 * hidden * text.intermediate_size
    body = 4 * per_layer * layers * sum(lengths)
    attention = 6 * layers * text.num_attention_heads * head_dim * sum(n * n for n in lengths)
    head = 4 * hidden * text.vocab_size * supervised
    return float(body + attention + head)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- children ---------------------------------------------------------------------------------------

def child_baseline(spec: dict[str, Any]) -> dict[str, Any]:
    """The mainstream recipe: Trainer + peft + DataCollatorForSeq2Seq (pad to longest), float32."""
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    torch.set_num_threads(spec["threads"])
    tokenizer, data = examples(spec)
    workspace = Workspace.open(spec["workspace"])
    model = modeling.load_model(modeling.DEFAULT_MODEL, workspace)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, task_type="CAUSAL_LM",
                                             target_modules=["q_proj", "v_proj"]))
    rows = Dataset.from_list([{"input_ids": e.input_ids, "attention_mask": [1] * len(e), "labels": e.labels}
                              for e in data.train])
    collate = DataCollatorForSeq2Seq(tokenizer, padding="longest", label_pad_token_id=-100)
    seen = {"slots": 0, "real": 0}

    def counting_collator(features):
        batch = collate(features)
        seen["slots"] += batch["input_ids"].numel()
        seen["real"] += int(batch["attention_mask"].sum())
        return batch

    arguments = TrainingArguments(
        output_dir=str(Path(spec["workspace"]) / "trainer"), per_device_train_batch_size=8, learning_rate=2e-4,
        num_train_epochs=spec["epochs"], warmup_steps=0.1, lr_scheduler_type="linear", max_grad_norm=1.0,
        weight_decay=0.0, seed=42, use_cpu=True, save_strategy="no", eval_strategy="no", report_to=[],
        logging_steps=10_000, disable_tqdm=True, dataloader_num_workers=0)
    trainer = Trainer(model=model, args=arguments, train_dataset=rows, data_collator=counting_collator)
    result = trainer.train()
    seconds = result.metrics["train_runtime"]
    return {"tokens_per_s": seen["real"] / seconds, "train_s": seconds, "real_tokens": seen["real"],
            "padding_share": 1 - seen["real"] / seen["slots"], "final_loss": result.training_loss,
            "validation_loss": validation_loss(trainer.model, data.validation), "peak_rss_mb": peak_rss_mb()}


def child_ours(spec: dict[str, Any]) -> dict[str, Any]:
    """The studio's engine with its defaults, then its saved adapter loaded back with peft."""
    from peft import PeftModel

    from core.jobs import worker
    from core.runs import records

    workspace = Workspace.open(spec["workspace"])
    folder = records.create(workspace, run_config(spec))
    summary = worker.run_job(folder, workspace)
    _, data = examples(spec)
    model = PeftModel.from_pretrained(modeling.load_model(modeling.DEFAULT_MODEL, workspace), folder.adapter)
    return {"tokens_per_s": summary["tokens_per_s"], "train_s": summary["train_s"],
            "real_tokens": summary["tokens_trained"], "padding_share": 0.0, "final_loss": summary["final_loss"],
            "precision": summary["precision"], "validation_loss": validation_loss(model, data.validation),
            "peak_rss_mb": peak_rss_mb()}


def child_levers(spec: dict[str, Any]) -> dict[str, Any]:
    """Step-level tokens/s of each lever on the same batches, variants interleaved round by round."""
    from peft import LoraConfig, get_peft_model

    from core.training import packing, train

    workspace = Workspace.open(spec["workspace"])
    tokenizer, data = examples(spec)

    def peft_model(dtype: str = "auto", dropout: float = 0.0, own_attention: bool = False):
        lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=dropout, task_type="CAUSAL_LM",
                          target_modules=["q_proj", "v_proj"])
        base = modeling.load_model(modeling.DEFAULT_MODEL, workspace, dtype=dtype)
        if own_attention:
            packing.use_packed_attention(base, MAX_TOKENS)
        return get_peft_model(base, lora)

    model, bf16_base = peft_model(), peft_model("bfloat16")
    studio, with_dropout = peft_model("bfloat16", own_attention=True), peft_model("bfloat16", 0.05, True)
    hidden = model.config.hidden_size
    sample = data.train[:8 * spec["lever_batches"]]
    lengths = [len(e) for e in sample]
    random_batches = [sample[i:i + 8] for i in range(0, len(sample), 8)]
    grouped_batches = [[sample[i] for i in batch] for batch in packing.batch_order(lengths, 8, 0, True)]
    one_row = packing.ONE_ROW
    variants = {
        "padded, fp32, full logits (the mainstream recipe)": (model, random_batches, False, 0, False, False, 0),
        "padded, length-grouped batches": (model, grouped_batches, False, 0, False, False, 0),
        "packed into one row, block-diagonal mask, fp32": (model, random_batches, True, one_row, False, False, 0),
        "packed, rows <= hidden size tokens, fp32": (model, random_batches, True, hidden, False, False, 0),
        "  + output layer only at supervised positions": (model, random_batches, True, hidden, True, False, 0),
        "  + bf16 autocast": (model, random_batches, True, hidden, True, True, 0),
        "  + base weights stored in bf16": (bf16_base, random_batches, True, hidden, True, True, 0),
        "  + one row, attention per conversation (the studio)": (studio, random_batches, True, one_row, True, True, 0),
        "  same, 1 thread": (studio, random_batches, True, one_row, True, True, 1),
        "  same, LoRA dropout 0.05": (with_dropout, random_batches, True, one_row, True, True, 0),
    }

    def step(target, batch, packed, row_tokens, head, bf16) -> int:
        forwards = packing.forward_batches(batch, packed, row_tokens, tokenizer.pad_token_id)
        weight = float(sum(fb.weights[fb.supervised].sum() for fb in forwards))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            for fb in forwards:
                losses, weights = train.token_losses(target, fb, head)
                ((losses * weights).sum() / weight).backward()
        target.zero_grad(set_to_none=True)
        return sum(fb.real_tokens for fb in forwards)

    for target in (model, bf16_base, studio, with_dropout):
        target.train()
        step(target, random_batches[0], True, hidden, True, True)  # warm-up
    timings: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(spec["lever_rounds"]):
        for name, (target, batches, packed, row_tokens, head, bf16, threads) in variants.items():
            torch.set_num_threads(threads or spec["threads"])
            started, tokens = time.perf_counter(), 0
            for batch in batches:
                tokens += step(target, batch, packed, row_tokens, head, bf16)
            timings[name].append(tokens / (time.perf_counter() - started))
    return {name: statistics.median(rates) for name, rates in timings.items()}


# --- report -----------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=48, help="training conversations (default 48: 6 steps)")
    parser.add_argument("--validation", type=int, default=16, help="held-out conversations for the loss")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--levers", action="store_true", help="also measure each lever on its own")
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs of each recipe; the best counts")
    parser.add_argument("--lever-batches", type=int, default=1)
    parser.add_argument("--lever-rounds", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child = {"baseline": child_baseline, "ours": child_ours, "levers": child_levers}[args.child]
        print(json.dumps(child(json.loads(args.spec))))
        return

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        workspace = bench_workspace(root / "ws")
        train_lengths = write_conversations(workspace, args.samples, 1, root / "train.jsonl")
        write_conversations(workspace, args.validation, 2, root / "validation.jsonl")
        spec = {"workspace": str(workspace.root), "train": str(root / "train.jsonl"),
                "validation": str(root / "validation.jsonl"), "epochs": args.epochs, "threads": args.threads,
                "lever_batches": args.lever_batches, "lever_rounds": args.lever_rounds}
        peak_bf16 = matmul_peak(torch.bfloat16, args.threads)
        peak_fp32 = matmul_peak(torch.float32, args.threads)
        rounds: dict[str, list[dict[str, Any]]] = {"baseline": [], "ours": []}
        for _ in range(args.rounds):
            for mode in rounds:
                started = time.perf_counter()
                rounds[mode].append({**run_child(mode, spec), "wall_s": time.perf_counter() - started})
        results = {mode: max(runs, key=lambda run: run["tokens_per_s"]) for mode, runs in rounds.items()}
        levers = run_child("levers", spec) if args.levers else {}
        from core.config import build
        from core.training import trainset
        tokenizer = modeling.load_tokenizer(modeling.DEFAULT_MODEL, workspace)
        data = trainset.build(build(None, None, [f"data.train_path={spec['train']}",
                                                 f"data.validation_path={spec['validation']}",
                                                 f"train.max_seq_length={MAX_TOKENS}"]), tokenizer, workspace)
        model_config = modeling_config(workspace)

    supervised = sum(sum(label != -100 for label in e.labels[1:]) for e in data.train)
    flops = useful_flops(model_config, [len(e) for e in data.train], supervised) * args.epochs
    base, ours = results["baseline"], results["ours"]
    lengths = sorted(train_lengths)
    print(f"SmolLM2-135M-Instruct, LoRA r=16 on q_proj,v_proj, batch 8, {args.samples} training conversations "
          f"x {args.epochs:g} epoch(s), {args.validation} validation, {args.threads} threads")
    print(f"conversation lengths: min {lengths[0]}, median {lengths[len(lengths) // 2]}, max {lengths[-1]} tokens; "
          f"{sum(lengths):,} real tokens per epoch")
    print(f"CPU matmul peak (2048^3, best of 8): bf16 {peak_bf16 / 1e9:.0f} GFLOP/s, fp32 {peak_fp32 / 1e9:.0f} GFLOP/s")
    for mode, runs in rounds.items():
        rates = ", ".join(f"{run['tokens_per_s']:.1f}" for run in runs)
        print(f"{mode} real tokens/s by round: {rates}")
    print()
    print(f"{'':34}{'baseline':>14}{'ours':>14}")
    rows = [
        ("recipe", "Trainer, pad, fp32", f"studio, {ours['precision']}"),
        ("padding share of batch slots", f"{base['padding_share']:.1%}", f"{ours['padding_share']:.1%}"),
        ("real tokens/s (training steps)", f"{base['tokens_per_s']:.1f}", f"{ours['tokens_per_s']:.1f}"),
        ("training-step time, s", f"{base['train_s']:.1f}", f"{ours['train_s']:.1f}"),
        ("subprocess wall time, s", f"{base['wall_s']:.1f}", f"{ours['wall_s']:.1f}"),
        ("final training loss", f"{base['final_loss']:.4f}", f"{ours['final_loss']:.4f}"),
        ("validation loss (fp32)", f"{base['validation_loss']:.4f}", f"{ours['validation_loss']:.4f}"),
        ("peak RSS, MB", f"{base['peak_rss_mb']:.0f}", f"{ours['peak_rss_mb']:.0f}"),
        ("useful GFLOP/s", f"{flops / base['train_s'] / 1e9:.1f}", f"{flops / ours['train_s'] / 1e9:.1f}"),
        ("share of the bf16 matmul peak", f"{flops / base['train_s'] / peak_bf16:.1%}",
         f"{flops / ours['train_s'] / peak_bf16:.1%}"),
    ]
    for label, left, right in rows:
        print(f"{label:34}{left:>14}{right:>14}")
    print()
    speedup = ours["tokens_per_s"] / base["tokens_per_s"]
    loss_change = ours["validation_loss"] / base["validation_loss"] - 1
    rss_ratio = ours["peak_rss_mb"] / base["peak_rss_mb"]
    print(f"speed-up (real tokens/s): {speedup:.2f}x  (target >= 3x: {'met' if speedup >= 3 else 'NOT met'})")
    verdict = "met" if loss_change <= 0.02 else "NOT met"
    print(f"validation loss, ours vs baseline: {loss_change:+.2%}  (target <= +2%: {verdict})")
    print(f"peak RSS, ours / baseline: {rss_ratio:.2f}  (target <= 1: {'met' if rss_ratio <= 1 else 'NOT met'})")
    if levers:
        print()
        print(f"levers, step-level (same {args.lever_batches} batches of 8, median of {args.lever_rounds} "
              f"interleaved rounds):")
        first = next(iter(levers.values()))
        for name, rate in levers.items():
            print(f"  {name:58}{rate:8.1f} tok/s  {rate / first:5.2f}x")


def modeling_config(workspace: Workspace):
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(workspace.model_dir(modeling.DEFAULT_MODEL_DIR))


if __name__ == "__main__":
    main()
