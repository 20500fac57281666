"""One LoRA fine-tuning run, top to bottom: seed, data, model, optimiser, loop, save.

    train(config, run_dir, workspace, stop_event=None, resume=False, echo=None) -> summary dict

A pure function of its arguments: everything it needs comes in, everything it produces goes into
the run folder (core.workspace.RunFolder, written through core.runs.records.RunRecorder):
status.json and metrics.jsonl while it runs, checkpoints/ every train.save_steps, and at the end
adapter/ (peft format + tokenizer) and summary.json. Failures are raised (the caller, core.jobs.runner,
records them); a stop request (the event, or the run folder's STOP file) ends the run cleanly after
the current step and still saves the adapter.

The same function runs in one process (CPU or one GPU; the studio's job thread, `lora-studio train`)
and under `accelerate launch` / `torchrun` in several: accelerate's Accelerator does the mixed
precision, the gradient all-reduce (DDP; FSDP2 or DeepSpeed from an accelerate config) and the
checkpoint state; only rank 0 writes the run's files. After step 1 and at the end every process's full
adapter is compared (`check_processes_agree`, logged to train.log).

Speed, measured in bench/train_speed.py: a batch packed into one row without padding, attention inside
each conversation (core.training.packing), the output layer only at supervised positions (`logits_to_keep`), and
where the hardware has bf16 the frozen base stored in bf16 under bf16 autocast; one thread per core.
"""

from __future__ import annotations

import hashlib
import inspect
import math
import os
import shutil
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from core.config import RunConfig
from core.errors import ConfigError, DivergedError, StudioError
from core.models import modeling
from core.runs import metrics
from core.runs.records import RunRecorder, latest_checkpoint, resolve_adapter
from core.system.hardware import memory_mb, mixed_precision, peak_memory_mb, thread_count
from core.text import N_
from core.training import packing, trainset
from core.training.steps import StepPlan
from core.training.trainset import Example
from core.workspace import RunFolder, Workspace, atomic_write_json, now_iso, read_json, replace_folder

_SPIKE_WINDOW = 20        # the loss-spike guard compares with the mean of this many recent steps…
_SPIKE_MIN_STEPS = 10     # …once it has seen at least this many


@dataclass
class LoopState:
    """Where the loop is; saved with every checkpoint so a resumed run continues exactly."""

    step: int = 0
    tokens_trained: int = 0          # real (non-padding) tokens, all processes together
    train_seconds: float = 0.0       # time spent in training steps (not loading, evaluating, saving)
    best_eval_loss: float | None = None
    best_step: int | None = None
    evals_without_improvement: int = 0
    last_loss: float | None = None
    recent_losses: list[float] = field(default_factory=list)


def train(config: RunConfig, run_dir: Path, workspace: Workspace, stop_event: threading.Event | None = None,
          resume: bool = False, echo: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train the run in `run_dir` (its config.yaml already written) and return its summary."""
    from accelerate.utils import set_seed
    from transformers import get_scheduler

    wall_started = time.perf_counter()
    folder = RunFolder(Path(run_dir))
    settings = config.train
    stop_event = stop_event or threading.Event()
    accelerator = fresh_accelerator(mixed_precision(settings.precision))
    recorder = RunRecorder(folder, enabled=accelerator.is_main_process, echo=echo)
    threads = thread_count(settings.num_threads)
    torch.set_num_threads(threads)
    set_seed(settings.seed)
    recorder.update(state="running", message=N_("Loading data and model"), error=None, finished=None,
                    **({} if resume else {"started": now_iso()}))
    recorder.log(f"{'Resuming' if resume else 'Starting'} run {folder.run_id}: {accelerator.num_processes} "
                 f"process(es){_sharing(accelerator)} on {accelerator.device}, {threads} thread(s) each, "
                 f"precision {accelerator.mixed_precision}")

    # Data: every conversation tokenised with the chat template; refused if anything has nothing to learn.
    tokenizer = modeling.load_tokenizer(config.model.name, workspace)
    data = trainset.build(config, tokenizer, workspace)
    report = data.report
    recorder.log(f"Data: {report.train_conversations} training and {report.validation_conversations} validation "
                 f"conversations ({report.validation_kept_together} rows kept on one side with their near-duplicate "
                 f"prompts), {report.train_tokens:,} tokens ({report.supervised_tokens:,} trained on), laid out with "
                 f"{report.template}; {report.truncated} truncated, {report.dropped_too_long} dropped as longer than "
                 f"{report.max_seq_length} tokens")

    # Model: the base, frozen, with a LoRA adapter (fresh, or an earlier run's for two-stage training).
    model = load_model_with_adapter(config, workspace, accelerator)
    trainable, total = model.get_nb_trainable_parameters()
    recorder.log(f"Trainable parameters: {trainable:,} of {total:,} ({100 * trainable / total:.4f}%)")
    recorder.update(trainable_parameters=trainable, total_parameters=total)
    supervised_head = "logits_to_keep" in inspect.signature(model.get_base_model().forward).parameters
    # Packed rows (core.training.packing): one per batch with per-conversation attention where that is exact,
    # else rows of at most hidden-size tokens, which bounds the dense mask's O(n²) attention.
    row_tokens = model.config.get_text_config().hidden_size
    if settings.packing and packing.use_packed_attention(model.get_base_model(), settings.max_seq_length):
        row_tokens = packing.ONE_ROW

    # Optimiser and schedule. LoRA weights and AdamW state stay float32 whatever the precision.
    plan = StepPlan.create([len(example) for example in data.train], settings, accelerator.num_processes)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                  lr=settings.learning_rate, weight_decay=0.0)
    scheduler = get_scheduler(settings.scheduler, optimizer, num_warmup_steps=plan.warmup_steps,
                              num_training_steps=plan.total_steps)
    if accelerator.state.deepspeed_plugin is not None:
        # Our loop owns batching, accumulation and clipping; DeepSpeed gets them as fixed numbers.
        accelerator.state.deepspeed_plugin.deepspeed_config.update({
            "train_micro_batch_size_per_gpu": settings.batch_size, "gradient_accumulation_steps": 1,
            "gradient_clipping": settings.max_grad_norm})
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(scheduler)
    accelerator.register_save_state_pre_hook(_keep_trainable_weights_only)
    state = LoopState()
    if resume:
        state = restore_checkpoint(accelerator, folder)
        # The run's config may have changed since the checkpoint (core.training.resume): the new learning
        # rate and length apply from here on.
        if plan.total_steps <= state.step:
            raise ConfigError(f"The run has done {state.step} steps, but its settings now give only "
                              f"{plan.total_steps} in all.", "Resume with a larger train.max_steps or train.epochs.")
        set_learning_rate(optimizer, scheduler, settings.learning_rate)
        recorder.log(f"Resumed from the checkpoint of step {state.step}, learning rate {settings.learning_rate:g}")
    recorder.update(step=state.step, total_steps=plan.total_steps, epoch=plan.epoch(state.step),
                    message=N_(f"Training: step {state.step}/{plan.total_steps}"))
    recorder.log(f"Plan: {plan.total_steps} steps ({plan.steps_per_epoch} per epoch), batch {settings.batch_size} "
                 f"x {settings.gradient_accumulation_steps} accumulation x {accelerator.num_processes} process(es), "
                 f"{plan.warmup_steps} warm-up steps, {_batching(settings.packing, row_tokens)}")

    # The loop: one optimizer step per iteration, a stop request honoured between steps.
    model.train()
    stop_reason, last_eval_loss = "finished", state.best_eval_loss
    log_every = max(1, plan.total_steps // 100)
    session_started, session_first_step = time.perf_counter(), state.step + 1
    for step in range(state.step + 1, plan.total_steps + 1):
        stop, checkpoint = _requests(accelerator, stop_event, folder)
        if stop:
            stop_reason = "stopped"
            recorder.update(state="stopping", message=N_(f"Stopping after step {state.step}"))
            break
        if checkpoint and state.step > 0:  # the studio is shutting down: save the way back in, carry on
            save_checkpoint(accelerator, folder, state, settings.save_total_limit)
            recorder.update(last_checkpoint_step=state.step)
            recorder.log(f"Checkpoint of step {state.step} saved on request")
        step_started = time.perf_counter()
        window = [[data.train[i] for i in batch] for batch in plan.batches(step, accelerator.process_index)]
        loss, tokens = train_step(model, accelerator, window, settings.packing, row_tokens,
                                  tokenizer.pad_token_id, supervised_head)
        loss = _all_processes(accelerator, [loss], "mean")[0]
        tokens = int(_all_processes(accelerator, [tokens], "sum")[0])
        norm = accelerator.clip_grad_norm_(model.parameters(), settings.max_grad_norm)
        grad_norm = float(norm) if norm is not None else None  # DeepSpeed may not report one
        # With fp16 an infinite gradient is routine: the loss scaler skips that step by itself.
        check_loss(loss, None if accelerator.scaler else grad_norm, state.recent_losses,
                   settings.loss_spike_factor, step)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if step == 1 and accelerator.num_processes > 1:
            recorder.log(check_processes_agree(accelerator, model, N_("after step 1")))

        step_seconds = time.perf_counter() - step_started
        state.step, state.last_loss = step, loss
        state.tokens_trained += tokens
        state.train_seconds += step_seconds
        state.recent_losses = (state.recent_losses + [loss])[-_SPIKE_WINDOW:]
        record: dict[str, Any] = {
            "step": step, "epoch": round(plan.epoch(step), 4), "loss": loss, "lr": scheduler.get_last_lr()[0],
            "grad_norm": grad_norm, "tokens_per_s": tokens / step_seconds,
            "elapsed_s": round(state.train_seconds, 3), "memory_mb": memory_mb()}
        if data.validation and ((settings.eval_steps and step % settings.eval_steps == 0) or step == plan.total_steps):
            eval_loss = evaluate(model, accelerator, data.validation, settings.batch_size, settings.packing,
                                 row_tokens, tokenizer.pad_token_id, supervised_head)
            record.update(eval_loss=eval_loss, perplexity=math.exp(min(eval_loss, 50.0)))
            last_eval_loss = eval_loss
            if state.best_eval_loss is None or eval_loss < state.best_eval_loss:
                state.best_eval_loss, state.best_step, state.evals_without_improvement = eval_loss, step, 0
                if settings.keep_best:
                    save_adapter(accelerator, model, tokenizer, folder.best_adapter, {"step": step, "eval_loss": eval_loss})
            else:
                state.evals_without_improvement += 1
        recorder.metric(record)

        done = step - session_first_step + 1
        eta = (time.perf_counter() - session_started) / done * (plan.total_steps - step)
        line = (f"step {step}/{plan.total_steps}  epoch {plan.epoch(step):.2f}  loss {loss:.4f}"
                + (f"  eval_loss {record['eval_loss']:.4f}" if "eval_loss" in record else "")
                + f"  lr {record['lr']:.2e}  {record['tokens_per_s']:.0f} tok/s  eta {eta:.0f}s")
        recorder.update(step=step, epoch=plan.epoch(step), eta_s=round(eta, 1), loss=loss,
                        eval_loss=last_eval_loss,
                        message=N_(f"Training: step {step}/{plan.total_steps}, loss {loss:.4f}"))
        if step % log_every == 0 or step == plan.total_steps or "eval_loss" in record:
            recorder.log(line)
        patience = settings.early_stopping_patience
        if patience and state.evals_without_improvement >= patience:
            stop_reason = "early stopping"
            recorder.log(f"Early stopping: no better validation loss for {patience} evaluation(s) "
                         f"(best {state.best_eval_loss:.4f} at step {state.best_step})")
            break
        if settings.save_steps and step % settings.save_steps == 0 and step < plan.total_steps:
            save_checkpoint(accelerator, folder, state, settings.save_total_limit)
            recorder.update(last_checkpoint_step=step)

    if accelerator.num_processes > 1:
        recorder.log(check_processes_agree(accelerator, model, N_(f"at the end of the run (step {state.step})")))
    # Save: a checkpoint when stopped (to resume exactly), the adapter (the best one with keep-best).
    if stop_reason == "stopped" and state.step > 0:
        save_checkpoint(accelerator, folder, state, settings.save_total_limit)
        recorder.update(last_checkpoint_step=state.step)
    adapter_step = finish_adapter(accelerator, model, tokenizer, folder, settings.keep_best, state.step)
    summary = {
        "state": "stopped" if stop_reason == "stopped" else "finished", "stop_reason": stop_reason,
        "final_loss": state.last_loss, "best_eval_loss": state.best_eval_loss, "best_step": state.best_step,
        "best_perplexity": math.exp(state.best_eval_loss) if state.best_eval_loss is not None else None,
        "adapter_step": adapter_step, "steps": state.step, "total_steps": plan.total_steps,
        "epochs": round(plan.epoch(state.step), 4), "tokens_trained": state.tokens_trained,
        "train_s": round(state.train_seconds, 3), "wall_s": round(time.perf_counter() - wall_started, 3),
        "tokens_per_s": state.tokens_trained / state.train_seconds if state.train_seconds else 0.0,
        "peak_memory_mb": peak_memory_mb(), "trainable_parameters": trainable, "total_parameters": total,
        "precision": accelerator.mixed_precision, "threads": threads, "processes": accelerator.num_processes,
        "data": report.to_json(),
    }
    if accelerator.is_main_process:
        atomic_write_json(folder.summary, summary)
    figures = (state.step, _figure(state.last_loss), _figure(state.best_eval_loss), f"{summary['tokens_per_s']:.0f}")
    finished_line = _finished_line(summary["state"] == "stopped", *figures)
    recorder.update(state=summary["state"], finished=now_iso(), eta_s=0, message=finished_line)
    recorder.log(finished_line)
    accelerator.end_training()
    return summary


# --- pieces of the run, in the order the run uses them ----------------------------------------------

def _batching(packed: bool, row_tokens: int) -> str:
    if not packed:
        return "padded batches"
    if row_tokens == packing.ONE_ROW:
        return "each batch packed in one row, attention within each conversation"
    return f"batches packed in rows of up to {row_tokens} tokens (block-diagonal attention mask)"


def _sharing(accelerator: Any) -> str:
    """How several processes share the work, as the log names it."""
    from accelerate.utils import DistributedType

    if accelerator.num_processes == 1:
        return ""
    if accelerator.distributed_type == DistributedType.FSDP:
        return " (FSDP2: weights sharded)"
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        return f" (DeepSpeed ZeRO-{accelerator.state.deepspeed_plugin.zero_stage})"
    return " (DDP: a full copy each)"


def _figure(value: float | None) -> str:
    return N_("n/a") if value is None else f"{value:.4f}"


def _finished_line(stopped: bool, steps: int, final: str, best: str, speed: str) -> str:
    """How the run ended, in the status and the log (one template each, so the studio can translate it)."""
    if stopped:
        return N_(f"Stopped after {steps} steps: final loss {final}, best validation loss {best}, {speed} tokens/s")
    return N_(f"Finished after {steps} steps: final loss {final}, best validation loss {best}, {speed} tokens/s")


def fresh_accelerator(precision: str) -> Any:
    """An Accelerator for this run. The studio trains many runs in one process, each with its own
    precision, but accelerate keeps process-wide state that refuses a second precision: a single
    process starts from a clean state (several processes run one training each)."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState
    from accelerate.utils import parse_flag_from_env

    processes = int(os.environ.get("WORLD_SIZE", "1"))
    if processes == 1:
        AcceleratorState._reset_state()
        GradientState._reset_state()
    fsdp = parse_flag_from_env("ACCELERATE_USE_FSDP")  # set by `accelerate launch` from the config file
    if fsdp and os.environ.get("FSDP_VERSION", "1") != "2":
        raise ConfigError("The accelerate config asks for FSDP version 1, which the studio does not support: its "
                          "flattened parameters cannot be compared or gathered weight by weight, and on CPUs it "
                          "crashed saving the adapter.",
                          "Set fsdp_version: 2 in the accelerate config (as in assets/accelerate/fsdp.yaml).")
    # Without CUDA, `cpu=True` is what makes accelerate join several processes with gloo.
    cpu = not torch.cuda.is_available()
    if cpu and processes > 1 and fsdp:
        _allow_fsdp_on_cpu()
    return Accelerator(mixed_precision=precision, cpu=cpu)


def _allow_fsdp_on_cpu() -> None:
    """Let accelerate (1.15) shard with FSDP over gloo on CPU processes.

    accelerate only switches to FSDP for GPU-like process groups; started without CUDA it joins the
    processes as MULTI_CPU and silently trains with DDP instead. torch's FSDP2 (fully_shard, DTensor)
    runs on CPU tensors over gloo, so the process group is presented to accelerate as a multi-device
    one, which it then turns into FSDP, with the plain CPU device (FSDP refuses "cpu:0" against
    parameters on "cpu"). FSDP version 1 is refused in fresh_accelerator: on CPU, gathering its full
    state dict crashed (SIGSEGV) with torch 2.13 and accelerate 1.15, while FSDP2 trains, saves,
    checkpoints and resumes exactly (tests/test_multiprocess.py).
    """
    from accelerate.state import PartialState
    from accelerate.utils import DistributedType

    state = PartialState(cpu=True)  # joins the processes with gloo; the state is shared process-wide
    state.distributed_type = DistributedType.MULTI_GPU
    state.device = torch.device("cpu")


def load_model_with_adapter(config: RunConfig, workspace: Workspace, accelerator: Any):
    """The frozen base model with a trainable LoRA adapter, ready for training."""
    from peft import PeftModel, prepare_model_for_kbit_training

    gpu_index = accelerator.local_process_index if accelerator.num_processes > 1 and torch.cuda.is_available() else None
    dtype = config.model.dtype
    if dtype == "auto" and accelerator.mixed_precision == "bf16":
        # The frozen base is only ever read by bf16 matmuls: store it so (half the memory, no casts).
        dtype = "bfloat16"
    model = modeling.load_model(config.model.name, workspace, dtype, config.model.load_in_4bit, gpu_index=gpu_index)
    model.config.use_cache = False
    checkpointing = config.train.gradient_checkpointing
    if config.model.load_in_4bit:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=checkpointing,
                                                gradient_checkpointing_kwargs={"use_reentrant": False})
    elif checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if config.lora.init_from:
        return PeftModel.from_pretrained(model, resolve_adapter(config.lora.init_from, workspace), is_trainable=True)
    return modeling.add_lora(model, config.lora)


def token_losses(model: Any, batch: packing.ForwardBatch, supervised_head: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(cross-entropy, weight) of every supervised target in `batch`.

    With `supervised_head`, the output layer runs only where a target is trained (a packed row's
    supervised positions, via transformers' `logits_to_keep`): prompt tokens cost no logits at all.
    """
    supervised = batch.supervised
    inputs = {"input_ids": batch.input_ids, "position_ids": batch.position_ids, "use_cache": False}
    if batch.attention_mask is not None:
        inputs["attention_mask"] = batch.attention_mask
    if supervised_head and batch.input_ids.shape[0] == 1:
        logits = model(**inputs, logits_to_keep=supervised[0].nonzero().squeeze(1)).logits[0]
    else:
        logits = model(**inputs).logits[supervised]
    losses = F.cross_entropy(logits.float(), batch.targets[supervised], reduction="none")
    return losses, batch.weights[supervised]


def train_step(model: Any, accelerator: Any, window: list[list[Example]], packed: bool, row_tokens: int,
               pad_id: int, supervised_head: bool = True) -> tuple[float, int]:
    """Forward and backward over this process's batches of one optimizer step; returns
    (weighted mean loss, real tokens). Gradients equal those of one big batch: every forward pass
    divides by the whole step's loss weight."""
    from accelerate.utils import DistributedType

    forward = [fb.to(accelerator.device) for batch in window
               for fb in packing.forward_batches(batch, packed, row_tokens, pad_id)]
    total_weight = float(sum(fb.weights[fb.supervised].sum() for fb in forward))
    # Rows are packed from this process's own conversations, so their number can differ between processes;
    # where that would leave the others waiting, repeat the last pass with no weight.
    passes = forward + forward[-1:] * (_most_passes(accelerator, len(forward)) - len(forward))
    # DeepSpeed steps its optimizer on every backward pass, so there the step gets one.
    one_backward = accelerator.distributed_type == DistributedType.DEEPSPEED
    pending, weighted_sum = None, 0.0
    for index, batch in enumerate(passes):
        # Gradients are all-reduced once, on the step's last backward pass.
        with accelerator.no_sync(model) if index < len(passes) - 1 else nullcontext():
            losses, weights = token_losses(model, batch, supervised_head)
            weighted = (losses * weights).sum() / total_weight * (index < len(forward))
            if one_backward:
                pending = weighted if pending is None else pending + weighted
            else:
                accelerator.backward(weighted)
        weighted_sum += weighted.item()
    if pending is not None:
        accelerator.backward(pending)
    return weighted_sum, sum(fb.real_tokens for fb in forward)


def _most_passes(accelerator: Any, passes: int) -> int:
    """How many forward passes this process must make when it has `passes` of its own. With sharded
    weights every pass gathers them together with all processes, so each process makes as many as the
    busiest one; otherwise its own number."""
    return int(_all_processes(accelerator, [passes], "max")[0]) if _weights_sharded(accelerator) else passes


def _weights_sharded(accelerator: Any) -> bool:
    """Each process holds only a slice of every weight: FSDP (version 2 here) or DeepSpeed ZeRO-3."""
    from accelerate.utils import DistributedType

    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        return accelerator.state.deepspeed_plugin.zero_stage == 3
    return accelerator.distributed_type == DistributedType.FSDP


def _all_processes(accelerator: Any, values: list[float], reduction: str) -> list[float]:
    if accelerator.num_processes == 1:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=accelerator.device)
    return accelerator.reduce(tensor, reduction).tolist()


def _requests(accelerator: Any, stop_event: threading.Event, folder: RunFolder) -> tuple[bool, bool]:
    """(stop, checkpoint now): the stop event or the run folder's STOP file, and its CHECKPOINT file.

    Only the main process reads the folder (on several machines only its machine has it) and consumes a
    checkpoint request; the answer reaches every process through one all-reduce per step.
    """
    stop, checkpoint = stop_event.is_set(), False
    if accelerator.is_main_process:
        stop = stop or folder.stop_request.exists()
        checkpoint = folder.checkpoint_request.exists()
        folder.checkpoint_request.unlink(missing_ok=True)
    wanted = _all_processes(accelerator, [float(stop), float(checkpoint)], "sum")
    return wanted[0] > 0, wanted[1] > 0


def set_learning_rate(optimizer: Any, scheduler: Any, learning_rate: float) -> None:
    """Make `learning_rate` the schedule's peak from the current step on (a resumed run may change it):
    the schedule keeps its shape and position, scaled to the new peak."""
    scale = [learning_rate / base for base in scheduler.base_lrs]
    scheduler.base_lrs = [learning_rate] * len(scheduler.base_lrs)
    for group, factor in zip(optimizer.param_groups, scale):
        group["initial_lr"] = learning_rate
        group["lr"] *= factor


def check_loss(loss: float, grad_norm: float | None, recent: list[float], spike_factor: float, step: int) -> None:
    """Refuse to apply a step whose loss or gradient is NaN/inf, or whose loss jumped far above the recent mean."""
    if not math.isfinite(loss) or (grad_norm is not None and not math.isfinite(grad_norm)):
        what = "loss" if not math.isfinite(loss) else "gradient norm"
        raise DivergedError(f"The training {what} became {loss if what == 'loss' else grad_norm} at step {step}; "
                            "the run was stopped before applying it, the last checkpoint is kept.",
                            "Resume with a lower train.learning_rate, or check the data for broken rows.")
    if spike_factor and len(recent) >= _SPIKE_MIN_STEPS:
        average = sum(recent) / len(recent)
        if loss > spike_factor * average:
            raise DivergedError(f"The loss jumped to {loss:.3f} at step {step}, over {spike_factor:g}x its recent "
                                f"average {average:.3f}; the run was stopped, the last checkpoint is kept.",
                                "Resume with a lower train.learning_rate, or raise train.loss_spike_factor.")


@dataclass(frozen=True)
class AdapterDigest:
    """A fingerprint of a model's full trainable weights: equal digests, byte-identical adapters."""

    sha256: str
    tensors: int
    values: int
    gathered: bool  # the weights were sharded across processes and gathered to compute it


def adapter_digest(model: Any) -> AdapterDigest:
    """sha256 over the float32 bytes of every trainable weight, in parameter order.

    Under FSDP2 or DeepSpeed ZeRO-3 a process holds only a shard of each weight: the shards are
    gathered (one weight at a time, so memory stays small), so the digest covers the full adapter
    that gets saved. Every process must call it then, as for any collective.
    """
    hasher, tensors, values, gathered = hashlib.sha256(), 0, 0, False
    for parameter in model.parameters():
        if parameter.requires_grad:
            full, was_sharded = _full_weight(parameter)
            hasher.update(full.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
            tensors, values, gathered = tensors + 1, values + full.numel(), gathered or was_sharded
    return AdapterDigest(hasher.hexdigest(), tensors, values, gathered)


def _full_weight(parameter: torch.nn.Parameter) -> tuple[torch.Tensor, bool]:
    """The whole weight on this process, and whether it had to be gathered from the other processes."""
    from torch.distributed.tensor import DTensor

    if isinstance(parameter, DTensor):  # FSDP2: a slice per process
        return parameter.full_tensor(), True
    if hasattr(parameter, "ds_id"):  # DeepSpeed ZeRO-3: a partition per process
        import deepspeed

        with deepspeed.zero.GatheredParameters([parameter]):
            return parameter.detach().clone(), True
    return parameter, False


def check_processes_agree(accelerator: Any, model: Any, when: str) -> str:
    """Every process must hold the same full adapter (the gradients were averaged across them); the log line."""
    from accelerate.utils import gather_object

    digest = adapter_digest(accelerator.unwrap_model(model))
    digests = gather_object([digest.sha256])
    compared = (f"sha256 {digest.sha256[:16]} of the full adapter, {digest.tensors} tensors, {digest.values:,} values, "
                + ("gathered from the shards of every process" if digest.gathered else "each process's own copy"))
    if len(set(digests)) > 1:
        raise StudioError(f"The {accelerator.num_processes} training processes hold different adapter weights {when} "
                          f"(sha256 {', '.join(d[:16] for d in digests)}).",
                          "Check the accelerate configuration: every process must take part in the gradient all-reduce.")
    return f"Processes agree {when}: {accelerator.num_processes} processes hold identical adapter weights ({compared})"


@torch.no_grad()
def evaluate(model: Any, accelerator: Any, examples: list[Example], batch_size: int, packed: bool,
             row_tokens: int, pad_id: int, supervised_head: bool = True) -> float:
    """Mean token cross-entropy on the validation examples (unweighted), over all processes."""
    model.eval()
    mine = examples[accelerator.process_index::accelerator.num_processes]
    forward = [batch for start in range(0, len(mine), batch_size)
               for batch in packing.forward_batches(mine[start:start + batch_size], packed, row_tokens, pad_id)]
    # Processes can hold different numbers of validation batches: where the others would wait, one with
    # fewer repeats a pass (any will do) and ignores its losses.
    padding = packing.forward_batches(examples[:1], packed, row_tokens, pad_id)
    passes = forward + padding * (_most_passes(accelerator, len(forward)) - len(forward))
    total, count = 0.0, 0
    for index, batch in enumerate(passes):
        losses, _ = token_losses(model, batch.to(accelerator.device), supervised_head)
        if index < len(forward):
            total, count = total + float(losses.sum()), count + losses.numel()
    model.train()
    summed_total, summed_count = _all_processes(accelerator, [total, count], "sum")
    return summed_total / max(summed_count, 1)


def save_adapter(accelerator: Any, model: Any, tokenizer: Any, target: Path, note: dict[str, Any] | None = None) -> None:
    """The adapter in peft format plus the tokenizer, replaced atomically (a reader never sees half)."""
    state = accelerator.get_state_dict(model)  # gathers shards under FSDP/DeepSpeed: every process calls it
    if accelerator.is_main_process:
        staging = target.with_name(f".{target.name}.saving")
        shutil.rmtree(staging, ignore_errors=True)
        accelerator.unwrap_model(model).save_pretrained(staging, state_dict=state)
        tokenizer.save_pretrained(staging)
        if note:
            atomic_write_json(staging / "training_note.json", note)
        replace_folder(staging, target)
    accelerator.wait_for_everyone()


def finish_adapter(accelerator: Any, model: Any, tokenizer: Any, folder: RunFolder, keep_best: bool, step: int) -> int:
    """Write adapter/: the best evaluation's adapter with keep-best, else the current one; returns its step."""
    best_note = read_json(folder.best_adapter / "training_note.json")
    accelerator.wait_for_everyone()  # every process reads the note before process 0 moves it away
    if keep_best and best_note:
        if accelerator.is_main_process:
            replace_folder(folder.best_adapter, folder.adapter)
        accelerator.wait_for_everyone()
        return int(best_note["step"])
    save_adapter(accelerator, model, tokenizer, folder.adapter, {"step": step})
    return step


def _keep_trainable_weights_only(models: list[Any], weights: list[dict[str, Any]], output_dir: str) -> None:
    """Accelerate pre-save hook: a checkpoint holds the adapter, not another copy of the frozen base."""
    for index, model in enumerate(models[:len(weights)]):
        trainable = {name for name, parameter in model.named_parameters() if parameter.requires_grad}
        weights[index] = {name: value for name, value in weights[index].items() if name in trainable}


def save_checkpoint(accelerator: Any, folder: RunFolder, state: LoopState, keep: int) -> None:
    """Adapter, optimizer, scheduler and RNG states (accelerate) plus the loop state, written to a
    hidden folder and renamed when complete; only the newest `keep` checkpoints stay."""
    target = folder.checkpoint(state.step)
    staging = target.with_name(f".partial-{target.name}")
    accelerator.save_state(str(staging))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        atomic_write_json(staging / "trainer_state.json", asdict(state))
        replace_folder(staging, target)
        for old in sorted(folder.checkpoints.glob("step-*"))[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def restore_checkpoint(accelerator: Any, folder: RunFolder) -> LoopState:
    """Load the newest checkpoint into the prepared objects; drop what the run logged after it."""
    checkpoint = latest_checkpoint(folder)
    if checkpoint is None:
        raise StudioError(f"Run '{folder.run_id}' has no checkpoint to resume from.",
                          "Start a new run with the same config instead.")
    accelerator.load_state(str(checkpoint), strict=False)
    state = LoopState(**read_json(checkpoint / "trainer_state.json"))
    if accelerator.is_main_process:
        metrics.rewrite(folder.metrics, lambda record: record.get("step", 0) <= state.step)
        best_note = read_json(folder.best_adapter / "training_note.json")
        if best_note and best_note.get("step", 0) > state.step:
            shutil.rmtree(folder.best_adapter, ignore_errors=True)
    accelerator.wait_for_everyone()
    return state
