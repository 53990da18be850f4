"""The SQL store: transactions that bundle the repositories."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine

from daemon.adapters.storage import direct, migrate
from daemon.adapters.storage.behind import WriteBehind
from daemon.adapters.storage.engine import SQLITE_BUSY_MS, make_engine
from daemon.adapters.storage.inbound import SqlInbound
from daemon.adapters.storage.mailboxes import SqlMailboxes
from daemon.adapters.storage.outbox import SqlAddresses, SqlOutbox
from daemon.adapters.storage.tickets import SqlEvents, SqlMessages, SqlTickets
from daemon.adapters.storage.timers import SqlSettings, SqlTimers
from daemon.core.errors import TemporaryFailure

SIGNING_KEY = "message_id_key"


class SqlTx:
    """One unit of work over one connection; the store commits it.

    With `write_behind`, events and the queue's "done" marks are held and
    written in one executemany per table before anything reads them and
    before the commit (`behind`)."""

    def __init__(self, conn: Connection, *, write_behind: bool = False) -> None:
        self.conn = conn
        self.behind = WriteBehind(conn) if write_behind else None
        self.inbound = SqlInbound(conn, self.behind)
        self.tickets = SqlTickets(conn)
        self.messages = SqlMessages(conn)
        self.events = SqlEvents(conn, self.behind)
        self.outbox = SqlOutbox(conn)
        self.timers = SqlTimers(conn)
        self.settings = SqlSettings(conn)
        self.addresses = SqlAddresses(conn)
        self.mailboxes = SqlMailboxes(conn)
        self._depth = 0

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Undo what the block wrote if it raises. Issued on the driver's
        cursor: through SQLAlchemy, the two statements of every message's
        savepoint cost more than some of its row writes.

        Named by its depth: SQLite and PostgreSQL both take a name to mean the
        latest savepoint of that name, so one name per level is exact, and
        the driver's cache of prepared statements keeps two texts a level
        instead of two new ones per message (a group of 200 pushed the
        pipeline's own statements out of sqlite3's 128-statement cache)."""
        self._depth += 1
        name = f"spocd_sp_{self._depth}"
        behind = self.behind
        mark = behind.mark() if behind is not None else (0, 0)
        saves = self.tickets.mark()
        try:
            direct.statement(self.conn, f"SAVEPOINT {name}")
            try:
                yield
            except BaseException:
                direct.statement(self.conn, f"ROLLBACK TO SAVEPOINT {name}")
                direct.statement(self.conn, f"RELEASE SAVEPOINT {name}")
                if behind is not None:
                    behind.undo(mark)
                self.tickets.undo(saves)
                raise
            direct.statement(self.conn, f"RELEASE SAVEPOINT {name}")
        finally:
            self._depth -= 1

    def flush(self) -> None:
        """Write the held rows (before the commit)."""
        if self.behind is not None:
            self.behind.flush()


class _TurnLock:
    """A lock taken in the order it was asked for (a ticket lock): a thread
    that releases it and asks again queues behind those already waiting.

    A thread waits at most `timeout` seconds, as it would for SQLite's own
    lock (`busy_timeout_ms`): then it gives its turn up and the write fails
    with "database is locked", which SMTP intake answers with 451.
    """

    def __init__(self, timeout: float) -> None:
        self._turns = threading.Condition()
        self._next = 0
        self._serving = 0
        self._given_up: set[int] = set()
        self._timeout = timeout

    def __enter__(self) -> None:
        deadline = time.monotonic() + self._timeout
        with self._turns:
            mine = self._next
            self._next += 1
            while self._serving != mine:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._given_up.add(mine)
                    raise TemporaryFailure(
                        f"database is locked: another writer of this process held it "
                        f"past busy_timeout_ms ({self._timeout * 1000:.0f} ms)"
                    )
                self._turns.wait(left)

    def __exit__(self, *exc: object) -> None:
        with self._turns:
            self._serving += 1
            while self._serving in self._given_up:  # turns nobody waits for any more
                self._given_up.discard(self._serving)
                self._serving += 1
            self._turns.notify_all()


class SqlStore:
    def __init__(self, engine: Engine, busy_timeout_ms: int = SQLITE_BUSY_MS) -> None:
        self.engine = engine
        #: Hold events and queue marks until read or committed (`behind`);
        #: off, every row is written when given (the equivalence test compares).
        self.write_behind = True
        # SQLite has one writer at a time. Threads of this process queue for it
        # here, and the next one starts the moment the last commits; left to
        # SQLite's busy handler, a waiting writer sleeps in growing steps while
        # a busy pipeline takes the lock again and again (SMTP 250s would stall).
        self._writer = (
            _TurnLock(busy_timeout_ms / 1000) if engine.dialect.name == "sqlite" else None
        )

    @classmethod
    def open(
        cls, url: str, *, upgrade: bool = True, busy_timeout_ms: int = SQLITE_BUSY_MS
    ) -> SqlStore:
        """Connect, and bring a fresh or older database to the newest schema."""
        engine = make_engine(url, busy_timeout_ms=busy_timeout_ms)
        if upgrade:
            migrate.ensure_head(engine)
        return cls(engine, busy_timeout_ms)

    @contextmanager
    def transaction(self) -> Iterator[SqlTx]:
        if self._writer is None:
            with self.engine.connect() as conn, conn.begin():
                tx = SqlTx(conn, write_behind=self.write_behind)
                yield tx
                tx.flush()
            return
        with self._writer, self.engine.connect() as conn, conn.begin():
            tx = SqlTx(conn, write_behind=self.write_behind)
            yield tx
            tx.flush()

    @contextmanager
    def reading(self) -> Iterator[SqlTx]:
        with self.engine.connect() as conn:
            conn = conn.execution_options(readonly=True)
            with conn.begin():
                yield SqlTx(conn)

    def signing_key(self) -> bytes:
        """The Message-ID signing key, generated at first start and kept."""
        with self.transaction() as tx:
            value = tx.settings.first(SIGNING_KEY, secrets.token_hex(32))
        return bytes.fromhex(value)

    def close(self) -> None:
        self.engine.dispose()
