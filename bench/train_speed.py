"""Training speed: the studio's engine against HF Trainer, plain and tuned, measured side by side in one run.

    .venv/bin/python bench/train_speed.py --levers        # about an hour on 2 quiet cores
    .venv/bin/python bench/train_speed.py --samples 16 --validation 4 --rounds 1 --lever-rounds 1 --levers  # smoke

Every recipe trains the built-in SmolLM2-135M-Instruct with LoRA r=16 (alpha 32, no dropout) on
q_proj,v_proj, batch 8, lr 2e-4 linear with 10% warm-up, gradient clipping 1.0, for the same steps
(default 256 conversations: 32 steps) on the same conversations (multi-turn chats built from the demo
clinic FAQ, lengths spread log-uniformly over 32-512 tokens, the same labels from core.models.templates):

  Trainer fp32 padded  transformers.Trainer + peft + DataCollatorForSeq2Seq padding to the longest,
                       float32 (the mainstream recipe, what LLaMA-Factory does by default);
  Trainer bf16 flat    the same Trainer set up as a knowledgeable user would on this CPU: bf16=True (CPU
                       autocast), DataCollatorWithFlattening (each batch in one row without padding,
                       position ids restarting per conversation), sdpa attention;
  + bf16 base          the same with the frozen base also loaded in bf16 (peft keeps LoRA in float32);
  ours                 the studio's engine (core.training.train) with its defaults: a batch packed into one
                       row, attention run per conversation, the output layer only at supervised positions,
                       and where the CPU has AVX512-BF16 the frozen base in bf16 under bf16 autocast.

The flattened Trainer recipes are only a fair baseline if each conversation still attends to itself
alone: each checks, on the first batch it trained on, that its loss equals that of the same
conversations one at a time (and prints how far off it would be if they attended to each other).

Each recipe runs in its own subprocess, so peak RSS is its own, in alternating rounds (all recipes, then
all again…), so load from other processes hits them alike; each recipe's best round counts, since
sharing the CPU can only slow a round down. Printed: real (non-padding) tokens/s of the training steps,
our ratio against the fp32 padded recipe and against the fastest Trainer recipe, the validation loss of
each (the saved adapter on a float32 base, one held-out conversation at a time, the same for all), peak
RSS during training, and achieved FLOP/s as a share of this CPU's bf16 matmul peak measured in the same
run. `--levers` adds a step-level measurement of each lever, variants interleaved.
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
from dataclasses import dataclass
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


# --- the recipes ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrainerRecipe:
    """One way to set up HF Trainer + peft for the same LoRA run."""

    column: str       # its column in the report
    flatten: bool     # DataCollatorWithFlattening (one row, position ids) instead of padding to the longest
    bf16: bool        # TrainingArguments(bf16=True): bf16 autocast on the CPU
    base_dtype: str   # the frozen base as loaded ("auto": the checkpoint's float32)


PADDED_BASELINE = "trainer-fp32-padded"
TRAINER_RECIPES = {
    PADDED_BASELINE: TrainerRecipe("Trainer fp32 pad", flatten=False, bf16=False, base_dtype="auto"),
    "trainer-bf16-flat": TrainerRecipe("Trainer bf16 flat", flatten=True, bf16=True, base_dtype="auto"),
    "trainer-bf16-flat-bf16-base": TrainerRecipe("+ bf16 base", flatten=True, bf16=True, base_dtype="bfloat16"),
}
RECIPES = [*TRAINER_RECIPES, "ours"]
# A flattened batch must give the loss of its conversations one at a time, up to this relative difference:
# bf16 matmuls round differently with the row length; conversations attending to each other cost tens of %.
PER_CONVERSATION_TOLERANCE = 5e-3


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


def validation_loss(spec: dict[str, Any], adapter: Path) -> float:
    """Mean token cross-entropy of the held-out conversations under a saved adapter on a float32 base, one
    conversation at a time: the same measurement whatever precision or batching trained the adapter."""
    from peft import PeftModel

    from core.training import packing, train

    _, data = examples(spec)
    base = modeling.load_model(modeling.DEFAULT_MODEL, Workspace.open(spec["workspace"]), dtype="float32")
    model = PeftModel.from_pretrained(base, adapter)
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for example in data.validation:
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

def child_trainer(spec: dict[str, Any]) -> dict[str, Any]:
    """HF Trainer + peft set up as the recipe says; its adapter saved for the validation loss."""
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import DataCollatorForSeq2Seq, DataCollatorWithFlattening, Trainer, TrainingArguments, set_seed

    recipe = TRAINER_RECIPES[spec["recipe"]]
    torch.set_num_threads(spec["threads"])
    tokenizer, data = examples(spec)
    workspace = Workspace.open(spec["workspace"])
    set_seed(42)  # as our engine does before it creates the adapter: the same LoRA initialisation
    model = modeling.load_model(modeling.DEFAULT_MODEL, workspace, dtype=recipe.base_dtype)
    attention = model.config._attn_implementation
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, task_type="CAUSAL_LM",
                                             target_modules=["q_proj", "v_proj"]))
    if recipe.flatten:
        rows = Dataset.from_list([{"input_ids": e.input_ids, "labels": e.labels} for e in data.train])
        collate = DataCollatorWithFlattening()
    else:
        rows = Dataset.from_list([{"input_ids": e.input_ids, "attention_mask": [1] * len(e), "labels": e.labels}
                                  for e in data.train])
        collate = DataCollatorForSeq2Seq(tokenizer, padding="longest", label_pad_token_id=-100)
    seen: dict[str, Any] = {"slots": 0, "real": 0, "first": None}

    def counting_collator(features):
        batch = collate(features)
        seen["first"] = seen["first"] or features
        seen["slots"] += batch["input_ids"].numel()
        mask = batch.get("attention_mask")
        seen["real"] += batch["input_ids"].numel() if mask is None else int(mask.sum())
        return batch

    output = Path(spec["workspace"]) / "trainer"
    arguments = TrainingArguments(
        output_dir=str(output), per_device_train_batch_size=8, learning_rate=2e-4, bf16=recipe.bf16,
        num_train_epochs=spec["epochs"], warmup_steps=0.1, lr_scheduler_type="linear", max_grad_norm=1.0,
        weight_decay=0.0, seed=42, use_cpu=True, save_strategy="no", eval_strategy="no", report_to=[],
        logging_steps=10_000, disable_tqdm=True, dataloader_num_workers=0)
    trainer = Trainer(model=model, args=arguments, train_dataset=rows, data_collator=counting_collator)
    result = trainer.train()
    seconds, peak = result.metrics["train_runtime"], peak_rss_mb()
    check = per_conversation_check(trainer.model, collate, seen["first"], recipe.bf16) if recipe.flatten else None
    trainer.model.save_pretrained(output / "adapter")
    return {"tokens_per_s": seen["real"] / seconds, "train_s": seconds, "real_tokens": seen["real"],
            "padding_share": 1 - seen["real"] / seen["slots"], "mean_loss": result.training_loss,
            "precision": "bf16" if recipe.bf16 else "fp32", "attention": attention, "check": check,
            "validation_loss": validation_loss(spec, output / "adapter"), "peak_rss_mb": peak}


def per_conversation_check(model, collate, features: list[dict[str, Any]], bf16: bool) -> dict[str, float]:
    """Relative difference between the loss of one flattened batch and that of its conversations one at a
    time, under the training precision; and, for scale, the same if they attended to each other in the
    row (an attention mask makes transformers skip its detection of restarting position ids)."""
    def loss_sum(batch) -> float:
        return float(model(**batch).loss) * int((batch["labels"][:, 1:] != -100).sum())

    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        row = collate(features)
        alone = sum(loss_sum(collate([feature])) for feature in features)
        flattened = loss_sum(row)
        crossed = loss_sum({**row, "attention_mask": torch.ones_like(row["input_ids"])})
    return {"flattened": abs(flattened - alone) / alone, "crossed": abs(crossed - alone) / alone}


def child_ours(spec: dict[str, Any]) -> dict[str, Any]:
    """The studio's engine with its defaults, as the CLI and the studio run it."""
    from core.jobs import worker
    from core.runs import metrics, records

    workspace = Workspace.open(spec["workspace"])
    folder = records.create(workspace, run_config(spec))
    summary = worker.run_job(folder, workspace)
    peak = peak_rss_mb()
    losses = [record["loss"] for record in metrics.read_all(folder.metrics) if "loss" in record]
    return {"tokens_per_s": summary["tokens_per_s"], "train_s": summary["train_s"],
            "real_tokens": summary["tokens_trained"], "padding_share": 0.0, "mean_loss": sum(losses) / len(losses),
            "precision": summary["precision"], "attention": "per conversation", "check": None,
            "validation_loss": validation_loss(spec, folder.adapter), "peak_rss_mb": peak}


MAINSTREAM_STEP = "padded, fp32, full logits (the mainstream recipe)"
TRAINER_STEP = "one row, block-diagonal mask, bf16 base + autocast (Trainer bf16 flat)"


def child_levers(spec: dict[str, Any]) -> dict[str, Any]:
    """Step-level (forward and backward) tokens/s of each lever on the same batches, variants interleaved
    round by round: first from the mainstream recipe's step, then from the tuned Trainer's (flattened, bf16)."""
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
    variants = {  # model, batches, packed, row tokens, output layer only where supervised, bf16 autocast, threads
        MAINSTREAM_STEP: (model, random_batches, False, 0, False, False, 0),
        "padded, length-grouped batches": (model, grouped_batches, False, 0, False, False, 0),
        "one row, block-diagonal mask, fp32 (flattened batch)": (model, random_batches, True, one_row, False, False, 0),
        "packed, rows <= hidden size tokens, fp32": (model, random_batches, True, hidden, False, False, 0),
        "  + output layer only at supervised positions": (model, random_batches, True, hidden, True, False, 0),
        "  + bf16 autocast": (model, random_batches, True, hidden, True, True, 0),
        "  + base weights stored in bf16": (bf16_base, random_batches, True, hidden, True, True, 0),
        TRAINER_STEP: (bf16_base, random_batches, True, one_row, False, True, 0),
        "  + output layer only at supervised positions (one row)": (bf16_base, random_batches, True, one_row, True, True, 0),
        "  + attention per conversation, no mask (the studio)": (studio, random_batches, True, one_row, True, True, 0),
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
    parser.add_argument("--samples", type=int, default=256, help="training conversations (default 256: 32 steps)")
    parser.add_argument("--validation", type=int, default=32, help="held-out conversations for the loss")
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
        child = {"ours": child_ours, "levers": child_levers}.get(args.child, child_trainer)
        print(json.dumps(child({**json.loads(args.spec), "recipe": args.child})))
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
        rounds: dict[str, list[dict[str, Any]]] = {recipe: [] for recipe in RECIPES}
        for _ in range(args.rounds):
            for recipe in RECIPES:
                started = time.perf_counter()
                run = {**run_child(recipe, spec), "wall_s": time.perf_counter() - started}
                check = run["check"]
                if check and check["flattened"] > PER_CONVERSATION_TOLERANCE:
                    sys.exit(f"{recipe} is not per conversation: its flattened loss is {check['flattened']:.1e} off "
                             "the conversations' losses one at a time, so it is no fair baseline.")
                rounds[recipe].append(run)
        results = {recipe: max(runs, key=lambda run: run["tokens_per_s"]) for recipe, runs in rounds.items()}
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
    lengths = sorted(train_lengths)
    steps = math.ceil(args.samples / 8) * args.epochs
    print(f"SmolLM2-135M-Instruct, LoRA r=16 on q_proj,v_proj, batch 8, {args.samples} training conversations "
          f"x {args.epochs:g} epoch(s) ({steps:g} steps), {args.validation} validation, {args.threads} threads")
    print(f"conversation lengths: min {lengths[0]}, median {lengths[len(lengths) // 2]}, max {lengths[-1]} tokens; "
          f"{sum(lengths):,} real tokens per epoch")
    print(f"CPU matmul peak (2048^3, best of 8): bf16 {peak_bf16 / 1e9:.0f} GFLOP/s, fp32 {peak_fp32 / 1e9:.0f} GFLOP/s")
    for recipe, runs in rounds.items():
        rates = ", ".join(f"{run['tokens_per_s']:.1f}" for run in runs)
        print(f"{recipe} real tokens/s by round: {rates}")
    print()

    def check_cell(run: dict[str, Any]) -> str:
        check = run["check"]
        return "-" if check is None else f"{check['flattened']:.0e} ({check['crossed']:.0e})"

    columns = [TRAINER_RECIPES[recipe].column for recipe in TRAINER_RECIPES] + ["ours (studio)"]
    runs = [results[recipe] for recipe in RECIPES]
    table = [
        ("precision (autocast)", [run["precision"] for run in runs]),
        ("attention", [run["attention"] for run in runs]),
        ("padding share of batch slots", [f"{run['padding_share']:.1%}" for run in runs]),
        ("flattened vs one at a time (crossed)", [check_cell(run) for run in runs]),
        ("real tokens/s (training steps)", [f"{run['tokens_per_s']:.1f}" for run in runs]),
        ("training-step time, s", [f"{run['train_s']:.1f}" for run in runs]),
        ("subprocess wall time, s", [f"{run['wall_s']:.1f}" for run in runs]),
        ("training loss, mean of all steps", [f"{run['mean_loss']:.4f}" for run in runs]),
        ("validation loss (fp32)", [f"{run['validation_loss']:.4f}" for run in runs]),
        ("peak RSS while training, MB", [f"{run['peak_rss_mb']:.0f}" for run in runs]),
        ("useful GFLOP/s", [f"{flops / run['train_s'] / 1e9:.1f}" for run in runs]),
        ("share of the bf16 matmul peak", [f"{flops / run['train_s'] / peak_bf16:.1%}" for run in runs]),
    ]
    print(f"{'':38}" + "".join(f"{column:>19}" for column in columns))
    for label, cells in table:
        print(f"{label:38}" + "".join(f"{cell:>19}" for cell in cells))
    print()

    ours = results["ours"]
    fastest = max(TRAINER_RECIPES, key=lambda recipe: results[recipe]["tokens_per_s"])
    for recipe, target in ((PADDED_BASELINE, 3.0), (fastest, None)):
        base = results[recipe]
        speedup = ours["tokens_per_s"] / base["tokens_per_s"]
        loss_change = ours["validation_loss"] / base["validation_loss"] - 1
        verdict = f"  (target >= {target:g}x: {'met' if speedup >= target else 'NOT met'})" if target else ""
        print(f"ours vs {recipe}{' (the fastest Trainer recipe)' if recipe == fastest else ''}:")
        print(f"  speed-up (real tokens/s): {speedup:.2f}x{verdict}")
        print(f"  validation loss: {loss_change:+.2%}  (target <= +2%: {'met' if loss_change <= 0.02 else 'NOT met'})")
        rss = ours["peak_rss_mb"] / base["peak_rss_mb"]
        print(f"  peak RSS: {rss:.2f}x  (target <= 1: {'met' if rss <= 1 else 'NOT met'})")
    if levers:
        print()
        print(f"levers, forward + backward only (same {args.lever_batches} batch(es) of 8, median of "
              f"{args.lever_rounds} interleaved rounds), x the mainstream step and x Trainer bf16 flat's:")
        for name, rate in levers.items():
            print(f"  {name:66}{rate:8.1f} tok/s  {rate / levers[MAINSTREAM_STEP]:5.2f}x  "
                  f"{rate / levers[TRAINER_STEP]:5.2f}x")


def modeling_config(workspace: Workspace):
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(workspace.model_dir(modeling.DEFAULT_MODEL_DIR))


if __name__ == "__main__":
    main()
