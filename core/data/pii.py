"""Personal data in text: e-mail addresses, phone numbers (mainland-China mobiles and landlines,
international numbers), mainland ID-card numbers, and URLs that carry a token or key.

The patterns are deliberately strict (whole numbers, not digits inside longer runs) so that order
numbers, years and the short fictional phone numbers of the demo data are not flagged.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

MASKS = {"email": "[EMAIL]", "phone": "[PHONE]", "id_card": "[ID_NUMBER]", "url_token": "[URL]"}
KINDS = tuple(MASKS)

# URLs with credentials and e-mail addresses are looked for only when "://" or "@" is in the text.
_URL_TOKEN = re.compile(
    r"https?://(?:[^\s/:@\"'<>]+:[^\s/@\"'<>]+@"                             # user:password@host
    r"|[^\s\"'<>]*?[?&#](?:access_token|token|api_?key|key|secret|sig|signature|password|passwd|auth|session"
    r"|code)=[^\s&#\"'<>]+)[^\s\"'<>]*")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# ID and phone numbers are looked for only inside runs of digits, spaces, dashes and brackets: finding
# the runs is one cheap pass (it starts at a digit), while the number patterns are costly when tried at
# every position. A run takes in a "+" or "(" just before it.
_NUMBER_RUN = re.compile(r"\d[\d\s().-]{4,}\d[Xx]?")
_ID_CARD = re.compile(r"(?<!\d)[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[0-9Xx](?!\d)")
_PHONE = re.compile(
    r"(?<![\d+])(?:"
    r"(?:\+?86[-\s]?)?1[3-9]\d(?:[-\s]?\d{4}){2}"                          # mainland mobile
    r"|0\d{2,3}-\d{7,8}"                                                   # mainland landline with area code
    r"|\+\d{1,3}[-\s.]?(?:\(\d{1,4}\)[-\s.]?)?\d{2,4}(?:[-\s.]?\d{2,4}){2,4}"  # international, with +
    r"|\(?\d{3}\)?[-\s.]\d{3}[-\s.]\d{4}"                                  # North American
    r")(?!\d)")


def _number_runs(text: str) -> Iterator[tuple[int, int]]:
    for run in _NUMBER_RUN.finditer(text):
        start = run.start()
        while start and text[start - 1] in "+(":
            start -= 1
        yield start, run.end()


def find(text: str) -> set[str]:
    """The kinds of personal data in `text` (a subset of KINDS)."""
    kinds = set()
    if "://" in text and _URL_TOKEN.search(text):
        kinds.add("url_token")
    if "@" in text and _EMAIL.search(text):
        kinds.add("email")
    for start, end in _number_runs(text):
        if _ID_CARD.search(text, start, end):
            kinds.add("id_card")
        if _PHONE.search(text[start:end]):
            kinds.add("phone")
    return kinds


def mask(text: str) -> str:
    """`text` with every piece of personal data replaced by a placeholder such as [EMAIL]."""
    if "://" in text:
        text = _URL_TOKEN.sub(MASKS["url_token"], text)   # first: a URL may hold an address or digits
    if "@" in text:
        text = _EMAIL.sub(MASKS["email"], text)
    pieces, done = [], 0
    for start, end in _number_runs(text):
        run = _PHONE.sub(MASKS["phone"], _ID_CARD.sub(MASKS["id_card"], text[start:end]))
        pieces += [text[done:start], run]
        done = end
    return "".join(pieces) + text[done:]
