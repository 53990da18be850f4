"""What agents (by mail or CLI), requesters and jobs do to a ticket.

One function per action, shared by the mail commands, `spocd ticket` and the
scheduled jobs, so the rules and the audit trail are the same whatever the
channel. Each checks first and raises `ActionRefused` with a reason for the
agent; the caller runs a group of actions in a savepoint, so a refusal
anywhere leaves nothing applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from daemon.app import slaclock
from daemon.app.notify import Thread
from daemon.app.tickets import Actor, Runtime, queue_mail, record_event, thread_of, with_first_line
from daemon.core import businesstime, lifecycle
from daemon.core.domain import OPEN_STATES, Attachment, Status, Ticket
from daemon.mail import answers
from daemon.mail.attachparts import NO_FILES, Plan
from daemon.mail.threads import format_tag
from daemon.ports import Tx

LEVELS = ("high", "medium", "low")
PRIORITIES = ("P1", "P2", "P3", "P4", "P5")

#: Timer kinds of the closure conversation (the jobs sweep them).
VERIFY_REMINDER = "verify_reminder"
AUTO_CLOSE = "auto_close"


class ActionRefused(Exception):
    """An action that cannot be done; `str()` is the reason for the agent."""


@dataclass(slots=True)
class Ctx:
    """One actor working on one ticket inside one transaction."""

    tx: Tx
    rt: Runtime
    now: datetime
    actor: Actor
    ticket: Ticket
    _clock: tuple[int, tuple[Any, ...]] = field(init=False)

    def __post_init__(self) -> None:
        self._clock = (self.ticket.number, slaclock.clock_inputs(self.ticket))

    @property
    def tid(self) -> str:
        return self.rt.ticket_id(self.ticket.number)

    def event(self, type_: str, **detail: Any) -> None:
        record_event(self.tx, self.ticket, self.now, self.actor, type_, **detail)

    def save(self) -> None:
        """Bring the SLA clock and timers in line with the change, then store it.
        A change the clock does not read (a reply, a category) plans nothing."""
        self.ticket.updated_at = self.now
        if self._clock != (self.ticket.number, slaclock.clock_inputs(self.ticket)):
            slaclock.reschedule(self.tx, self.ticket, self.rt.rules, self.now)
        self.tx.tickets.save(self.ticket)


# --- status --------------------------------------------------------------------------------


def _move(ctx: Ctx, target: Status, **detail: Any) -> None:
    """Change status through the lifecycle, keeping the SLA clock in step."""
    current = ctx.ticket.status
    try:
        lifecycle.check(current, target)
    except lifecycle.TransitionRefused as exc:
        raise ActionRefused(f"{ctx.tid}: {exc.reason}") from exc
    _set_status(ctx, target, **detail)


def _set_status(ctx: Ctx, target: Status, **detail: Any) -> None:
    """The clock follows when the ticket is saved (`slaclock.reschedule`):
    pending pauses it, leaving pending or reopening runs it again."""
    ticket = ctx.ticket
    previous = ticket.status
    if previous == target:
        return
    ticket.status = target
    ctx.event("status_changed", **{"from": str(previous), "to": str(target)}, **detail)


def set_status(ctx: Ctx, status: str) -> None:
    """`#status` covers the working states; the others have their own command,
    because they carry more than a state (a code, a confirmation, a reason)."""
    target = Status(status)
    hint = {
        Status.RESOLVED: "#resolve CODE with a note",
        Status.CLOSED: "#close",
        Status.CANCELLED: "#cancel",
        Status.NEW: "#reopen",
        Status.ASSIGNED: "#assign ADDRESS",
    }
    if target in hint:
        raise ActionRefused(f"{ctx.tid}: use {hint[target]} to make it {target}")
    _move(ctx, target)


def pending(ctx: Ctx) -> None:
    """Waiting for the requester: the SLA clock stops until they answer."""
    _move(ctx, Status.PENDING)


def requester_answered(ctx: Ctx) -> None:
    """The requester wrote: a pending ticket is back in work, its clock runs."""
    target = lifecycle.on_requester_reply(ctx.ticket.status)
    if target != ctx.ticket.status:
        _set_status(ctx, target, reason="requester answered")


# --- fields --------------------------------------------------------------------------------


def assign(ctx: Ctx, address: str) -> None:
    address = ctx.actor.address if address == "me" else address.lower()
    if not ctx.rt.is_agent(address):
        raise ActionRefused(f"{ctx.tid}: cannot assign to {address}: not an agent in rules.yaml")
    _require_open(ctx, "assign")
    ticket = ctx.ticket
    if ticket.assignee == address:
        return
    old = ticket.assignee
    ticket.assignee = address
    group = ctx.rt.rules.group_of(address)
    if group is not None and ticket.group != group.name and not _member(ctx, ticket.group, address):
        ticket.group = group.name
    ctx.event("assignee_changed", **{"from": old, "to": address}, group=ticket.group)
    target = lifecycle.on_assign(ticket.status)
    if target != ticket.status:
        _set_status(ctx, target)
    if address != ctx.actor.address:
        notify_agents(ctx, "assigned", [address], {"by": ctx.actor.address})


def _member(ctx: Ctx, group: str | None, address: str) -> bool:
    found = ctx.rt.rules.groups.get(group or "")
    return bool(found and (address == found.lead or address in found.members))


def set_group(ctx: Ctx, name: str) -> None:
    if name not in ctx.rt.rules.groups:
        known = ", ".join(sorted(ctx.rt.rules.groups))
        raise ActionRefused(f"{ctx.tid}: no group {name!r} (groups: {known})")
    _require_open(ctx, "move")
    ticket = ctx.ticket
    if ticket.group == name:
        return
    old = ticket.group
    ticket.group = name
    ctx.event("group_changed", **{"from": old, "to": name})
    if ticket.assignee and not _member(ctx, name, ticket.assignee):
        ctx.event(
            "assignee_changed",
            **{"from": ticket.assignee, "to": None},
            reason=f"not in group {name}",
        )
        ticket.assignee = None


def set_category(ctx: Ctx, name: str) -> None:
    if ctx.ticket.category != name:
        ctx.event("category_changed", **{"from": ctx.ticket.category, "to": name})
        ctx.ticket.category = name


def set_priority(ctx: Ctx, priority: str) -> None:
    if priority not in PRIORITIES:
        raise ActionRefused(f"{ctx.tid}: priority must be one of {', '.join(PRIORITIES)}")
    ctx.ticket.priority_explicit = True
    _reprioritise(ctx, priority, reason="set explicitly")


def set_level(ctx: Ctx, which: str, level: str) -> None:
    """#impact / #urgency: the matrix decides the priority unless it was set."""
    if level not in LEVELS:
        raise ActionRefused(f"{ctx.tid}: {which} must be high, medium or low")
    ticket = ctx.ticket
    old = getattr(ticket, which)
    if old == level:
        return
    setattr(ticket, which, level)
    ctx.event(f"{which}_changed", **{"from": old, "to": level})
    if not ticket.priority_explicit:
        _reprioritise(
            ctx,
            ctx.rt.rules.priority_for(ticket.impact, ticket.urgency),
            reason=f"{which} changed (matrix)",
        )


def _reprioritise(ctx: Ctx, priority: str, reason: str) -> None:
    """A new priority brings new SLA targets; time already spent counts (SPEC §5)."""
    ticket = ctx.ticket
    if ticket.priority == priority:
        return
    old = ticket.priority
    ticket.priority = priority
    slaclock.set_deadlines(ticket, ctx.rt.rules)
    ctx.event(
        "priority_changed",
        **{"from": old, "to": priority},
        reason=reason,
        first_response_due=_iso(ticket.first_response_due),
        resolution_due=_iso(ticket.resolution_due),
    )


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _require_open(ctx: Ctx, verb: str) -> None:
    if ctx.ticket.status not in OPEN_STATES:
        raise ActionRefused(
            f"{ctx.tid}: cannot {verb}: the ticket is {ctx.ticket.status}; reopen it first"
        )


# --- conversation --------------------------------------------------------------------------


def reply(
    ctx: Ctx,
    text: str,
    *,
    pending_after: bool = False,
    attachments: Plan = NO_FILES,
    files: Sequence[Attachment] = (),
) -> None:
    """A public reply by an agent, mailed to the requester (and cc): the first
    one is the ticket's first response. `attachments`: what the mail carries
    and lists; `files`: attachments new to the ticket (a CLI reply's), stored
    on the reply itself."""
    ticket = ctx.ticket
    if not text.strip():
        raise ActionRefused(f"{ctx.tid}: an empty reply")
    slaclock.record_response(ctx.tx, ticket, ctx.now)
    target = lifecycle.on_agent_reply(ticket.status, pending=pending_after)
    if target != ticket.status:
        _set_status(ctx, target)
    mail = ctx.rt.composer.compose(
        template="agent_reply",
        kind="agent_reply",
        ticket=ticket,
        to=[ticket.requester],
        cc=ticket.cc,
        context={"text": text, "agent": ctx.rt.agent_name(ctx.actor.address)},
        now=ctx.now,
        thread=thread_of(ctx.tx, ticket, requester=True),
        auto_submitted=None,
        attachments=attachments,
    )
    queue_mail(ctx.tx, ctx.rt, ticket, mail, ctx.now, files=files)
    ctx.event("replied", by=ctx.actor.address, message_id=mail.message_id)


def note(ctx: Ctx, text: str) -> None:
    """An internal note: on the ticket, to no requester."""
    if not text.strip():
        raise ActionRefused(f"{ctx.tid}: an empty note")
    ctx.event("note", text=text[:4000])


# --- resolution and closure ----------------------------------------------------------------


def resolve(ctx: Ctx, code: str, resolution: str) -> None:
    """Resolved, with the code and the full note the contract promises; the
    requester is asked to confirm, reminded, and auto-closed without answer."""
    if not code.strip() or not resolution.strip():
        raise ActionRefused(f"{ctx.tid}: resolving needs a resolution code and a note")
    _move(ctx, Status.RESOLVED, code=code)
    ticket = ctx.ticket
    ticket.resolution_code = code
    ticket.resolution_note = resolution
    ticket.resolved_at = ctx.now
    ctx.event("resolved", code=code, note=resolution[:4000])
    schedule_verification(ctx)  # first: the request names the day of the auto-close
    _ask_verification(ctx, "verification")
    if ctx.tx.addresses.is_failing(ticket.requester):  # the request was suppressed
        hold_verification(ctx, f"{ticket.requester} is failing (bounced)")


def _ask_verification(ctx: Ctx, template: str, auto_submitted: str = "auto-generated") -> None:
    ticket = ctx.ticket
    mail = ctx.rt.composer.compose(
        template=template,
        kind=template,
        ticket=ticket,
        to=[ticket.requester],
        cc=with_first_line(ticket) if template == "verification" else ticket.cc,
        context=_answer_context(ctx),
        now=ctx.now,
        thread=thread_of(ctx.tx, ticket, requester=True),
        auto_submitted=auto_submitted,
    )
    queue_mail(ctx.tx, ctx.rt, ticket, mail, ctx.now)


def _answer_context(ctx: Ctx) -> dict[str, Any]:
    """What a request to confirm shows: the words to answer with in the
    requester's language, the two one-click `mailto:` links, the auto-close."""
    ticket = ctx.ticket
    language = ticket.language if ticket.language in answers.ONE_CLICK else "en"
    address = ctx.rt.composer.identity.address
    tag = format_tag(ctx.rt.prefix, ticket.number)
    yes_word, no_word = answers.ASK_WORDS[language]
    subjects = answers.one_click_subjects(language, tag)
    links = {
        name: {"label": label, "subject": subject, "url": answers.mailto(address, subject)}
        for name, label, subject in zip(
            ("yes", "no"), answers.ONE_CLICK[language], subjects, strict=True
        )
    }
    close = [t.due_at for t in ctx.tx.timers.pending(ticket.number) if t.kind == AUTO_CLOSE]
    return {
        "yes_word": yes_word,
        "no_word": no_word,
        "answer_links": links,
        "close_at": min(close) if close else None,
    }


def schedule_verification(ctx: Ctx) -> None:
    """Reminder and auto-close moments, in the ticket's SLA calendar."""
    policy = slaclock.policy_of(ctx.ticket, ctx.rt.rules)
    closure = ctx.rt.rules.closure
    if policy is None:
        return
    start = ctx.now
    close_at = businesstime.add_business(policy.calendar, start, closure.auto_close_after)
    remind_at = businesstime.add_business(policy.calendar, start, closure.remind_every)
    ctx.tx.timers.cancel(ctx.ticket.number, (VERIFY_REMINDER, AUTO_CLOSE))
    if remind_at < close_at:
        ctx.tx.timers.set(
            ctx.ticket.number, VERIFY_REMINDER, slaclock.utc_iso(remind_at), remind_at
        )
    ctx.tx.timers.set(ctx.ticket.number, AUTO_CLOSE, slaclock.utc_iso(start), close_at)


def schedule_next_reminder(ctx: Ctx, close_at: datetime | None) -> None:
    """The next reminder `remind_every` after now, if it comes before the close."""
    policy = slaclock.policy_of(ctx.ticket, ctx.rt.rules)
    if policy is None:
        return
    nxt = businesstime.add_business(policy.calendar, ctx.now, ctx.rt.rules.closure.remind_every)
    if close_at is None or nxt < close_at:
        ctx.tx.timers.set(ctx.ticket.number, VERIFY_REMINDER, slaclock.utc_iso(nxt), nxt)


def verified(ctx: Ctx, answer: str) -> None:
    """The requester confirmed the fix."""
    _close(ctx, "verified", note=answer)
    _tell_requester(ctx, "closed")


def rejected(ctx: Ctx, answer: str, attachments: Plan = NO_FILES) -> None:
    """The requester says it is not fixed: back to the assignee, who is told
    (with the files the answer brought: a screenshot of the error, say)."""
    reopen(ctx, f"requester: {answer}", notify=True, attachments=attachments)


def unclear_answer(ctx: Ctx, answer: str, attachments: Plan = NO_FILES) -> None:
    """Neither yes nor no: the ticket stays resolved. The requester is asked
    once per resolution (a second unclear answer gets no second question);
    the assignee (the group lead if nobody is) hears of every one."""
    asked = _asked_since_resolved(ctx)
    ctx.event("verification_unclear", answer=answer, asked=not asked)
    if not asked:
        _ask_verification(ctx, "verification_unclear", auto_submitted="auto-replied")
    notify_agents(
        ctx,
        "answer_unclear",
        _assignee_or_lead(ctx),
        {"answer": answer, "asked": not asked},
        attachments=attachments,
    )


def _assignee_or_lead(ctx: Ctx) -> list[str]:
    lead = ctx.rt.group_lead(ctx.ticket.group)
    return [ctx.ticket.assignee] if ctx.ticket.assignee else ([lead] if lead else [])


def _asked_since_resolved(ctx: Ctx) -> bool:
    """Whether this resolution's requester got the unclear-answer question (the
    trail says it: no field to keep in step)."""
    for event in reversed(ctx.tx.events.of_ticket(ctx.ticket.number)):
        if event.type == "resolved":
            return False
        if event.type == "verification_unclear" and event.detail.get("asked"):
            return True
    return False


def close(ctx: Ctx, note_text: str | None = None) -> None:
    """An agent closes a resolved ticket (verified by phone: closure agent)."""
    _close(ctx, "agent", note=note_text)


def auto_close(ctx: Ctx) -> None:
    _close(ctx, "auto", note=None)
    _tell_requester(ctx, "auto_closed")


def _close(ctx: Ctx, closure: str, note: str | None) -> None:
    _move(ctx, Status.CLOSED, closure=closure)
    ctx.ticket.closure = closure
    ctx.ticket.closed_at = ctx.now
    ctx.tx.timers.cancel(ctx.ticket.number, (VERIFY_REMINDER, AUTO_CLOSE))
    ctx.event("closed", closure=closure, note=(note or "")[:4000] or None)


def hold_verification(ctx: Ctx, reason: str, *, fired: str | None = None) -> bool:
    """The requester cannot be asked (their address bounces): a ticket that
    closes itself for want of an answer nobody could give would be a false
    closure. Reminders and the auto-close stop; the assignee (else the group
    lead) is told and decides (#close after asking by other means, #reopen).
    False when there was nothing to hold: not resolved, or held already.
    `fired`: the closure timer being handled now, no longer pending."""
    ticket = ctx.ticket
    pending = {t.kind for t in ctx.tx.timers.pending(ticket.number)} | {fired}
    if ticket.status != Status.RESOLVED or AUTO_CLOSE not in pending:
        return False
    ctx.tx.timers.cancel(ticket.number, (VERIFY_REMINDER, AUTO_CLOSE))
    lead = ctx.rt.group_lead(ticket.group)
    to = [ticket.assignee] if ticket.assignee else ([lead] if lead else [])
    ctx.event("auto_close_held", reason=reason[:2000], requester=ticket.requester, told=to)
    notify_agents(ctx, "verification_held", to, {"reason": reason, "requester": ticket.requester})
    return True


def remind_verification(ctx: Ctx) -> None:
    if ctx.ticket.status == Status.RESOLVED:
        _ask_verification(ctx, "verification_reminder")
        ctx.event("verification_reminder")


def _tell_requester(ctx: Ctx, template: str) -> None:
    ticket = ctx.ticket
    mail = ctx.rt.composer.compose(
        template=template,
        kind=template,
        ticket=ticket,
        to=[ticket.requester],
        cc=with_first_line(ticket),
        context={},
        now=ctx.now,
        thread=thread_of(ctx.tx, ticket, requester=True),
        auto_submitted="auto-generated" if template == "auto_closed" else "auto-replied",
    )
    queue_mail(ctx.tx, ctx.rt, ticket, mail, ctx.now)


def cancel(ctx: Ctx, reason: str | None = None) -> None:
    _move(ctx, Status.CANCELLED, reason=reason)
    ctx.ticket.closed_at = ctx.now
    ctx.tx.timers.cancel(ctx.ticket.number, (VERIFY_REMINDER, AUTO_CLOSE))


def reopen(
    ctx: Ctx, reason: str | None = None, *, notify: bool = False, attachments: Plan = NO_FILES
) -> None:
    ticket = ctx.ticket
    target = lifecycle.reopen_target(ticket.assignee is not None)
    _move(ctx, target, reason=reason)
    ticket.closure = None
    ticket.closed_at = None  # resolved_at stays: the clock gives back the time spent resolved
    ctx.tx.timers.cancel(ticket.number, (VERIFY_REMINDER, AUTO_CLOSE))
    ctx.event("reopened", reason=(reason or "")[:4000] or None)
    if notify:
        notify_agents(
            ctx,
            "reopened",
            _assignee_or_lead(ctx),
            {"reason": reason or ""},
            attachments=attachments,
        )


def merge(ctx: Ctx, target_number: int) -> Ticket:
    """Messages and watchers move to the survivor; this ticket keeps a link and
    later mail to it lands there (threading follows `merged_into`)."""
    source = ctx.ticket
    if target_number == source.number:
        raise ActionRefused(f"{ctx.tid}: cannot merge a ticket into itself")
    target = ctx.tx.tickets.get(target_number, for_update=True)
    tid = ctx.rt.ticket_id(target_number)
    if target is None:
        raise ActionRefused(f"{ctx.tid}: no ticket {tid} to merge into")
    if target.merged_into is not None:
        raise ActionRefused(f"{ctx.tid}: {tid} was itself merged; merge into its survivor")
    if target.status not in OPEN_STATES:
        raise ActionRefused(f"{ctx.tid}: {tid} is {target.status}; reopen it first")
    moved = ctx.tx.messages.move(source.number, target.number)
    watchers = [
        a for a in (source.requester, *source.cc) if a != target.requester and a not in target.cc
    ]
    target.cc = [*target.cc, *watchers]
    target.updated_at = ctx.now
    ctx.tx.tickets.save(target)
    record_event(
        ctx.tx,
        target,
        ctx.now,
        ctx.actor,
        "merged_in",
        source=ctx.tid,
        messages=moved,
        watchers=watchers,
    )
    source.merged_into = target.number
    if source.status in OPEN_STATES:
        _set_status(ctx, Status.CANCELLED, reason=f"merged into {tid}")
        source.closed_at = ctx.now
    ctx.tx.timers.cancel(source.number, (VERIFY_REMINDER, AUTO_CLOSE))
    ctx.event("merged", into=tid, messages=moved)
    ctx.save()  # the caller goes on with the survivor
    return target


# --- mail to agents ------------------------------------------------------------------------


def notify_agents(
    ctx: Ctx,
    template: str,
    to: list[str],
    context: dict[str, Any],
    thread: Thread | None = None,
    attachments: Plan = NO_FILES,
) -> None:
    """Ticket mail to agents: tagged and with a signed Message-ID, so a reply
    threads; never rate-limited like answers to strangers, never to requesters."""
    recipients = [a for a in dict.fromkeys(to) if a]
    if not recipients:
        return
    ticket = ctx.ticket
    mail = ctx.rt.composer.compose(
        template=template,
        kind=template,
        ticket=ticket,
        to=recipients,
        context=context,
        now=ctx.now,
        language=ctx.rt.settings.helpdesk.default_language,
        thread=thread if thread is not None else thread_of(ctx.tx, ticket),
        auto_submitted="auto-generated",
        attachments=attachments,
    )
    queue_mail(ctx.tx, ctx.rt, ticket, mail, ctx.now, public=False, internal=True)


def command_result(
    ctx: Ctx, to: str, problems: list[str], thread: Thread, *, untrusted: bool = False
) -> None:
    """Tell an agent why nothing of their mail was applied."""
    mail = ctx.rt.composer.compose(
        template="command_result",
        kind="command_result",
        ticket=ctx.ticket,
        to=[to],
        context={"problems": problems, "untrusted": untrusted},
        now=ctx.now,
        language=ctx.rt.settings.helpdesk.default_language,
        thread=thread,
        auto_submitted="auto-replied",
    )
    queue_mail(ctx.tx, ctx.rt, ctx.ticket, mail, ctx.now, public=False, internal=True)
