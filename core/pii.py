"""Personal data in text: e-mail addresses, phone numbers (mainland-China mobiles and landlines,
international numbers), mainland ID-card numbers, and URLs that carry a token or key.

The patterns are deliberately strict (whole numbers, not digits inside longer runs) so that order
numbers, years and the short fictional phone numbers of the demo data are not flagged.
"""

from __future__ import annotations

import re

MASKS = {"email": "[EMAIL]", "phone": "[PHONE]", "id_card": "[ID_NUMBER]", "url_token": "[URL]"}
KINDS = tuple(MASKS)

_PATTERN = re.compile(
    r"(?P<url_token>https?://(?:[^\s/:@\"'<>]+:[^\s/@\"'<>]+@"              # user:password@host
    r"|[^\s\"'<>]*?[?&#](?:access_token|token|api_?key|key|secret|sig|signature|password|passwd|auth|session|code)"
    r"=[^\s&#\"'<>]+)[^\s\"'<>]*)"
    r"|(?P<email>[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})"
    r"|(?P<id_card>(?<![0-9A-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[0-9Xx]"
    r"(?![0-9A-Za-z]))"
    r"|(?P<phone>(?<![\d+])(?:"
    r"(?:\+?86[-\s]?)?1[3-9]\d(?:[-\s]?\d{4}){2}"                        # mainland mobile
    r"|0\d{2,3}-\d{7,8}"                                                 # mainland landline with area code
    r"|\+\d{1,3}[-\s.]?(?:\(\d{1,4}\)[-\s.]?)?\d{2,4}(?:[-\s.]?\d{2,4}){2,4}"  # international, with +
    r"|\(?\d{3}\)?[-\s.]\d{3}[-\s.]\d{4}"                                # North American
    r")(?!\d))"
)


def find(text: str) -> set[str]:
    """The kinds of personal data in `text` (a subset of KINDS)."""
    return {match.lastgroup for match in _PATTERN.finditer(text) if match.lastgroup}


def mask(text: str) -> str:
    """`text` with every piece of personal data replaced by a placeholder such as [EMAIL]."""
    return _PATTERN.sub(lambda match: MASKS[match.lastgroup or "email"], text)
