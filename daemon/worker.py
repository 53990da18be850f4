"""The loops that drive the pipeline and the outbox, one transaction at a time.

They commit; nothing below them does. Each runs until its queue is empty and
then returns, so the daemon, `spocd tick` and the tests share them.
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from daemon.domain import Event, InboundItem
from daemon.pipeline import Outcome, Pipeline, StageError
from daemon.ports import Clock, OutboxItem, Store, Transport, TransportError, Tx

log = logging.getLogger("spocd.worker")

#: Delays before the 1st, 2nd, ... retry of a message whose processing failed.
PROCESS_RETRIES = (timedelta(seconds=30), timedelta(minutes=5), timedelta(minutes=30))


class InboundWorker:
    """Takes queued messages through the pipeline, a group per commit.

    Each message runs inside its own savepoint, so a failure rolls back that
    message alone (and is recorded); the group shares one commit, which is
    what makes a busy queue cheap on SQLite's fsync-per-commit.
    """

    GROUP = 25
    #: Raw bytes one group may hold in memory: a burst of 25 MB messages is
    #: taken a few at a time, not 25 at once.
    GROUP_BYTES = 64 * 1024 * 1024

    def __init__(
        self,
        store: Store,
        pipeline: Pipeline,
        clock: Clock,
        observer: Callable[[InboundItem, Outcome, datetime], None] | None = None,
        group_bytes: int = GROUP_BYTES,
    ) -> None:
        self.store = store
        self.pipeline = pipeline
        self.clock = clock
        self.observer = observer  # metrics: called after the commit, per message
        self.group_bytes = group_bytes

    def process_group(
        self,
        item_ids: Sequence[int] | None = None,
        limit: int = GROUP,
        parsed: Mapping[int, Any] | None = None,
    ) -> list[tuple[int, Outcome]]:
        """Process the oldest due messages (or the given ones) in one commit;
        `parsed` holds messages already parsed elsewhere, by item id."""
        now = self.clock.now()
        results: list[tuple[int, Outcome]] = []
        with self.store.transaction() as tx:
            if item_ids is None:
                items = tx.inbound.claim(now, limit, self.group_bytes)
            else:
                items = []
                for item_id in item_ids:
                    item = tx.inbound.get_item(item_id, for_update=True)
                    if item is not None and item.state == "queued":
                        items.append(item)
                        continue
                    entry = tx.inbound.entry(item_id)  # another worker took it first
                    results.append(
                        (
                            item_id,
                            Outcome("failed", detail=f"no item {item_id}")
                            if entry is None
                            else Outcome(
                                entry.outcome or entry.state,
                                entry.ticket_number,
                                entry.message_id,
                                entry.reason or "",
                            ),
                        )
                    )
            parsed = parsed or {}
            processed = [
                (item, self._process(tx, item, now, parsed.get(item.id))) for item in items
            ]
        results.extend((item.id, outcome) for item, outcome in processed)
        if item_ids is not None:  # in the order asked for
            order = {item_id: n for n, item_id in enumerate(item_ids)}
            results.sort(key=lambda pair: order[pair[0]])
        if self.observer is not None:
            for item, outcome in processed:
                self.observer(item, outcome, now)
        for item_id, outcome in results:
            log.info(
                "processed",
                extra={
                    "inbound": item_id,
                    "outcome": outcome.outcome,
                    "ticket": outcome.ticket,
                    "message_id": outcome.message_id,
                },
            )
        return results

    def _process(self, tx: Tx, item: InboundItem, now: datetime, parsed: Any = None) -> Outcome:
        try:
            with tx.savepoint():
                return self.pipeline.process(tx, item, now, parsed)
        except StageError as exc:
            retries = PROCESS_RETRIES
            retry_at = now + retries[item.attempts] if item.attempts < len(retries) else None
            log.error(
                "processing failed",
                extra={
                    "inbound": item.id,
                    "stage": exc.stage,
                    "error": str(exc),
                    "retry_at": retry_at,
                },
                exc_info=exc.cause,
            )
            tx.inbound.fail(item.id, stage=exc.stage, reason=str(exc), now=now, retry_at=retry_at)
            return Outcome("failed", detail=str(exc))

    def process_item(self, item_id: int) -> Outcome:
        """Process one given queued message (or report what became of it)."""
        [(_, outcome)] = self.process_group([item_id])
        return outcome

    def process_items(
        self, item_ids: Sequence[int], parsed: Mapping[int, Any] | None = None
    ) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for start in range(0, len(item_ids), self.GROUP):
            group = item_ids[start : start + self.GROUP]
            outcomes.extend(o for _, o in self.process_group(group, parsed=parsed))
        return outcomes

    def drain(
        self, limit: int | None = None, stop: Callable[[], bool] = lambda: False
    ) -> list[tuple[int, Outcome]]:
        """Process until the queue has nothing due (or `stop()` says so)."""
        done: list[tuple[int, Outcome]] = []
        while (limit is None or len(done) < limit) and not stop():
            size = self.GROUP if limit is None else min(self.GROUP, limit - len(done))
            group = self.process_group(limit=size)
            if not group:
                break
            done.extend(group)
        return done


@dataclass(slots=True)
class SendReport:
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


class OutboxSender:
    """Sends due outbox rows; a row is leased while it is in flight.

    The lease (`leased_until`, set in a short transaction before sending) keeps
    a second sender (another instance, `spocd tick`) off a row without holding
    a database lock during network I/O. A crash mid-send leaves the row to be
    sent again when the lease ends (or at once, when a lone instance restarts):
    the same Message-ID, once more.
    """

    BATCH = 20

    def __init__(
        self,
        store: Store,
        transport: Callable[[], Transport],
        clock: Clock,
        envelope_from: str,
        retry_for: timedelta = timedelta(hours=48),
        lease: timedelta = timedelta(seconds=60),
    ) -> None:
        self.lease = lease
        self.store = store
        self.transport_factory = transport
        self.clock = clock
        self.envelope_from = envelope_from
        self.retry_for = retry_for

    def send_due(self, limit: int | None = None) -> SendReport:
        """Send everything due (or up to `limit` rows), a small leased batch at a time."""
        report = SendReport()
        taken = 0
        while limit is None or taken < limit:
            size = self.BATCH if limit is None else min(self.BATCH, limit - taken)
            now = self.clock.now()
            with self.store.transaction() as tx:
                batch = tx.outbox.due(now, size)
                tx.outbox.lease([i.id for i in batch], now + self.lease)
            if not batch:
                break
            taken += len(batch)
            self._send_batch(batch, report)
        return report

    def release_leases(self) -> int:
        with self.store.transaction() as tx:
            return tx.outbox.release_leases()

    def _send_batch(self, batch: list[OutboxItem], report: SendReport) -> None:
        transport = self.transport_factory()
        try:
            if transport.idempotent:
                self._send_idempotent(transport, batch, report)
            else:
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
            tx.outbox.mark_sent([item.id], self.clock.now())
        report.sent += 1

    def _send_idempotent(
        self, transport: Transport, batch: list[OutboxItem], report: SendReport
    ) -> None:
        """Deliver the batch, make it durable once, record it in one commit."""
        self.record(*self.deliver(transport, batch), report)

    def claim(self, limit: int) -> list[OutboxItem]:
        """Lease up to `limit` due rows for this sender."""
        now = self.clock.now()
        with self.store.transaction() as tx:
            batch = tx.outbox.due(now, limit)
            tx.outbox.lease([i.id for i in batch], now + self.lease)
        return batch

    def deliver(
        self, transport: Transport, batch: list[OutboxItem]
    ) -> tuple[list[OutboxItem], list[tuple[OutboxItem, TransportError]]]:
        """Hand a batch to an idempotent transport and make it durable; no
        database work, so it can run beside the pipeline."""
        delivered: list[OutboxItem] = []
        errors: list[tuple[OutboxItem, TransportError]] = []
        for item in batch:
            try:
                transport.send(item, self.envelope_from)
            except TransportError as exc:
                errors.append((item, exc))
                continue
            delivered.append(item)
        if delivered:
            try:
                transport.flush()
            except TransportError as exc:
                errors.extend((item, exc) for item in delivered)
                delivered = []
        return delivered, errors

    def record(
        self,
        delivered: list[OutboxItem],
        errors: list[tuple[OutboxItem, TransportError]],
        report: SendReport,
    ) -> None:
        for item, exc in errors:
            self._record_error(item, exc, report)
        if delivered:
            with self.store.transaction() as tx:
                tx.outbox.mark_sent([item.id for item in delivered], self.clock.now())
            report.sent += len(delivered)

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


class BackgroundDelivery:
    """Batch ingest's sender: a thread writes one claimed batch out (files of
    a Maildir, made durable at once) while the caller processes the next
    messages; the caller claims and records in its own short transactions, so
    the thread never competes for the database. Transports that are not
    idempotent (SMTP) are sent in line instead: each accepted mail has to be
    recorded at once."""

    CLAIM = 1000

    def __init__(self, sender: OutboxSender) -> None:
        self.sender = sender
        self.report = SendReport()
        self.transport = sender.transport_factory()
        self.pool = (
            concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="spocd-deliver")
            if self.transport.idempotent
            else None
        )
        self.pending: concurrent.futures.Future[Any] | None = None

    def pump(self) -> None:
        """Record what the thread finished; give it the next batch."""
        if self.pool is None:
            sent = self.sender.send_due()
            self._add(sent)
            return
        if self.pending is not None and not self.pending.done():
            return
        self._collect()
        batch = self.sender.claim(self.CLAIM)
        if batch:
            self.pending = self.pool.submit(self.sender.deliver, self.transport, batch)

    def finish(self) -> SendReport:
        """Wait for the thread, then send whatever is still due."""
        self._collect()
        self._add(self.sender.send_due())
        return self.report

    def close(self) -> None:
        """Rows a failure left claimed are sent by the next sender once their
        lease ends (the same files: the transport is idempotent)."""
        if self.pool is not None:
            self.pool.shutdown()
        self.transport.close()

    def _collect(self) -> None:
        if self.pending is None:
            return
        delivered, errors = self.pending.result()
        self.pending = None
        self.sender.record(delivered, errors, self.report)

    def _add(self, sent: SendReport) -> None:
        self.report.sent += sent.sent
        self.report.deferred += sent.deferred
        self.report.failed += sent.failed
        self.report.errors.extend(sent.errors)
