"""The scheduled sweeps: SLA warnings, breaches, escalations and status updates.

DESIGN.md "time-driven work is a sweep over stored deadlines": `slaclock`
stores every deadline as a row of `timers`; `run_due` asks the database what is
due at `now` (an indexed query, FOR UPDATE SKIP LOCKED on PostgreSQL), and for
each due timer re-checks that the ticket still warrants it, acts (events,
ticket changes, outbox rows) and marks it done in the same transaction. So a
restart neither repeats nor skips a step, two instances never take the same
timer, and a late tick catches up on every overdue step in order.

Timers are taken in small batches, one transaction each; when a batch fails,
its timers are retried one per transaction, and one that still fails is
postponed with its error instead of blocking the rest.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from daemon.app import (
    actions,
    agent_notices,
    closure,
    contacts,
    digest,
    kpimail,
    major,
    slaclock,
)
from daemon.app.tickets import SYSTEM, Runtime, queue_mail, record_event, thread_of
from daemon.core.domain import Event, Status, Ticket
from daemon.ports import Store, Timer, Tx
from daemon.rules.ruleset import EscalationStep, raise_priority

log = logging.getLogger("spocd.jobs")

#: Timers per transaction: small enough to keep locks short, large enough that
#: a sweep over many due timers is not one commit each.
BATCH = 100
#: How long a timer whose action failed waits before the next try.
RETRY_AFTER = timedelta(minutes=5)
#: A guard against a bug that would keep a timer due forever.
MAX_ROUNDS = 100_000
#: At most this many "what happened" lines in a status update.
MAX_HAPPENED = 20

Handler = Callable[[Tx, Runtime, Ticket, slaclock.PlannedTimer, datetime], str]


def run_due(
    store: Store,
    runtime: Callable[[], Runtime],
    now: datetime,
    *,
    batch: int = BATCH,
    stop: Callable[[], bool] = lambda: False,
) -> dict[str, int]:
    """Run every due sweep once at `now`; returns how many of each thing it did
    (only what happened: an empty dict when nothing was due). Once `stop()`
    says so, no further batch starts: what is left stays due."""
    counts: Counter[str] = Counter()
    for _ in range(MAX_ROUNDS):
        if stop():
            return _happened(counts)
        rt = runtime()
        timers: list[Timer] = []
        try:
            with store.transaction() as tx:
                timers = tx.timers.due(now, batch, HANDLERS)
                done = _fire_batch(tx, rt, timers, now)
        except Exception as exc:
            if not timers:
                raise  # the query itself failed: nothing to isolate
            log.warning("timer batch failed; one at a time", extra={"error": str(exc)})
            done = _fire_one_by_one(store, rt, [t.id for t in timers], now)
        counts.update(done)
        if not timers:
            break
    else:
        log.error("timers still due after %d rounds; stopping this sweep", MAX_ROUNDS)
    counts.update(closure_sweep(store, runtime, now, stop))
    for sweep in (digest.sweep, kpimail.sweep):
        if stop():
            break
        counts.update(sweep(store, runtime, now))
    return _happened(counts)


def _happened(counts: Counter[str]) -> dict[str, int]:
    return {key: value for key, value in counts.items() if value}


# --- closure: verification reminders and auto-close -----------------------------------


def closure_sweep(
    store: Store,
    runtime: Callable[[], Runtime],
    now: datetime,
    stop: Callable[[], bool] = lambda: False,
) -> Counter[str]:
    """Reminders to confirm a fix, and closure when nobody answers.

    A late sweep catches up once: if the auto-close is due, the ticket closes
    without the reminders it missed; otherwise one reminder goes, and the next
    one is counted from now.
    """
    counts: Counter[str] = Counter()
    kinds = (closure.AUTO_CLOSE, closure.VERIFY_REMINDER)
    for _ in range(MAX_ROUNDS):
        if stop():
            break
        with store.transaction() as tx:
            timers = tx.timers.due(now, BATCH, kinds)
            rt = runtime()
            for timer in sorted(timers, key=lambda t: (t.ticket_number, t.kind != kinds[0])):
                counts[_closure(tx, rt, timer, now)] += 1
        if not timers:
            break
    return counts


def _closure(tx: Tx, rt: Runtime, timer: Timer, now: datetime) -> str:
    ticket = tx.tickets.get(timer.ticket_number, for_update=True)
    tx.timers.done(timer.id, now)
    if ticket is None or ticket.status != Status.RESOLVED:
        return "skipped"
    ctx = actions.Ctx(tx, rt, now, SYSTEM, ticket)
    if tx.addresses.is_failing(ticket.requester):
        # Its reminders are suppressed and it cannot answer: silence proves nothing.
        held = closure.hold_verification(
            ctx, f"{ticket.requester} is failing (bounced)", fired=timer.kind
        )
        return "auto_close_held" if held else "skipped"
    if timer.kind == closure.AUTO_CLOSE:
        closure.auto_close(ctx)
        ctx.save()
        return "auto_closed"
    pending = {t.kind: t for t in tx.timers.pending(ticket.number)}
    close_at = pending.get(closure.AUTO_CLOSE)
    if close_at is not None and close_at.due_at <= now:
        return "skipped"  # the auto-close in this same sweep supersedes it
    closure.remind_verification(ctx)
    closure.schedule_next_reminder(ctx, close_at.due_at if close_at else None)
    ctx.save()
    return "verification_reminders"


def _fire_batch(tx: Tx, rt: Runtime, timers: list[Timer], now: datetime) -> Counter[str]:
    # By ticket, then time: one ticket's steps stay in order, and concurrent
    # instances lock tickets in the same order.
    # The batch's tickets are read (and locked) in one query; each serves its
    # ticket's timers, as the steps change and save it, unless another copy
    # of that ticket was saved since (a major incident's update reaches its
    # children): then it is read afresh.
    done: Counter[str] = Counter()
    fired: list[int] = []
    ahead = tx.tickets.get_many({t.ticket_number for t in timers}, for_update=True)
    for timer in sorted(timers, key=lambda t: (t.ticket_number, t.due_at, t.id)):
        ticket = ahead.get(timer.ticket_number)
        written = tx.tickets.saved.get(timer.ticket_number)
        if written is not None and written is not ticket:
            ticket = None
        done[fire(tx, rt, timer, now, fired, ticket)] += 1
    tx.timers.done_many(fired, now)
    return done


def _fire_one_by_one(
    store: Store, rt: Runtime, timer_ids: list[int], now: datetime
) -> Counter[str]:
    done: Counter[str] = Counter()
    for timer_id in timer_ids:
        try:
            with store.transaction() as tx:
                timer = tx.timers.claim(timer_id, now)
                if timer is not None:
                    done[fire(tx, rt, timer, now)] += 1
        except Exception as exc:
            log.exception("timer failed; postponed", extra={"timer": timer_id})
            with store.transaction() as tx:
                tx.timers.postpone(timer_id, now + RETRY_AFTER, f"{type(exc).__name__}: {exc}")
            done["failed"] += 1
    return done


def fire(
    tx: Tx,
    rt: Runtime,
    timer: Timer,
    now: datetime,
    fired: list[int] | None = None,
    ticket: Ticket | None = None,
) -> str:
    """Act on one due timer inside `tx`; returns what it did (a count key).

    The ticket is asked again what it warrants: a timer it no longer plans, or
    plans for later (a pause, a response, a new priority moved it), is moved or
    dropped instead of fired. A fired timer is marked done at once, or added
    to `fired` for the caller to mark in the same transaction. `ticket`: the
    timer's ticket when the caller has read and locked it in `tx` already.
    """

    def mark_done() -> None:
        if fired is None:
            tx.timers.done(timer.id, now)
        else:
            fired.append(timer.id)

    def flush_done() -> None:
        """Before the ticket's timers are written again, every timer fired so
        far must read as fired, so the new plan keeps it fired."""
        if fired:
            tx.timers.done_many(fired, now)
            fired.clear()

    if ticket is None:
        ticket = tx.tickets.get(timer.ticket_number, for_update=True)
    if ticket is None:
        mark_done()
        return "skipped"
    found = slaclock.plan_timers(ticket, rt.rules, only=(timer.kind, timer.key))
    plan = found[0] if found else None
    if plan is None or plan.due_at > now:
        flush_done()
        slaclock.store_timers(tx, ticket, rt.rules)
        return "skipped"
    before = replace(ticket, cc=list(ticket.cc), tags=list(ticket.tags), extra=dict(ticket.extra))
    result = HANDLERS[timer.kind](tx, rt, ticket, plan, now)
    mark_done()
    # Most steps only notify. A new priority, or a status update sent or held
    # back, changes what follows: only then is the ticket planned again.
    if slaclock.clock_inputs(ticket) != slaclock.clock_inputs(before):
        flush_done()
        slaclock.reschedule(tx, ticket, rt.rules, now)
    if ticket != before:
        tx.tickets.save(ticket)
    return result


# --- SLA: warnings, breaches, the escalation ladder ------------------------------


def _sla(tx: Tx, rt: Runtime, ticket: Ticket, plan: slaclock.PlannedTimer, now: datetime) -> str:
    detail = plan.detail
    target = detail["target"]
    event = detail.get("event")
    if event in ("warning", "breach"):
        record_event(
            tx,
            ticket,
            now,
            SYSTEM,
            f"sla_{event}",
            target=target,
            due=detail["due"],
            share=detail["share"],
            priority=ticket.priority,
        )
        return f"sla_{event}s" if event == "warning" else "sla_breaches"
    share = float(detail["share"])
    found = [(i, s) for i, s in enumerate(rt.rules.escalation) if s.share == share]
    if not found:
        return "skipped"  # the step left the ladder after its timer was stored
    [(index, step)] = found
    escalate(tx, rt, ticket, target, index, step, now)
    return "escalations"


def escalate(
    tx: Tx,
    rt: Runtime,
    ticket: Ticket,
    target: str,
    index: int,
    step: EscalationStep,
    now: datetime,
) -> None:
    """One step of the ladder: notify, raise the level, reassign, raise the
    priority; an event for the step and for each change it made."""
    old_assignee, old_group, old_priority = ticket.assignee, ticket.group, ticket.priority
    due = slaclock.target_due(ticket, target)
    wanted = notify_list(rt, ticket, step)
    notified = [a for a in wanted if not tx.addresses.is_failing(a)]
    if step.raise_level:
        ticket.escalation_level += 1
    reassigned = step.reassign if step.reassign and step.reassign != ticket.group else None
    if step.raise_priority:
        ticket.priority = raise_priority(ticket.priority)
        ticket.priority_explicit = True
    raised = ticket.priority if ticket.priority != old_priority else None
    record_event(
        tx,
        ticket,
        now,
        SYSTEM,
        "sla_escalation",
        target=target,
        step=index,
        share=step.share,
        level=ticket.escalation_level,
        level_raised=step.raise_level,
        notified=notified,
        not_notified=[a for a in wanted if a not in notified],
        reassigned_to=reassigned,
        priority=raised,
    )
    if reassigned:
        ticket.group = reassigned
        ticket.assignee = None
        record_event(
            tx,
            ticket,
            now,
            SYSTEM,
            "group_changed",
            reason="escalation",
            to=reassigned,
            **{"from": old_group},
        )
        if old_assignee:
            record_event(
                tx,
                ticket,
                now,
                SYSTEM,
                "assignee_changed",
                reason="escalation",
                to=None,
                **{"from": old_assignee},
            )
    if raised:
        record_event(
            tx,
            ticket,
            now,
            SYSTEM,
            "priority_changed",
            reason="escalation",
            to=raised,
            **{"from": old_priority},
        )
    if step.raise_level or reassigned or raised:
        ticket.updated_at = now
    if not notified:
        return
    context = {
        "target": target,
        "share": step.share,
        "percent": round(step.share * 100),
        "due": due,
        "overdue": due is not None and now > due,
        "step": index + 1,
        "level": ticket.escalation_level,
        "level_raised": step.raise_level,
        "reassigned": {"old": old_group, "new": reassigned} if reassigned else None,
        "priority_raised": {"old": old_priority, "new": raised} if raised else None,
        "previous_assignee": old_assignee,
        "notified": notified,
        "request_text": agent_notices.latest_request_text(tx, ticket),
    }
    mail = rt.composer.compose(
        template="escalation_notice",
        kind="escalation_notice",
        ticket=ticket,
        to=notified,
        context=context,
        now=now,
        language=rt.settings.helpdesk.default_language,
        thread=thread_of(tx, ticket),
        auto_submitted="auto-generated",
    )
    queue_mail(tx, rt, ticket, replace(mail, internal=True), now, public=False, rate_limited=False)


def notify_list(rt: Runtime, ticket: Ticket, step: EscalationStep) -> list[str]:
    """Who a step tells, as the ticket is before the step: the assignee (the
    group lead while nobody is assigned), the group lead, literal addresses;
    missing ones skipped, each address once, never the requester. A step that
    hands the ticket to another group also tells that group's lead, or nobody
    there would know it has a late ticket."""
    found: list[str | None] = []
    for who in step.notify:
        if who == "assignee":
            # Nobody assigned: the lead is who would assign it, and the one
            # who must hear that its clock is running out.
            found.append(ticket.assignee or rt.group_lead(ticket.group))
        elif who == "group_lead":
            found.append(rt.group_lead(ticket.group))
        else:
            found.append(who)
    if step.reassign and step.reassign != ticket.group:
        found.append(rt.group_lead(step.reassign))
    addresses = dict.fromkeys(a.lower() for a in found if a)
    addresses.pop(ticket.requester.lower(), None)
    return list(addresses)


# --- status updates ----------------------------------------------------------------


def _update(tx: Tx, rt: Runtime, ticket: Ticket, plan: slaclock.PlannedTimer, now: datetime) -> str:
    since = datetime.fromisoformat(plan.detail["after"])
    happened = what_happened(tx.events.of_ticket(ticket.number), since, rt.rules.agent_name)
    if ticket.first_responded_at is None:
        step, due = "first_response", ticket.first_response_due
    elif ticket.restored_at is not None:  # a workaround runs; the permanent fix follows
        step, due = "permanent_fix", None
    else:
        step, due = "resolution", ticket.resolution_due
    cc = (
        [ticket.escalated_by]
        if ticket.escalated_by and ticket.escalated_by != ticket.requester
        else []
    )
    copies = contacts.copied(rt, ticket, cc)
    mail = rt.composer.compose(
        template="status_update",
        kind="status_update",
        ticket=ticket,
        to=[ticket.requester],
        cc=[*cc, *copies],
        context={
            "happened": happened,
            "since": since,
            "next": {"step": step, "due": due if due and due > now else None},
        },
        now=now,
        thread=thread_of(tx, ticket, requester=True),
        auto_submitted="auto-generated",
    )
    # A major incident's update reaches its children's requesters too.
    major.fan_out_update(tx, rt, ticket, now, happened=happened, since=since, actor=SYSTEM)
    if contacts.queue_with_copies(tx, rt, ticket, mail, copies, now):
        record_event(
            tx, ticket, now, SYSTEM, "status_update", to=list(mail.recipients), items=len(happened)
        )
        return "status_updates"
    ticket.extra["update_tried_at"] = slaclock.utc_iso(now)  # the next try is a full interval on
    return "status_updates_held"


def what_happened(
    events: list[Event], since: datetime, name_of: Callable[[str], str | None] = lambda _: None
) -> list[dict[str, Any]]:
    """The changes since `since` a requester may be told of, oldest first, as
    data for the template (which words them in the ticket's language).
    `name_of`: an agent's name from rules.yaml; an agent without one stays
    "an agent" (their address is not for the requester)."""
    items: list[dict[str, Any]] = []
    for event in events:
        if event.at <= since:
            continue
        item = _public_item(event, name_of)
        if item is not None and (not items or items[-1] != item):
            items.append(item)
    return items[-MAX_HAPPENED:]


def _public_item(event: Event, name_of: Callable[[str], str | None]) -> dict[str, Any] | None:
    d = event.detail
    if event.type == "message_received":
        if d.get("role") in ("requester", "cc") and d.get("kind") == "reply":
            return {"type": "reply_received"}
        return None
    if event.type == "status_changed" and d.get("to") in {str(s) for s in Status}:
        return {"type": "status", "to": d["to"]}
    if event.type == "priority_changed":
        return {"type": "priority", "old": d.get("from"), "new": d.get("to")}
    # Group names and escalation levels are internal: the requester hears that
    # the request moved on, not to which team or level.
    if event.type == "group_changed" and d.get("to"):
        return {"type": "group"}
    if event.type == "assignee_changed" and d.get("to"):
        return {"type": "assigned", "agent": name_of(d["to"])}
    if event.type == "sla_escalation" and (d.get("level_raised") or d.get("reassigned_to")):
        return {"type": "escalated"}
    return None


HANDLERS: dict[str, Handler] = {slaclock.SLA: _sla, slaclock.UPDATE: _update}
