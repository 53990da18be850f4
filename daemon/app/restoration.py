"""A workaround: the service is back before the permanent fix (SPEC §8).

`#workaround` (the text below the commands) and `spocd ticket T workaround
--note TEXT` both come here. The workaround is mailed to the requester as the
agent's public reply, in a mail that says what it is: how to work again now,
while the desk goes on with the permanent fix. It counts as a response like
any public reply (the first one is the ticket's first response).

The first workaround records `restored_at` (the service is back): from then on
no resolution warning, breach or escalation fires (`slaclock.live_targets`),
status updates go on at `update_every`, and the ticket stays in progress until
it is resolved as usual. A later workaround is mailed and recorded as an event
but leaves `restored_at` where it is. A resolved, closed, cancelled or merged
ticket takes no workaround: there is no service to restore on it.
"""

from __future__ import annotations

from collections.abc import Sequence

from daemon.app import major, slaclock, slastate
from daemon.app.actions import ActionRefused, Ctx, _set_status
from daemon.app.tickets import queue_mail, thread_of
from daemon.core import businesstime, lifecycle
from daemon.core.domain import OPEN_STATES, Attachment
from daemon.mail.attachparts import NO_FILES, Plan

#: How much of the workaround text its event keeps (the mail keeps all of it).
EVENT_TEXT = 4000


def workaround(
    ctx: Ctx,
    text: str,
    *,
    pending_after: bool = False,
    attachments: Plan = NO_FILES,
    files: Sequence[Attachment] = (),
) -> None:
    """Record a workaround and mail it to the requester (and cc)."""
    ticket = ctx.ticket
    if ticket.merged_into is not None or ticket.status not in OPEN_STATES:
        state = "merged" if ticket.merged_into is not None else str(ticket.status)
        raise ActionRefused(
            f"{ctx.tid}: cannot record a workaround: the ticket is {state}. A workaround "
            "restores the service of an open ticket; reopen it first if the problem is back"
        )
    if not text.strip():
        raise ActionRefused(
            f"{ctx.tid}: a workaround needs its text: write below the command what the "
            "requester should do to work again (the text is mailed to them); nothing was "
            "recorded or sent"
        )
    slaclock.record_response(ctx.tx, ticket, ctx.now)
    first = ticket.restored_at is None
    if first:
        ticket.restored_at = ctx.now
        ticket.extra[slastate.RESTORED_PAUSED_KEY] = _paused_so_far(ctx)
    due = slaclock.target_due(ticket, "restoration") or ticket.resolution_due
    target = lifecycle.on_agent_reply(ticket.status, pending=pending_after)
    if target != ticket.status:
        _set_status(ctx, target)
    mail = ctx.rt.composer.compose(
        template="workaround",
        kind="workaround",
        ticket=ticket,
        to=[ticket.requester],
        cc=ticket.cc,
        context={
            "text": text,
            "agent": ctx.rt.agent_name(ctx.actor.address, ctx.actor.name),
            "first": first,
        },
        now=ctx.now,
        thread=thread_of(ctx.tx, ticket, requester=True),
        auto_submitted=None,
        attachments=attachments,
    )
    queue_mail(ctx.tx, ctx.rt, ticket, mail, ctx.now, files=files)
    ctx.event(
        "workaround",
        by=ctx.actor.address,
        text=text[:EVENT_TEXT],
        first=first,
        restored_at=slaclock.utc_iso(ticket.restored_at or ctx.now),
        restoration_due=slaclock.utc_iso(due) if due else None,
        met=due is None or (ticket.restored_at or ctx.now) <= due,
        message_id=mail.message_id,
    )
    # On a major incident the workaround restores every linked ticket's
    # service too: each child's requester gets it on their own ticket.
    major.fan_out_public(ctx, "workaround", text, attachments=attachments, each=_restore_child)


def _restore_child(cctx: Ctx) -> None:
    """A child reached by its parent's workaround is restored at that moment
    (a child restored before keeps its own moment)."""
    child = cctx.ticket
    first = child.restored_at is None
    if first:
        child.restored_at = cctx.now
        child.extra[slastate.RESTORED_PAUSED_KEY] = _paused_so_far(cctx)
    due = slaclock.target_due(child, "restoration") or child.resolution_due
    restored = child.restored_at or cctx.now
    cctx.event(
        "workaround",
        by=cctx.actor.address,
        first=first,
        restored_at=slaclock.utc_iso(restored),
        restoration_due=slaclock.utc_iso(due) if due else None,
        met=due is None or restored <= due,
        from_parent=True,
    )


def _paused_so_far(ctx: Ctx) -> float:
    """Business seconds the clock stood until now, the running pause included."""
    ticket = ctx.ticket
    paused = ticket.paused_seconds
    policy = slaclock.policy_of(ticket, ctx.rt.rules)
    if ticket.paused_at is not None and policy is not None:
        paused += businesstime.business_seconds(policy.calendar, ticket.paused_at, ctx.now)
    return paused
