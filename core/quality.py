"""Low-quality answers: the checks behind the cleaning step "low_quality", one function per problem.

Each check looks at one conversation and says, in words, what is wrong, or nothing. They work the same
on Chinese and English text (no word splitting).
"""

from __future__ import annotations

import re
import zlib
from core.formats import Message
from core.similarity import comparable

DEFAULT_MIN_RESPONSE_CHARS = 2

# UTF-8 read as Windows-1252/Latin-1 ("Ã©", "â€™"), GBK garbage ("锟斤拷", "烫烫烫"), replacement
# characters, and control characters that never belong in chat text.
_MOJIBAKE = re.compile(
    "\ufffd|锟斤拷|烫烫烫|屯屯屯"
    "|[ÂÃâ][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013\u2014"
    "\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]"
    "|[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]")
_PLACEHOLDER = re.compile(
    r"(todo|tbd|tba|fixme|x{3,}|placeholder|n/?a|null|none|nan|undefined|lorem ipsum.*|\.{3,}|…+|\?+|-+|_+"
    r"|待补充|待定|待完善|暂无|略|同上|答案|回答|\[[^\]]*\]|<[^>]*>|\{\{[^}]*\}\})[.。!！]?",
    re.IGNORECASE | re.DOTALL)
_PLACEHOLDER_INSIDE = re.compile(r"lorem ipsum|\[(?:insert|your|add) [^\]]*\]|\{\{\s*\w+\s*\}\}|^(?:todo|tbd|fixme)\b",
                                 re.IGNORECASE)
_NOT_WORD = re.compile(r"[\W_]+")
_REPEATED_RUN = re.compile(r"(.{1,50}?)\1{5,}", re.DOTALL)  # a piece written six or more times in a row
_RUNAWAY_MIN_CHARS = 32
_RUNAWAY_MAX_RATIO = 0.35   # zlib output / input: ordinary prose stays well above this
_RUNAWAY_COVERAGE = 0.5     # the repeated run covers at least half the answer


def _answers(messages: list[Message]) -> list[str]:
    return [m["content"] for m in messages if m["role"] == "assistant"]


def empty_answer(messages: list[Message]) -> str | None:
    if any(not answer.strip() for answer in _answers(messages)):
        return "empty response"
    return None


def short_answer(messages: list[Message], min_chars: int) -> str | None:
    if sum(len(answer.strip()) for answer in _answers(messages)) < min_chars:
        return f"response shorter than {min_chars} characters"
    return None


def repeats_prompt(messages: list[Message]) -> str | None:
    """An answer that only says the question back (ignoring case, spaces, punctuation and width)."""
    for question, answer in zip(messages, messages[1:]):
        if question["role"] == "user" and answer["role"] == "assistant":
            asked = _NOT_WORD.sub("", comparable(question["content"]))
            if asked and asked == _NOT_WORD.sub("", comparable(answer["content"])):
                return "response repeats the prompt"
    return None


def runaway_repetition(messages: list[Message]) -> str | None:
    """The same piece of text over and over (a generation loop): such text compresses extremely well,
    which is checked first because it is cheap, then the repeated run is found."""
    for answer in _answers(messages):
        data = answer.encode("utf-8")
        if len(answer) < _RUNAWAY_MIN_CHARS or len(zlib.compress(data)) > _RUNAWAY_MAX_RATIO * len(data):
            continue
        longest = max((m.end() - m.start() for m in _REPEATED_RUN.finditer(answer)), default=0)
        if longest >= _RUNAWAY_COVERAGE * len(answer):
            return "runaway repetition"
    return None


def mojibake(messages: list[Message]) -> str | None:
    for message in messages:
        found = _MOJIBAKE.search(message["content"])
        if found:
            return f"mojibake or control characters ({found.group()!r} in the {message['role']} text)"
    return None


def placeholder(messages: list[Message]) -> str | None:
    for answer in _answers(messages):
        stripped = answer.strip()
        if stripped and (_PLACEHOLDER.fullmatch(stripped) or _PLACEHOLDER_INSIDE.search(stripped)):
            return f"placeholder text ({stripped[:40]!r})"
    return None


def problems(messages: list[Message], min_chars: int = DEFAULT_MIN_RESPONSE_CHARS) -> list[str]:
    """What is wrong with this conversation's answers, in words (empty when nothing is)."""
    if empty := empty_answer(messages):
        return [empty]  # says it all: the other checks would only repeat it
    found = (short_answer(messages, min_chars), repeats_prompt(messages), runaway_repetition(messages),
             mojibake(messages), placeholder(messages))
    return [problem for problem in found if problem]
