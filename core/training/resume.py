"""What may change when a run resumes from its checkpoint, and why the rest may not.

A failure message such as "resume with a lower train.learning_rate" must be something a user can do, so
resuming accepts changed settings that the checkpoint does not depend on — the learning rate, how long to
train, how often to evaluate and save, the guards — and refuses the others with the reason:

    revised, changes = revise(config, {"train.learning_rate": 1e-4}, steps_done=40)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core import config as run_config
from core.config import RunConfig
from core.errors import ConfigError

# Settings a resumed run may change: they act only on the steps still to come. (generation.* too: they
# are reply settings for the finished model, not training.)
CHANGEABLE = (
    "name", "train.learning_rate", "train.max_steps", "train.epochs", "train.eval_steps", "train.save_steps",
    "train.save_total_limit", "train.early_stopping_patience", "train.keep_best", "train.loss_spike_factor",
    "train.max_grad_norm", "train.num_threads", "train.gradient_checkpointing",
)

# Why the others are fixed, by the first matching prefix.
_FIXED_BECAUSE = (
    ("model.", "the adapter was trained on this base model"),
    ("lora.", "the adapter's shape and its optimizer state are fixed by the checkpoint"),
    ("data.", "the steps already done trained on this data; to train on other data, start a new run that "
              "continues from this one's adapter (lora.init_from)"),
    ("train.precision", "the checkpoint's optimizer state was saved under this precision"),
    ("train.", "the batches of the steps still to come are already laid out by it"),
)


def revise(config: RunConfig, overrides: Mapping[str, Any],
           steps_done: int) -> tuple[RunConfig, dict[str, tuple[Any, Any]]]:
    """`config` with `overrides` (dotted name → value) applied, and {name: (old, new)} of what changed.

    Raises ConfigError naming the field and the reason when a setting the checkpoint depends on would
    change, or when a new train.max_steps would not go past the steps already done.
    """
    data = config.model_dump(mode="json")
    for name, value in overrides.items():
        run_config.check_field(name)
        data = run_config.with_value(data, name, value)
    revised = run_config.validate(data)
    before, after = run_config.flat_values(config), run_config.flat_values(revised)
    changes = {name: (before[name], after[name]) for name in after if before[name] != after[name]}
    for name in changes:
        if name not in CHANGEABLE and not name.startswith("generation."):
            reason = next(reason for prefix, reason in _FIXED_BECAUSE if name.startswith(prefix))
            raise ConfigError(f"'{name}' cannot change when a run resumes: {reason}.",
                              f"Resume without changing it, or start a new run. A resume may change "
                              f"{', '.join(CHANGEABLE[1:])}.")
    new_steps = revised.train.max_steps
    if "train.max_steps" in changes and 0 < new_steps <= steps_done:
        raise ConfigError(f"train.max_steps={new_steps} would end the run before it resumes: it has done "
                          f"{steps_done} steps already.", f"Give more than {steps_done} steps.")
    return revised, changes
