"""Waiting between polls of a selected folder: IDLE where the server offers
it (ended and re-issued every poll interval, so a dead connection is noticed
and the mailbox's health recorded), else a sleep of `poll_seconds`; SIGTERM
is heard within `IDLE_CHECK_SECONDS` either way."""

from __future__ import annotations

import re
import threading
import time
from typing import TYPE_CHECKING, Any

from daemon.mail.imap_plan import idle_cycle

if TYPE_CHECKING:
    from daemon.adapters.imap.session import Session

_NEW_MAIL_LINE = re.compile(rb"\* \d+ (?:EXISTS|RECENT)\r?\n?\Z", re.IGNORECASE)

#: How long one IDLE wait lasts before the stop flag is looked at again:
#: SIGTERM ends an IDLE within about this time.
IDLE_CHECK_SECONDS = 1.0


class ConnectionLost(Exception):
    """The server said BYE or closed the connection."""


def wait(session: Session, stop: threading.Event) -> None:
    """Until new mail may be there: IDLE, or a sleep of poll_seconds."""
    if not (session.m.idle and session.can_idle):
        end = time.monotonic() + session.m.poll_seconds
        while not stop.is_set() and (left := end - time.monotonic()) > 0:
            stop.wait(min(left, IDLE_CHECK_SECONDS))
            session.intake._settle(session)
        return
    cycle = idle_cycle(session.m.poll_seconds)
    session.client.idle()
    session.guard.extend(cycle)
    # Mail that came since the last search may be announced in the packet
    # that started IDLE, already read: then there is nothing to wait for.
    if not _announced(session):
        _idle(session, stop, time.monotonic() + cycle)
    session.client.idle_done()


def _announced(session: Session) -> bool:
    """New mail among the responses that came with "+ idling" (read here, so
    any other response there cannot end every IDLE at once)."""
    lines = session.guard.buffered_lines()
    if any(line[:5].upper() == b"* BYE" for line in lines):
        raise ConnectionLost("the server said BYE as IDLE began")
    return any(_NEW_MAIL_LINE.match(line) for line in lines)


def _idle(session: Session, stop: threading.Event, deadline: float) -> None:
    quiet_returns = 0
    while not stop.is_set():
        session.intake._settle(session)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        timeout = min(IDLE_CHECK_SECONDS, remaining)
        started = time.monotonic()
        responses = session.client.idle_check(timeout=timeout)
        if any(_is_bye(r) for r in responses):
            raise ConnectionLost("the server said BYE during IDLE")
        if any(_is_new_mail(r) for r in responses):
            return
        # At EOF the socket polls readable at once and yields nothing, for
        # ever: a few such returns in a row mean the connection is gone.
        if not responses and time.monotonic() - started < timeout / 2:
            quiet_returns += 1
            if quiet_returns >= 3:
                raise ConnectionLost("the connection closed during IDLE")
        else:
            quiet_returns = 0


def _is_new_mail(response: Any) -> bool:
    return (
        isinstance(response, tuple)
        and len(response) >= 2
        and isinstance(response[0], int)
        and response[1] in (b"EXISTS", b"RECENT")
    )


def _is_bye(response: Any) -> bool:
    return isinstance(response, tuple) and bool(response) and response[0] == b"BYE"
