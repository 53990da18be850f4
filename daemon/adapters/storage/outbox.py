"""The outbox: mail waiting for the relay, leased so instances never send
it twice, its attachments' bytes put back from their stored blobs; and the
failing addresses that, with it, set the automatic-mail budget.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, literal_column, null, or_, select, update

from daemon.adapters.storage import direct
from daemon.adapters.storage.base import Repo
from daemon.adapters.storage.models import ADDRESSES, ATTACHMENTS, MESSAGES, OUTBOX
from daemon.core.domain import OutgoingMail
from daemon.mail import attachparts
from daemon.ports import OutboxItem

# Both run on the driver's cursor, one parameter set a row (`direct.execute_many`):
# through `Connection.execute` a claimed batch's IN list was rendered afresh, and
# each row of the sent ones went through SQLAlchemy's per-row work, 7.5 ms of a
# batch of 280 (a tenth of batch ingest's main process went to claiming mail).
#: A delivered row: sent, one attempt more, its lease and last error cleared.
_MARK_SENT = (
    update(OUTBOX)
    .where(OUTBOX.c.id == bindparam("_pk"))
    .values(  # constants written into the statement: a row's parameters are its two
        attempts=OUTBOX.c.attempts + literal_column("1"),
        state=literal_column("'sent'"),
        sent_at=bindparam("sent_at", type_=OUTBOX.c.sent_at.type),
        last_error=null(),
        leased_until=null(),
    )
)
#: A row in flight at a sender until a moment (now: handed back).
_LEASE = (
    update(OUTBOX)
    .where(OUTBOX.c.id == bindparam("_pk"))
    .values(leased_until=bindparam("until", type_=OUTBOX.c.leased_until.type))
)
_AUTOMATIC_BUDGET = select(
    select(func.count())
    .select_from(ADDRESSES)
    .where(ADDRESSES.c.address == bindparam("rcpt"), ADDRESSES.c.failing_since.is_not(None))
    .scalar_subquery()
    .label("failing"),
    select(func.count())
    .select_from(OUTBOX)
    .where(
        OUTBOX.c.primary_rcpt == bindparam("rcpt"),
        OUTBOX.c.created_at >= bindparam("since"),
        OUTBOX.c.automatic.is_(True),
        OUTBOX.c.state != "suppressed",
    )
    .scalar_subquery()
    .label("sent"),
)
#: Only a failing address is written: on PostgreSQL an UPDATE that sets NULL
#: over NULL still writes a new row version, at every reply of anyone whose
#: mail once bounced.
_CLEAR_ADDRESS = (
    update(ADDRESSES)
    .where(ADDRESSES.c.address == bindparam("address"), ADDRESSES.c.failing_since.is_not(None))
    .values(failing_since=None, failure=None)
)

_FAILING = select(ADDRESSES.c.failing_since.is_not(None)).where(
    ADDRESSES.c.address == bindparam("address")
)

#: What is due, oldest first; prepared once (run through `direct`, as a batch
#: ingest claims its mail every group), in both forms `_locked` gives. Only the
#: columns a sender reads: each other datetime would be parsed for nothing.
_DUE = (
    select(
        OUTBOX.c.id,
        OUTBOX.c.ticket_id,
        OUTBOX.c.kind,
        OUTBOX.c.message_id,
        OUTBOX.c.recipients,
        OUTBOX.c.rcpt_results,
        OUTBOX.c.raw,
        OUTBOX.c.attempts,
        OUTBOX.c.created_at,
    )
    .where(
        OUTBOX.c.state == "pending",
        OUTBOX.c.next_attempt_at <= bindparam("now"),
        or_(OUTBOX.c.leased_until.is_(None), OUTBOX.c.leased_until <= bindparam("now")),
    )
    .order_by(OUTBOX.c.next_attempt_at, OUTBOX.c.id)
    .limit(bindparam("limit"))
)
_DUE_LOCKED = _DUE.with_for_update(skip_locked=True)
#: An attachment's bytes by hash: the ticket's own first (indexed), then any.
_ANY_BLOB = (
    select(ATTACHMENTS.c.content)
    .where(ATTACHMENTS.c.sha256 == bindparam("sha"), ATTACHMENTS.c.content.is_not(None))
    .limit(1)
)
_TICKET_BLOB = (
    select(ATTACHMENTS.c.content)
    .join(MESSAGES, MESSAGES.c.id == ATTACHMENTS.c.message_row_id)
    .where(
        ATTACHMENTS.c.sha256 == bindparam("sha"),
        ATTACHMENTS.c.content.is_not(None),
        MESSAGES.c.ticket_id == bindparam("ticket"),
    )
    .limit(1)
)


class SqlOutbox(Repo):
    def add(self, mail: OutgoingMail, now: datetime, *, state: str = "pending") -> int:
        return self._insert(
            OUTBOX,
            dict(
                ticket_id=mail.ticket_number,
                kind=mail.kind,
                message_id=mail.message_id,
                recipients=list(mail.recipients),
                primary_rcpt=mail.recipients[0].lower(),
                automatic=mail.automatic,
                raw=mail.raw,
                state=state,
                attempts=0,
                created_at=now,
                next_attempt_at=now,
            ),
        )

    def due(self, now: datetime, limit: int) -> list[OutboxItem]:
        stmt = _DUE_LOCKED if self.locking else _DUE
        items = []
        for r in direct.rows(self.conn, stmt, {"now": now, "limit": limit}):
            try:
                raw = self._whole(r.raw, r.ticket_id)
            except LookupError as exc:  # its bytes are gone: say so, never send half
                self.mark_failed(r.id, str(exc), now)
                continue
            items.append(
                OutboxItem(
                    id=r.id,
                    ticket_number=r.ticket_id,
                    kind=r.kind,
                    message_id=r.message_id,
                    recipients=_still_to_send(r.recipients, r.rcpt_results),
                    raw=raw,
                    attempts=r.attempts,
                    created_at=r.created_at,
                )
            )
        return items

    def _whole(self, raw: bytes, ticket_number: int | None) -> bytes:
        """The stored mail with its attachments' bytes put back (`attachparts`)."""
        if attachparts.MARK not in raw:
            return raw
        return attachparts.expand(raw, lambda sha: self._blob(sha, ticket_number))

    def _blob(self, sha256: str, ticket_number: int | None) -> bytes | None:
        """An attachment's bytes by hash: the ticket's own first (indexed),
        then any (a merged ticket's messages moved)."""
        if ticket_number is not None:
            found = direct.fetch(self.conn, _TICKET_BLOB, {"sha": sha256, "ticket": ticket_number})
            if found:
                return bytes(found[0][0])
        found = direct.fetch(self.conn, _ANY_BLOB, {"sha": sha256})
        return bytes(found[0][0]) if found else None

    def lease(self, item_ids: Sequence[int], until: datetime) -> None:
        direct.execute_many(self.conn, _LEASE, [{"_pk": i, "until": until} for i in item_ids])

    def release_leases(self) -> int:
        return self.conn.execute(
            update(OUTBOX)
            .where(OUTBOX.c.state == "pending", OUTBOX.c.leased_until.is_not(None))
            .values(leased_until=None)
        ).rowcount

    def mark_sent(self, item_ids: Sequence[int], now: datetime) -> None:
        direct.execute_many(self.conn, _MARK_SENT, [{"_pk": i, "sent_at": now} for i in item_ids])

    def record_results(
        self, item_id: int, results: Mapping[str, Mapping[str, str]]
    ) -> dict[str, dict[str, str]]:
        known = self.conn.execute(
            select(OUTBOX.c.rcpt_results).where(OUTBOX.c.id == item_id)
        ).scalar_one_or_none()
        merged = {**(known or {}), **{address: dict(r) for address, r in results.items()}}
        self.conn.execute(update(OUTBOX).where(OUTBOX.c.id == item_id).values(rcpt_results=merged))
        return merged

    def mark_retry(self, item_id: int, error: str, next_at: datetime) -> None:
        self.conn.execute(
            update(OUTBOX)
            .where(OUTBOX.c.id == item_id)
            .values(
                attempts=OUTBOX.c.attempts + 1,
                last_error=error[:2000],
                next_attempt_at=next_at,
                leased_until=None,
            )
        )

    def mark_failed(self, item_id: int, error: str, now: datetime) -> None:
        self.conn.execute(
            update(OUTBOX)
            .where(OUTBOX.c.id == item_id)
            .values(
                state="failed",
                attempts=OUTBOX.c.attempts + 1,
                last_error=error[:2000],
                sent_at=None,
                leased_until=None,
            )
        )

    def count(self, state: str) -> int:
        return self.conn.execute(
            select(func.count()).select_from(OUTBOX).where(OUTBOX.c.state == state)
        ).scalar_one()

    def automatic_budget(self, address: str, since: datetime) -> tuple[bool, int]:
        [(failing, sent)] = direct.fetch(
            self.conn, _AUTOMATIC_BUDGET, {"rcpt": address.lower(), "since": since}
        )
        return bool(failing), int(sent)

    def sent_recipients(self, message_id: str) -> tuple[str, ...]:
        found = self.conn.execute(
            select(OUTBOX.c.recipients).where(
                OUTBOX.c.message_id == message_id, OUTBOX.c.state == "sent"
            )
        ).scalar()
        return tuple(str(r).lower() for r in found or ())


def _still_to_send(recipients: list[str], results: dict[str, Any] | None) -> tuple[str, ...]:
    """The recipients the relay has neither taken nor refused for good."""
    done = {a for a, r in (results or {}).items() if r.get("state") in ("sent", "refused")}
    return tuple(a for a in recipients if a not in done)


class SqlAddresses(Repo):
    def mark_failing(self, address: str, now: datetime, reason: str) -> None:
        failing = {"failing_since": now, "failure": reason[:2000]}
        stmt = self._upsert(ADDRESSES, {"address": address.lower(), **failing})
        # One upsert: two instances may take bounces for one address at once.
        self.conn.execute(
            stmt.on_conflict_do_update(index_elements=[ADDRESSES.c.address], set_=failing)
        )

    def is_failing(self, address: str) -> bool:
        found = direct.fetch(self.conn, _FAILING, {"address": address.lower()})
        return bool(found and found[0][0])

    def clear(self, address: str) -> bool:
        return direct.execute(self.conn, _CLEAR_ADDRESS, {"address": address.lower()}) > 0
