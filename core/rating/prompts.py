"""The prompt sets a rating session rates, and the session folder's prompt and response files.

A prompt set is named by one source string, the same in the UI and the CLI:

    redteam             the built-in bilingual red-team set (assets/redteam/)
    dataset:ID[/vN]     a dataset version (the latest without /vN): its validation rows when it was
                        split, otherwise all of its rows
    file:PATH           a .jsonl, .json or .csv file of prompts, with or without answers
    session:ID          the prompts of another session together with its responses, so a new session
                        (e.g. pairwise over a scale session's models) needs no generation at all

A prompt is the conversation up to the user's last turn; where the data had an answer, it is kept as
the reference (never shown to raters).
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from core.data import formats, store
from core.errors import DataError
from core.text import N_
from core.workspace import ASSETS_DIR, RatingFolder, Workspace

REDTEAM = "redteam"
REDTEAM_FILE = ASSETS_DIR / "redteam" / "prompts.jsonl"
SOURCE_HELP = N_("Use redteam, dataset:ID[/vN], file:PATH or session:ID.")


@dataclass(frozen=True)
class Prompt:
    messages: list[formats.Message]   # up to and including the user's last turn
    reference: str = ""               # the answer the data had, if any
    category: str = ""                # the red-team category, if any

    @property
    def text(self) -> str:
        """The user's last turn: what a list shows."""
        return next((m["content"] for m in reversed(self.messages) if m["role"] == "user"), "")


@dataclass(frozen=True)
class PromptSet:
    description: str                  # in words, for the session's record
    prompts: list[Prompt]
    responses: dict[tuple[int, str], str] = field(default_factory=dict)   # (prompt number, model) -> text

    def sample(self, count: int | None, seed: int) -> PromptSet:
        """At most `count` prompts drawn at random (seeded), in their original order; responses follow."""
        if count is None or count >= len(self.prompts):
            return self
        if count < 1:
            raise DataError(f"A session needs at least one prompt, not {count}.", "Choose 1 or more prompts.")
        kept = sorted(random.Random(seed).sample(range(len(self.prompts)), count))
        renumbered = {old + 1: new for new, old in enumerate(kept, start=1)}
        return replace(self, description=N_(f"{self.description}, {count} of {len(self.prompts)} drawn at random"),
                       prompts=[self.prompts[index] for index in kept],
                       responses={(renumbered[number], model): text for (number, model), text in self.responses.items()
                                  if number in renumbered})


def read(workspace: Workspace, source: str) -> PromptSet:
    """The prompt set `source` names (see the module doc); DataError when it holds no usable prompt."""
    kind, _, target = source.strip().partition(":")
    if kind == REDTEAM and not target:
        found = _redteam()
    elif kind == "dataset" and target:
        found = _dataset(workspace, target)
    elif kind == "file" and target:
        found = _file(Path(target).expanduser())
    elif kind == "session" and target:
        folder = workspace.rating_folder(target)
        if not folder.prompts.is_file():
            raise DataError(f"There is no rating session '{target}'.", "Pick a session from the list.")
        found = PromptSet(N_(f"the prompts and responses of session '{target}'"), read_prompts(folder), read_responses(folder))
    else:
        raise DataError(f"'{source}' is not a prompt set.", SOURCE_HELP)
    if not found.prompts:
        raise DataError(f"There are no prompts in {found.description}.", "Pick another prompt set.")
    return found


def _redteam() -> PromptSet:
    rows = [json.loads(line) for line in REDTEAM_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    return PromptSet(N_("the built-in red-team set"),
                     [Prompt([{"role": "user", "content": row["prompt"]}], category=row["category"]) for row in rows])


def _dataset(workspace: Workspace, target: str) -> PromptSet:
    dataset_id, _, version_text = target.partition("/v")
    versions = store.versions(workspace, dataset_id)
    if not versions:
        raise DataError(f"There is no dataset '{dataset_id}'.", "Pick a dataset from the Data tab's list.")
    version = int(version_text) if version_text.isdigit() else versions[-1].version
    folder = store.version_dir(workspace, dataset_id, version)
    validation = folder / store.VALIDATION_FILE
    path, part = (validation, N_("validation rows")) if validation.is_file() else (folder / store.DATA_FILE, N_("rows"))
    return PromptSet(N_(f"the {part} of dataset '{dataset_id}' v{version}"),
                     [_prompt(messages) for messages in store.load_conversations(path)])


def _file(path: Path) -> PromptSet:
    parsed = formats.parse(formats.read_upload(path), path.name, answer_required=False)
    if parsed.invalid:
        first = parsed.invalid[0]
        raise DataError(f"{path.name}: {len(parsed.invalid)} record(s) cannot be read as prompts; line "
                        f"{first.source_line}: {first.detail}.",
                        "Give each record a prompt, e.g. {\"prompt\": \"…\"} per line, or a CSV with a prompt column.")
    return PromptSet(N_(f"the file {path.name}"), [_prompt(row.messages) for row in parsed.rows])


def _prompt(messages: list[formats.Message]) -> Prompt:
    """A conversation as a prompt: an answer at its end becomes the reference."""
    if messages and messages[-1]["role"] == "assistant":
        return Prompt(messages[:-1], reference=messages[-1]["content"])
    return Prompt(messages)


# ---------------------------------------------------------------- the session folder's files

def write_prompts(folder: RatingFolder, prompts: Sequence[Prompt]) -> None:
    """prompts.jsonl: line N is prompt number N."""
    folder.prompts.write_text("".join(json.dumps({"messages": p.messages, "reference": p.reference, "category":
                                                  p.category}, ensure_ascii=False) + "\n" for p in prompts),
                              encoding="utf-8")


def read_prompts(folder: RatingFolder) -> list[Prompt]:
    with folder.prompts.open(encoding="utf-8") as handle:
        return [Prompt(row["messages"], row.get("reference", ""), row.get("category", ""))
                for row in map(json.loads, handle) if row]


def append_responses(folder: RatingFolder, model: str, texts: Sequence[str], details: Sequence[dict[str, Any]] = ()) -> None:
    """Add one model's responses (texts[i] answers prompt i + 1) to responses.jsonl and sync it to disk.
    After a crash mid-write the model's answers are incomplete, and generating again answers anew."""
    with folder.responses.open("a", encoding="utf-8") as handle:
        for number, text in enumerate(texts, start=1):
            extra = details[number - 1] if details else {}
            handle.write(json.dumps({"prompt": number, "model": model, "text": text, **extra}, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_responses(folder: RatingFolder) -> dict[tuple[int, str], str]:
    """(prompt number, model) -> response text; a later line wins, an unreadable line is skipped."""
    found: dict[tuple[int, str], str] = {}
    if not folder.responses.is_file():
        return found
    with folder.responses.open(encoding="utf-8") as handle:
        for line in handle:
            try:
                row = json.loads(line)
                found[(int(row["prompt"]), str(row["model"]))] = str(row["text"])
            except (ValueError, KeyError, TypeError):
                continue
    return found
