"""A ticket's SLA clock: deadlines, pauses, stored timers, and state as of a moment.

The arithmetic is `daemon.core.businesstime` and `daemon.core.sla`; this module
applies it to tickets and keeps the `timers` table in line with them, so the
sweeps of `daemon.app.jobs` only ask the database what is due (DESIGN.md:
time-driven work is a sweep over stored deadlines).

Whoever changes a ticket (pipeline, CLI, jobs) calls `reschedule` after the
change and before saving the ticket. It brings the clock in line with the
ticket (pending pauses it, leaving pending resumes it, reopening resumes it
after the time spent resolved, a new priority retargets it) and stores the
timers that follow from it:

- kind `sla`, per live target (`response` until the first response,
  `resolution` until resolved): `<target>:warning` at WARN_SHARE of the
  target, `<target>:breach` at its deadline, and `<target>:<share>%` for the
  ladder's step at that share (`resolution:75%`): keyed by share, not by
  position, so a step added to or removed from rules.yaml never makes another
  step fire twice;
- kind `update`, keyed by the moment the requester last heard from us: the
  next scheduled status update.

No timers exist while the clock is paused or once the ticket is resolved. A
timer that fired stays fired (the repository never re-arms it), which is what
makes every step happen once per ticket and target.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from daemon.core import businesstime, sla
from daemon.core.domain import Event, Status, Ticket
from daemon.ports import Tx
from daemon.rules import slatable
from daemon.rules.ruleset import Rules, SlaPolicy

SLA = "sla"
UPDATE = "update"
#: The timer kinds this module owns; other kinds (reminders ...) are left alone.
KINDS = (SLA, UPDATE)
TARGETS = ("response", "restoration", "resolution")
#: Share of a target at which its state turns `warning` (and `sla_warning` fires).
WARN_SHARE = 0.75

# Bookkeeping kept in Ticket.extra (stored with the ticket, so the clock stays
# a pure function of the ticket row).
_PRIORITY_KEY = "sla_priority"  # the priority the deadlines were computed for
_RESUMED_KEY = "sla_resumed_at"  # the last time the clock ran again
_UPDATE_TRIED_KEY = "update_tried_at"  # the last status update that was held back
#: The SLA table the ticket opened under (`daemon.rules.slatable`).
SLA_TABLE_KEY = "sla_table"

_SYSTEM = "spocd"


@dataclass(frozen=True, slots=True)
class PlannedTimer:
    """A timer as the ticket's state says it should be stored."""

    kind: str
    key: str
    due_at: datetime
    detail: dict[str, Any] = field(default_factory=dict)


def policy_of(ticket: Ticket, rules: Rules) -> SlaPolicy | None:
    """The ticket's SLA row: from the table it opened under (kept in
    `extra`, SPEC §7), so a reload or a removed contract leaves it on its
    targets and `#priority` takes the new row of the same table. A ticket
    without one (opened before contracts, or read without `extra` like the
    board's `clocks`) gets its contract's current row, else the top-level one."""
    stored = ticket.extra.get(SLA_TABLE_KEY) if ticket.extra else None
    table = slatable.decode(stored) if stored is not None else None
    if table is None:
        table = rules.sla_table(ticket.contract)
    return table.get(ticket.priority)


# --- deadlines ---------------------------------------------------------------


def set_deadlines(ticket: Ticket, rules: Rules) -> None:
    """Targets of the ticket's priority counted from its creation, moved by the
    business time it spent paused (so a priority change counts time spent)."""
    policy = policy_of(ticket, rules)
    if policy is None:
        return
    shift = ticket.paused_seconds
    if ticket.first_responded_at is None:
        ticket.first_response_due = sla.retarget(
            policy.calendar, ticket.created_at, policy.response, shift
        )
    ticket.resolution_due = sla.retarget(
        policy.calendar, ticket.created_at, policy.resolution, shift
    )
    if ticket.restored_at is None:
        ticket.restoration_due = sla.retarget(
            policy.calendar, ticket.created_at, policy.restoration_target, shift
        )


def _move_deadlines(ticket: Ticket, rules: Rules, since: datetime, now: datetime) -> float:
    """Deadlines moved on by the business time between `since` and `now` (a
    pause); returns that time, which is added to `paused_seconds`."""
    policy = policy_of(ticket, rules)
    if policy is None:
        return 0.0
    cal = policy.calendar
    spent = businesstime.business_seconds(cal, since, now)
    if ticket.first_responded_at is None and ticket.first_response_due:
        ticket.first_response_due = sla.resume_deadline(cal, ticket.first_response_due, since, now)
    if ticket.resolution_due:
        ticket.resolution_due = sla.resume_deadline(cal, ticket.resolution_due, since, now)
    if ticket.restored_at is None and ticket.restoration_due:
        ticket.restoration_due = sla.resume_deadline(cal, ticket.restoration_due, since, now)
    ticket.paused_seconds += spent
    return spent


def pause(ticket: Ticket, now: datetime) -> None:
    """Waiting for the requester: the clock stops."""
    if ticket.paused_at is None:
        ticket.paused_at = now


def resume(ticket: Ticket, rules: Rules, now: datetime) -> float:
    """The clock runs again; deadlines move by the business time spent paused.
    Returns that time in seconds.

    The resume moment is kept: status updates count from it, since a requester
    who has just answered us needs no news that we have their answer.
    """
    if ticket.paused_at is None:
        return 0.0
    spent = _move_deadlines(ticket, rules, ticket.paused_at, now)
    ticket.paused_at = None
    ticket.extra[_RESUMED_KEY] = utc_iso(now)
    return spent


def align_clock(ticket: Ticket, rules: Rules, now: datetime) -> list[tuple[str, dict[str, Any]]]:
    """Make the clock agree with the ticket; returns (event type, detail) per change.

    - a new priority retargets both deadlines from creation (time spent counts
      against the new target, SPEC §5);
    - an open ticket that still has `resolved_at` was reopened: the time it
      spent resolved is treated like a pause (the requester was verifying), and
      `resolved_at` goes back to null;
    - `pending` pauses the clock, any other status runs it.
    """
    changes: list[tuple[str, dict[str, Any]]] = []
    seen = ticket.extra.get(_PRIORITY_KEY)
    if seen != ticket.priority:
        if seen is not None:
            set_deadlines(ticket, rules)
            changes.append(
                (
                    "sla_retargeted",
                    {"from": seen, "to": ticket.priority, **_deadlines(ticket)},
                )
            )
        ticket.extra[_PRIORITY_KEY] = ticket.priority
    if ticket.is_open and ticket.resolved_at is not None:
        resolved_at = ticket.resolved_at
        spent = _move_deadlines(ticket, rules, resolved_at, now)
        ticket.resolved_at = None
        ticket.extra[_RESUMED_KEY] = utc_iso(now)
        changes.append(
            (
                "sla_resumed",
                {
                    "reason": "reopened",
                    "since": utc_iso(resolved_at),
                    "paused_business_s": round(spent),
                    **_deadlines(ticket),
                },
            )
        )
    if ticket.status == Status.PENDING and ticket.paused_at is None:
        pause(ticket, now)
        changes.append(("sla_paused", {"reason": "pending"}))
    elif ticket.status != Status.PENDING and ticket.paused_at is not None:
        since = ticket.paused_at
        spent = resume(ticket, rules, now)
        changes.append(
            (
                "sla_resumed",
                {
                    "reason": str(ticket.status),
                    "since": utc_iso(since),
                    "paused_business_s": round(spent),
                    **_deadlines(ticket),
                },
            )
        )
    return changes


def _deadlines(ticket: Ticket) -> dict[str, str | None]:
    return {
        "first_response_due": _iso(ticket.first_response_due),
        "restoration_due": _iso(ticket.restoration_due),
        "resolution_due": _iso(ticket.resolution_due),
    }


def _iso(moment: datetime | None) -> str | None:
    return utc_iso(moment) if moment else None


def utc_iso(moment: datetime) -> str:
    """A moment as stored text: always in UTC, so the same moment is the same
    timer key whether it came from the database or from a `--now` with an offset."""
    return moment.astimezone(UTC).isoformat()


# --- timers --------------------------------------------------------------------


def step_key(share: float) -> str:
    """A ladder step's part of its timer key: `75%`, `87.5%`, `150%`."""
    return f"{share * 100:g}%"


def target_due(ticket: Ticket, target: str) -> datetime | None:
    if target == "response":
        return ticket.first_response_due
    if target == "restoration":
        return ticket.restoration_due
    return ticket.resolution_due


def clock_runs(ticket: Ticket) -> bool:
    """False while paused, pending, no longer open or merged into another ticket."""
    return not (
        not ticket.is_open
        or ticket.status == Status.PENDING
        or ticket.paused_at is not None
        or ticket.merged_into is not None
    )


def live_targets(ticket: Ticket, policy: SlaPolicy | None = None) -> list[str]:
    """Targets whose clock runs now: none while the clock stands; the response
    target until the first response; restoration (when `policy` names its own
    target) and resolution until the service is restored (SPEC §8: once a
    workaround restored it, no resolution warning, breach or escalation fires;
    the resolution deadline stays for the strict figure of the report)."""
    if not clock_runs(ticket):
        return []
    live = []
    if ticket.first_responded_at is None and ticket.first_response_due is not None:
        live.append("response")
    if ticket.restored_at is None:
        if policy is not None and policy.restoration is not None and ticket.restoration_due:
            live.append("restoration")
        if ticket.resolution_due is not None:
            live.append("resolution")
    return live


def target_seconds(policy: SlaPolicy, ticket: Ticket, target: str) -> float:
    """The target itself in business seconds, counted from creation: pauses
    move the deadline, never the size of the target."""
    duration = {
        "response": policy.response,
        "restoration": policy.restoration_target,
    }.get(target, policy.resolution)
    cal = policy.calendar
    end = businesstime.add_business(cal, ticket.created_at, duration)
    return businesstime.business_seconds(cal, ticket.created_at, end)


def step_moment(
    cal: businesstime.Calendar, start: datetime, due: datetime, target_s: float, share: float
) -> datetime:
    """When `share` of the target has been used, counting running time only.

    Like `sla.threshold_moment`, but a pause before the threshold moves it by
    the paused time instead of stretching the target (75% of an 8 h target is
    6 h of running time, however long the ticket waited for the requester),
    which is how `sla.sla_state` judges `warning` too. 100% is the deadline;
    beyond it, the share of the target runs on from the deadline.
    """
    return _Thresholds(cal, start, due, lambda: target_s).at(share)


class _Thresholds:
    """The step moments of one target, computing the target's size and the
    deadline's shift once, and only when a share other than 100% asks."""

    def __init__(
        self, cal: businesstime.Calendar, start: datetime, due: datetime, size: Callable[[], float]
    ) -> None:
        self.cal, self.start, self.due = cal, start, due
        self._size_of = size
        self._size: float | None = None
        self._shift: float | None = None

    @property
    def size(self) -> float:
        if self._size is None:
            self._size = self._size_of()
        return self._size

    def at(self, share: float) -> datetime:
        if share == 1:
            return self.due
        if share > 1:
            return businesstime.add_seconds(self.cal, self.due, self.size * (share - 1))
        if self._shift is None:
            spanned = businesstime.business_seconds(self.cal, self.start, self.due)
            self._shift = max(spanned - self.size, 0.0)
        moment = businesstime.add_seconds(self.cal, self.start, self._shift + self.size * share)
        return min(moment, self.due)


def update_basis(ticket: Ticket) -> datetime:
    """When the requester last heard from us, as far as status updates go: our
    last public mail, the ticket's creation, the clock's last resume, or the
    last update that was held back (so a suppressed one is not retried at once)."""
    moments = [ticket.created_at]
    if ticket.last_public_at is not None:
        moments.append(ticket.last_public_at)
    for key in (_RESUMED_KEY, _UPDATE_TRIED_KEY):
        value = ticket.extra.get(key)
        if isinstance(value, str):
            moments.append(datetime.fromisoformat(value))
    return max(moments)


def plan_timers(
    ticket: Ticket, rules: Rules, only: tuple[str, str] | None = None
) -> list[PlannedTimer]:
    """Every timer of the kinds in KINDS the ticket should have now, or just
    the one named by `only` (kind, key) if the ticket has it.

    A pure function of the ticket and the rules: the sweep asks it again before
    acting, so a timer the ticket no longer warrants never fires.
    """
    policy = policy_of(ticket, rules)
    if policy is None or not clock_runs(ticket) or ticket.resolution_due is None:
        return []
    cal = policy.calendar
    planned: list[PlannedTimer] = []
    for target in live_targets(ticket, policy):
        steps: list[tuple[str, float, dict[str, Any]]] = [
            (f"{target}:warning", WARN_SHARE, {"event": "warning"}),
            (f"{target}:breach", 1.0, {"event": "breach"}),
        ]
        if target != "restoration":  # the ladder climbs on response and resolution
            steps += [
                (f"{target}:{step_key(step.share)}", step.share, {"step": i})
                for i, step in enumerate(rules.escalation)
            ]
        if only is not None:
            steps = [s for s in steps if (SLA, s[0]) == only]
        if not steps:
            continue
        due = target_due(ticket, target)
        assert due is not None
        moments = _Thresholds(
            cal, ticket.created_at, due, lambda t=target: target_seconds(policy, ticket, t)
        )
        base = {"target": target, "due": utc_iso(due)}
        for key, share, extra in steps:
            planned.append(
                PlannedTimer(SLA, key, moments.at(share), {**base, **extra, "share": share})
            )
    key = utc_iso(update_basis(ticket))
    if only is None or only == (UPDATE, key):
        basis = datetime.fromisoformat(key)
        planned.append(
            PlannedTimer(
                UPDATE,
                key,
                businesstime.add_business(cal, basis, policy.update_every),
                {"after": key},
            )
        )
    return planned


def clock_inputs(ticket: Ticket) -> tuple[Any, ...]:
    """Everything `align_clock` and `plan_timers` read from a ticket: when
    these are unchanged, so are its timers."""
    return (
        ticket.priority,
        ticket.status,
        ticket.created_at,
        ticket.paused_at,
        ticket.paused_seconds,
        ticket.first_response_due,
        ticket.resolution_due,
        ticket.restoration_due,
        ticket.restored_at,
        ticket.first_responded_at,
        ticket.resolved_at,
        update_basis(ticket),
        ticket.extra.get(_PRIORITY_KEY),
    )


def store_timers(
    tx: Tx,
    ticket: Ticket,
    rules: Rules,
    planned: list[PlannedTimer] | None = None,
    *,
    fresh: bool = False,
) -> None:
    """Write the planned timers: new ones added, moved ones moved, ones the
    ticket no longer warrants dropped; fired ones are left as they are.
    `planned` saves planning again when the caller already has the plan;
    `fresh` says the ticket was just created, so it has no timers to read."""
    if planned is None:
        planned = plan_timers(ticket, rules)
    existing = (
        {} if fresh else {(t.kind, t.key): t for t in tx.timers.of_ticket(ticket.number, KINDS)}
    )
    wanted = set()
    new: list[tuple[str, str, datetime, dict[str, Any]]] = []
    for p in planned:
        wanted.add((p.kind, p.key))
        old = existing.get((p.kind, p.key))
        if old is None:
            new.append((p.kind, p.key, p.due_at, p.detail))
        elif old.done_at is None and (old.due_at != p.due_at or old.detail != p.detail):
            tx.timers.move(old.id, p.due_at, p.detail)
    tx.timers.add_many(ticket.number, new)
    tx.timers.discard(
        [t.id for key, t in existing.items() if key not in wanted and t.done_at is None]
    )


def reschedule(tx: Tx, ticket: Ticket, rules: Rules, now: datetime) -> list[str]:
    """Call after any change to a ticket, before saving it: aligns the clock
    (recording an event per change) and stores the timers. Returns the types
    of the clock events recorded."""
    changes = align_clock(ticket, rules, now)
    for type_, detail in changes:
        tx.events.add(ticket.number, Event(at=now, actor=_SYSTEM, type=type_, detail=detail))
    store_timers(tx, ticket, rules)
    return [type_ for type_, _ in changes]


# --- responses and replies ---------------------------------------------------------


def record_response(tx: Tx, ticket: Ticket, now: datetime) -> bool:
    """The first public reply by an agent (mail or CLI) meets the response
    target; automatic mail never does. Later replies change nothing. Returns
    whether this was the first response; call `reschedule` after it, as after
    any change (it drops the response timers)."""
    if ticket.first_responded_at is not None:
        return False
    ticket.first_responded_at = now
    due = ticket.first_response_due
    tx.events.add(
        ticket.number,
        Event(
            at=now,
            actor=_SYSTEM,
            type="first_response",
            detail={"due": _iso(due), "met": due is None or now <= due},
        ),
    )
    return True
