"""The `mailbox_state` table: IMAP position and health per mailbox and folder.

The intake moves the position (UIDVALIDITY, last UID) in the transaction that
queues a batch, and records connects, successes and faults in small
transactions of their own, so `spocd status` (another process) sees them.
Like every repository it never commits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from daemon.ports import MailboxState
from daemon.storage.models import MailboxStateRow

MAILBOX_STATE = MailboxStateRow.__table__
_ERROR_LIMIT = 2000


class SqlMailboxes:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def get(self, mailbox: str, folder: str) -> MailboxState | None:
        row = self.conn.execute(select(MAILBOX_STATE).where(*self._key(mailbox, folder))).first()
        return _state(row) if row else None

    def listing(self) -> list[MailboxState]:
        stmt = select(MAILBOX_STATE).order_by(MAILBOX_STATE.c.mailbox, MAILBOX_STATE.c.folder)
        return [_state(row) for row in self.conn.execute(stmt)]

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
                last_success_at=now,
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


def _state(row: Any) -> MailboxState:
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
    )
