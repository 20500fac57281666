"""Rating sessions: create one from a prompt set and the models to compare, find, list and delete them.

    spec = SessionSpec("FAQ: base vs tuned", ["base:default", "run:faq-r16"], "dataset:demo-clinic-faq")
    session = sessions.create(workspace, spec)   # ratings/<id>/ and its index rows; state 'generating'
    # the generation job (core.rating.generation) answers every prompt with every model, then calls
    sessions.complete(workspace, session.id)    # responses indexed, items made, state 'ready'

Items are what raters see: in a scale session one response to a prompt, in a pairwise session the
responses of two models to a prompt, their sides drawn at random per item. Item numbers are shuffled as
well, so neither a number nor a side tells a rater which model wrote a response. The session's folder
(session.json, prompts.jsonl, responses.jsonl) is the record that makes it reproducible; the database
indexes it and holds the ratings.
"""

from __future__ import annotations

import itertools
import json
import random
import shutil
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from typing import Literal

from core.db import write_transaction
from core.errors import ConfigError, StudioError
from core.inference import choices
from core.models import modeling
from core.rating import criteria as criteria_module
from core.rating import prompts
from core.rating.criteria import Criterion, Mode
from core.workspace import RatingFolder, Workspace, atomic_write_json, now_iso

SessionState = Literal["generating", "ready"]
MAX_OVERLAP = 50


@dataclass(frozen=True)
class SessionSpec:
    name: str
    models: list[str]                          # model choice keys: base:NAME, run:ID, export:ID
    source: str = prompts.REDTEAM              # a prompt set (core.rating.prompts)
    mode: Mode = "scale"
    criteria: list[Criterion] | None = None    # None: the mode's defaults
    overlap: int = 1                           # how many raters rate each item
    max_prompts: int | None = None             # draw at most this many prompts (seeded)
    seed: int = 0                              # draws prompts, sides, item order and sampling
    max_new_tokens: int | None = None          # a shorter reply limit than the models' own (generation.*)


@dataclass(frozen=True)
class Session:
    id: str
    name: str
    mode: Mode
    models: list[str]
    criteria: list[Criterion]
    overlap: int
    source: str                                # the prompt set, in words
    seed: int
    max_new_tokens: int | None
    state: SessionState
    created: str
    prompts: int                               # how many prompts
    items: int                                 # how many items (0 until the responses are in)

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    def criterion(self, name: str) -> Criterion:
        for criterion in self.criteria:
            if criterion.name == name:
                return criterion
        raise ConfigError(f"Session '{self.id}' has no criterion '{name}'.",
                          f"Its criteria: {', '.join(c.name for c in self.criteria)}.")

    def label(self) -> str:
        return f"{self.name} · {self.mode} · {self.prompts} prompts × {len(self.models)} models ({self.state})"


@dataclass(frozen=True)
class Item:
    """One thing to rate, with what it shows and (for results and exports only) which models wrote it."""

    session_id: str
    number: int
    prompt: int
    models: list[str]                          # [model] in a scale session, [model A, model B] in a pairwise one
    messages: list[dict[str, str]]             # the prompt conversation
    responses: list[str]                       # in the order of `models`
    category: str = ""
    reference: str = ""


def create(workspace: Workspace, spec: SessionSpec) -> Session:
    """A new session from `spec`, checked before anything is written (ConfigError/DataError naming the
    problem); responses reused from another session make it ready at once."""
    name = spec.name.strip()
    if not name:
        raise ConfigError("The session has no name.", "Give it a name raters will recognise, e.g. 'FAQ: base vs tuned'.")
    if spec.mode not in criteria_module.MODES:
        raise ConfigError(f"'{spec.mode}' is not a kind of session.", "Choose scale or pairwise.")
    models = list(dict.fromkeys(key.strip() for key in spec.models if key.strip()))
    if len(models) < (2 if spec.mode == "pairwise" else 1):
        raise ConfigError(f"A {spec.mode} session needs {'two or more models' if spec.mode == 'pairwise' else 'a model'}.",
                          "Pick the models to compare, e.g. the base model and a run's adapter.")
    chosen = criteria_module.check_for_mode(list(spec.criteria or criteria_module.DEFAULTS[spec.mode]), spec.mode)
    if not 1 <= spec.overlap <= MAX_OVERLAP:
        raise ConfigError(f"{spec.overlap} raters per item is not possible.", f"Choose 1 to {MAX_OVERLAP}.")
    if spec.max_new_tokens is not None and spec.max_new_tokens < 1:
        raise ConfigError(f"A reply limit of {spec.max_new_tokens} tokens leaves nothing to rate.",
                          "Choose 1 or more, or leave it empty for each model's own limit.")
    prompt_set = prompts.read(workspace, spec.source).sample(spec.max_prompts, spec.seed)
    if prompt_set.responses:
        _check_reused(prompt_set, models, spec.source)
    else:
        for key in models:
            modeling.resolve(choices.resolve(workspace, key).base, workspace)

    session_id = _new_folder(workspace, name)
    folder = workspace.rating_folder(session_id)
    created = now_iso()
    try:
        atomic_write_json(folder.definition, {
            "id": session_id, "name": name, "mode": spec.mode, "models": models, "overlap": spec.overlap,
            "source": spec.source, "source_description": prompt_set.description, "max_prompts": spec.max_prompts,
            "seed": spec.seed, "max_new_tokens": spec.max_new_tokens,
            "criteria": [criterion.model_dump() for criterion in chosen], "created": created})
        prompts.write_prompts(folder, prompt_set.prompts)
        for model in models if prompt_set.responses else []:
            prompts.append_responses(folder, model, [prompt_set.responses[(number, model)]
                                                     for number in range(1, len(prompt_set.prompts) + 1)])
        with closing(workspace.connect()) as connection, write_transaction(connection):
            connection.execute(
                "INSERT INTO rating_sessions (id, name, mode, models, criteria, overlap, source, seed, max_new_tokens,"
                " state, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'generating', ?)",
                (session_id, name, spec.mode, json.dumps(models), criteria_module.to_json(chosen), spec.overlap,
                 prompt_set.description, spec.seed, spec.max_new_tokens, created))
            connection.executemany(
                "INSERT INTO rating_prompts (session_id, number, messages, reference, category) VALUES (?, ?, ?, ?, ?)",
                [(session_id, number, json.dumps(prompt.messages, ensure_ascii=False), prompt.reference, prompt.category)
                 for number, prompt in enumerate(prompt_set.prompts, start=1)])
        if prompt_set.responses:
            complete(workspace, session_id)
    except BaseException:
        delete(workspace, session_id)
        raise
    return get(workspace, session_id)


def _check_reused(prompt_set: prompts.PromptSet, models: list[str], source: str) -> None:
    have = {model for _, model in prompt_set.responses}
    missing = [model for model in models if model not in have]
    if missing:
        raise ConfigError(f"{source} has no responses from {', '.join(missing)}.",
                          f"Pick among its models: {', '.join(sorted(have))}.")


def _new_folder(workspace: Workspace, name: str) -> str:
    """A fresh session id and its folder, made here so that two sessions never share one."""
    workspace.ratings_dir.mkdir(parents=True, exist_ok=True)
    for _ in range(20):
        session_id = workspace.unique_id(workspace.ratings_dir, name)
        try:
            workspace.rating_folder(session_id).root.mkdir()
            return session_id
        except FileExistsError:
            continue
    raise StudioError(f"Could not find a free name for session '{name}'.", "Give it another name.")


def complete(workspace: Workspace, session_id: str) -> Session:
    """Index the responses the generation job wrote, make the items and open the session for rating.
    Refused, naming what is missing, until every prompt has a response from every model."""
    session = get(workspace, session_id)
    responses = prompts.read_responses(workspace.rating_folder(session_id))
    numbers = range(1, session.prompts + 1)
    missing = sum((number, model) not in responses for model in session.models for number in numbers)
    if missing and not session.ready:
        raise StudioError(f"Session '{session_id}' is still missing {missing} response(s).", "Generate its responses again.")
    with closing(workspace.connect()) as connection, write_transaction(connection):
        if connection.execute("SELECT state FROM rating_sessions WHERE id = ?", (session_id,)).fetchone()["state"] == "ready":
            return get(workspace, session_id)   # completed already, by an earlier call
        connection.executemany(
            "INSERT OR REPLACE INTO rating_responses (session_id, prompt, model, text) VALUES (?, ?, ?, ?)",
            [(session_id, number, model, responses[(number, model)]) for model in session.models for number in numbers])
        connection.executemany("INSERT INTO rating_items (session_id, number, prompt, model_a, model_b) VALUES (?, ?, ?, ?, ?)",
                               [(session_id, *item) for item in _items(session)])
        connection.execute("UPDATE rating_sessions SET state = 'ready' WHERE id = ?", (session_id,))
    return get(workspace, session_id)


def _items(session: Session) -> list[tuple[int, int, str, str | None]]:
    """(number, prompt, model A, model B) of every item: each prompt with each model (scale) or each pair
    of models with sides drawn at random (pairwise), numbered in a seeded random order."""
    rng = random.Random(f"{session.seed}:items")
    prompt_numbers = range(1, session.prompts + 1)
    if session.mode == "scale":
        shown: list[tuple[int, str, str | None]] = [(n, model, None) for n in prompt_numbers for model in session.models]
    else:
        shown = [(n, *((a, b) if rng.random() < 0.5 else (b, a))) for n in prompt_numbers
                 for a, b in itertools.combinations(session.models, 2)]
    rng.shuffle(shown)
    return [(number, *item) for number, item in enumerate(shown, start=1)]


_SESSION_QUERY = """
    SELECT s.*, (SELECT COUNT(*) FROM rating_prompts p WHERE p.session_id = s.id) AS prompt_count,
           (SELECT COUNT(*) FROM rating_items i WHERE i.session_id = s.id) AS item_count
    FROM rating_sessions s"""


def _session(row: sqlite3.Row) -> Session:
    return Session(row["id"], row["name"], row["mode"], json.loads(row["models"]), criteria_module.from_json(row["criteria"]),
                   row["overlap"], row["source"], row["seed"], row["max_new_tokens"], row["state"], row["created"],
                   row["prompt_count"],
                   row["item_count"])


def get(workspace: Workspace, session_id: str) -> Session:
    with closing(workspace.connect()) as connection:
        row = connection.execute(f"{_SESSION_QUERY} WHERE s.id = ?", (session_id,)).fetchone()
    if row is None:
        raise ConfigError(f"There is no rating session '{session_id}'.", "Pick a session from the list.")
    return _session(row)


def ready(workspace: Workspace, session_id: str) -> Session:
    """The session, if its responses are in and it can be rated."""
    session = get(workspace, session_id)
    if not session.ready:
        raise StudioError(f"Session '{session.name}' is not ready: its responses are still being generated.",
                          "Wait until generation finishes (or start it again if it stopped).")
    return session


def list_sessions(workspace: Workspace) -> list[Session]:
    """Every session, newest first."""
    with closing(workspace.connect()) as connection:
        rows = connection.execute(f"{_SESSION_QUERY} ORDER BY s.created DESC, s.id").fetchall()
    return [_session(row) for row in rows]


def delete(workspace: Workspace, session_id: str) -> None:
    """Remove a session, its folder and every rating made in it."""
    folder: RatingFolder = workspace.rating_folder(session_id)
    with closing(workspace.connect()) as connection, connection:
        connection.execute("DELETE FROM rating_sessions WHERE id = ?", (session_id,))
    shutil.rmtree(folder.root, ignore_errors=True)


def item(workspace: Workspace, session_id: str, number: int) -> Item:
    """Item `number` of the session with its prompt and responses."""
    return items(workspace, session_id, [number])[0]


def items(workspace: Workspace, session_id: str, numbers: list[int] | None = None) -> list[Item]:
    """The session's items (all, or those numbered), in number order, with prompts and responses."""
    query = ("SELECT i.number, i.prompt, i.model_a, i.model_b, p.messages, p.category, p.reference,"
             " ra.text AS text_a, rb.text AS text_b FROM rating_items i"
             " JOIN rating_prompts p ON p.session_id = i.session_id AND p.number = i.prompt"
             " JOIN rating_responses ra ON ra.session_id = i.session_id AND ra.prompt = i.prompt AND ra.model = i.model_a"
             " LEFT JOIN rating_responses rb ON rb.session_id = i.session_id AND rb.prompt = i.prompt AND rb.model = i.model_b"
             " WHERE i.session_id = ?")
    parameters: list[object] = [session_id]
    if numbers is not None:
        query += f" AND i.number IN ({', '.join('?' * len(numbers))})"
        parameters += numbers
    with closing(workspace.connect()) as connection:
        rows = connection.execute(query + " ORDER BY i.number", parameters).fetchall()
    found = [Item(session_id, row["number"], row["prompt"], [m for m in (row["model_a"], row["model_b"]) if m],
                  json.loads(row["messages"]), [t for t in (row["text_a"], row["text_b"]) if t is not None],
                  row["category"], row["reference"]) for row in rows]
    if numbers is not None and len(found) != len(set(numbers)):
        missing = sorted(set(numbers) - {found_item.number for found_item in found})
        raise ConfigError(f"Session '{session_id}' has no item {', '.join(map(str, missing))}.",
                          "Item numbers run from 1 to the session's number of items.")
    return found
