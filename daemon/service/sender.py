"""The outbox sender: due rows leased, sent, and their answers recorded.

Its own module because sending (leases, relay answers, retries, refusals)
is a job apart from taking mail in (`worker`); it commits, like the worker,
and runs until nothing is due, so the daemon, `spocd tick` and batch ingest
share it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from daemon.app.conversation import mark_address_failing
from daemon.app.notify import Unaddressable, wire_address
from daemon.app.tickets import Runtime
from daemon.core.domain import Event
from daemon.ports import Clock, OutboxItem, Refusal, Store, Transport, TransportError, Tx
from daemon.service.handoff import Delivered, deliver_batch, envelope

log = logging.getLogger("spocd.worker")


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

    def send_due(
        self, limit: int | None = None, stop: Callable[[], bool] = lambda: False
    ) -> SendReport:
        """Send everything due (or up to `limit` rows): through a relay one
        leased row at a time, to an idempotent transport a leased batch at a
        time. Once `stop()` says so, what is leased is sent and recorded and
        nothing more is leased (`interrupt` instead cuts a send off)."""
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
                self._send_batches(transport, first + self._lease(more), limit, report, stop)
            else:
                self._send_each(transport, first[0], limit, report, stop)
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
        self,
        transport: Transport,
        batch: list[OutboxItem],
        limit: int | None,
        report: SendReport,
        stop: Callable[[], bool],
    ) -> None:
        """Deliver a batch, make it durable once, record it in one commit. A
        row sent again after its lease ran out is delivered once all the same."""
        taken = 0
        while batch:
            taken += len(batch)
            sendable = self._screen(batch, report)
            if sendable:
                self.record(
                    sendable, deliver_batch(transport, self.envelope_from, sendable), report
                )
            if (limit is not None and taken >= limit) or self._stopped.is_set() or stop():
                break
            batch = self._lease(self.BATCH if limit is None else min(self.BATCH, limit - taken))

    def _send_each(
        self,
        transport: Transport,
        item: OutboxItem,
        limit: int | None,
        report: SendReport,
        stop: Callable[[], bool],
    ) -> None:
        """Lease, send and record one row after the other."""
        taken = 0
        while True:
            taken += 1
            self._send_one(transport, item, report)
            if (limit is not None and taken >= limit) or self._stopped.is_set() or stop():
                break
            leased = self._lease(1)
            if not leased:
                break
            item = leased[0]

    def _send_one(self, transport: Transport, item: OutboxItem, report: SendReport) -> None:
        """Send one leased row, cut off when its lease is about to run out."""
        screened = self._screen([item], report)
        if not screened:
            return
        item = screened[0]
        wire = {wire_address(a): a for a in item.recipients}  # all writable once screened
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            transport.abort()

        watchdog = threading.Timer(self.lease.total_seconds() * self.SEND_SHARE, expire)
        watchdog.daemon = True
        watchdog.start()
        try:
            refusals = transport.send(
                replace(item, recipients=tuple(wire)), envelope(self.envelope_from)
            )
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
        # the relay answers for the address as it was given: recorded as queued
        refusals = [replace(r, address=wire.get(r.address, r.address)) for r in refusals]
        self._record_answers(item, refusals, report)

    def _screen(self, batch: list[OutboxItem], report: SendReport) -> list[OutboxItem]:
        """Refuse for good every recipient that cannot be written in 7-bit
        mail (a non-ASCII local part: `wire_address`), recorded as a relay's
        refusal is; the rows as they are left to send (one left with no
        recipient is done). Checked before any transport sees an address:
        smtplib raises on one, and a header cannot name it."""
        out: list[OutboxItem] = []
        for item in batch:
            refusals = []
            for address in item.recipients:
                try:
                    wire_address(address)
                except Unaddressable as exc:
                    refusals.append(Refusal(address, str(exc), permanent=True))
            if not refusals:
                out.append(item)
                continue
            refused = {r.address for r in refusals}
            rest = tuple(a for a in item.recipients if a not in refused)
            if not rest:  # as if the relay had refused them all
                self._record_answers(item, refusals, report)
                continue
            now = self.clock.now()
            with self.store.transaction() as tx:
                tx.outbox.record_results(
                    item.id,
                    {r.address: {"state": "refused", "answer": r.answer[:500]} for r in refusals},
                )
                for refusal in refusals:
                    self._refused(tx, item, refusal, now)
            report.errors.extend(f"{item.message_id}: {r.address}: {r.answer}" for r in refusals)
            out.append(replace(item, recipients=rest))
        return out

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
        return self._screen(claimed, report)

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
