"""What the data steps report, as typed records: the UI and the CLI read attributes, never string keys.

`to_json()` gives the form written to report.json and printed by `lora-studio data … --json`; its keys
are a public format (users and scripts read them), so a field here is named exactly as its JSON key.
`from_json()` reads a report.json back, ignoring keys it does not know.

    StepReport       what one step (upload, clean, restore, split, mix, a CLI check) did to its rows
    VersionReport    a StepReport plus where the version sits in its dataset's lineage (report.json)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Self


@dataclass(frozen=True)
class GroupRow:
    """One row of a contradiction group, its texts cut short for display."""

    source_line: int
    prompt: str
    response: str


@dataclass(frozen=True)
class ContradictionGroup:
    """Rows answering the same question differently, and how the group was resolved."""

    id: str
    source_lines: list[int]     # every row of the group
    resolution: str             # keep-all, keep-first, drop-all or keep:<line>
    kept: list[int]             # the lines the resolution keeps
    rows: list[GroupRow]        # the texts of the first rows (core.data.cleaning.GROUP_ROWS_SHOWN)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        return cls(**{**data, "rows": [GroupRow(**row) for row in data["rows"]]})


@dataclass(frozen=True)
class LengthSample:
    """Prompt and response token lengths of `measured` of the `rows` kept rows (a random sample when large)."""

    prompt_tokens: list[int]
    response_tokens: list[int]
    measured: int
    rows: int

    @property
    def sampled(self) -> bool:
        return self.measured < self.rows


@dataclass(frozen=True)
class SplitFigures:
    train: int
    validation: int
    kept_together: int   # rows that went to one side with a near-duplicate prompt
    leaks: int           # validation prompts that are near-duplicates of a training prompt (0 when sound)


@dataclass(frozen=True)
class MixFigures:
    base_rows: int        # every row of the version mixed into
    other_rows: int       # rows taken from the other dataset (repeated when it has too few)
    other_available: int


@dataclass(frozen=True, kw_only=True)
class StepReport:
    """What one data step did: kept + rejected = rows_read. Sections a step does not produce stay None
    and are left out of the JSON."""

    rows_read: int
    kept: int
    rejected: int
    reasons: dict[str, int] | None = None                     # rows rejected per reason (upload, clean)
    flags: dict[str, int] | None = None                       # kept rows flagged per flag (upload, clean)
    contradiction_groups: list[ContradictionGroup] | None = None   # upload (none yet), clean
    restored: int | None = None                               # restore: rows brought back
    steps: list[str]
    parameters: dict[str, Any]                                # the settings, recorded for the lineage
    split: SplitFigures | None = None
    mix: MixFigures | None = None
    source_file: str | None = None                            # upload, and a file the CLI checks
    file_format: str | None = None
    record_formats: dict[str, int] | None = None              # rows per record shape (messages, sharegpt…)
    raw_sha256: str | None = None                             # upload: of the file exactly as received
    lengths: LengthSample | None = None                       # clean, when a tokenizer counted
    sha256: str | None = None                                 # of the data.jsonl written

    def to_json(self) -> dict[str, Any]:
        """The report as plain data: absent sections (None by default and still None) are left out."""
        values = asdict(self)
        return {field.name: values[field.name] for field in fields(self)
                if not (field.default is None and values[field.name] is None)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        known = {field.name for field in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        sections: dict[str, Any] = {"lengths": LengthSample, "split": SplitFigures, "mix": MixFigures}
        for name, kind in sections.items():
            if values.get(name) is not None:
                values[name] = kind(**values[name])
        if values.get("contradiction_groups") is not None:
            values["contradiction_groups"] = [ContradictionGroup.from_json(g) for g in values["contradiction_groups"]]
        return cls(**values)


@dataclass(frozen=True, kw_only=True)
class VersionReport(StepReport):
    """A dataset version's report.json: the step that made it and its place in the lineage."""

    dataset: str
    version: int
    parent: int | None          # None for version 1, the upload
    kind: str                   # upload, clean, restore, split or mix
    note: str
    sha256: str                 # of data.jsonl
    created: str
    rejects_total: int          # rows set aside in the whole lineage (rejects.jsonl)
    validation_sha256: str | None = None   # of validation.jsonl, in a split version
