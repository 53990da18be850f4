"""The loops that drive the pipeline and the outbox, one transaction at a time.

They commit; nothing below them does. Each runs until its queue is empty and
then returns, so the daemon, `spocd tick` and the tests share them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from daemon.domain import Event
from daemon.pipeline import Outcome, Pipeline, StageError
from daemon.ports import Clock, OutboxItem, Store, Transport, TransportError

log = logging.getLogger("spocd.worker")

#: Delays before the 1st, 2nd, ... retry of a message whose processing failed.
PROCESS_RETRIES = (timedelta(seconds=30), timedelta(minutes=5), timedelta(minutes=30))


class InboundWorker:
    def __init__(self, store: Store, pipeline: Pipeline, clock: Clock) -> None:
        self.store = store
        self.pipeline = pipeline
        self.clock = clock

    def process_next(self) -> tuple[int, Outcome] | None:
        """Process the oldest due message; None when the queue is empty."""
        now = self.clock.now()
        item = None
        try:
            with self.store.transaction() as tx:
                items = tx.inbound.claim(now, 1)
                if not items:
                    return None
                item = items[0]
                outcome = self.pipeline.process(tx, item, now)
        except StageError as exc:
            assert item is not None
            self._record_failure(item.id, item.attempts, exc.stage, exc, now)
            return item.id, Outcome("failed", detail=str(exc))
        log.info(
            "processed",
            extra={
                "inbound": item.id,
                "outcome": outcome.outcome,
                "ticket": outcome.ticket,
                "message_id": outcome.message_id,
            },
        )
        return item.id, outcome

    def process_item(self, item_id: int) -> Outcome:
        """Process one given queued message (or report what became of it)."""
        now = self.clock.now()
        try:
            with self.store.transaction() as tx:
                item = tx.inbound.get_item(item_id, for_update=True)
                entry = tx.inbound.entry(item_id)
                if item is None or entry is None:
                    return Outcome("failed", detail=f"no inbound item {item_id}")
                if entry.state != "queued":
                    return Outcome(
                        entry.outcome or entry.state,
                        entry.ticket_number,
                        entry.message_id,
                        entry.reason or "",
                    )
                outcome = self.pipeline.process(tx, item, now)
        except StageError as exc:
            self._record_failure(item_id, item.attempts if item else 0, exc.stage, exc, now)
            return Outcome("failed", detail=str(exc))
        return outcome

    def drain(
        self, limit: int | None = None, stop: Callable[[], bool] = lambda: False
    ) -> list[tuple[int, Outcome]]:
        done: list[tuple[int, Outcome]] = []
        while (limit is None or len(done) < limit) and not stop():
            result = self.process_next()
            if result is None:
                break
            done.append(result)
        return done

    def _record_failure(
        self, item_id: int, attempts: int, stage: str, exc: Exception, now: datetime
    ) -> None:
        retry_at = now + PROCESS_RETRIES[attempts] if attempts < len(PROCESS_RETRIES) else None
        log.error(
            "processing failed",
            extra={"inbound": item_id, "stage": stage, "error": str(exc), "retry_at": retry_at},
            exc_info=exc,
        )
        with self.store.transaction() as tx:
            tx.inbound.fail(item_id, stage=stage, reason=str(exc), now=now, retry_at=retry_at)


@dataclass(slots=True)
class SendReport:
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


class OutboxSender:
    """Sends due outbox rows; a row is leased while it is in flight.

    The lease (moving `next_attempt_at` forward in a short transaction before
    sending) keeps a second sender (another instance, `spocd tick`) off a row
    without holding a database lock during network I/O. A crash mid-send leaves
    the row to be sent again after the lease: the same Message-ID, once more.
    """

    LEASE = timedelta(minutes=5)

    def __init__(
        self,
        store: Store,
        transport: Callable[[], Transport],
        clock: Clock,
        envelope_from: str,
        retry_for: timedelta = timedelta(hours=48),
    ) -> None:
        self.store = store
        self.transport_factory = transport
        self.clock = clock
        self.envelope_from = envelope_from
        self.retry_for = retry_for

    def send_due(self, limit: int = 100) -> SendReport:
        report = SendReport()
        while True:
            now = self.clock.now()
            with self.store.transaction() as tx:
                batch = tx.outbox.due(now, limit)
                tx.outbox.lease([i.id for i in batch], now + self.LEASE)
            if not batch:
                return report
            self._send_batch(batch, report)
            if len(batch) < limit:
                return report

    def _send_batch(self, batch: list[OutboxItem], report: SendReport) -> None:
        transport = self.transport_factory()
        try:
            for item in batch:
                self._send_one(transport, item, report)
        finally:
            transport.close()

    def _send_one(self, transport: Transport, item: OutboxItem, report: SendReport) -> None:
        try:
            transport.send(item, self.envelope_from)
        except TransportError as exc:
            self._record_error(item, exc, report)
            return
        with self.store.transaction() as tx:
            tx.outbox.mark_sent(item.id, self.clock.now())
        report.sent += 1

    def _record_error(self, item: OutboxItem, exc: TransportError, report: SendReport) -> None:
        now = self.clock.now()
        give_up = exc.permanent or now - item.created_at >= self.retry_for
        report.errors.append(f"{item.message_id}: {exc}")
        with self.store.transaction() as tx:
            if not give_up:
                delay = min(
                    timedelta(seconds=60 * 2 ** min(item.attempts, 10)), timedelta(minutes=10)
                )
                tx.outbox.mark_retry(item.id, str(exc), now + delay)
                report.deferred += 1
                log.warning(
                    "send deferred",
                    extra={"outbox": item.id, "error": str(exc), "ticket": item.ticket_number},
                )
                return
            tx.outbox.mark_failed(item.id, str(exc), now)
            report.failed += 1
            log.error(
                "send failed",
                extra={"outbox": item.id, "error": str(exc), "ticket": item.ticket_number},
            )
            if item.ticket_number is not None:
                tx.events.add(
                    item.ticket_number,
                    Event(
                        at=now,
                        actor="spocd",
                        type="mail_failed",
                        channel="system",
                        detail={
                            "kind": item.kind,
                            "to": list(item.recipients),
                            "message_id": item.message_id,
                            "error": str(exc)[:500],
                        },
                    ),
                )
