"""Back into training: what raters found becomes data.

    hard_example_candidates(workspace, session_id)   low-rated items that a rater wrote a corrected answer for
    send_hard_examples(workspace, session_id, items)  those prompts with the corrected answers, as a new version of
                                                     the hard-examples dataset (core.data.store.add_hard_examples,
                                                     the same path the Evaluate tab uses)
    write_preference_pairs(workspace, session_id, path)  pairwise verdicts as preference pairs JSONL for DPO-style
                                                     training: {"prompt", "chosen", "rejected"}

An item is low-rated when the average of any scale is below its middle (fluency under 2.5 of 1-4), when
any rater gave a choice criterion a failing level (safety: anything but safe), or, in a pairwise session,
when a rater wrote a better answer than both.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from core.data import store
from core.data.store import VersionSummary
from core.errors import DataError
from core.rating import ratings, sessions
from core.rating.criteria import CORRECTED
from core.rating.sessions import Item, Session
from core.text import N_
from core.workspace import Workspace, atomic_write_text


@dataclass(frozen=True)
class HardExample:
    item: int
    messages: list[dict[str, str]]     # the prompt conversation
    responses: list[str]               # what the model(s) answered
    models: list[str]
    corrected: str                     # the answer it should have been (the newest corrected answer)
    rater: str                         # who wrote it
    why: str                           # why it counts as low-rated, in words


def hard_example_candidates(workspace: Workspace, session_id: str) -> list[HardExample]:
    session = sessions.get(workspace, session_id)
    given: dict[int, dict[str, list[tuple[str, str, str]]]] = defaultdict(lambda: defaultdict(list))
    for rating in ratings.read_all(workspace, session_id):   # item -> criterion -> [(updated, rater, value)]
        given[rating.item][rating.criterion].append((rating.updated, rating.rater, rating.value))
    corrected = {number: max(by_criterion[CORRECTED]) for number, by_criterion in given.items() if by_criterion.get(CORRECTED)}
    if not corrected:
        return []
    found = []
    for item in sessions.items(workspace, session_id, sorted(corrected)):
        why = _low_rated(session, given[item.number])
        if why:
            _, rater, answer = corrected[item.number]
            found.append(HardExample(item.number, item.messages, item.responses, item.models, answer, rater, why))
    return found


def _low_rated(session: Session, by_criterion: dict[str, list[tuple[str, str, str]]]) -> str:
    """Why an item's ratings make it low-rated, or '' when they do not."""
    reasons = []
    for criterion in session.criteria:
        values = [value for _, _, value in by_criterion.get(criterion.name, [])]
        if not values:
            continue
        if criterion.kind == "scale":
            mean = statistics.fmean(int(value) for value in values)
            lowest, highest = int(criterion.values[0]), int(criterion.values[-1])
            if mean < (lowest + highest) / 2:
                reasons.append(N_(f"{criterion.label} {mean:.1f} of {lowest}-{highest}"))
        elif criterion.kind == "choice":
            failed = sorted({criterion.level(value).label for value in values if value not in criterion.passing})
            if failed:
                reasons.append(f"{criterion.label}: {', '.join(failed)}")
    if session.mode == "pairwise" and not reasons:
        reasons.append(N_("a rater wrote a better answer than both responses"))
    return "; ".join(reasons)


def send_hard_examples(workspace: Workspace, session_id: str, items: list[int] | None = None) -> VersionSummary:
    """The chosen candidates (all when `items` is None) as a new hard-examples dataset version."""
    candidates = hard_example_candidates(workspace, session_id)
    if items is not None:
        unknown = sorted(set(items) - {candidate.item for candidate in candidates})
        if unknown:
            raise DataError(f"Item(s) {', '.join(map(str, unknown))} are not low-rated items with a corrected answer.",
                            "Pick items from the list of candidates.")
        candidates = [candidate for candidate in candidates if candidate.item in set(items)]
    if not candidates:
        raise DataError("No low-rated item has a corrected answer yet.",
                        "While rating, write the answer it should have been under 'Corrected answer'.")
    conversations = [[*candidate.messages, {"role": "assistant", "content": candidate.corrected}] for candidate in candidates]
    return store.add_hard_examples(workspace, conversations, {"rating_session": session_id,
                                                              "items": [candidate.item for candidate in candidates]})


def preference_pairs(workspace: Workspace, session_id: str) -> list[dict[str, object]]:
    """One pair per pairwise item whose raters preferred one side by majority (ties and even splits are
    left out). The prompt is the question as text when every prompt is a single question, and TRL's
    conversational format (lists of messages) when any prompt has earlier turns or a system message."""
    session = sessions.get(workspace, session_id)
    criterion = next((c for c in session.criteria if c.kind == "preference"), None)
    if criterion is None:
        raise DataError(f"Session '{session.name}' is not a pairwise session.", "Preference pairs come from pairwise sessions.")
    votes: dict[int, Counter[str]] = defaultdict(Counter)
    for rating in ratings.read_all(workspace, session_id):
        if rating.criterion == criterion.name:
            votes[rating.item][rating.value] += 1
    decided = {number: "A" if tally["A"] > tally["B"] else "B" for number, tally in votes.items() if tally["A"] != tally["B"]}
    chosen_items = sessions.items(workspace, session_id, sorted(decided)) if decided else []
    conversational = any(len(item.messages) > 1 for item in chosen_items)
    return [_pair(item, decided[item.number], conversational) for item in chosen_items]


def _pair(item: Item, winner: str, conversational: bool) -> dict[str, object]:
    chosen, rejected = item.responses if winner == "A" else item.responses[::-1]
    if conversational:
        return {"prompt": item.messages, "chosen": [{"role": "assistant", "content": chosen}],
                "rejected": [{"role": "assistant", "content": rejected}]}
    return {"prompt": item.messages[-1]["content"], "chosen": chosen, "rejected": rejected}


def write_preference_pairs(workspace: Workspace, session_id: str, path: Path) -> int:
    pairs = preference_pairs(workspace, session_id)
    if not pairs:
        raise DataError("No pairwise item has a majority preference yet.", "Rate some pairs first; ties are left out.")
    atomic_write_text(Path(path), "".join(json.dumps(pair, ensure_ascii=False) + "\n" for pair in pairs))
    return len(pairs)
