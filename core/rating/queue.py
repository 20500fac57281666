"""What each rater rates next: items are handed out one at a time until each has `overlap` raters, in an
order of the rater's own, and a rater comes back to where they left off.

    view = queue.current(workspace, session_id, "Dr Li")       # resume: the first item not rated yet
    view = queue.following(workspace, session_id, "Dr Li", n)  # after saving item n
    view = queue.preceding(workspace, session_id, "Dr Li", n)  # going back (its ratings are shown)
    view = queue.last(workspace, session_id, "Dr Li")           # back from the end, when all is rated

Raters need not be known in advance: whoever asks next gets, among the items they have not had, one
that already has raters but fewer than the overlap (so items are completed, and agreement can be
measured, early), else a fresh one; ties are broken by a hash of the rater's name, which shuffles the
order per rater. Handing out runs in one write transaction, so two raters asking at once never push an
item past its overlap. A view carries nothing that names a model.
"""

from __future__ import annotations

import hashlib
import sqlite3
from contextlib import closing
from dataclasses import dataclass

from core.db import write_transaction
from core.rating import ratings, sessions
from core.rating.sessions import Item, Session
from core.workspace import Workspace


@dataclass(frozen=True)
class RaterProgress:
    rated: int         # items this rater has rated on every criterion
    remaining: int     # items waiting for this rater: handed out and not rated, or still short of raters

    @property
    def total(self) -> int:
        return self.rated + self.remaining


@dataclass(frozen=True)
class View:
    session: Session
    rater: str
    item: Item | None              # None when nothing is left for this rater
    position: int                  # the item's place in the rater's sequence, from 0
    values: dict[str, str]         # the rater's ratings of the item so far
    progress: RaterProgress


@dataclass(frozen=True)
class RaterRow:
    rater: str
    rated: int
    handed_out: int
    last_rating: str


def current(workspace: Workspace, session_id: str, rater: str) -> View:
    """Where the rater left off: their first item not rated on every criterion, else a new one, else none."""
    session = sessions.ready(workspace, session_id)
    rater = ratings.check_rater(rater)
    with closing(workspace.connect()) as connection:
        row = connection.execute(
            "SELECT item, position FROM rating_assignments WHERE session_id = ? AND rater = ?"
            f" AND item NOT IN ({_rated_query(session)}) ORDER BY position LIMIT 1",
            (session.id, rater, *_rated_parameters(session, rater))).fetchone()
        if row is None:
            row = _hand_out(connection, session, rater)
    return _view(workspace, session, rater, row)


def following(workspace: Workspace, session_id: str, rater: str, item: int) -> View:
    """The rater's item after `item`, already handed out (to review), else where they left off."""
    return _step(workspace, session_id, rater, item, ">", "ASC")


def preceding(workspace: Workspace, session_id: str, rater: str, item: int) -> View:
    """The rater's item before `item` (the first one stays put)."""
    return _step(workspace, session_id, rater, item, "<", "DESC")


def last(workspace: Workspace, session_id: str, rater: str) -> View:
    """The rater's most recent item (going back from the end), or where they left off if they have none."""
    session = sessions.ready(workspace, session_id)
    rater = ratings.check_rater(rater)
    with closing(workspace.connect()) as connection:
        row = connection.execute("SELECT item, position FROM rating_assignments WHERE session_id = ? AND rater = ?"
                                 " ORDER BY position DESC LIMIT 1", (session.id, rater)).fetchone()
    return _view(workspace, session, rater, row) if row else current(workspace, session_id, rater)


def _step(workspace: Workspace, session_id: str, rater: str, item: int, direction: str, order: str) -> View:
    session = sessions.ready(workspace, session_id)
    rater = ratings.check_rater(rater)
    with closing(workspace.connect()) as connection:
        here = connection.execute("SELECT position FROM rating_assignments WHERE session_id = ? AND rater = ? AND item = ?",
                                  (session.id, rater, item)).fetchone()
        if here is None:
            return current(workspace, session_id, rater)
        row = connection.execute(
            f"SELECT item, position FROM rating_assignments WHERE session_id = ? AND rater = ? AND position {direction} ?"
            f" ORDER BY position {order} LIMIT 1", (session.id, rater, here["position"])).fetchone()
    if row is None:
        if direction == ">":
            return current(workspace, session_id, rater)
        row = {"item": item, "position": here["position"]}
    return _view(workspace, session, rater, row)


def _hand_out(connection: sqlite3.Connection, session: Session, rater: str) -> sqlite3.Row | None:
    """Give the rater a new item (see the module doc), or None when none is left for them."""
    with write_transaction(connection):
        open_items = connection.execute(_OPEN_TO_RATER, (session.id, session.id, rater, session.overlap)).fetchall()
        if not open_items:
            return None
        chosen = max(open_items, key=lambda row: (row["taken"], _shuffled(session, rater, row["number"])))
        ratings.assign(connection, session.id, chosen["number"], rater)
        return connection.execute("SELECT item, position FROM rating_assignments WHERE session_id = ? AND rater = ?"
                                  " AND item = ?", (session.id, rater, chosen["number"])).fetchone()


def _shuffled(session: Session, rater: str, number: int) -> bytes:
    """A rater's own pseudo-random rank of an item: the same on every call, different between raters."""
    return hashlib.blake2b(f"{session.seed}|{rater}|{number}".encode(), digest_size=8).digest()


# The items a rater has not had yet that still have fewer than `overlap` raters, with how many they have.
_OPEN_TO_RATER = (
    "SELECT i.number, COUNT(a.rater) AS taken FROM rating_items i LEFT JOIN rating_assignments a"
    " ON a.session_id = i.session_id AND a.item = i.number WHERE i.session_id = ?"
    " AND i.number NOT IN (SELECT item FROM rating_assignments WHERE session_id = ? AND rater = ?)"
    " GROUP BY i.number HAVING taken < ?")
# The items a rater has rated on every criterion of the session.
_RATED = ("SELECT item FROM ratings WHERE session_id = ? AND rater = ? AND criterion IN ({names})"
          " GROUP BY item HAVING COUNT(*) = ?")


def _rated_parameters(session: Session, rater: str) -> tuple[object, ...]:
    return (session.id, rater, *(criterion.name for criterion in session.criteria), len(session.criteria))


def _rated_query(session: Session) -> str:
    return _RATED.format(names=", ".join("?" * len(session.criteria)))


def _view(workspace: Workspace, session: Session, rater: str, row: sqlite3.Row | dict | None) -> View:
    progress = rater_progress(workspace, session, rater)
    if row is None:
        return View(session, rater, None, progress.total, {}, progress)
    return View(session, rater, sessions.item(workspace, session.id, row["item"]), row["position"],
                ratings.values_of(workspace, session.id, row["item"], rater), progress)


def rater_progress(workspace: Workspace, session: Session, rater: str) -> RaterProgress:
    with closing(workspace.connect()) as connection:
        rated = connection.execute(f"SELECT COUNT(*) FROM ({_rated_query(session)})",
                                   _rated_parameters(session, rater)).fetchone()[0]
        handed_out = connection.execute("SELECT COUNT(*) FROM rating_assignments WHERE session_id = ? AND rater = ?",
                                        (session.id, rater)).fetchone()[0]
        open_to_them = connection.execute(f"SELECT COUNT(*) FROM ({_OPEN_TO_RATER})",
                                          (session.id, session.id, rater, session.overlap)).fetchone()[0]
    return RaterProgress(rated, handed_out - rated + open_to_them)


def raters(workspace: Workspace, session_id: str) -> list[RaterRow]:
    """Everyone who has rated in the session or been handed an item, with their progress."""
    session = sessions.get(workspace, session_id)
    with closing(workspace.connect()) as connection:
        rows = connection.execute(
            "SELECT a.rater, COUNT(*) AS handed_out, (SELECT MAX(updated) FROM ratings r WHERE r.session_id = a.session_id"
            " AND r.rater = a.rater) AS last FROM rating_assignments a WHERE a.session_id = ? GROUP BY a.rater ORDER BY a.rater",
            (session.id,)).fetchall()
        found = []
        for row in rows:
            rated = connection.execute(f"SELECT COUNT(*) FROM ({_rated_query(session)})",
                                       _rated_parameters(session, row["rater"])).fetchone()[0]
            found.append(RaterRow(row["rater"], rated, row["handed_out"], row["last"] or ""))
    return found
