"""One inbound message through its stages, inside one transaction.

Parsing, sanitising and the rules' decision for a new request are CPU work
done ahead (`Pipeline.prepare`, before the write transaction); then
parse -> de-duplicate -> classify (loops, escalations) -> thread -> act. A
stage ends the journey early by raising a `Disposition`; any other exception
rolls the message back and the worker records the stage it failed in. What
opening a new ticket does is `opening`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from daemon.app import conversation, opening
from daemon.app.contacts import contacts_of
from daemon.app.prepare import Prepared, decide_ahead
from daemon.app.tickets import Runtime
from daemon.core.domain import Channel, InboundItem, Intake, ParsedMessage, Status, Ticket
from daemon.core.errors import Disposition, Duplicate, NotMail, Quarantined
from daemon.mail import loops
from daemon.mail import threads as mailthread
from daemon.ports import Tx
from daemon.rules import ruleset as rules


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one message (one line of `spocd ingest`)."""

    outcome: str  # created | appended | duplicate | ignored | quarantined | bounce | failed
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
    original: ParsedMessage | None = None  # the incident inside an escalation
    note: str = ""  # first line's own words
    forward_style: str = ""
    decided: rules.Decision | None = None  # made ahead, for the mail as it came

    @property
    def sender(self) -> str:
        return self.msg.sender.addr if self.msg.sender else ""

    @property
    def incident(self) -> ParsedMessage:
        """What rules and the ticket's subject come from."""
        return self.original or self.msg


class Pipeline:
    def __init__(self, runtime: Callable[[], Runtime], key: bytes) -> None:
        self._runtime = runtime
        self.key = key

    def parse(self, raw: bytes) -> ParsedMessage:
        from daemon.mail.parsing import parse_message

        limits = self._runtime().settings.limits
        return parse_message(
            raw,
            max_attachment_bytes=limits.max_attachment_bytes,
            max_parse_seconds=limits.max_parse_seconds,
        )

    def prepare(self, raw: bytes) -> Prepared:
        """Parse, sanitise and decide the rules for one message: the slow,
        CPU-bound part, done before the write transaction so a slow message
        never holds the database lock."""
        ruleset = self._runtime().rules
        try:
            parsed: ParsedMessage | NotMail = self.parse(raw)
        except NotMail as exc:
            parsed = exc
        return decide_ahead(parsed, ruleset)

    def process(
        self,
        tx: Tx,
        item: InboundItem,
        now: datetime,
        parsed: ParsedMessage | NotMail | Prepared | None = None,
    ) -> Outcome:
        """`parsed`: the message parsed ahead (batch ingest parses in another
        process), or the NotMail that parsing it gave."""
        rt = self._runtime()
        stage = "parse"
        decided = None
        if isinstance(parsed, Prepared):
            if parsed.rules_version == rt.rules.version:
                decided = parsed.decision
            parsed = parsed.msg
        try:
            try:
                if isinstance(parsed, NotMail):
                    raise parsed
                msg = parsed if parsed is not None else self.parse(item.raw)
            except NotMail as exc:
                tx.inbound.quarantine(item.id, reason=f"not mail: {exc}", now=now)
                return Outcome("quarantined", detail=f"not mail: {exc}")
            stage = "classify"
            incoming = self._classify(tx, rt, item, msg)
            incoming.decided = decided
            stage = "thread"
            match = mailthread.find_thread(
                msg,
                prefix=rt.prefix,
                key=self.key,
                domain=rt.settings.helpdesk.domain,
                lookup=tx.messages.ticket_of,
            )
            if match.ticket is None and incoming.original is not None:
                # An escalation of an incident the requester also mailed us.
                found = tx.messages.ticket_of(incoming.original.message_id)
                match = mailthread.ThreadMatch(found, "escalated-original") if found else match
            stage = "act"
            if incoming.automatic is not None and incoming.automatic.kind == "bounce":
                outcome = self._bounce(tx, rt, incoming, match.ticket, now)
            else:
                ticket = self._existing(tx, match.ticket)
                if ticket is not None:
                    outcome = self._to_ticket(tx, rt, incoming, ticket, match, now)
                else:
                    outcome = self._new(tx, rt, incoming, now)
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

    # --- stages ----------------------------------------------------------------------------

    def _classify(self, tx: Tx, rt: Runtime, item: InboundItem, msg: ParsedMessage) -> Incoming:
        if tx.messages.exists(msg.message_id):
            raise Duplicate(msg.message_id, tx.messages.ticket_of(msg.message_id))
        incoming = Incoming(item=item, msg=msg, requester=msg.sender.addr if msg.sender else "")
        settings = rt.settings
        incoming.automatic = loops.classify(msg, settings.helpdesk.domain, settings.own_addresses)
        if incoming.automatic is None and item.intake == Intake.SMTP and item.envelope_from == "":
            incoming.automatic = loops.Automatic(
                "auto-reply", "null envelope sender (MAIL FROM:<>)"
            )
        # Only the way the mail came marks an escalation: the envelope's RCPT
        # TO an escalation address (SMTP), a first-line mailbox (IMAP
        # `escalation = true`), `ingest --escalation`. Never the To:/Cc: the
        # sender wrote, or anyone could pose as first line and have the desk
        # acknowledge whichever third party their pasted original names.
        if incoming.automatic is None and item.escalation:
            self._unwrap(rt, incoming)
        return incoming

    def _unwrap(self, rt: Runtime, incoming: Incoming) -> None:
        """A first-line escalation: the requester is the original sender.

        This runs in the write transaction, because only the queue row says
        whether the mail is an escalation, and `prepare` sees the bytes only.
        Reading an inline forward is linear and capped (`forwards`); an
        attached original is parsed here, within `limits.max_parse_seconds`.
        """
        from daemon.mail import forwards  # 5 ms to load, for escalations only

        msg = incoming.msg
        escalation = forwards.escalation(msg, self.parse)
        forwarded = escalation.forwarded
        incoming.channel = Channel.ESCALATION
        incoming.escalated_by = escalation.by
        incoming.forward_style = forwarded.style
        incoming.note = forwarded.note
        incoming.requester = escalation.requester
        incoming.original = escalation.original
        incoming.external_ref = rt.rules.find_external_ref(msg.subject) or (
            rt.rules.find_external_ref(forwarded.original.subject) if forwarded.original else None
        )

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
        ticket = opening.new_ticket(
            tx, rt, incoming, now, tagged=tagged, linked_to=linked_to, note=note
        )
        return Outcome("created", ticket.number, incoming.msg.message_id)

    def _to_ticket(
        self,
        tx: Tx,
        rt: Runtime,
        incoming: Incoming,
        ticket: Ticket,
        match: mailthread.ThreadMatch,
        now: datetime,
    ) -> Outcome:
        sender, msg = incoming.sender, incoming.msg
        role = _role(rt, ticket, sender)
        if role == "stranger":
            if rt.rules.strangers == "quarantine":
                raise Quarantined(f"{sender} is not on {rt.ticket_id(ticket.number)}")
            return self._new(tx, rt, incoming, now, tagged=ticket.number)
        if role == "agent":
            conversation.agent_mail(tx, rt, ticket, msg, incoming.item.id, now)
            return Outcome("appended", ticket.number, msg.message_id)
        closed_for_good = ticket.status == Status.CANCELLED or (
            ticket.status == Status.CLOSED and not conversation.reopen_window_open(rt, ticket, now)
        )
        if closed_for_good and incoming.automatic is None:
            return self._new(
                tx,
                rt,
                incoming,
                now,
                linked_to=ticket.number,
                note="a reply to a closed ticket after reopen_days",
            )
        conversation.requester_mail(
            tx, rt, ticket, msg, incoming.item.id, now, automatic=incoming.automatic is not None
        )
        return Outcome("appended", ticket.number, msg.message_id)

    def _bounce(
        self, tx: Tx, rt: Runtime, incoming: Incoming, threaded: int | None, now: datetime
    ) -> Outcome:
        number, report = conversation.bounce_ticket(tx, rt, incoming.msg, threaded, self.key)
        ticket = self._existing(tx, number)
        if ticket is None:
            return Outcome("bounce", None, incoming.msg.message_id, "matched no ticket")
        conversation.record_bounce(
            tx, rt, ticket, incoming.msg, report, incoming.item.id, now, self.key
        )
        return Outcome("bounce", ticket.number, incoming.msg.message_id)

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
    if sender in ticket.cc or sender == ticket.escalated_by or sender in contacts_of(rt, ticket):
        return "cc"  # a contact of the ticket's contract is heard like a cc'd person
    return "stranger"
