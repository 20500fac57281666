"""What an evaluation scores: a run's validation rows, or a file of conversations.

    run_validation(workspace, run_id) -> HeldOutSet   the rows the run's training held out, exactly
    from_file(path)                   -> HeldOutSet   a .jsonl/.json/.csv file in any format the Data tab reads

Each conversation becomes one item: everything before its last assistant message is the prompt (a system
message and earlier turns included), the last assistant message is the reference answer. The run's own
validation rows come from core.training.trainset.hold_out, the function training itself uses: the same
files, the same leak-aware split, the same seed, or the run's data.validation_path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.data import store
from core.data.formats import Message
from core.errors import DataError
from core.runs import records
from core.text import N_
from core.training import trainset
from core.workspace import Workspace


@dataclass(frozen=True)
class Item:
    index: int                  # 0-based position in the set
    source: str                 # "data.jsonl row 12", "faq.csv line 7"
    context: list[Message]      # what the model is given: the conversation before the reference answer
    reference: str              # the answer it should give

    @property
    def prompt(self) -> str:
        """The question being answered: the last user message (earlier turns and a system message stay in
        `context`)."""
        return next((m["content"] for m in reversed(self.context) if m.get("role") == "user"), "")


@dataclass(frozen=True)
class HeldOutSet:
    name: str                   # in words: "validation split of run 'faq' (35 rows)"
    items: list[Item]
    origin: dict[str, Any]      # for metrics.json and the report: {"kind": "validation", "run": …} / {"kind": "file", …}


def items_of(conversations: Sequence[tuple[str, list[Message]]]) -> list[Item]:
    """One item per conversation that ends with an assistant answer."""
    items: list[Item] = []
    for source, messages in conversations:
        if messages and messages[-1].get("role") == "assistant" and messages[-1].get("content", "").strip():
            items.append(Item(len(items), source, [dict(m) for m in messages[:-1]], messages[-1]["content"]))
    return items


def run_validation(workspace: Workspace, run_id: str) -> HeldOutSet:
    """The validation rows run `run_id` held out while training (DataError when it held out none)."""
    config = records.load_config(workspace.run_folder(run_id))
    rows = trainset.hold_out(config, workspace).validation
    items = items_of(rows)
    if not items:
        raise DataError(f"Run '{run_id}' held out no validation rows (data.validation_ratio is 0 and there is no "
                        "data.validation_path).", "Upload a held-out file to evaluate on instead.")
    where = config.data.validation_path or " + ".join(config.data.mix or [config.data.train_path])
    return HeldOutSet(N_(f"validation split of run '{run_id}' ({len(items)} rows)"), items,
                      {"kind": "validation", "run": run_id, "files": where,
                       "validation_ratio": 0.0 if config.data.validation_path else config.data.validation_ratio,
                       "seed": config.train.seed})


def from_file(path: Path, display_name: str | None = None) -> HeldOutSet:
    """Every readable conversation of a file (unreadable records are counted, not fatal)."""
    name = display_name or Path(path).name
    parsed = store.read_file(Path(path))
    rows = [(f"{name} line {row.source_line}", row.messages) for row in parsed.rows]
    items = items_of(rows)
    if not items:
        raise DataError(f"{name} holds no conversation with an answer to compare with.",
                        "Give rows with a prompt and a reference answer.")
    return HeldOutSet(N_(f"{name} ({len(items)} rows)"), items,
                      {"kind": "file", "file": name, "rows_read": parsed.rows_read, "unreadable": len(parsed.invalid)})
