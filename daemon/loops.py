"""Is this mail automatic? RFC 3834 and the habits of real mail systems.

Nothing automatic is ever answered automatically: that is what keeps two
auto-responders from mailing each other forever.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from daemon.domain import ParsedMessage

LOOP_HEADER = "x-spocd-loop"
_BOUNCE_SENDER_RE = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mailerdaemon)@", re.I)


@dataclass(frozen=True, slots=True)
class Automatic:
    """Why a message must not get an automatic answer."""

    kind: str  # "own" | "bounce" | "auto-reply" | "list" | "bulk"
    reason: str


def classify(
    msg: ParsedMessage, own_domain: str, own_addresses: frozenset[str] = frozenset()
) -> Automatic | None:
    """The first reason this message is automatic, or None for a person's mail."""
    if msg.header(LOOP_HEADER) is not None:
        return Automatic("own", f"carries {LOOP_HEADER}")
    if msg.message_id.lower().endswith("@" + own_domain.lower()):
        return Automatic("own", "Message-ID of our own domain")
    if msg.sender and msg.sender.addr in own_addresses:
        return Automatic("own", f"sent from our own address {msg.sender.addr}")
    if msg.content_type == "multipart/report":
        return Automatic("bounce", "multipart/report (delivery status notification)")
    return_path = (msg.header("return-path") or "").strip()
    if return_path in ("<>", "") and msg.header("return-path") is not None:
        return Automatic("bounce", "null return path")
    if msg.sender and _BOUNCE_SENDER_RE.match(msg.sender.addr):
        return Automatic("bounce", f"sent by {msg.sender.addr}")
    auto = (msg.header("auto-submitted") or "").strip().lower()
    if auto and not auto.startswith("no"):
        return Automatic("auto-reply", f"Auto-Submitted: {auto}")
    for name in ("x-autoreply", "x-autorespond", "x-auto-reply"):
        if msg.header(name) is not None:
            return Automatic("auto-reply", f"{name} header")
    precedence = (msg.header("precedence") or "").strip().lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return Automatic("bulk", f"Precedence: {precedence}")
    for name in ("list-id", "list-unsubscribe"):
        if msg.header(name) is not None:
            return Automatic("list", f"{name} header")
    return None
