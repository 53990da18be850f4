"""Background delivery: the outbox written out by a helper process while
this one goes on (batch ingest: with the next messages; `spocd run`: with
accepting and processing mail).

Apart from `sender` because the database work stays with the `OutboxSender`
it wraps, in this process; the helper only writes files.
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Callable
from pathlib import Path

from daemon.ports import OutboxItem
from daemon.service.children import spawn_pool, stop_pool
from daemon.service.handoff import Delivered, maildir_job
from daemon.service.sender import OutboxSender, SendReport

log = logging.getLogger("spocd.worker")


class BackgroundDelivery:
    """Batch ingest's sender: one claimed batch is written out elsewhere (a
    helper process writing the files of a Maildir and making them durable)
    while the caller processes the next messages. The caller claims and
    records in its own short transactions, so the helper never touches the
    database.

    Without an executor, or for a transport that is not idempotent (SMTP:
    each accepted mail has to be recorded at once), mail is sent in line.
    """

    CLAIM = 1000

    def __init__(
        self,
        sender: OutboxSender,
        executor: concurrent.futures.Executor | None = None,
        job: Callable[[list[OutboxItem]], Delivered] | None = None,
        claim: int = CLAIM,
    ) -> None:
        self.sender = sender
        self.claim_size = claim
        self.report = SendReport()
        self.executor: concurrent.futures.Executor | None = None
        self.job: Callable[[list[OutboxItem]], Delivered] | None = None
        self.pending: tuple[list[OutboxItem], concurrent.futures.Future[Delivered]] | None = None
        if executor is not None and job is not None:
            self.hand_off(executor, job)

    def hand_off(
        self, executor: concurrent.futures.Executor, job: Callable[[list[OutboxItem]], Delivered]
    ) -> None:
        """From now on `job(batch)` (running `deliver_batch` with a transport
        of its own) delivers in `executor`, if the transport allows it."""
        transport = self.sender.transport_factory()
        try:
            if transport.idempotent:
                self.executor, self.job = executor, job
        finally:
            transport.close()

    def pump(self) -> None:
        """Record what the helper finished; give it the next batch."""
        if self.executor is None or self.job is None:
            self._add(self.sender.send_due())
            return
        if self.pending is not None and not self.pending[1].done():
            return
        done = self._result()
        if self.executor is None:  # the helper died: the rest goes in line
            self._add(self.sender.send_due())
            return
        batch = self.sender.claim(self.claim_size, self.report, done)
        if not batch:
            return
        try:
            self.pending = batch, self.executor.submit(self.job, batch)
        except Exception as exc:  # a helper pool already broken
            self._lost(batch, exc)
            self._add(self.sender.send_due())

    def finish(self) -> SendReport:
        """Wait for the helper, then send whatever is still due. Rows a
        failure left claimed are sent by the next sender once their lease
        ends (the same files: the transport is idempotent)."""
        self._collect()
        self._add(self.sender.send_due())
        return self.report

    def _collect(self) -> None:
        done = self._result()
        if done is not None:
            self.sender.record(*done, self.report)

    def _result(self) -> tuple[list[OutboxItem], Delivered] | None:
        """The batch in the helper's hands and what became of it (waiting for
        it), or None when there is none or the helper died."""
        if self.pending is None:
            return None
        batch, future = self.pending
        self.pending = None
        try:
            return batch, future.result()
        except Exception as exc:
            self._lost(batch, exc)
            return None

    def _lost(self, batch: list[OutboxItem], exc: Exception) -> None:
        """The helper died with the batch: its rows are released to be sent
        in line, here (the transport is idempotent: a file it half wrote is
        written again), and so is everything after them."""
        log.warning(
            "delivery helper failed; sending in this process",
            extra={"error": str(exc) or type(exc).__name__, "rows": len(batch)},
        )
        self.executor = self.job = None
        self.sender.release([item.id for item in batch])

    def _add(self, sent: SendReport) -> None:
        self.report.sent += sent.sent
        self.report.deferred += sent.deferred
        self.report.failed += sent.failed
        self.report.errors.extend(sent.errors)


class DeliveryProcess:
    """`spocd run`'s helper that writes outgoing mail into the Maildir and
    makes it durable. Opening and writing the files was a third of the
    daemon's sending time, taken from the GIL its SMTP sessions and pipeline
    share; the claims and records stay in the daemon's own transactions."""

    def __init__(self, maildir: Path, envelope_from: str) -> None:
        self.job = maildir_job(maildir, envelope_from)
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    def executor(self) -> concurrent.futures.ProcessPoolExecutor:
        """The helper's pool, a fresh one after `close`."""
        if self._pool is None:
            self._pool = spawn_pool()
        return self._pool

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            stop_pool(pool)
