"""How a run's examples become optimizer steps: batches per step, per process, per epoch.

Identical on every process of a multi-process run, and cheap: the pre-flight estimate (core.planning)
counts steps with it without loading the training loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from core.config import TrainSection
from core.training import packing


@dataclass(frozen=True)
class StepPlan:
    """How the examples become optimizer steps, identical on every process."""

    lengths: list[int]
    batch_size: int
    accumulation: int
    group_by_length: bool
    seed: int
    processes: int
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int

    @classmethod
    def create(cls, lengths: list[int], settings: TrainSection, processes: int) -> StepPlan:
        batches_per_process = math.ceil(math.ceil(len(lengths) / settings.batch_size) / processes)
        steps_per_epoch = math.ceil(batches_per_process / settings.gradient_accumulation_steps)
        total = settings.max_steps if settings.max_steps > 0 else max(1, math.ceil(settings.epochs * steps_per_epoch))
        return cls(lengths, settings.batch_size, settings.gradient_accumulation_steps, settings.group_by_length,
                   settings.seed, processes, steps_per_epoch, total, math.ceil(total * settings.warmup_ratio))

    def epoch(self, step: int) -> float:
        return step / self.steps_per_epoch

    def batches(self, step: int, process: int) -> list[list[int]]:
        """Example indices of this process's batches for optimizer step `step` (1-based)."""
        epoch, index = divmod(step - 1, self.steps_per_epoch)
        order = packing.batch_order(self.lengths, self.batch_size, self.seed + epoch, self.group_by_length)
        order += order[:(-len(order)) % self.processes]  # every process gets the same number of batches
        mine = order[process::self.processes]
        return mine[index * self.accumulation:(index + 1) * self.accumulation]
