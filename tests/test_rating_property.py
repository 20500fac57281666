"""Importing ratings made elsewhere, whatever the file holds: every file either imports whole or is refused
with a DataError naming the problem, and a refused file leaves the stored ratings exactly as they were.
Property-based, over random mixes of good rows, wrong cells and broken lines, in CSV and in JSONL."""

import csv
import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from tiny import build_tiny_model

from core.errors import DataError
from core.rating import exchange, generation, ratings, sessions
from core.rating.sessions import SessionSpec
from core.workspace import Workspace

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
CELL = st.one_of(st.sampled_from(["", " ", "inf", "-inf", "nan", "1e400", "2.0", "-1", "0"]), st.text(max_size=12))


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, sessions.Session]:
    workspace = Workspace.open(tmp_path_factory.mktemp("import-fuzz") / "ws")
    build_tiny_model(workspace.model_dir("tiny"), seed=1)
    made = sessions.create(workspace, SessionSpec("Fuzz", ["base:tiny"], max_prompts=3, max_new_tokens=4))
    generation.generate(workspace, made.id)
    ratings.submit(workspace, made.id, 1, "Ana", {"fluency": "4", "relevance": "3", "safety": "safe"})
    return workspace, sessions.get(workspace, made.id)


@st.composite
def rows(draw, session: sessions.Session) -> list[dict]:
    """Good rows (real items, criteria and levels), about half of them with one cell made wrong."""
    levels = {criterion.name: [level.value for level in criterion.levels] for criterion in session.criteria}
    found = []
    for _ in range(draw(st.integers(1, 6))):
        criterion = draw(st.sampled_from([*levels, "comment", "corrected_answer"]))
        row = {"item": str(draw(st.integers(1, session.items))), "rater": draw(st.sampled_from(["Ben", "Chen  Li", "李医生"])),
               "criterion": criterion, "value": draw(st.sampled_from(levels.get(criterion, ["fine", ""])))}
        if draw(st.booleans()):
            row["timestamp"] = "2025-03-01T14:30:00Z"
        if draw(st.booleans()):
            row[draw(st.sampled_from(["item", "rater", "criterion", "value", "timestamp", "session"]))] = draw(CELL)
        found.append(row)
    return found


def as_file(path: Path, found: list[dict], suffix: str, noise: list[str]) -> Path:
    target = path.with_suffix(suffix)
    if suffix == ".jsonl":
        lines = [json.dumps(row, ensure_ascii=False) for row in found] + noise
        target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        buffer = io.StringIO(newline="")
        writer = csv.DictWriter(buffer, ["item", "rater", "criterion", "value", "timestamp", "session"],
                                lineterminator="\n", restval="")
        writer.writeheader()
        writer.writerows(found)
        target.write_text(buffer.getvalue() + "".join(line + "\n" for line in noise), encoding="utf-8")
    return target


def stored(workspace: Workspace, session_id: str) -> list:
    return ratings.read_all(workspace, session_id)


@FUZZ
@given(data=st.data(), suffix=st.sampled_from([".csv", ".jsonl"]),
       noise=st.lists(st.sampled_from(['{"item": 1', "[1, 2]", "item,rater", '"unclosed', "NaN", "\x00"]), max_size=1))
def test_an_import_is_whole_or_refused_with_a_reason_and_nothing_changes(session, tmp_path: Path, data, suffix, noise):
    workspace, chosen = session
    found = data.draw(rows(chosen))
    path = as_file(tmp_path / "ratings", found, suffix, noise)
    before = stored(workspace, chosen.id)
    try:
        result = exchange.import_file(workspace, chosen.id, path)
    except DataError as error:
        event("refused")
        assert error.problem and error.fix
        assert stored(workspace, chosen.id) == before   # all or nothing
        return
    event("imported")
    after = {(r.item, r.rater, r.criterion): r.value for r in stored(workspace, chosen.id)}
    assert result.written >= 1
    expected = {(int(float(row["item"])), " ".join(row["rater"].split()), row["criterion"].strip()): row["value"].strip()
                for row in found if row["value"].strip()}   # the last of repeated rows wins, as in a spreadsheet
    assert {key: after[key] for key in expected} == expected   # every non-empty row of an accepted file is stored


@FUZZ
@given(raw=st.binary(max_size=300), suffix=st.sampled_from([".csv", ".jsonl", ".txt"]))
def test_any_bytes_are_imported_or_refused_in_words(session, tmp_path: Path, raw: bytes, suffix: str):
    workspace, chosen = session
    path = tmp_path / f"anything{suffix}"
    path.write_bytes(raw)
    before = stored(workspace, chosen.id)
    try:
        exchange.import_file(workspace, chosen.id, path)
    except DataError:
        assert stored(workspace, chosen.id) == before
