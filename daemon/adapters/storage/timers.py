"""Timers (SLA deadlines, reminders, jobs) and settings: small keyed rows
the scheduler and the store read and move.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, insert, select, update

from daemon.adapters.storage import direct
from daemon.adapters.storage.base import Repo
from daemon.adapters.storage.models import SETTINGS, TIMERS
from daemon.ports import Timer

_TIMERS_OF_TICKET = (
    select(TIMERS).where(TIMERS.c.ticket_id == bindparam("ticket")).order_by(TIMERS.c.id)
)
_DISCARD = delete(TIMERS).where(TIMERS.c.id == bindparam("timer"), TIMERS.c.done_at.is_(None))


class SqlTimers(Repo):
    def set(
        self,
        ticket_number: int,
        kind: str,
        key: str,
        due_at: datetime,
        detail: dict[str, Any] | None = None,
    ) -> None:
        where = and_(
            TIMERS.c.ticket_id == ticket_number, TIMERS.c.kind == kind, TIMERS.c.key == key
        )
        existing = self.conn.execute(select(TIMERS.c.id, TIMERS.c.done_at).where(where)).first()
        if existing is None:
            self.conn.execute(
                insert(TIMERS).values(
                    ticket_id=ticket_number, kind=kind, key=key, due_at=due_at, detail=detail or {}
                )
            )
        elif existing.done_at is None:
            self.conn.execute(
                update(TIMERS)
                .where(TIMERS.c.id == existing.id)
                .values(due_at=due_at, detail=detail or {})
            )

    def add_many(
        self, ticket_number: int, timers: Sequence[tuple[str, str, datetime, dict[str, Any]]]
    ) -> None:
        """New timers in one statement (the caller knows none of them exists)."""
        direct.insert_rows(
            self.conn,
            TIMERS,
            [
                dict(ticket_id=ticket_number, kind=kind, key=key, due_at=due_at, detail=detail)
                for kind, key, due_at, detail in timers
            ],
        )

    def move(self, timer_id: int, due_at: datetime, detail: dict[str, Any]) -> None:
        self._update(TIMERS, timer_id, {"due_at": due_at, "detail": detail})

    def cancel(self, ticket_number: int, kinds: Iterable[str]) -> None:
        self.conn.execute(
            delete(TIMERS).where(
                TIMERS.c.ticket_id == ticket_number,
                TIMERS.c.kind.in_(list(kinds)),
                TIMERS.c.done_at.is_(None),
            )
        )

    def due(self, now: datetime, limit: int, kinds: Iterable[str] | None = None) -> list[Timer]:
        stmt = select(TIMERS).where(TIMERS.c.done_at.is_(None), TIMERS.c.due_at <= now)
        if kinds is not None:
            stmt = stmt.where(TIMERS.c.kind.in_(list(kinds)))
        stmt = stmt.order_by(TIMERS.c.due_at, TIMERS.c.id).limit(limit)
        return [_timer(r) for r in self.conn.execute(self._locked(stmt))]

    def done(self, timer_id: int, now: datetime) -> None:
        self.conn.execute(update(TIMERS).where(TIMERS.c.id == timer_id).values(done_at=now))

    def done_many(self, timer_ids: Sequence[int], now: datetime) -> None:
        if timer_ids:
            self.conn.execute(
                update(TIMERS).where(TIMERS.c.id.in_(list(timer_ids))).values(done_at=now)
            )

    def pending(self, ticket_number: int) -> list[Timer]:
        stmt = (
            select(TIMERS)
            .where(TIMERS.c.ticket_id == ticket_number, TIMERS.c.done_at.is_(None))
            .order_by(TIMERS.c.due_at)
        )
        return [_timer(r) for r in self.conn.execute(stmt)]

    def of_ticket(self, ticket_number: int, kinds: Iterable[str] | None = None) -> list[Timer]:
        # A ticket has a dozen timers: filtered here, the statement stays one
        # prepared shape (the pipeline reads them for every ticket it changes).
        rows = direct.rows(self.conn, _TIMERS_OF_TICKET, {"ticket": ticket_number})
        wanted = None if kinds is None else set(kinds)
        return [_timer(r) for r in rows if wanted is None or r.kind in wanted]

    def claim(self, timer_id: int, now: datetime) -> Timer | None:
        stmt = select(TIMERS).where(
            TIMERS.c.id == timer_id, TIMERS.c.done_at.is_(None), TIMERS.c.due_at <= now
        )
        row = self.conn.execute(self._locked(stmt)).first()
        return _timer(row) if row else None

    def discard(self, timer_ids: Sequence[int]) -> None:
        direct.execute_many(self.conn, _DISCARD, [{"timer": t} for t in timer_ids])

    def postpone(self, timer_id: int, due_at: datetime, error: str) -> None:
        row = self.conn.execute(select(TIMERS.c.detail).where(TIMERS.c.id == timer_id)).first()
        if row is None:
            return
        detail = {**(row.detail or {}), "last_error": error[:500]}
        detail["failures"] = int(detail.get("failures", 0)) + 1
        self.conn.execute(
            update(TIMERS)
            .where(TIMERS.c.id == timer_id, TIMERS.c.done_at.is_(None))
            .values(due_at=due_at, detail=detail)
        )


def _timer(row: Any) -> Timer:
    return Timer(
        id=row.id,
        ticket_number=row.ticket_id,
        kind=row.kind,
        key=row.key,
        due_at=row.due_at,
        detail=dict(row.detail or {}),
        done_at=row.done_at,
    )


class SqlSettings(Repo):
    def get(self, key: str) -> str | None:
        return self.conn.execute(select(SETTINGS.c.value).where(SETTINGS.c.key == key)).scalar()

    def put(self, key: str, value: str) -> None:
        # One upsert, not a read and then an INSERT: two instances setting a
        # key for the first time at once would have failed on its unique index.
        stmt = self._upsert(SETTINGS, {"key": key, "value": value})
        self.conn.execute(
            stmt.on_conflict_do_update(index_elements=[SETTINGS.c.key], set_={"value": value})
        )

    def advance(self, key: str, value: str) -> bool:
        """A conditional UPDATE, else an INSERT that yields to a concurrent
        one: on PostgreSQL the second writer waits on the row (or the key's
        unique index) and then finds it moved, so only one wins."""
        moved = self.conn.execute(
            update(SETTINGS)
            .where(SETTINGS.c.key == key, SETTINGS.c.value < value)
            .values(value=value)
        )
        if moved.rowcount:
            return True
        if self.get(key) is not None:
            return False
        return self._insert_if_absent(key, value)

    def first(self, key: str, value: str) -> str:
        """The key's value, `value` if it had none: instances starting together
        on a fresh database each offer theirs, and all keep the one stored."""
        found = self.get(key)
        if found is not None:
            return found
        if self._insert_if_absent(key, value):
            return value
        stored = self.get(key)  # a concurrent writer's, committed meanwhile
        assert stored is not None
        return stored

    def _insert_if_absent(self, key: str, value: str) -> bool:
        """An INSERT that yields to a concurrent one (on PostgreSQL it waits on
        the key's unique index until the other commits); True if it inserted."""
        stmt = self._upsert(SETTINGS, {"key": key, "value": value}).on_conflict_do_nothing()
        # RETURNING, not rowcount: the driver reports -1 for this INSERT.
        return self.conn.execute(stmt.returning(SETTINGS.c.key)).first() is not None
