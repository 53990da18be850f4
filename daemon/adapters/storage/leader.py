"""Who runs the once-per-deployment work: PostgreSQL advisory locks.

Several `spocd run` processes may share one PostgreSQL database. Each IMAP
mailbox and the scheduled sweeps must be worked by one of them at a time: the
instance that holds the session-level advisory lock named for it. The locks
live on a connection of their own, so when an instance dies its connection
closes, PostgreSQL releases its locks, and a survivor takes them at its next
try (every few seconds). On SQLite only one instance runs, so it holds all.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from typing import Any

from sqlalchemy import Engine

log = logging.getLogger("spocd.leader")


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for a lock name."""
    return int.from_bytes(hashlib.sha256(f"spocd:{name}".encode()).digest()[:8], "big", signed=True)


class Leadership:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.shared = engine.dialect.name == "postgresql"
        self._conn: Any = None
        self._held: set[str] = set()
        self._lock = threading.Lock()

    @property
    def held(self) -> frozenset[str]:
        """Locks taken on the shared database (empty on SQLite, where all is ours)."""
        return frozenset(self._held)

    def holds(self, name: str) -> bool:
        """Hold (or take, if free) the lock `name`; False while another has it."""
        if not self.shared:
            return True
        with self._lock:
            try:
                conn = self._connection()
                if name in self._held:
                    conn.cursor().execute("SELECT 1")  # still connected: still ours
                    return True
                cursor = conn.cursor()
                cursor.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(name),))
                taken = bool(cursor.fetchone()[0])
            except Exception as exc:  # the lock connection broke: every lock is gone
                if self._held:
                    log.warning(
                        "lost the lock connection; giving up held work",
                        extra={"locks": sorted(self._held), "error": str(exc)},
                    )
                self._reset()
                return False
            if taken:
                self._held.add(name)
                log.info("took over", extra={"lock": name})
            return taken

    def release_all(self) -> None:
        with self._lock:
            self._reset()

    def _connection(self) -> Any:
        if self._conn is None:
            proxied = self.engine.raw_connection()
            conn = proxied.driver_connection
            proxied.detach()  # ours alone: closing it really closes it, releasing the locks
            conn.autocommit = True  # session-level locks, and no transaction left open
            self._conn = conn
        return self._conn

    def _reset(self) -> None:
        if self._conn is not None:
            if self._held:
                # Released now: closing alone releases them only when the
                # server's backend has finished exiting, which a survivor
                # asking at once can beat (a flaky takeover under load).
                with contextlib.suppress(Exception):  # already broken
                    self._conn.cursor().execute("SELECT pg_advisory_unlock_all()")
            with contextlib.suppress(Exception):  # already broken
                self._conn.close()
        self._conn = None
        self._held.clear()
