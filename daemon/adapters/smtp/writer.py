"""The writer thread: SMTP sessions hand it raw messages, it commits them to
the inbound queue in groups (one fsync per group, however many clients wait)
and answers each waiting session only once its own bytes are on disk."""

from __future__ import annotations

import errno
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from datetime import datetime

from daemon.ports import QueuedRaw, Store

log = logging.getLogger("spocd.smtp")

MAX_GROUP = 128


class QueueWriter:
    """One thread that commits submitted raw messages in groups.

    A waiter may be gone by the time its group is committed (the client
    reset the connection, or gave up while a lock was held): its message
    stays committed, and nothing that happens to one waiter stops the thread.
    """

    def __init__(
        self,
        store: Store,
        now: Callable[[], datetime],
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.now = now
        self.on_commit = on_commit
        self.last_commit = 0.0  # monotonic time of the last commit (intake pressure)
        # Each counted by one thread only: their difference is what is in flight.
        self._submitted = 0
        self._answered = 0
        self._closing = False
        self._queue: queue.Queue[tuple[QueuedRaw, Future[int | None]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="spocd-smtp-writer", daemon=True)
        self._thread.start()

    @property
    def in_flight(self) -> int:
        """Messages submitted and not yet answered."""
        return self._submitted - self._answered

    @property
    def alive(self) -> bool:
        """The thread runs, or was asked to stop."""
        return self._closing or self._thread.is_alive()

    def submit(self, item: QueuedRaw) -> Future[int | None]:
        future: Future[int | None] = Future()
        self._submitted += 1
        self._queue.put((item, future))
        return future

    def close(self) -> None:
        """Finish every submitted message, then stop."""
        self._closing = True
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            group = [first]
            while len(group) < MAX_GROUP:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                group.append(nxt)
            try:
                self._commit(group)
            except Exception as exc:  # a bug here must not stop intake for good
                log.exception("smtp writer error", extra={"error": str(exc)})
            finally:
                self._answered += len(group)

    def _commit(self, group: list[tuple[QueuedRaw, Future[int | None]]]) -> None:
        try:
            now = self.now()
            with self.store.transaction() as tx:
                ids = [tx.inbound.add(item, now) for item, _ in group]
        except Exception as exc:  # storage down, disk full, locked: the sender retries
            log.error(
                _storage_failure(exc) + "; answering 451",
                extra={"error": str(exc), "messages": len(group)},
            )
            for _, future in group:
                _answer(future, exc)
            return
        self.last_commit = time.monotonic()
        for (_, future), item_id in zip(group, ids, strict=True):
            if not _answer(future, item_id):
                log.info(
                    "accepted, but the client left before the reply", extra={"inbound": item_id}
                )
        self.on_commit()


def _answer(future: Future[int | None], outcome: int | BaseException) -> bool:
    """Give a waiter its outcome; False when it no longer waits (cancelled)."""
    try:
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
    except InvalidStateError:
        return False
    return True


def _storage_failure(exc: BaseException) -> str:
    """What an operator should read first in the log line: disk full, a lock
    held too long, or some other storage failure."""
    text = " ".join(str(e) for e in _chain(exc)).lower()
    codes = {getattr(e, "errno", None) for e in _chain(exc)}
    if codes & {errno.ENOSPC, errno.EDQUOT, errno.EFBIG} or any(
        s in text
        for s in ("database or disk is full", "no space left", "disk quota", "file too large")
    ):
        return "storage failure: disk full (free space where the database lives)"
    if "database is locked" in text or "lock timeout" in text or "locknotavailable" in text:
        return "storage failure: database locked by another process for longer than busy_timeout_ms"
    return "storage failure"


def _chain(exc: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(found) < 10:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found
