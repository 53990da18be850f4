"""The board's rows from the database (SQLite and PostgreSQL): the light
open-ticket query and the timeline agree with the ticket JSON of `spocd show`."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from daemon.app import board, slaclock, views
from daemon.core.domain import Status
from tests.support.flow import ingest
from tests.support.mail import make_mail


def test_rows_agree_with_ticket_json(app: Any, clock: Any) -> None:
    start = datetime.fromisoformat("2026-12-21T09:00:00+01:00")  # a Monday
    clock.set(start)
    for n in range(1, 7):
        ingest(app, make_mail(subject=f"Problem {n}", sender=f"user{n}@client.example"))
        clock.advance(timedelta(hours=5))
    rules = app.runtime.rules
    with app.store.transaction() as tx:
        for number, change in ((2, {"priority": "P1"}), (3, {"status": "pending"})):
            ticket = tx.tickets.get(number, for_update=True)
            for key, value in change.items():
                setattr(ticket, key, value)
            slaclock.reschedule(tx, ticket, rules, clock.now())
            tx.tickets.save(ticket)
        closed = tx.tickets.get(6, for_update=True)
        closed.status = Status.RESOLVED
        closed.resolved_at = clock.now()
        tx.tickets.save(closed)
    now = clock.now() + timedelta(days=3)
    with app.store.reading() as tx:
        data = board.snapshot(tx, app.runtime.settings, rules, now, {})
        full = {t.number: t for t in tx.tickets.listing(None)}
    rows = data["rows"]
    assert [r.number for r in rows if r.number == 6] == []
    assert {r.number for r in rows} == {1, 2, 3, 4, 5}
    for r in rows:
        shown = views.ticket_json(full[r.number], "HD", rules, now)
        assert r.sla_state == shown["sla_state"], r.number
        assert r.priority == shown["priority"] and r.contract is None
        policy = slaclock.policy_of(full[r.number], rules)
        at = full[r.number].paused_at or now
        expected = board.seconds_left(policy.calendar, r.due, at)
        assert abs(r.seconds_left - expected) < 0.01
    assert [r.seconds_left for r in rows] == sorted(r.seconds_left for r in rows)
    assert data["counts"]["open"] == 5
