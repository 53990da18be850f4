"""One inbound message through its stages, inside one transaction.

parse -> de-duplicate -> classify -> thread -> decide -> act. A stage ends the
journey early by raising a `Disposition`; any other exception rolls the whole
message back and the worker records the stage it failed in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from daemon import loops, mailthread, rules, slaclock
from daemon.domain import Channel, InboundItem, ParsedMessage, Status, Ticket
from daemon.errors import Disposition, Duplicate, Ignored, NotMail, Quarantined
from daemon.parsing import parse_message
from daemon.ports import Tx
from daemon.tickets import (
    Actor,
    Runtime,
    open_ticket,
    queue_mail,
    record_event,
    record_inbound,
    thread_of,
)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one message (one line of `spocd ingest`)."""

    outcome: str  # created | appended | duplicate | ignored | quarantined | bounce
    ticket: int | None = None
    message_id: str | None = None
    detail: str = ""


class StageError(Exception):
    """An unexpected failure, labelled with the stage it happened in."""

    def __init__(self, stage: str, cause: BaseException) -> None:
        super().__init__(f"{stage}: {type(cause).__name__}: {cause}")
        self.stage = stage
        self.cause = cause


@dataclass(slots=True)
class Incoming:
    """One message as the stages see it, with what they learned so far."""

    item: InboundItem
    msg: ParsedMessage
    automatic: loops.Automatic | None = None
    channel: Channel = Channel.EMAIL
    requester: str = ""
    escalated_by: str | None = None
    external_ref: str | None = None
    rules_msg: ParsedMessage | None = None  # what rules see (the original of a forward)

    @property
    def sender(self) -> str:
        return self.msg.sender.addr if self.msg.sender else ""


class Pipeline:
    def __init__(self, runtime: Callable[[], Runtime], key: bytes) -> None:
        self._runtime = runtime
        self.key = key

    def process(self, tx: Tx, item: InboundItem, now: datetime) -> Outcome:
        rt = self._runtime()
        stage = "parse"
        try:
            try:
                msg = parse_message(
                    item.raw, max_attachment_bytes=rt.settings.limits.max_attachment_bytes
                )
            except NotMail as exc:
                tx.inbound.quarantine(item.id, reason=f"not mail: {exc}", now=now)
                return Outcome("quarantined", detail=f"not mail: {exc}")
            stage = "classify"
            incoming = self._classify(tx, rt, item, msg)
            stage = "thread"
            match = mailthread.find_thread(
                msg,
                prefix=rt.prefix,
                key=self.key,
                domain=rt.settings.helpdesk.domain,
                lookup=tx.messages.ticket_of,
            )
            ticket = self._existing(tx, match.ticket)
            stage = "act"
            if incoming.automatic and incoming.automatic.kind == "bounce":
                outcome = self._bounce(tx, rt, incoming, ticket, now)
            elif ticket is not None:
                outcome = self._to_ticket(tx, rt, incoming, ticket, match, now)
            else:
                outcome = self._new(tx, rt, incoming, now, tagged=match.tagged)
        except Disposition as disposition:
            return self._dispose(tx, item, disposition, now)
        except Exception as exc:
            raise StageError(stage, exc) from exc
        tx.inbound.finish(
            item.id,
            outcome=outcome.outcome,
            now=now,
            ticket_number=outcome.ticket,
            message_id=msg.message_id,
        )
        return outcome

    # --- stages --------------------------------------------------------------

    def _classify(self, tx: Tx, rt: Runtime, item: InboundItem, msg: ParsedMessage) -> Incoming:
        if tx.messages.exists(msg.message_id):
            raise Duplicate(msg.message_id, tx.messages.ticket_of(msg.message_id))
        incoming = Incoming(item=item, msg=msg, requester=msg.sender.addr if msg.sender else "")
        incoming.automatic = loops.classify(
            msg, rt.settings.helpdesk.domain, rt.settings.own_addresses
        )
        escalation_rcpts = set(rt.settings.smtp.escalation_addresses)
        if item.escalation or any(a.addr in escalation_rcpts for a in (*msg.to, *msg.cc)):
            incoming.channel = Channel.ESCALATION
            incoming.escalated_by = incoming.sender
            incoming.external_ref = rt.rules.find_external_ref(msg.subject)
        return incoming

    def _existing(self, tx: Tx, number: int | None) -> Ticket | None:
        """The ticket a match names, following merges to the survivor."""
        seen: set[int] = set()
        while number is not None and number not in seen:
            seen.add(number)
            ticket = tx.tickets.get(number, for_update=True)
            if ticket is None:
                return None
            if ticket.merged_into is None:
                return ticket
            number = ticket.merged_into
        return None

    def _new(
        self,
        tx: Tx,
        rt: Runtime,
        incoming: Incoming,
        now: datetime,
        *,
        tagged: int | None = None,
        linked_to: int | None = None,
        note: str | None = None,
    ) -> Outcome:
        msg = incoming.msg
        decision = rules.decide(rt.rules, incoming.rules_msg or msg, str(incoming.channel))
        if decision.ignore:
            raise Ignored(", ".join(decision.matched))
        cc = [a.addr for a in (*msg.to, *msg.cc) if a.addr not in rt.settings.own_addresses]
        ticket = open_ticket(
            tx,
            rt,
            msg=incoming.rules_msg or msg,
            decision=decision,
            requester=incoming.requester,
            now=now,
            channel=incoming.channel,
            escalated_by=incoming.escalated_by,
            external_ref=incoming.external_ref,
            cc=cc,
            linked_to=linked_to,
        )
        if tagged is not None and tagged != linked_to:
            record_event(
                tx,
                ticket,
                now,
                Actor(incoming.sender),
                "tag_not_honoured",
                tag=rt.ticket_id(tagged),
                reason=note or "sender is not on that ticket",
            )
        record_inbound(tx, ticket, msg, kind="request", inbound_id=incoming.item.id, now=now)
        self._acknowledge(tx, rt, incoming, ticket, now)
        return Outcome("created", ticket.number, msg.message_id)

    def _to_ticket(
        self,
        tx: Tx,
        rt: Runtime,
        incoming: Incoming,
        ticket: Ticket,
        match: mailthread.ThreadMatch,
        now: datetime,
    ) -> Outcome:
        sender = incoming.sender
        role = _role(rt, ticket, sender)
        if role == "stranger":
            if rt.rules.strangers == "quarantine":
                raise Quarantined(f"{sender} is not on {rt.ticket_id(ticket.number)}")
            return self._new(tx, rt, incoming, now, tagged=ticket.number)
        if ticket.status in (Status.CLOSED, Status.CANCELLED) and role != "agent":
            reopen_until = (ticket.closed_at or ticket.updated_at or now) + timedelta(
                days=rt.rules.closure.reopen_days
            )
            if now > reopen_until:
                return self._new(
                    tx,
                    rt,
                    incoming,
                    now,
                    linked_to=ticket.number,
                    tagged=ticket.number,
                    note="reply after reopen_days",
                )
        kind = "reply" if role != "agent" else "agent_reply"
        if incoming.automatic:
            kind = "auto_reply"
        record_inbound(tx, ticket, incoming.msg, kind=kind, inbound_id=incoming.item.id, now=now)
        record_event(
            tx,
            ticket,
            now,
            Actor(sender),
            "message_received",
            role=role,
            kind=kind,
            via=match.via,
            message_id=incoming.msg.message_id,
        )
        if role in ("requester", "cc") and not incoming.automatic:
            slaclock.requester_replied(tx, ticket, rt.rules, now, sender)
        ticket.updated_at = now
        tx.tickets.save(ticket)
        return Outcome("appended", ticket.number, incoming.msg.message_id)

    def _bounce(
        self, tx: Tx, rt: Runtime, incoming: Incoming, ticket: Ticket | None, now: datetime
    ) -> Outcome:
        if ticket is None:
            return Outcome("bounce", None, incoming.msg.message_id, "matched no ticket")
        record_inbound(
            tx,
            ticket,
            incoming.msg,
            kind="bounce",
            inbound_id=incoming.item.id,
            now=now,
            internal=True,
        )
        record_event(
            tx,
            ticket,
            now,
            Actor(incoming.sender),
            "bounce_received",
            reason=incoming.automatic.reason if incoming.automatic else "",
        )
        return Outcome("bounce", ticket.number, incoming.msg.message_id)

    def _acknowledge(
        self, tx: Tx, rt: Runtime, incoming: Incoming, ticket: Ticket, now: datetime
    ) -> None:
        if incoming.automatic is not None:
            record_event(
                tx,
                ticket,
                now,
                Actor("spocd", "system"),
                "auto_reply_suppressed",
                kind="ack",
                reason=f"{incoming.automatic.kind}: {incoming.automatic.reason}",
            )
            return
        thread = thread_of(tx, ticket)
        cc = (
            [incoming.escalated_by]
            if incoming.escalated_by and (incoming.escalated_by != ticket.requester)
            else []
        )
        mail = rt.composer.compose(
            template="ack",
            kind="ack",
            ticket=ticket,
            to=[ticket.requester],
            cc=cc,
            context={},
            now=now,
            thread=thread,
            auto_submitted="auto-replied",
        )
        queue_mail(tx, rt, ticket, mail, now)

    def _dispose(
        self, tx: Tx, item: InboundItem, disposition: Disposition, now: datetime
    ) -> Outcome:
        if isinstance(disposition, Quarantined):
            tx.inbound.quarantine(item.id, reason=str(disposition), now=now)
            return Outcome("quarantined", detail=str(disposition))
        ticket = None
        message_id = None
        if isinstance(disposition, Duplicate):
            message_id, ticket = disposition.args[0], disposition.args[1]
        tx.inbound.finish(
            item.id,
            outcome=disposition.outcome,
            now=now,
            ticket_number=ticket,
            message_id=message_id,
        )
        return Outcome(disposition.outcome, ticket, message_id, str(disposition.args[0]))


def _role(rt: Runtime, ticket: Ticket, sender: str) -> str:
    if sender == ticket.requester:
        return "requester"
    if rt.is_agent(sender):
        return "agent"
    if sender in ticket.cc or sender == ticket.escalated_by:
        return "cc"
    return "stranger"
