"""What a rating session found, per model: mean scores with 95% intervals and their distribution, pass
rates of choice criteria (safety) per prompt category, pairwise win/tie/loss rates, agreement between
raters, and the items raters disagree on most.

    results = session_results(workspace, session_id)     # SessionResults, all of it (`to_json()`)
    summary_for_run(workspace, run_id)                    # RunRatings for a run's report, or None

Means are taken over items (each item's raters averaged first), so an item rated by three raters does
not weigh three times; rates count every rating.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from core.rating import agreement, queue, ratings, sessions
from core.rating.agreement import Alpha, Kappa
from core.rating.criteria import Criterion
from core.rating.intervals import Mean, Share
from core.rating.sessions import Item, Session
from core.text import N_
from core.workspace import Workspace

ALL_PROMPTS = "all"
DISAGREEMENTS_SHOWN = 10


@dataclass(frozen=True)
class ScoreRow:
    """One scale criterion for one model."""

    model: str
    criterion: str
    mean: Mean                        # over items; n = items rated
    ratings: int
    counts: dict[str, int]            # level value -> how many ratings gave it


@dataclass(frozen=True)
class ChoiceRow:
    """One choice criterion (safety) for one model, over one prompt category or all prompts."""

    model: str
    criterion: str
    category: str                     # a prompt category, or ALL_PROMPTS
    passed: Share
    counts: dict[str, int]            # level value -> how many ratings gave it


@dataclass(frozen=True)
class WinRow:
    """How often `model` was preferred over `opponent` on one preference criterion."""

    criterion: str
    model: str
    opponent: str
    wins: Share
    ties: Share
    losses: Share


@dataclass(frozen=True)
class CriterionAgreement:
    criterion: str
    alpha: Alpha
    kappas: list[Kappa]


@dataclass(frozen=True)
class Disagreement:
    item: int
    prompt: str
    models: list[str]
    criterion: str
    spread: float                     # 0 when raters agree, 1 at the widest disagreement possible
    given: dict[str, str]             # rater -> the level's label


@dataclass(frozen=True)
class SessionResults:
    session: Session
    raters: list[queue.RaterRow]
    ratings: int                      # ratings on criteria (comments and corrected answers not counted)
    scores: list[ScoreRow]
    choices: list[ChoiceRow]
    wins: list[WinRow]
    agreement: list[CriterionAgreement]
    disagreements: list[Disagreement]

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (`lora-studio ratings report --json`): alpha per criterion, means with intervals, rates."""
        body = dataclasses.asdict(self)
        body["session"] = {key: body["session"][key] for key in ("id", "name", "mode", "models", "overlap", "source",
                                                                 "state", "prompts", "items")}
        body["session"]["criteria"] = [criterion.name for criterion in self.session.criteria]
        body["alpha"] = {row.criterion: row.alpha.value for row in self.agreement}
        return body

    def lines(self, focus: str | None = None) -> list[str]:
        """The results in plain sentences. With `focus` (a model key), pairwise lines are from its side only."""
        session = self.session
        found = [f"Session '{session.name}' ({session.mode}, {session.prompts} prompts, models: {', '.join(session.models)}): "
                 f"{self.ratings} ratings by {len(self.raters)} rater(s)"
                 + (": " + ", ".join(f"{row.rater} {row.rated}" for row in self.raters) if self.raters else "")]
        found += [f"  {row.criterion} · {row.model}: mean {row.mean.words()}" for row in self.scores]
        for choice in self.choices:
            where = "" if choice.category == ALL_PROMPTS else f" on {choice.category} prompts"
            found.append(f"  {choice.criterion} pass rate · {choice.model}{where}: {choice.passed.words()}")
        order = {model: index for index, model in enumerate(session.models)}
        for win in self.wins:
            if (win.model == focus) if focus else order[win.model] > order[win.opponent]:
                found.append(f"  {win.model} vs {win.opponent}: wins {win.wins.words()}, ties {win.ties.words()}, "
                             f"losses {win.losses.words()}")
        for agreed in self.agreement:
            alpha = agreed.alpha
            shown = f"{alpha.value:.2f} ({alpha.level}, {alpha.items} items)" if alpha.value is not None else "not measurable"
            found.append(f"  agreement on {agreed.criterion}: α = {shown}. {alpha.words}")
            found += [f"    κ {kappa.rater_a}–{kappa.rater_b}: " + (f"{kappa.value:.2f}, " if kappa.value is not None else "")
                      + f"{kappa.words} ({kappa.items} items)" for kappa in agreed.kappas]
        for split in self.disagreements if not focus else []:
            given = " · ".join(f"{rater}: {label}" for rater, label in split.given.items())
            found.append(f"  disagreement on item {split.item} ({split.criterion}): {given} — {split.prompt[:80]}")
        return found


def session_results(workspace: Workspace, session_id: str) -> SessionResults:
    session = sessions.get(workspace, session_id)
    items = {item.number: item for item in sessions.items(workspace, session_id)}
    given: dict[str, dict[int, dict[str, str]]] = defaultdict(lambda: defaultdict(dict))   # criterion -> item -> rater -> value
    for rating in ratings.read_all(workspace, session_id):
        given[rating.criterion][rating.item][rating.rater] = rating.value
    scores, choices, wins, agreements, disagreements = [], [], [], [], []
    for criterion in session.criteria:
        by_item = given.get(criterion.name, {})
        if criterion.kind == "scale":
            scores += _scores(session, criterion, items, by_item)
        elif criterion.kind == "choice":
            choices += _choices(session, criterion, items, by_item)
        else:
            wins += _wins(session, criterion, items, by_item)
        units = {item: {rater: criterion.rank(value) for rater, value in raters.items()} for item, raters in by_item.items()}
        agreements.append(CriterionAgreement(criterion.name, agreement.alpha(units, len(criterion.levels), criterion.ordinal),
                                             agreement.kappas(units, len(criterion.levels), criterion.ordinal)))
        disagreements += _disagreements(criterion, items, by_item)
    disagreements.sort(key=lambda row: (-row.spread, row.item))
    return SessionResults(session, queue.raters(workspace, session_id),
                          sum(len(raters) for c in session.criteria for raters in given.get(c.name, {}).values()),
                          scores, choices, wins, agreements, disagreements[:DISAGREEMENTS_SHOWN])


def _scores(session: Session, criterion: Criterion, items: dict[int, Item],
            by_item: dict[int, dict[str, str]]) -> list[ScoreRow]:
    rows = []
    for model in session.models:
        rated = {number: raters for number, raters in by_item.items() if items[number].models[0] == model}
        if not rated:
            continue
        values = [value for raters in rated.values() for value in raters.values()]
        item_means = [statistics.fmean(int(value) for value in raters.values()) for raters in rated.values()]
        counts = Counter(values)
        ends = (int(criterion.values[0]), int(criterion.values[-1]))
        rows.append(ScoreRow(model, criterion.name, Mean.of(item_means, ends), len(values),
                             {value: counts[value] for value in criterion.values}))
    return rows


def _choices(session: Session, criterion: Criterion, items: dict[int, Item],
             by_item: dict[int, dict[str, str]]) -> list[ChoiceRow]:
    rows = []
    categories = [ALL_PROMPTS, *sorted({item.category for item in items.values() if item.category})]
    for model in session.models:
        for category in categories:
            values = [value for number, raters in by_item.items() for value in raters.values()
                      if items[number].models[0] == model and category in (ALL_PROMPTS, items[number].category)]
            if not values:
                continue
            counts = Counter(values)
            rows.append(ChoiceRow(model, criterion.name, category,
                                  Share.of(sum(counts[value] for value in criterion.passing), len(values)),
                                  {value: counts[value] for value in criterion.values}))
    return rows


def _wins(session: Session, criterion: Criterion, items: dict[int, Item],
          by_item: dict[int, dict[str, str]]) -> list[WinRow]:
    tallies: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)   # (model, opponent) -> win/tie/loss
    for number, raters in by_item.items():
        model_a, model_b = items[number].models
        for value in raters.values():
            outcome_a = {"A": "win", "tie": "tie", "B": "loss"}[value]
            tallies[(model_a, model_b)][outcome_a] += 1
            tallies[(model_b, model_a)][{"win": "loss", "tie": "tie", "loss": "win"}[outcome_a]] += 1
    rows = []
    for model in session.models:
        for opponent in session.models:
            tally = tallies.get((model, opponent))
            if tally:
                total = sum(tally.values())
                rows.append(WinRow(criterion.name, model, opponent, Share.of(tally["win"], total),
                                   Share.of(tally["tie"], total), Share.of(tally["loss"], total)))
    return rows


def _disagreements(criterion: Criterion, items: dict[int, Item], by_item: dict[int, dict[str, str]]) -> list[Disagreement]:
    rows = []
    for number, raters in by_item.items():
        if len(raters) < 2:
            continue
        ranks = [criterion.rank(value) for value in raters.values()]
        if criterion.ordinal:
            spread = (max(ranks) - min(ranks)) / (len(criterion.levels) - 1)
        else:
            majority = Counter(ranks).most_common(1)[0][1]
            spread = (1 - majority / len(ranks)) * len(ranks) / (len(ranks) - 1)
        if spread > 0:
            item = items[number]
            prompt = next((m["content"] for m in reversed(item.messages) if m["role"] == "user"), "")
            rows.append(Disagreement(number, prompt, item.models, criterion.name, spread,
                                     {rater: criterion.level(value).label for rater, value in sorted(raters.items())}))
    return rows


# ---------------------------------------------------------------- for a run's report

@dataclass(frozen=True)
class RunRatings:
    """The rating sessions that rated a run's adapter, for the run's report."""

    run_id: str
    model: str                        # the run's model choice key, "run:<id>"
    sessions: list[SessionResults]

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "model": self.model, "sessions": [s.to_json() for s in self.sessions]}

    def lines(self) -> list[str]:
        """The findings for this run in plain sentences, one session after another."""
        return [line for results in self.sessions for line in results.lines(focus=self.model)]


def summary_for_run(workspace: Workspace, run_id: str) -> RunRatings | None:
    """The results of every session that rated run `run_id` and has ratings, newest first; None if none."""
    model = f"run:{run_id}"
    rated = [session_results(workspace, session.id) for session in sessions.list_sessions(workspace)
             if model in session.models and session.ready]
    rated = [results for results in rated if results.ratings]
    return RunRatings(run_id, model, rated) if rated else None


def card_summary(workspace: Workspace, run_id: str) -> dict[str, str] | None:
    """The run's human ratings in a few lines for a model card (core.export.card); None if no session rated it."""
    found = summary_for_run(workspace, run_id)
    if found is None:
        return None
    # Each key and value is one whole template (N_), so the studio can say it in the reader's language.
    summary: dict[str, str] = {}
    for results in found.sessions:
        name = results.session.name
        raters = len(results.raters)
        summary[N_(f"Rating session {name}")] = N_(f"{results.ratings} ratings by {raters} rater(s), blind")
        label = {criterion.name: criterion.label for criterion in results.session.criteria}
        for score in results.scores:
            if score.model == found.model:
                summary[N_(f"{label[score.criterion]} (session {name})")] = score.mean.words()
        for choice in results.choices:
            if choice.model == found.model and choice.category == ALL_PROMPTS:
                summary[N_(f"{label[choice.criterion]} pass rate (session {name})")] = choice.passed.words()
        for win in results.wins:
            if win.model == found.model:
                summary[N_(f"Against {win.opponent} (session {name})")] = N_(
                    f"wins {win.wins.words()}, ties {win.ties.words()}, losses {win.losses.words()}")
    return summary
