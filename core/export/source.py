"""The training run an export is made from: its settings, adapter and results, read once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.config import RunConfig
from core.errors import ConfigError
from core.runs import records
from core.workspace import Workspace, read_json


@dataclass(frozen=True)
class RunSource:
    run_id: str
    name: str
    config: RunConfig
    adapter: Path
    summary: dict[str, Any]   # summary.json: losses, tokens, time (empty for a run stopped before its first save)

    @property
    def base(self) -> str:
        return self.config.model.name


def load(workspace: Workspace, run_id: str) -> RunSource:
    """The run, refused when it has no adapter (still training from scratch, or failed before saving one)."""
    folder = workspace.run_folder(run_id)
    if not (folder.adapter / "adapter_config.json").is_file():
        raise ConfigError(f"Run '{run_id}' has no adapter to export yet.", "Pick a run that finished or was stopped.")
    return RunSource(run_id, records.read_status(folder).name, records.load_config(folder), folder.adapter,
                     read_json(folder.summary, {}) or {})
