"""Low-quality answers: the checks behind the cleaning step "low_quality", one function per problem.

Each check looks at one conversation and says, in words, what is wrong, or nothing. They work the same
on Chinese and English text (no word splitting).
"""

from __future__ import annotations

import re
import zlib

from core.data.formats import Message
from core.data.similarity import comparable
from core.text import N_

DEFAULT_MIN_RESPONSE_CHARS = 2

# UTF-8 read as Windows-1252/Latin-1 ("Ã©", "â€™"), GBK garbage ("锟斤拷", "烫烫烫"), replacement
# characters, and control characters that never belong in chat text.
_MOJIBAKE = re.compile(
    "\ufffd|锟斤拷|烫烫烫|屯屯屯"
    "|[ÂÃâ][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013\u2014"
    "\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]"
    "|[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]")
_MOJIBAKE_START = re.compile("[\ufffd锟烫屯ÂÃâ\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]")  # one cheap scan first
_PLACEHOLDER = re.compile(
    r"(todo|tbd|tba|fixme|x{3,}|placeholder|n/?a|null|none|nan|undefined|lorem ipsum.*|\.{3,}|…+|\?+|-+|_+"
    r"|待补充|待定|待完善|暂无|略|同上|答案|回答|\[[^\]]*\]|<[^>]*>|\{\{[^}]*\}\})[.。!！]?",
    re.IGNORECASE | re.DOTALL)
# Inside a longer answer, looked for in the case-folded text and only when its marker is there.
_PLACEHOLDER_INSIDE = (("lorem ipsum", re.compile("lorem ipsum")), ("[", re.compile(r"\[(?:insert|your|add) [^\]]*\]")),
                       ("{{", re.compile(r"\{\{\s*\w+\s*\}\}")), ("", re.compile(r"^(?:todo|tbd|fixme)\b")))
_NOT_WORD = re.compile(r"[\W_]+")
_REPEATED_RUN = re.compile(r"(.{1,50}?)\1{5,}", re.DOTALL)  # a piece written six or more times in a row
_RUNAWAY_MIN_CHARS = 32
_RUNAWAY_MAX_RATIO = 0.35   # zlib output / input: ordinary prose stays well above this
_RUNAWAY_CERTAIN_RATIO = 0.1
_PROBE_CHARS, _PROBE_REPEATS = 4, 3
_RUNAWAY_COVERAGE = 0.5     # the repeated run covers at least half the answer


def _answers(messages: list[Message]) -> list[str]:
    return [m["content"] for m in messages if m["role"] == "assistant"]


def empty_answer(messages: list[Message]) -> str | None:
    if any(not answer.strip() for answer in _answers(messages)):
        return N_("empty response")
    return None


def short_answer(messages: list[Message], min_chars: int) -> str | None:
    if sum(len(answer.strip()) for answer in _answers(messages)) < min_chars:
        return N_(f"response shorter than {min_chars} characters")
    return None


def repeats_prompt(messages: list[Message], folded: list[str]) -> str | None:
    """An answer that only says the question back (ignoring case, spaces, punctuation and width).
    `folded` holds each message's text after `comparable`."""
    for position in range(1, len(messages)):
        question, answer = folded[position - 1], folded[position]
        if messages[position]["role"] != "assistant" or len(answer) > 2 * len(question) + 16:
            continue   # much longer than the question: not a repeat (and not worth stripping)
        asked = _NOT_WORD.sub("", question)
        if asked and asked == _NOT_WORD.sub("", answer):
            return N_("response repeats the prompt")
    return None


def runaway_repetition(messages: list[Message]) -> str | None:
    """The same piece of text over and over (a generation loop): a piece of it recurs, the text
    compresses extremely well, and a run of one piece repeated covers half of it (cheapest test first)."""
    for answer in _answers(messages):
        if len(answer) < _RUNAWAY_MIN_CHARS or not _repeats_somewhere(answer):
            continue
        data = answer.encode("utf-8")
        ratio = len(zlib.compress(data, 1)) / len(data)
        if ratio > _RUNAWAY_MAX_RATIO:
            continue
        if ratio < _RUNAWAY_CERTAIN_RATIO:   # only text that is nearly all repeats packs this small
            return N_("runaway repetition")
        longest = max((m.end() - m.start() for m in _REPEATED_RUN.finditer(answer)), default=0)
        if longest >= _RUNAWAY_COVERAGE * len(answer):
            return N_("runaway repetition")
    return None


def _repeats_somewhere(text: str) -> bool:
    """A quick necessary condition: a run covering half the text contains one of the quarter points, so
    a short piece taken there recurs several times (str.count is far cheaper than compressing)."""
    size = len(text)
    return any(text.count(text[point:point + _PROBE_CHARS]) >= _PROBE_REPEATS
               for point in (size // 4, size // 2, 3 * size // 4))


def mojibake(messages: list[Message]) -> str | None:
    text = "\n".join(message["content"] for message in messages)
    found = _MOJIBAKE.search(text) if _MOJIBAKE_START.search(text) else None
    if found is None:
        return None
    role = next(m["role"] for m in messages if found.group() in m["content"])
    return N_(f"mojibake or control characters ({found.group()!r} in the {role} text)")


def placeholder(messages: list[Message], folded: list[str]) -> str | None:
    for message, text in zip(messages, folded):
        if message["role"] != "assistant" or not text:
            continue
        if _PLACEHOLDER.fullmatch(text) or any(mark in text and pattern.search(text) for mark, pattern in _PLACEHOLDER_INSIDE):
            return N_(f"placeholder text ({message['content'].strip()[:40]!r})")
    return None


def problems(messages: list[Message], min_chars: int = DEFAULT_MIN_RESPONSE_CHARS,
             folded: list[str] | None = None) -> list[str]:
    """What is wrong with this conversation's answers, in words (empty when nothing is). `folded` is
    each message's text after `comparable`, when the caller has it already."""
    if empty := empty_answer(messages):
        return [empty]  # says it all: the other checks would only repeat it
    folded = folded if folded is not None else [comparable(m["content"]) for m in messages]
    found = (short_answer(messages, min_chars), repeats_prompt(messages, folded), runaway_repetition(messages),
             mojibake(messages), placeholder(messages, folded))
    return [problem for problem in found if problem]
