"""Where mail addresses stand in free text: bounces and forwards name them in prose.

Pure and linear in the text's length (hostile text cannot make it slow).
"""

from __future__ import annotations

import re

_LOCAL_EXTRA = frozenset(".!#$%&'*+/=?^`{|}~-_")
_DOMAIN_AT = re.compile(r"[\w-]+(?:\.[\w-]+)+")


def address_spans(text: str) -> list[tuple[int, int]]:
    """Where mail addresses stand in free text, in linear time.

    A regular expression for addresses searched over text restarts at every
    position and rescans each run of letters: quadratic on the long hostile
    lines a bounce or forward may carry. Here each `@` is expanded once, at most
    64 characters to the left (RFC 5321's local-part limit) and 255 to the right.
    """
    spans: list[tuple[int, int]] = []
    at = text.find("@")
    while at != -1:
        start = at
        while (
            at - start < 64
            and start > 0
            and (text[start - 1].isalnum() or text[start - 1] in _LOCAL_EXTRA)
        ):
            start -= 1
        while start < at and text[start] == ".":
            start += 1
        domain = _DOMAIN_AT.match(text, at + 1, min(len(text), at + 256))
        if start < at and domain:
            spans.append((start, domain.end()))
        at = text.find("@", at + 1)
    return spans


def find_addresses(text: str) -> list[str]:
    """The mail addresses in free text, lower-cased, in order of appearance."""
    return [text[a:b].lower() for a, b in address_spans(text)]
