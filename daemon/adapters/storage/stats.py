"""Counts for health and metrics, read in one short read-only transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, func, select, text

from daemon.adapters.storage.models import INBOUND, MAILBOX_STATE, OUTBOX, TICKETS

OPEN = ("new", "assigned", "in_progress", "pending")


@dataclass(frozen=True, slots=True)
class Stats:
    inbound: dict[str, int] = field(default_factory=dict)  # by state
    outbox: dict[str, int] = field(default_factory=dict)  # by state
    open_by_priority: dict[str, int] = field(default_factory=dict)
    mailboxes: list[dict[str, Any]] = field(default_factory=list)


def ping(engine: Engine) -> None:
    """Raises when the database cannot be reached."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def read_stats(engine: Engine) -> Stats:
    inbound, outbox, tickets, boxes = (
        INBOUND,
        OUTBOX,
        TICKETS,
        MAILBOX_STATE,
    )
    with engine.connect() as conn:
        conn = conn.execution_options(readonly=True)
        with conn.begin():
            by_inbound = dict(
                conn.execute(select(inbound.c.state, func.count()).group_by(inbound.c.state)).all()
            )
            by_outbox = dict(
                conn.execute(select(outbox.c.state, func.count()).group_by(outbox.c.state)).all()
            )
            by_priority = dict(
                conn.execute(
                    select(tickets.c.priority, func.count())
                    .where(tickets.c.status.in_(OPEN))
                    .group_by(tickets.c.priority)
                ).all()
            )
            mailboxes = [dict(row._mapping) for row in conn.execute(select(boxes))]
    return Stats(
        inbound=by_inbound, outbox=by_outbox, open_by_priority=by_priority, mailboxes=mailboxes
    )
