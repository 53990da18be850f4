"""Which ticket a message belongs to: subject tags, then references.

Pure: the caller passes a lookup of stored Message-IDs, so this module decides
without knowing about storage.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from daemon.core.domain import ParsedMessage
from daemon.mail import msgid

#: Reply/forward prefixes in the languages our requesters' clients use:
#: English, German (AW, WG), Polish (Odp, PD), Scandinavian (SV, VS), Dutch
#: (Antw, Doorst), French (TR, RE), Italian (R, RIF, I), Spanish (RV, RE), with
#: counters such as Re[2] or Re^2.
_PREFIX_RE = re.compile(
    r"^\s*(?:(?:re|fwd?|aw|wg|odp|pd|sv|vs|antw|doorst|tr|rif|rv|enc|res|ynt|přeposlat)"
    r"(?:\s*\[\d+\]|\^\d+)?\s*[:：]\s*)+",
    re.IGNORECASE,
)


@lru_cache(maxsize=16)
def tag_pattern(prefix: str) -> re.Pattern[str]:
    """`[HD-42]`, `[hd-0042]`, `[ HD - 42 ]` anywhere in a subject."""
    return re.compile(rf"\[\s*{re.escape(prefix)}\s*-\s*0*(\d{{1,12}})\s*\]", re.IGNORECASE)


def format_tag(prefix: str, number: int) -> str:
    return f"[{prefix}-{number}]"


def find_tag(subject: str, prefix: str) -> int | None:
    """The first ticket number tagged in a subject."""
    match = tag_pattern(prefix).search(subject)
    if not match:
        return None
    number = int(match.group(1))
    return number or None


def clean_subject(subject: str, prefix: str) -> str:
    """The subject without tags and Re:/Fwd: prefixes (ticket JSON `subject`)."""
    text = tag_pattern(prefix).sub(" ", subject)
    previous = None
    while previous != text:
        previous = text
        text = _PREFIX_RE.sub("", text).strip()
    return re.sub(r"\s{2,}", " ", text).strip()


@dataclass(frozen=True, slots=True)
class ThreadMatch:
    """Where a message goes: an existing ticket, found how, or a new one."""

    ticket: int | None
    via: str | None = None  # "tag" | "own-reference" | "reference"
    tagged: int | None = None  # the tag in the subject, even if not obeyed


def referenced_ids(msg: ParsedMessage) -> list[str]:
    """In-Reply-To first, then References newest first, without repeats."""
    seen: set[str] = set()
    out: list[str] = []
    for ref in (*msg.in_reply_to, *reversed(msg.references)):
        if ref not in seen:
            seen.add(ref)
            out.append(ref)
    return out


def find_thread(
    msg: ParsedMessage,
    *,
    prefix: str,
    key: bytes,
    domain: str,
    lookup: Callable[[str], int | None],
) -> ThreadMatch:
    """SPEC §4: the tag wins; else a signed own reference; else a stored one.

    An own-domain reference whose signature fails is ignored (never looked up),
    so a guessed Message-ID cannot attach mail to somebody else's ticket.
    """
    tagged = find_tag(msg.subject, prefix)
    if tagged is not None:
        return ThreadMatch(tagged, "tag", tagged)
    for ref in referenced_ids(msg):
        if msgid.is_own(ref, domain):
            number = msgid.verified_ticket(key, domain, ref)
            if number is not None:
                return ThreadMatch(number, "own-reference")
            continue
        number = lookup(ref)
        if number is not None:
            return ThreadMatch(number, "reference")
    return ThreadMatch(None)
