"""spocd's own Message-IDs: they name the ticket and carry a keyed signature.

A reply that references one of our Message-IDs can then be threaded without a
database lookup, and a forged reference (a guessed ticket number) is refused
because its signature does not verify.
"""

from __future__ import annotations

import hmac
import re

_OWN_RE = re.compile(r"^spocd\.(\d{1,12})\.([0-9a-z]{4,40})\.([0-9a-f]{20})@(.+)$", re.IGNORECASE)


def _signature(key: bytes, ticket: int, nonce: str) -> str:
    # The one-shot form: OpenSSL's HMAC in one call, without an HMAC object
    # and two hash objects built per Message-ID.
    return hmac.digest(key, f"{ticket}.{nonce}".encode(), "sha256").hex()[:20]


def make_message_id(key: bytes, domain: str, ticket: int | None, nonce: str) -> str:
    """A new Message-ID (without angle brackets); ticket 0 when there is none."""
    number = ticket or 0
    nonce = nonce.lower()
    return f"spocd.{number}.{nonce}.{_signature(key, number, nonce)}@{domain.lower()}"


def is_own(message_id: str, domain: str) -> bool:
    """True for any id in our own domain, signed or not (loop protection)."""
    return message_id.lower().rpartition("@")[2] == domain.lower()


def is_signed(key: bytes, domain: str, message_id: str) -> bool:
    """True for a Message-ID we made (ticket or not): its signature verifies."""
    match = _OWN_RE.match(message_id.strip())
    if not match or match.group(4).lower() != domain.lower():
        return False
    number, nonce, sig = int(match.group(1)), match.group(2).lower(), match.group(3).lower()
    return hmac.compare_digest(_signature(key, number, nonce), sig)


def verified_ticket(key: bytes, domain: str, message_id: str) -> int | None:
    """The ticket an own Message-ID names, if its signature verifies."""
    if not is_signed(key, domain, message_id):
        return None
    return int(message_id.strip().split(".", 2)[1]) or None
