"""Ticket services shared by the pipeline, the CLI and the scheduled jobs.

Each function works inside a transaction it is given and records an event for
every change; mail goes to the outbox of that same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from daemon.app.notify import Composer, Thread
from daemon.app.slaclock import SLA_TABLE_KEY, align_clock, set_deadlines, store_timers
from daemon.config import Settings
from daemon.core.domain import (
    Attachment,
    Channel,
    Event,
    OutgoingMail,
    ParsedMessage,
    Status,
    StoredMessage,
    Ticket,
)
from daemon.mail import attachparts
from daemon.mail.attachparts import Plan
from daemon.mail.signoff import signer_name
from daemon.mail.threads import clean_subject
from daemon.ports import RecordPages, Tx
from daemon.rules.ruleset import Decision, Rules


@dataclass(frozen=True, slots=True)
class Runtime:
    """What the services decide with; swapped whole when config is reloaded."""

    settings: Settings
    rules: Rules
    composer: Composer
    record_pages: RecordPages | None = None  # the HTML record a closure mail may carry

    @property
    def prefix(self) -> str:
        return self.settings.helpdesk.tag_prefix

    def ticket_id(self, number: int) -> str:
        return f"{self.prefix}-{number}"

    def is_agent(self, address: str) -> bool:
        return address.lower() in self.rules.agents()

    def agent_name(self, address: str, own: str = "") -> str:
        """How an agent signs mail: the name rules.yaml gives, else the name
        their own mail's From gives (`own`), else the address."""
        return self.rules.agent_name(address) or signer_name(own) or address

    def group_lead(self, group: str | None) -> str | None:
        found = self.rules.groups.get(group or "")
        return found.lead if found else None


@dataclass(frozen=True, slots=True)
class Actor:
    """Who changes a ticket, and through what (the audit trail's `actor`)."""

    address: str
    channel: str = "email"  # "email" | "cli" | "system"
    name: str = ""  # the display name of their mail's From, to sign with


SYSTEM = Actor("spocd", "system")


def record_event(
    tx: Tx, ticket: Ticket, now: datetime, actor: Actor, type_: str, **detail: Any
) -> None:
    tx.events.add(
        ticket.number,
        Event(at=now, actor=actor.address, type=type_, detail=detail, channel=actor.channel),
    )


def open_ticket(
    tx: Tx,
    rt: Runtime,
    *,
    msg: ParsedMessage,
    decision: Decision,
    requester: str,
    now: datetime,
    channel: Channel = Channel.EMAIL,
    escalated_by: str | None = None,
    external_ref: str | None = None,
    cc: Sequence[str] = (),
    linked_to: int | None = None,
    extra: dict[str, Any] | None = None,
) -> Ticket:
    """A new ticket from a decided message; deadlines set, creation recorded.

    The cc'd people are the request's own To and Cc, which its sender wrote:
    at most as many as one mail to our listener may have recipients
    (`smtp.max_recipients`) stay on the ticket, or a Cc of thousands would
    have every agent's reply go to them all (and let each of them write to
    the ticket); the creation event says how many were left out."""
    subject = clean_subject(msg.subject, rt.prefix) or "(no subject)"
    people = list(dict.fromkeys(a.lower() for a in cc if a.lower() != requester.lower()))
    limit = rt.settings.smtp.max_recipients
    people, left_out = people[:limit], len(people) - min(len(people), limit)
    ticket = Ticket(
        number=0,
        subject=subject,
        requester=requester.lower(),
        status=Status.ASSIGNED if decision.assignee else Status.NEW,
        impact=decision.impact,
        urgency=decision.urgency,
        priority=decision.priority,
        priority_explicit=decision.priority_explicit,
        language=decision.language,
        created_at=now,
        updated_at=now,
        channel=channel,
        cc=people,
        escalated_by=escalated_by,
        external_ref=external_ref,
        category=decision.category,
        group=decision.group,
        assignee=decision.assignee,
        tags=list(decision.tags),
        rules_version=rt.rules.version,
        linked_to=linked_to,
        extra=dict(extra or {}),
        contract=decision.contract,
    )
    # The targets it opens under stay with it (SPEC §7: a reload changes
    # only tickets opened after it).
    ticket.extra[SLA_TABLE_KEY] = rt.rules.sla_snapshot(decision.contract)
    set_deadlines(ticket, rt.rules)
    align_clock(ticket, rt.rules, now)  # notes the priority the deadlines are for
    tx.tickets.create(ticket)
    store_timers(tx, ticket, rt.rules, fresh=True)
    actor = Actor(escalated_by or requester, "email")
    record_event(
        tx,
        ticket,
        now,
        actor,
        "created",
        channel=str(channel),
        subject=subject,
        requester=ticket.requester,
        priority=ticket.priority,
        impact=ticket.impact,
        urgency=ticket.urgency,
        category=ticket.category,
        group=ticket.group,
        assignee=ticket.assignee,
        contract=ticket.contract,
        contract_reason=decision.contract_reason,
        rules_version=rt.rules.version,
        matched_rules=list(decision.matched),
        linked_to=linked_to,
        # Rules the regex budget left undecided: the ticket says it.
        **({"skipped_rules": list(decision.skipped)} if decision.skipped else {}),
        **({"cc_left_out": left_out} if left_out else {}),
    )
    return ticket


def record_inbound(
    tx: Tx,
    ticket: Ticket,
    msg: ParsedMessage,
    *,
    kind: str,
    inbound_id: int | None,
    now: datetime,
    internal: bool = False,
    body: str | None = None,
) -> int:
    """Put an inbound message on the ticket (its raw bytes stay in the queue)."""
    recipients = tuple(a.addr for a in (*msg.to, *msg.cc))
    return tx.messages.add(
        StoredMessage(
            ticket_number=ticket.number,
            direction="in",
            kind=kind,
            sender=msg.sender.addr if msg.sender else "",
            recipients=recipients,
            subject=msg.subject,
            message_id=msg.message_id,
            at=now,
            body=msg.text if body is None else body,
            internal=internal,
            inbound_id=inbound_id,
            in_reply_to=msg.in_reply_to[0] if msg.in_reply_to else None,
            references=msg.references[-50:],
            attachments=msg.attachments,
        ),
        html=msg.html,
        headers={
            k: list(v)
            for k, v in msg.headers.items()
            if k
            in (
                "from",
                "to",
                "cc",
                "date",
                "subject",
                "message-id",
                "reply-to",
                "authentication-results",
                "auto-submitted",
            )
        },
    )


def carried(
    tx: Tx, rt: Runtime, row_id: int | None, attachments: Sequence[Attachment], html: str | None
) -> Plan:
    """Which attachments of a stored message a mail carries and which it only
    lists (over `limits.max_outgoing_attachment_bytes`, or not kept)."""
    return outgoing_plan(rt, attachment_items(tx, row_id, attachments, html))


def attachment_items(
    tx: Tx, row_id: int | None, attachments: Sequence[Attachment], html: str | None
) -> list[attachparts.Item]:
    """A stored message's attachments with their ids (for the fetch command)."""
    ids: list[int | None] = (
        list(tx.messages.attachment_ids(row_id)) if row_id and attachments else []
    )
    ids += [None] * (len(attachments) - len(ids))
    return attachparts.items_of(ids, attachments, html)


def outgoing_plan(rt: Runtime, items: Sequence[attachparts.Item]) -> Plan:
    return attachparts.plan(items, rt.settings.limits.max_outgoing_attachment_bytes)


def with_first_line(ticket: Ticket) -> list[str]:
    """The copies of a milestone mail to the requester (acknowledgement,
    resolution, closure): the ticket's cc and first line, who escalated it and
    answers to the customer for it. Never used for internal mail."""
    first_line = ticket.escalated_by
    if not first_line or first_line == ticket.requester or first_line in ticket.cc:
        return list(ticket.cc)
    return [*ticket.cc, first_line]


def thread_of(tx: Tx, ticket: Ticket, *, requester: bool = False) -> Thread:
    """The thread new mail on this ticket answers: its latest message.

    `requester`: the mail goes to the requester (and cc), so it threads only on
    mail they sent or were sent; the Message-IDs of internal mail (agent
    notices, internal notes, untrusted agent mail) and of agents' own mail to
    the desk never reach them."""
    messages = tx.messages.thread_of(ticket.number)
    if requester:
        messages = [m for m in messages if seen_by_requester(m)]
    if not messages:
        return Thread()
    last = messages[-1]
    refs = tuple(m.message_id for m in messages[:1]) + tuple(m.message_id for m in messages[-9:])
    return Thread(in_reply_to=last.message_id, references=tuple(dict.fromkeys(refs)))


def seen_by_requester(message: StoredMessage) -> bool:
    """Mail the requester's side sent or received: not internal, not an agent's
    mail to the desk (the reply the requester gets is our own mail)."""
    if message.internal:
        return False
    return message.direction == "out" or message.kind not in ("agent_reply", "escalation")


def queue_mail(
    tx: Tx,
    rt: Runtime,
    ticket: Ticket | None,
    mail: OutgoingMail,
    now: datetime,
    *,
    public: bool = True,
    internal: bool = False,
    rate_limited: bool = True,
    files: Sequence[Attachment] = (),
) -> bool:
    """Store an outgoing mail in the outbox and on the ticket.

    Automatic mail to a correspondent is held back (stored as `suppressed`,
    recorded as an event) when the address is failing or has had too many
    automatic mails this hour (rules.yaml `auto_replies`): that is what stops
    mail loops with auto-responders. Mail to our own agents is not limited,
    nor is mail that answers nobody (`rate_limited=False`). `files`: new
    attachments the mail brings (a CLI reply's), stored on its message.
    """
    state = "pending"
    reason = None
    rcpt = mail.recipients[0]
    if mail.automatic and not rt.is_agent(rcpt):
        limit = rt.rules.auto_reply_max_per_hour
        failing, recent = tx.outbox.automatic_budget(rcpt, now - timedelta(hours=1))
        if failing:
            state, reason = "suppressed", f"{rcpt} is failing (bounced)"
        elif rate_limited and recent >= limit:
            state, reason = "suppressed", f"more than {limit} automatic mails to {rcpt} in an hour"
    outbox_id = tx.outbox.add(mail, now, state=state)
    if ticket is None:
        return state == "pending"
    tx.messages.add(
        StoredMessage(
            ticket_number=ticket.number,
            direction="out",
            kind=mail.kind,
            sender=rt.settings.helpdesk.address,
            recipients=mail.recipients,
            subject=mail.subject,
            message_id=mail.message_id,
            at=now,
            body=mail.text,
            internal=internal or mail.internal,
            outbox_id=outbox_id,
            attachments=tuple(files),
        )
    )
    if reason:
        record_event(
            tx,
            ticket,
            now,
            SYSTEM,
            "auto_reply_suppressed",
            kind=mail.kind,
            to=list(mail.recipients),
            reason=reason,
        )
    elif public and not (internal or mail.internal):
        ticket.last_public_at = now
    return state == "pending"
