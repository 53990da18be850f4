"""The loops that drive the pipeline and the outbox, one transaction at a time.

They commit; nothing below them does. Each runs until its queue is empty and
then returns, so the daemon, `spocd tick` and the tests share them.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from daemon.app.conversation import mark_address_failing
from daemon.app.pipeline import Outcome, Pipeline, StageError
from daemon.app.tickets import Runtime
from daemon.core.domain import Event, InboundItem
from daemon.ports import Clock, OutboxItem, Refusal, Store, Transport, TransportError, Tx

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
    #: Given items (batch ingest) commit in larger groups: no SMTP client
    #: waits on them, and each commit is an fsync.
    ITEMS_GROUP = 200
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
        if parsed is None:
            parsed = self._prepare(item_ids, limit, now)
        with self.store.transaction() as tx:
            if item_ids is None:
                items = tx.inbound.claim(now, limit, self.group_bytes, without_raw=parsed or ())
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

    def _prepare(self, item_ids: Sequence[int] | None, limit: int, now: datetime) -> dict[int, Any]:
        """Parse, sanitise and decide for the messages about to be processed
        before the write transaction (they are read in a short read one), so
        the write lock is held only for the writing. A message another worker
        takes meanwhile goes unused; one that became due meanwhile is parsed
        in the transaction as before."""
        with self.store.reading() as tx:
            if item_ids is None:
                items = tx.inbound.claim(now, limit, self.group_bytes)
            else:
                found = (tx.inbound.get_item(item_id) for item_id in item_ids)
                items = [item for item in found if item is not None and item.state == "queued"]
        return {item.id: self.pipeline.prepare(item.raw) for item in items}

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
        for start in range(0, len(item_ids), self.ITEMS_GROUP):
            group = item_ids[start : start + self.ITEMS_GROUP]
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
    a database lock during network I/O. Through a relay (not idempotent) a row
    is leased just before it is sent, one at a time, and a send that outlasts
    its lease is cut off: a row whose lease ran out is never sent by its old
    holder. A crash mid-send leaves the row to be sent again when the lease
    ends (or at once, when a lone instance restarts): the same Message-ID,
    once more.
    """

    BATCH = 20
    #: Share of the lease a send may take before it is cut off (the rest is
    #: margin for recording the answer).
    SEND_SHARE = 0.8

    def __init__(
        self,
        store: Store,
        transport: Callable[[], Transport],
        clock: Clock,
        envelope_from: str,
        runtime: Callable[[], Runtime],
        retry_for: timedelta = timedelta(hours=48),
        lease: timedelta = timedelta(seconds=60),
    ) -> None:
        self.lease = lease
        self.runtime = runtime
        self.store = store
        self.transport_factory = transport
        self.clock = clock
        self.envelope_from = envelope_from
        self.retry_for = retry_for
        self._stopped = threading.Event()
        self._in_flight: Transport | None = None
        self._guard = threading.Lock()

    def send_due(self, limit: int | None = None) -> SendReport:
        """Send everything due (or up to `limit` rows): through a relay one
        leased row at a time, to an idempotent transport a leased batch at a time."""
        report = SendReport()
        if limit == 0 or self._stopped.is_set():
            return report
        first = self._lease(1)
        if not first:
            return report  # nothing due: no transport to open
        transport = self.transport_factory()
        with self._guard:
            self._in_flight = transport
        try:
            if transport.idempotent:
                more = self.BATCH - 1 if limit is None else min(self.BATCH, limit) - 1
                self._send_batches(transport, first + self._lease(more), limit, report)
            else:
                self._send_each(transport, first[0], limit, report)
        finally:
            with self._guard:
                self._in_flight = None
            transport.close()
        return report

    def interrupt(self) -> None:
        """Stop sending for good (shutdown): a send in progress is cut off and
        its row stays leased, to be sent by the next start as after a crash."""
        self._stopped.set()
        with self._guard:
            transport = self._in_flight
        if transport is not None:
            transport.abort()

    def release_leases(self) -> int:
        with self.store.transaction() as tx:
            return tx.outbox.release_leases()

    def _lease(self, size: int) -> list[OutboxItem]:
        if size <= 0:
            return []
        now = self.clock.now()
        with self.store.transaction() as tx:
            batch = tx.outbox.due(now, size)
            tx.outbox.lease([i.id for i in batch], now + self.lease)
        return batch

    def _send_batches(
        self, transport: Transport, batch: list[OutboxItem], limit: int | None, report: SendReport
    ) -> None:
        """Deliver a batch, make it durable once, record it in one commit. A
        row sent again after its lease ran out is delivered once all the same."""
        taken = 0
        while batch:
            taken += len(batch)
            self.record(batch, deliver_batch(transport, self.envelope_from, batch), report)
            if (limit is not None and taken >= limit) or self._stopped.is_set():
                break
            batch = self._lease(self.BATCH if limit is None else min(self.BATCH, limit - taken))

    def _send_each(
        self, transport: Transport, item: OutboxItem, limit: int | None, report: SendReport
    ) -> None:
        """Lease, send and record one row after the other."""
        taken = 0
        while True:
            taken += 1
            self._send_one(transport, item, report)
            if (limit is not None and taken >= limit) or self._stopped.is_set():
                break
            leased = self._lease(1)
            if not leased:
                break
            item = leased[0]

    def _send_one(self, transport: Transport, item: OutboxItem, report: SendReport) -> None:
        """Send one leased row, cut off when its lease is about to run out."""
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            transport.abort()

        watchdog = threading.Timer(self.lease.total_seconds() * self.SEND_SHARE, expire)
        watchdog.daemon = True
        watchdog.start()
        try:
            refusals = transport.send(item, self.envelope_from)
        except TransportError as exc:
            if self._stopped.is_set():
                log.warning(
                    "send interrupted by stop; the mail stays leased for the next start",
                    extra={"outbox": item.id, "ticket": item.ticket_number},
                )
                return
            if expired.is_set():
                exc = TransportError(f"send cut off after its lease of {self.lease}: {exc}")
            self._record_error(item, exc, report)
            return
        finally:
            watchdog.cancel()
        self._record_answers(item, refusals, report)

    def _record_answers(
        self, item: OutboxItem, refusals: list[Refusal], report: SendReport
    ) -> None:
        """Record what the relay said to each recipient: the row is done when
        none is left to retry, and a recipient refused for good is reported."""
        now = self.clock.now()
        give_up = now - item.created_at >= self.retry_for
        refused = {r.address: r for r in refusals}
        results = {a: {"state": "sent"} for a in item.recipients if a not in refused}
        final = [r for r in refusals if r.permanent or give_up]
        later = [r for r in refusals if not (r.permanent or give_up)]
        for r in refusals:
            state = "deferred" if r in later else "refused"
            results[r.address] = {"state": state, "answer": r.answer[:500]}
        with self.store.transaction() as tx:
            answers = tx.outbox.record_results(item.id, results)
            for refusal in final:
                self._refused(tx, item, refusal, now)
            if later:
                error = "; ".join(f"{r.address}: {r.answer}" for r in later)
                tx.outbox.mark_retry(item.id, error, now + self._delay(item))
                report.deferred += 1
                log.warning(
                    "send deferred",
                    extra={"outbox": item.id, "error": error, "ticket": item.ticket_number},
                )
            elif any(answer.get("state") == "sent" for answer in answers.values()):
                tx.outbox.mark_sent([item.id], now)
                report.sent += 1
            else:
                tx.outbox.mark_failed(item.id, "every recipient refused", now)
                report.failed += 1
        report.errors.extend(f"{item.message_id}: {r.address}: {r.answer}" for r in refusals)

    def _refused(self, tx: Tx, item: OutboxItem, refusal: Refusal, now: datetime) -> None:
        """A recipient refused for good: logged once, a `mail_failed` event on
        the ticket, and a requester marked failing as a bounce would."""
        log.error(
            "recipient refused",
            extra={
                "outbox": item.id,
                "ticket": item.ticket_number,
                "address": refusal.address,
                "answer": refusal.answer,
            },
        )
        if item.ticket_number is None:
            return
        tx.events.add(
            item.ticket_number,
            Event(
                at=now,
                actor="spocd",
                type="mail_failed",
                channel="system",
                detail={
                    "kind": item.kind,
                    "to": [refusal.address],
                    "address": refusal.address,
                    "answer": refusal.answer[:500],
                    "message_id": item.message_id,
                    "error": refusal.answer[:500],
                },
            ),
        )
        ticket = tx.tickets.get(item.ticket_number, for_update=True)
        if ticket is None or ticket.requester.lower() != refusal.address.lower():
            return
        # the same rules as a bounce: agents never, pending verifications held
        mark_address_failing(
            tx,
            self.runtime(),
            refusal.address,
            now,
            reason=refusal.answer[:500],
            status=refusal.answer.split(" ", 1)[0],
            ticket=ticket,
        )

    def _delay(self, item: OutboxItem) -> timedelta:
        return min(timedelta(seconds=60 * 2 ** min(item.attempts, 10)), timedelta(minutes=10))

    def claim(
        self,
        limit: int,
        report: SendReport,
        done: tuple[list[OutboxItem], Delivered] | None = None,
    ) -> list[OutboxItem]:
        """Lease up to `limit` due rows for this sender; in the same commit,
        record what `deliver_batch` did with the batch claimed before."""
        now = self.clock.now()
        failed: list[tuple[OutboxItem, TransportError]] = []
        with self.store.transaction() as tx:
            if done is not None:
                batch, (delivered, errors) = done
                by_id = {item.id: item for item in batch}
                failed = [(by_id[i], TransportError(m, permanent=p)) for i, m, p in errors]
                tx.outbox.mark_sent(delivered, now)
                report.sent += len(delivered)
            claimed = tx.outbox.due(now, limit) if limit else []
            tx.outbox.lease([i.id for i in claimed], now + self.lease)
        for item, exc in failed:
            self._record_error(item, exc, report)
        return claimed

    def release(self, item_ids: Sequence[int]) -> None:
        """Hand leased rows back at once (to be sent by the next `send_due`)."""
        now = self.clock.now()
        with self.store.transaction() as tx:
            tx.outbox.lease(item_ids, now)

    def record(self, batch: list[OutboxItem], result: Delivered, report: SendReport) -> None:
        """Write down what `deliver_batch` did with a claimed batch."""
        self.claim(0, report, (batch, result))

    def _record_error(self, item: OutboxItem, exc: TransportError, report: SendReport) -> None:
        now = self.clock.now()
        give_up = exc.permanent or now - item.created_at >= self.retry_for
        report.errors.append(f"{item.message_id}: {exc}")
        with self.store.transaction() as tx:
            if not give_up:
                tx.outbox.mark_retry(item.id, str(exc), now + self._delay(item))
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


#: What became of a batch: ids delivered; (id, error, permanent) for the rest.
Delivered = tuple[list[int], list[tuple[int, str, bool]]]


def deliver_batch(transport: Transport, envelope_from: str, batch: list[OutboxItem]) -> Delivered:
    """Hand a batch to an idempotent transport and make it durable. No
    database work and a plain result, so it can run in another process."""
    delivered: list[int] = []
    errors: list[tuple[int, str, bool]] = []
    for item in batch:
        try:
            transport.send(item, envelope_from)
        except TransportError as exc:
            errors.append((item.id, str(exc), exc.permanent))
            continue
        delivered.append(item.id)
    if delivered:
        try:
            transport.flush()
        except TransportError as exc:
            errors.extend((item_id, str(exc), exc.permanent) for item_id in delivered)
            delivered = []
    return delivered, errors


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
    ) -> None:
        self.sender = sender
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
        batch = self.sender.claim(self.CLAIM, self.report, done)
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
