"""Drive the application the way mail arrives: queue, process, send."""

from __future__ import annotations

from typing import Any

from daemon.core.domain import Intake
from daemon.ports import QueuedRaw


def ingest(app: Any, raw: bytes, *, escalation: bool = False, send: bool = True) -> Any:
    """One message through the inbound queue and the pipeline; then the outbox."""
    with app.store.transaction() as tx:
        item_id = tx.inbound.add(
            QueuedRaw(raw=raw, intake=Intake.INGEST, escalation=escalation), app.clock.now()
        )
    outcome = app.inbound.process_item(item_id)
    if send:
        app.sender.send_due()
    return outcome


def ticket(app: Any, number: int) -> Any:
    with app.store.reading() as tx:
        return tx.tickets.get(number)


def events(app: Any, number: int) -> list[Any]:
    with app.store.reading() as tx:
        return tx.events.of_ticket(number)


def messages(app: Any, number: int) -> list[Any]:
    with app.store.reading() as tx:
        return tx.messages.of_ticket(number)


def last_out(app: Any, number: int, kind: str) -> Any:
    """The newest outgoing message of a kind on a ticket (to reply to it)."""
    found = [m for m in messages(app, number) if m.direction == "out" and m.kind == kind]
    return found[-1]
