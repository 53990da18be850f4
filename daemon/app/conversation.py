"""Mail on an existing ticket, by who wrote it: agent, requester (or cc), bounce.

The pipeline has parsed, classified and threaded the message; this module
decides what it does to the ticket and records it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from daemon.app import actions, agent_notices, closure, major, restoration
from daemon.app.actions import ActionRefused, Ctx
from daemon.app.notify import Thread
from daemon.app.tickets import SYSTEM, Actor, Runtime, carried, record_event, record_inbound
from daemon.core import commands, text
from daemon.core.domain import ParsedMessage, Status, Ticket
from daemon.mail import bounces, msgid, trust
from daemon.mail import threads as mailthread
from daemon.ports import Tx

#: Commands that only change fields; they run before the status commands.
FIELD_COMMANDS = ("assign", "priority", "impact", "urgency", "category", "group")


def reopen_window_open(rt: Runtime, ticket: Ticket, now: datetime) -> bool:
    """SPEC §4: a reply within `reopen_days` (calendar days) reopens a closed ticket."""
    closed = ticket.closed_at or ticket.updated_at or now
    return now <= closed + timedelta(days=rt.rules.closure.reopen_days)


# --- bounces -------------------------------------------------------------------------------


def bounce_ticket(
    tx: Tx, rt: Runtime, msg: ParsedMessage, threaded: int | None, key: bytes
) -> tuple[int | None, bounces.Bounce | None]:
    """The ticket a bounce reports on: by the returned Message-ID (stored, or
    signed by us), then the tag of the returned subject, then threading."""
    report = bounces.parse_bounce(msg)
    if report is not None and report.original_message_id:
        number = tx.messages.ticket_of(report.original_message_id)
        if number is None:
            number = msgid.verified_ticket(
                key, rt.settings.helpdesk.domain, report.original_message_id
            )
        if number is not None:
            return number, report
    if report is not None and report.original_subject:
        number = mailthread.find_tag(report.original_subject, rt.prefix)
        if number is not None:
            return number, report
    return threaded, report


def record_bounce(
    tx: Tx,
    rt: Runtime,
    ticket: Ticket,
    msg: ParsedMessage,
    report: bounces.Bounce | None,
    inbound_id: int,
    now: datetime,
    key: bytes,
) -> None:
    """On the ticket as a `bounce` message; a permanent failure marks failing
    the addresses it may speak for, which pauses automatic mail to them.

    Anyone can write a delivery report. It may fail only the recipients of the
    mail it reports on, and only when that mail is ours: its Message-ID signed
    by us and its outbox row sent to them. Any other address it names is only
    noted (`ignored`), so a forged report cannot silence someone else.
    """
    sender = msg.sender.addr if msg.sender else ""
    record_inbound(tx, ticket, msg, kind="bounce", inbound_id=inbound_id, now=now, internal=True)
    failed = list(report.failed_recipients) if report else []
    reported = (report.original_message_id or "").strip().lower() if report else ""
    sent_to: tuple[str, ...] = ()
    if reported and msgid.is_signed(key, rt.settings.helpdesk.domain, reported):
        sent_to = tx.outbox.sent_recipients(reported)
    proven = [a for a in failed if a.lower() in sent_to]
    record_event(
        tx,
        ticket,
        now,
        Actor(sender or "mailer-daemon"),
        "bounce",
        failed=failed,
        status=report.status if report else None,
        action=report.action if report else "unknown",
        diagnostic=report.diagnostic if report else "",
        permanent=report.permanent if report else False,
        original_message_id=report.original_message_id if report else None,
        ignored=[a for a in failed if a not in proven],
    )
    agent_notices.forward_bounce(Ctx(tx, rt, now, SYSTEM, ticket), msg, report)
    if report is not None and report.permanent:
        for address in proven:
            mark_address_failing(
                tx,
                rt,
                address,
                now,
                reason=report.diagnostic or report.status or "bounced",
                status=report.status,
                ticket=ticket,
            )


def mark_address_failing(
    tx: Tx,
    rt: Runtime,
    address: str,
    now: datetime,
    *,
    reason: str,
    status: str | None = None,
    ticket: Ticket | None = None,
) -> bool:
    """Mail to `address` was refused for good (a bounce, a relay's 5xx): pause
    automatic mail to it. The caller has established that our mail really
    went to it. Returns whether the address was marked.

    An agent is never marked, only noted on `ticket` (`agent_address_bounced`):
    escalations and notices to agents must not go quiet on one report. A
    requester whose resolved tickets await their confirmation can no longer
    be asked, so those tickets stop closing themselves and their assignees are
    told (`closure.hold_verification`: timers, an event and a notice; no
    ticket field changes, so a caller's copy of a ticket stays current).
    """
    address = address.lower()
    if rt.is_agent(address):
        if ticket is not None:
            record_event(
                tx, ticket, now, SYSTEM, "agent_address_bounced", address=address, status=status
            )
        return False
    tx.addresses.mark_failing(address, now, reason)
    if ticket is not None:
        record_event(tx, ticket, now, SYSTEM, "address_failing", address=address, status=status)
    for found in tx.tickets.listing([Status.RESOLVED]):
        if found.requester != address:
            continue
        same = ticket is not None and found.number == ticket.number
        target = ticket if same else tx.tickets.get(found.number, for_update=True)
        if target is not None:
            why = f"{address} is failing (bounced): {reason}"
            closure.hold_verification(Ctx(tx, rt, now, SYSTEM, target), why)
    return True


# --- agents --------------------------------------------------------------------------------


def agent_mail(
    tx: Tx, rt: Runtime, ticket: Ticket, msg: ParsedMessage, inbound_id: int, now: datetime
) -> None:
    """An agent's reply: commands first (only if the mail proves its sender),
    then the rest goes to the requester, unless #internal. All or nothing."""
    sender = msg.sender.addr if msg.sender else ""
    own = text.own_text(msg.text)
    thread = Thread(references=msg.references[-20:]).after(msg.message_id)
    name = msg.sender.name if msg.sender else ""
    ctx = Ctx(tx, rt, now, Actor(sender, "email", name), ticket)
    agents = rt.settings.agents
    verdict = trust.check(msg, agents.trust, agents.trusted_authserv_ids)
    if commands.is_command_like(own) and not verdict.trusted:
        record_inbound(
            tx, ticket, msg, kind="agent_reply", inbound_id=inbound_id, now=now, internal=True
        )
        ctx.event(
            "untrusted_commands",
            reason=verdict.reason,
            lines=[line for line in own.splitlines() if line.startswith("#")][:20],
        )
        actions.command_result(
            ctx, sender, [f"commands not obeyed: {verdict.reason}"], thread, untrusted=True
        )
        ctx.save()
        return
    block = (
        commands.parse(own, rt.prefix) if verdict.trusted else commands.CommandBlock((), own, ())
    )
    if block.errors:
        _refuse(
            ctx,
            msg,
            inbound_id,
            [f"line {e.line}: {e.raw}: {e.reason}" for e in block.errors],
            thread,
        )
        return
    try:
        with tx.savepoint():
            _apply(ctx, block, msg, inbound_id)
            ctx.save()
    except ActionRefused as exc:
        reloaded = tx.tickets.get(ticket.number, for_update=True)
        ctx.ticket = reloaded if reloaded is not None else ticket
        _refuse(ctx, msg, inbound_id, [str(exc)], thread)


def _refuse(
    ctx: Ctx, msg: ParsedMessage, inbound_id: int, problems: list[str], thread: Thread
) -> None:
    record_inbound(
        ctx.tx,
        ctx.ticket,
        msg,
        kind="agent_reply",
        inbound_id=inbound_id,
        now=ctx.now,
        internal=True,
    )
    ctx.event("commands_refused", problems=problems)
    actions.command_result(ctx, ctx.actor.address, problems, thread)
    ctx.save()


def _apply(ctx: Ctx, block: commands.CommandBlock, msg: ParsedMessage, inbound_id: int) -> None:
    rest = block.rest.strip()
    internal = block.has("internal") or block.has("close")
    row = record_inbound(
        ctx.tx,
        ctx.ticket,
        msg,
        kind="agent_reply",
        inbound_id=inbound_id,
        now=ctx.now,
        internal=internal or not rest,
    )
    if block.commands:
        ctx.event("commands", lines=[c.raw for c in block.commands])
    for command in block.commands:
        if command.name in FIELD_COMMANDS:
            _field(ctx, command)
    for command in block.commands:
        if command.name not in FIELD_COMMANDS:
            rest = _status(ctx, command, rest)
    if not rest:
        return
    if block.has("internal") or block.has("close"):
        actions.note(ctx, rest)
    elif block.has("workaround"):  # the text is the workaround, mailed to the requester
        files = carried(ctx.tx, ctx.rt, row, msg.attachments, msg.html)
        restoration.workaround(ctx, rest, pending_after=block.has("pending"), attachments=files)
    else:
        files = carried(ctx.tx, ctx.rt, row, msg.attachments, msg.html)
        actions.reply(ctx, rest, pending_after=block.has("pending"), attachments=files)
        if not block.has("pending"):  # a question to the parent's requester is theirs
            major.fan_out_public(ctx, "agent_reply", rest, attachments=files)


def _field(ctx: Ctx, command: commands.Command) -> None:
    arg = command.arg or ""
    if command.name == "assign":
        actions.assign(ctx, arg)
    elif command.name == "priority":
        actions.set_priority(ctx, arg)
    elif command.name in ("impact", "urgency"):
        actions.set_level(ctx, command.name, arg)
    elif command.name == "category":
        actions.set_category(ctx, arg)
    elif command.name == "group":
        actions.set_group(ctx, arg)


def _status(ctx: Ctx, command: commands.Command, rest: str) -> str:
    """Apply a status command; returns what is left of the text to send."""
    name, arg = command.name, command.arg or ""
    if name == "status":
        actions.set_status(ctx, arg)
    elif name == "pending":
        if not rest:  # a reply with #pending pauses through the reply itself
            actions.pending(ctx)
    elif name == "resolve":
        closure.resolve(ctx, arg, rest)
        major.resolve_children(ctx, arg, rest)
        return ""  # the note went to the requester inside the verification request
    elif name == "close":
        if ctx.ticket.status != Status.RESOLVED:
            raise ActionRefused(
                f"{ctx.tid}: cannot close: the ticket is {ctx.ticket.status}; "
                "resolve it first (#resolve CODE with a note, then #close)"
            )
        closure.close(ctx, rest or None)
    elif name == "cancel":
        closure.cancel(ctx, rest or None)
    elif name == "reopen":
        closure.reopen(ctx, rest or None)
    elif name == "merge":
        ctx.ticket = closure.merge(ctx, int(arg))
    elif name == "link":
        major.link(ctx, int(arg))
    elif name == "unlink":
        major.unlink(ctx)
    return rest


# --- requesters ----------------------------------------------------------------------------


def requester_mail(
    tx: Tx,
    rt: Runtime,
    ticket: Ticket,
    msg: ParsedMessage,
    inbound_id: int,
    now: datetime,
    *,
    automatic: bool,
) -> None:
    """The requester or a cc'd person wrote. Automatic mail (an out-of-office)
    is kept but changes nothing: it must not resume a paused clock, and it is
    not forwarded to agents (nothing automatic answers automatic mail). Other
    mail is forwarded to whoever works the ticket."""
    sender = msg.sender.addr if msg.sender else ""
    ctx = Ctx(tx, rt, now, Actor(sender, "email"), ticket)
    before = ticket.status
    row = record_inbound(
        tx, ticket, msg, kind="auto_reply" if automatic else "reply", inbound_id=inbound_id, now=now
    )
    role = "requester" if sender == ticket.requester else "cc"
    ctx.event(
        "message_received",
        role=role,
        kind="auto_reply" if automatic else "reply",
        message_id=msg.message_id,
    )
    if automatic:
        ctx.save()
        return
    tx.addresses.clear(sender)  # they can receive mail again, it seems
    # The files of their mail go with whichever notice the agents get.
    files = carried(tx, rt, row, msg.attachments, msg.html)
    policy = rt.rules.closure
    if ticket.status == Status.RESOLVED:
        from daemon.mail import answers  # 8 ms to load, for a reply to a resolved ticket

        answer = answers.read_answer(
            msg.text,
            msg.subject,
            prefix=rt.prefix,
            yes_words=policy.yes_words,
            no_words=policy.no_words,
        )
        line = (text.own_text(msg.text) or mailthread.clean_subject(msg.subject, rt.prefix))[:500]
        if answer == "yes":
            closure.verified(ctx, line)
        elif answer == "no":
            closure.rejected(ctx, line, attachments=files)
        else:
            closure.unclear_answer(ctx, line, attachments=files)
        told = answer != "yes"  # the reopen or the unclear answer was a notice of its own
    elif ticket.status == Status.CLOSED:
        closure.reopen(
            ctx,
            "the requester wrote after closure",
            notify=True,
            attachments=files,
            cause="after_closure",
        )
        told = True
    else:
        actions.requester_answered(ctx)
        told = False
    ctx.save()
    if not told:
        agent_notices.forward_followup(ctx, msg, role=role, before=before, files=files)
