"""How a text ends: with a closing formula ("Pozdrawiam", "Kind regards"),
and a name under it or beside it, or neither.

An agent's reply that signs itself must not get a second closing from the
template ("Pozdrawiam serdecznie, Anna" and then "Z poważaniem, Anna"); the
requester's answer ends where the closing begins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from daemon.core.text import is_signature_delimiter

_FORMULAS = (
    # Polish, with and without the diacritics people leave out on the phone
    r"pozdrawiam\w*(?: (?:serdecznie|ciep[lł]o|wszystkich))?",
    r"serdecznie pozdrawiam\w*",
    r"pozdr\.?",
    r"(?:serdeczne |[lł][aą]cz[eę] (?:serdeczne )?)?pozdrowienia",
    r"z (?:serdecznymi )?pozdrowieniami",
    r"z powa[zż]aniem",
    r"z wyrazami szacunku",
    r"dzi[eę]kuj[eę] i pozdrawiam",
    # English
    r"(?:(?:with )?(?:kind|best|warm|warmest|many) )?regards",
    r"(?:best|kind|warm) wishes",
    r"all the best",
    r"best",
    r"br",
    r"cheers",
    r"(?:yours )?(?:sincerely|faithfully|truly)",
)
_CLOSING = re.compile(rf"(?:{'|'.join(_FORMULAS)})(?P<rest>.{{0,60}})", re.IGNORECASE)

#: A signature under a closing: a name, a role, a phone number, a company.
MAX_SIGNATURE_LINES = 5
MAX_SIGNATURE_LINE = 80
#: A closing with a name beside it is short; a longer line is text.
MAX_CLOSING_LINE = 100


@dataclass(frozen=True, slots=True)
class Ending:
    closing: bool  # the text ends with a closing formula ...
    named: bool  # ... and a name (or a whole signature) under or beside it


UNSIGNED = Ending(closing=False, named=False)


def closing_name(line: str) -> str | None:
    """None when `line` is no closing; else the name written beside the
    formula ("Regards, Anna" gives "Anna"), or "" when there is none."""
    line = line.strip()
    if len(line) > MAX_CLOSING_LINE:  # also keeps the pattern's work bounded
        return None
    found = _CLOSING.fullmatch(line)
    if found is None:
        return None
    rest = found["rest"].strip()
    if rest in ("", ",", ".", "!", ",!"):
        return ""
    if rest[0] != ",":
        return None  # "Best way is to restart": a sentence, not a closing
    name = rest[1:].strip()
    return name if _looks_like_name(name) else None


def is_closing(line: str) -> bool:
    return closing_name(line) is not None


def ending(text: str) -> Ending:
    """How `text` ends, looking at its last few lines only: a closing in the
    middle of a long text is a quotation or a story, not the text's end."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    tail = lines[-(MAX_SIGNATURE_LINES + 1) :]
    for i in range(len(tail) - 1, -1, -1):
        line = tail[i]
        if is_signature_delimiter(line):  # a signature block (a CLI reply's: mail has it cut)
            return Ending(closing=True, named=True)
        name = closing_name(line)
        if name is None:
            continue
        under = tail[i + 1 :]
        if any(len(u) > MAX_SIGNATURE_LINE for u in under):
            return UNSIGNED  # text goes on after it
        return Ending(closing=True, named=bool(name or under))
    return UNSIGNED


def _looks_like_name(text: str) -> bool:
    """One to four words, each with a capital: "Anna", "Anna Zielińska",
    "IT Team"; "it works now" is not."""
    words = text.split()
    return 1 <= len(words) <= 4 and all(w[0].isupper() for w in words)


#: A display name longer than this is not a name to sign with.
MAX_SIGNER_NAME = 64


def signer_name(display: str) -> str:
    """The display name of an agent's From as a name to sign their mail with,
    or "" when it is none: empty, an address ("anna@firma.pl"), too long, or
    without a letter. Parsing made it one line without control characters;
    the composer shows a bidi control in it as in any user text (`printable`)."""
    name = " ".join(display.split()).strip("\"' ")
    if not name or len(name) > MAX_SIGNER_NAME or "@" in name or "<" in name:
        return ""
    return name if any(ch.isalpha() for ch in name) else ""
