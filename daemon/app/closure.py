"""Resolution and closure: what ends a ticket's work, and what undoes it.

Split from `actions` (issue 13: one job per module): resolving asks the
requester to confirm, reminds them and closes without an answer; their answer,
an agent's #close, #cancel, #reopen and #merge end or undo that. The same
functions serve mail commands, `spocd ticket` and the closure sweep; they
refuse with `ActionRefused` like every action.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from daemon.app import slaclock
from daemon.app.actions import ActionRefused, Ctx, _move, _set_status, notify_agents
from daemon.app.tickets import queue_mail, record_event, thread_of, with_first_line
from daemon.core import businesstime, lifecycle
from daemon.core.domain import OPEN_STATES, Status, Ticket
from daemon.mail.attachparts import NO_FILES, Plan
from daemon.mail.threads import format_tag

#: Timer kinds of the closure conversation (the jobs sweep them).
VERIFY_REMINDER = "verify_reminder"
AUTO_CLOSE = "auto_close"


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
    from daemon.mail import answers  # loaded where a ticket is resolved or an answer read

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
    reopen(
        ctx,
        f"requester: {answer}",
        notify=True,
        attachments=attachments,
        cause="answer",
        words=answer,
    )


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
    """The ticket is closed: what they reported and how it was solved, with
    the incident record when their contract asks for it (SPEC §8)."""
    from daemon.app import record_mail  # the record and its model, loaded for a closing

    ticket = ctx.ticket
    summary = record_mail.closing(ctx.tx, ctx.rt, ticket, ctx.now)
    mail = ctx.rt.composer.compose(
        template=template,
        kind=template,
        ticket=ticket,
        to=[ticket.requester],
        cc=with_first_line(ticket),
        context=summary.context,
        now=ctx.now,
        thread=thread_of(ctx.tx, ticket, requester=True),
        auto_submitted="auto-generated" if template == "auto_closed" else "auto-replied",
        attachments=summary.plan,
    )
    queue_mail(ctx.tx, ctx.rt, ticket, mail, ctx.now, files=summary.files)


def cancel(ctx: Ctx, reason: str | None = None) -> None:
    _move(ctx, Status.CANCELLED, reason=reason)
    ctx.ticket.closed_at = ctx.now
    ctx.tx.timers.cancel(ctx.ticket.number, (VERIFY_REMINDER, AUTO_CLOSE))


def reopen(
    ctx: Ctx,
    reason: str | None = None,
    *,
    notify: bool = False,
    attachments: Plan = NO_FILES,
    cause: str = "agent",
    words: str = "",
) -> None:
    """`reason` is recorded as given; the notice says why in the agents'
    language by its `cause`: "agent" (`reason` is the agent's own words),
    "answer" (the requester answered that it is not fixed, in `words`) or
    "after_closure" (the requester wrote to the closed ticket)."""
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
            {"reason": reason or "", "cause": cause, "words": words},
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
    linked = [c for c in ctx.tx.tickets.children(source.number) if c.status in OPEN_STATES]
    if linked:
        raise ActionRefused(
            f"{ctx.tid}: it is a major incident with {len(linked)} open linked tickets; "
            f"link them to {tid} (or #unlink them) first"
        )
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
