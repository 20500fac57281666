"""Named presets: the built-in starting points (core.config.PRESETS) and run configs saved by users.

A built-in preset says *how* to train and keeps *what* is trained (the model, the data, the run's
name) from the config it is applied to. A saved preset is a whole run config as YAML in the
workspace's presets folder, so loading it brings back exactly what was saved.
"""

from __future__ import annotations

from core import config as run_config
from core.config import RunConfig
from core.errors import ConfigError
from core.text import N_
from core.workspace import Workspace, atomic_write_text, safe_id

BUILT_IN_LABELS: dict[str, str] = {
    "quick-demo-cpu": N_("Quick demo (CPU)"),
    "seed-recommendation": N_("Seed recommendation (r=32, alpha=16, q_proj+v_proj, dropout 0.1, lr 3e-4, 3 epochs)"),
    "balanced": N_("Balanced (all linear layers, r=16)"),
    "low-memory-qlora": N_("Low memory (QLoRA 4-bit)"),
}
SAVED_PREFIX = "saved:"


def choices(workspace: Workspace) -> list[tuple[str, str]]:
    """(label, key) for every preset: the built-in ones, then the saved ones by name."""
    saved = sorted(workspace.presets_dir.glob("*.yaml")) if workspace.presets_dir.is_dir() else []
    return [(BUILT_IN_LABELS.get(key, key), key) for key in run_config.PRESETS] + [
        (N_(f"Saved: {path.stem}"), f"{SAVED_PREFIX}{path.stem}") for path in saved]


def apply(current: RunConfig, key: str, workspace: Workspace) -> RunConfig:
    """The config that preset `key` gives when chosen while `current` is on screen."""
    if key.startswith(SAVED_PREFIX):
        path = workspace.preset_path(key.removeprefix(SAVED_PREFIX))
        if not path.is_file():
            raise ConfigError(f"The saved preset '{key.removeprefix(SAVED_PREFIX)}' no longer exists.",
                              "Pick another preset from the list.")
        return run_config.build(path)
    preset = run_config.build(preset=key)
    return preset.model_copy(update={
        "name": current.name, "data": current.data,
        "model": preset.model.model_copy(update={"name": current.model.name})})


def save(workspace: Workspace, name: str, config: RunConfig) -> str:
    """Save `config` as a named preset (replacing one of the same name); returns its key."""
    if not name.strip():
        raise ConfigError("A preset needs a name.", "Type a name, e.g. 'faq-r16', then save.")
    preset_id = safe_id(name)
    atomic_write_text(workspace.preset_path(preset_id), run_config.to_yaml(config))
    return f"{SAVED_PREFIX}{preset_id}"
