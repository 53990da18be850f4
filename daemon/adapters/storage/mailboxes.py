"""The `mailbox_state` table: IMAP position and health per mailbox and folder.

The intake moves the position (UIDVALIDITY, last UID) in the transaction that
queues a batch, and records connects, successes and faults in small
transactions of their own, so `spocd status` (another process) sees them.
Messages it could not finish are noted by source key (`imap_notes`), and the
queued item of each (account, folder, Message-ID) is remembered
(`imap_identities`). Like every repository it never commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from daemon.adapters.storage.models import IMAP_IDENTITIES, IMAP_NOTES, MAILBOX_STATE
from daemon.ports import ImapNote, MailboxState

_IN_CHUNK = 500
_ERROR_LIMIT = 2000


class SqlMailboxes:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def get(self, mailbox: str, folder: str) -> MailboxState | None:
        row = self.conn.execute(select(MAILBOX_STATE).where(*self._key(mailbox, folder))).first()
        return _state(row, self._troubles()) if row else None

    def listing(self) -> list[MailboxState]:
        stmt = select(MAILBOX_STATE).order_by(MAILBOX_STATE.c.mailbox, MAILBOX_STATE.c.folder)
        troubles = self._troubles()
        return [_state(row, troubles) for row in self.conn.execute(stmt)]

    def _troubles(self) -> dict[tuple[str, str, str], int]:
        """Noted messages per (mailbox, folder, kind)."""
        stmt = (
            select(IMAP_NOTES.c.mailbox, IMAP_NOTES.c.folder, IMAP_NOTES.c.kind, func.count())
            .where(IMAP_NOTES.c.kind.is_not(None))
            .group_by(IMAP_NOTES.c.mailbox, IMAP_NOTES.c.folder, IMAP_NOTES.c.kind)
        )
        return {(m, f, k): int(n) for m, f, k, n in self.conn.execute(stmt)}

    # --- notes and identities --------------------------------------------------------

    def notes(self, keys: Sequence[str]) -> dict[str, ImapNote]:
        found: dict[str, ImapNote] = {}
        for start in range(0, len(keys), _IN_CHUNK):
            stmt = select(IMAP_NOTES).where(
                IMAP_NOTES.c.source_key.in_(keys[start : start + _IN_CHUNK])
            )
            for row in self.conn.execute(stmt):
                found[row.source_key] = ImapNote(
                    row.source_key, row.misses, row.copied_to, row.kind, row.problem
                )
        return found

    def note(self, mailbox: str, folder: str, note: ImapNote, now: datetime) -> None:
        values = {
            "misses": note.misses,
            "copied_to": note.copied_to,
            "kind": note.kind,
            "problem": note.problem,
            "updated_at": now,
        }
        done = self.conn.execute(
            update(IMAP_NOTES).where(IMAP_NOTES.c.source_key == note.source_key).values(**values)
        )
        if not done.rowcount:
            self.conn.execute(
                insert(IMAP_NOTES).values(
                    source_key=note.source_key, mailbox=mailbox, folder=folder, **values
                )
            )

    def prune_notes(self, mailbox: str, folder: str, keep: Iterable[str]) -> None:
        kept = set(keep)
        stmt = select(IMAP_NOTES.c.source_key).where(
            IMAP_NOTES.c.mailbox == mailbox, IMAP_NOTES.c.folder == folder
        )
        gone = [key for (key,) in self.conn.execute(stmt) if key not in kept]
        self.drop_notes(gone)

    def drop_notes(self, keys: Sequence[str]) -> None:
        for start in range(0, len(keys), _IN_CHUNK):
            chunk = list(keys[start : start + _IN_CHUNK])
            self.conn.execute(delete(IMAP_NOTES).where(IMAP_NOTES.c.source_key.in_(chunk)))

    def item_of(self, identity: str) -> int | None:
        stmt = select(IMAP_IDENTITIES.c.inbound_id).where(IMAP_IDENTITIES.c.identity == identity)
        return self.conn.execute(stmt).scalar()

    def remember(self, identity: str, inbound_id: int) -> None:
        if self.item_of(identity) is None:
            self.conn.execute(
                insert(IMAP_IDENTITIES).values(identity=identity, inbound_id=inbound_id)
            )

    def advance(
        self,
        mailbox: str,
        folder: str,
        *,
        uidvalidity: int,
        last_uid: int,
        taken: int,
        now: datetime,
    ) -> None:
        self._ensure(mailbox, folder)
        self.conn.execute(
            update(MAILBOX_STATE)
            .where(*self._key(mailbox, folder))
            .values(
                uidvalidity=uidvalidity,
                last_uid=last_uid,
                taken=MAILBOX_STATE.c.taken + taken,
                connected=True,
            )
        )

    def connected(self, mailbox: str, folder: str, *, poll_seconds: int, now: datetime) -> None:
        self._ensure(mailbox, folder)
        self.conn.execute(
            update(MAILBOX_STATE)
            .where(*self._key(mailbox, folder))
            .values(connected=True, poll_seconds=poll_seconds)
        )

    def succeeded(self, mailbox: str, folder: str, *, failed: int, now: datetime) -> None:
        self._ensure(mailbox, folder)
        self.conn.execute(
            update(MAILBOX_STATE)
            .where(*self._key(mailbox, folder))
            .values(last_success_at=now, connected=True, failed=MAILBOX_STATE.c.failed + failed)
        )

    def add_failed(self, mailbox: str, folder: str, failed: int) -> None:
        self._ensure(mailbox, folder)
        self.conn.execute(
            update(MAILBOX_STATE)
            .where(*self._key(mailbox, folder))
            .values(failed=MAILBOX_STATE.c.failed + failed)
        )

    def errored(self, mailbox: str, folder: str, *, error: str, now: datetime) -> None:
        self._ensure(mailbox, folder)
        self.conn.execute(
            update(MAILBOX_STATE)
            .where(*self._key(mailbox, folder))
            .values(last_error_at=now, last_error=error[:_ERROR_LIMIT], connected=False)
        )

    def disconnected(self, mailbox: str, folder: str) -> None:
        self.conn.execute(
            update(MAILBOX_STATE).where(*self._key(mailbox, folder)).values(connected=False)
        )

    # --- helpers -----------------------------------------------------------------

    @staticmethod
    def _key(mailbox: str, folder: str) -> tuple[Any, Any]:
        return MAILBOX_STATE.c.mailbox == mailbox, MAILBOX_STATE.c.folder == folder

    def _ensure(self, mailbox: str, folder: str) -> None:
        """Create the row on first use; a concurrent creator wins harmlessly."""
        exists = self.conn.execute(
            select(MAILBOX_STATE.c.mailbox).where(*self._key(mailbox, folder))
        ).first()
        if exists:
            return
        try:
            with self.conn.begin_nested():
                self.conn.execute(
                    insert(MAILBOX_STATE).values(
                        mailbox=mailbox,
                        folder=folder,
                        uidvalidity=None,
                        last_uid=0,
                        connected=False,
                        taken=0,
                        failed=0,
                        poll_seconds=30,
                    )
                )
        except IntegrityError:
            pass


def _state(row: Any, troubles: dict[tuple[str, str, str], int]) -> MailboxState:
    return MailboxState(
        mailbox=row.mailbox,
        folder=row.folder,
        uidvalidity=row.uidvalidity,
        last_uid=row.last_uid,
        connected=row.connected,
        last_success_at=row.last_success_at,
        last_error_at=row.last_error_at,
        last_error=row.last_error,
        taken=row.taken,
        failed=row.failed,
        poll_seconds=row.poll_seconds,
        untaken=troubles.get((row.mailbox, row.folder, "untaken"), 0),
        unmoved=troubles.get((row.mailbox, row.folder, "unmoved"), 0),
    )
