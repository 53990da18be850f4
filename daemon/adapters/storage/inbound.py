"""The inbound queue: raw mail is kept here until the pipeline has handled
it (claim, finish, fail, quarantine, requeue), and mapped to `InboundItem`
and `QueueEntry` at this edge.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError

from daemon.adapters.storage.base import Repo
from daemon.adapters.storage.models import INBOUND
from daemon.core.domain import InboundItem, Intake
from daemon.ports import QueuedRaw, QueueEntry

_INBOUND_BY_ID = select(INBOUND).where(INBOUND.c.id == bindparam("_pk"))


class SqlInbound(Repo):
    def add(self, item: QueuedRaw, now: datetime) -> int | None:
        self._settle()
        values = dict(
            source_key=item.source_key,
            intake=str(item.intake),
            escalation=item.escalation,
            mailbox=item.mailbox,
            peer=item.peer,
            envelope_from=item.envelope_from,
            envelope_to=list(item.envelope_to),
            received_at=now,
            raw=item.raw,
            size=len(item.raw),
            sha256=hashlib.sha256(item.raw).hexdigest(),
            state="queued",
            attempts=0,
            next_attempt_at=now,
        )
        if item.source_key is not None:
            exists = self.conn.execute(
                select(INBOUND.c.id).where(INBOUND.c.source_key == item.source_key)
            ).first()
            if exists:
                return None
            try:
                with self.conn.begin_nested():
                    return self._insert(INBOUND, values)
            except IntegrityError:
                return None  # a concurrent instance queued the same source first
        return self._insert(INBOUND, values)

    def claim(
        self,
        now: datetime,
        limit: int,
        max_bytes: int | None = None,
        without_raw: Collection[int] = (),
    ) -> list[InboundItem]:
        self._settle()
        due = (
            select(INBOUND.c.id, INBOUND.c.size)
            .where(INBOUND.c.state == "queued", INBOUND.c.next_attempt_at <= now)
            .order_by(INBOUND.c.id)
            .limit(limit)
        )
        chosen: list[int] = []
        total = 0
        for item_id, size in self.conn.execute(self._locked(due)):
            if chosen and max_bytes is not None and total + size > max_bytes:
                break  # raw bytes are loaded for the group at once: keep it bounded
            chosen.append(item_id)
            total += size
        if not chosen:
            return []
        # Already locked (SKIP LOCKED above): read without waiting on our own locks.
        found = self.get_items(chosen, without_raw=without_raw)
        return [found[item_id] for item_id in chosen if item_id in found]

    def get_item(self, item_id: int, *, for_update: bool = False) -> InboundItem | None:
        self._settle()
        stmt = _INBOUND_BY_ID.with_for_update() if for_update and self.locking else _INBOUND_BY_ID
        row = self.conn.execute(stmt, {"_pk": item_id}).first()  # waits for a worker holding it
        return _inbound_item(row) if row else None

    def get_items(
        self,
        item_ids: Sequence[int],
        *,
        for_update: bool = False,
        without_raw: Collection[int] = (),
    ) -> dict[int, InboundItem]:
        """Several items in one read (`for_update`: locked, as `get_item` locks
        one); those in `without_raw` (already parsed) without their bytes."""
        self._settle()
        found: dict[int, InboundItem] = {}
        skip = [item_id for item_id in item_ids if item_id in without_raw]
        load = [item_id for item_id in item_ids if item_id not in without_raw]
        for chosen, columns, raw in ((load, [INBOUND], None), (skip, _NO_RAW, b"")):
            if chosen:
                stmt = select(*columns).where(INBOUND.c.id.in_(chosen)).order_by(INBOUND.c.id)
                if for_update and self.locking:
                    stmt = stmt.with_for_update()
                for row in self.conn.execute(stmt):
                    item = _inbound_item(row, raw=raw)
                    found[item.id] = item
        return found

    def ids_by_source(self, keys: Sequence[str]) -> dict[str, int]:
        self._settle()
        found: dict[str, int] = {}
        keys = list(keys)
        for start in range(0, len(keys), 500):
            stmt = select(INBOUND.c.source_key, INBOUND.c.id).where(
                INBOUND.c.source_key.in_(keys[start : start + 500])
            )
            found.update({row.source_key: row.id for row in self.conn.execute(stmt)})
        return found

    def finish(
        self,
        item_id: int,
        *,
        outcome: str,
        now: datetime,
        ticket_number: int | None = None,
        message_id: str | None = None,
    ) -> None:
        values = dict(
            state="done",
            outcome=outcome,
            processed_at=now,
            ticket_id=ticket_number,
            message_id=message_id,
            stage=None,
            reason=None,
        )
        if self.behind is not None:  # nothing in the group reads it back
            self.behind.update(INBOUND, item_id, values)
        else:
            self._update(INBOUND, item_id, values)

    def fail(
        self, item_id: int, *, stage: str, reason: str, now: datetime, retry_at: datetime | None
    ) -> None:
        self._settle()
        self.conn.execute(
            update(INBOUND)
            .where(INBOUND.c.id == item_id)
            .values(
                state="queued" if retry_at else "failed",
                stage=stage,
                reason=reason[:4000],
                attempts=INBOUND.c.attempts + 1,
                next_attempt_at=retry_at,
                processed_at=now,
                outcome="failed",
            )
        )

    def quarantine(self, item_id: int, *, reason: str, now: datetime) -> None:
        self._settle()
        self.conn.execute(
            update(INBOUND)
            .where(INBOUND.c.id == item_id)
            .values(
                state="quarantined",
                outcome="quarantined",
                reason=reason[:4000],
                stage="parse",
                processed_at=now,
            )
        )

    def requeue(self, item_id: int, now: datetime) -> bool:
        self._settle()
        result = self.conn.execute(
            update(INBOUND)
            .where(INBOUND.c.id == item_id, INBOUND.c.state.in_(("failed", "quarantined")))
            .values(state="queued", next_attempt_at=now)
        )
        return result.rowcount > 0

    def entry(self, item_id: int) -> QueueEntry | None:
        self._settle()
        row = self.conn.execute(_entry_select().where(INBOUND.c.id == item_id)).first()
        return _queue_entry(row) if row else None

    def entries(self, states: Sequence[str], limit: int) -> list[QueueEntry]:
        self._settle()
        stmt = _entry_select().where(INBOUND.c.state.in_(list(states)))
        stmt = stmt.order_by(INBOUND.c.id.desc()).limit(limit)
        return [_queue_entry(row) for row in self.conn.execute(stmt)]

    def count(self, state: str) -> int:
        self._settle()
        return self.conn.execute(
            select(func.count()).select_from(INBOUND).where(INBOUND.c.state == state)
        ).scalar_one()

    def raw(self, item_id: int) -> bytes | None:
        self._settle()
        return self.conn.execute(select(INBOUND.c.raw).where(INBOUND.c.id == item_id)).scalar()


def _entry_select() -> Any:
    return select(
        INBOUND.c.id,
        INBOUND.c.intake,
        INBOUND.c.state,
        INBOUND.c.received_at,
        INBOUND.c.size,
        INBOUND.c.outcome,
        INBOUND.c.ticket_id,
        INBOUND.c.message_id,
        INBOUND.c.stage,
        INBOUND.c.reason,
        INBOUND.c.attempts,
    )


def _queue_entry(row: Any) -> QueueEntry:
    return QueueEntry(
        id=row.id,
        intake=row.intake,
        state=row.state,
        received_at=row.received_at,
        size=row.size,
        outcome=row.outcome,
        ticket_number=row.ticket_id,
        message_id=row.message_id,
        stage=row.stage,
        reason=row.reason,
        attempts=row.attempts,
    )


#: Every inbound column but the raw bytes.
_NO_RAW = [column for column in INBOUND.c if column.name != "raw"]


def _inbound_item(row: Any, raw: bytes | None = None) -> InboundItem:
    # Read by key: a Row's attribute first misses on its class, and that
    # miss formats an AttributeError each time (ten a row, a row a message).
    r = row._mapping
    return InboundItem(
        id=r["id"],
        raw=r["raw"] if raw is None else raw,
        intake=Intake(r["intake"]),
        escalation=r["escalation"],
        received_at=r["received_at"],
        envelope_from=r["envelope_from"],
        envelope_to=tuple(r["envelope_to"] or ()),
        mailbox=r["mailbox"],
        attempts=r["attempts"],
        state=r["state"],
    )
