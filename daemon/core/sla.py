"""SLA targets: deadlines, escalation thresholds and the states of SPEC §3.

Pure: built on the business-time arithmetic of `businesstime`, this module
only decides when a target is due, warned, paused, met or breached.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import datetime

from daemon.core.businesstime import (
    Calendar,
    Duration,
    add_business,
    add_seconds,
    business_seconds,
    seconds_to_delta,
    utc,
)


class SlaState(enum.StrEnum):
    """The ticket JSON `sla_state` values (SPEC §3)."""

    OK = "ok"
    WARNING = "warning"
    BREACHED = "breached"
    PAUSED = "paused"
    MET = "met"


def threshold_moment(cal: Calendar, start: datetime, due: datetime, share: float) -> datetime:
    """When `share` of the business time from `start` to `due` has elapsed.

    Drives the escalation ladder ("at: 75% / 100% / 150%"). A share of exactly
    1 is `due` itself, so the 100% step and the breach agree even when `due`
    sits at the end of a range; a share above 1 runs on past `due` by business
    time.
    """
    if not (0 <= share < float("inf")):
        raise ValueError(f"share must be finite and >= 0, got {share!r}")
    start, due = utc(start), utc(due)
    total = business_seconds(cal, start, due)
    if share < 1:
        return add_seconds(cal, start, total * share)
    extra = total * (share - 1)
    return add_seconds(cal, due, extra) if extra > 0 else due


def resume_deadline(
    cal: Calendar, due: datetime, paused_at: datetime, resumed_at: datetime
) -> datetime:
    """The deadline after a pause: moved on by the business time spent paused.

    A pause that began at or after `due` leaves it alone: the target was
    already missed, and waiting for the requester afterwards does not undo
    that. A pause that spent no business time (a weekend) moves nothing.
    """
    due = utc(due)
    if utc(paused_at) >= due:
        return due
    paused = business_seconds(cal, paused_at, resumed_at)
    return add_seconds(cal, due, paused) if paused > 0 else due


def retarget(
    cal: Calendar, start: datetime, new_target: Duration, paused_business_seconds: float
) -> datetime:
    """The deadline after a priority change: the new target counted from the
    original `start`, so time already spent counts against it, then shifted by
    the business time the ticket spent paused.

    `cal` is the new priority's calendar and `paused_business_seconds` should
    be measured in it. The result may already be past: the caller then sees a
    breach, which is the point of raising a late ticket to P1.
    """
    due = add_business(cal, start, new_target)
    paused = seconds_to_delta(paused_business_seconds)
    return add_seconds(cal, due, paused.total_seconds()) if paused else due


def sla_state(
    now: datetime,
    *,
    due: datetime,
    start: datetime,
    cal: Calendar,
    met_at: datetime | None = None,
    paused: bool = False,
    warn_share: float = 0.75,
    paused_seconds: float = 0.0,
    seconds: Callable[[Calendar, datetime, datetime], float] | None = None,
) -> SlaState:
    """The state of one SLA target at `now`, checked in this order:

    met (met_at <= due; met after due is breached), paused, breached
    (now > due), warning (business time since `start` reached `warn_share` of
    the target), ok. `paused_seconds` is the business time already spent
    paused (the deadline has moved by it); it is left out of both the elapsed
    time and the target so that a pause does not bring the warning forward.
    """
    now, due = utc(now), utc(due)
    if met_at is not None:
        return SlaState.MET if utc(met_at) <= due else SlaState.BREACHED
    if paused:
        return SlaState.PAUSED
    if now > due:
        return SlaState.BREACHED
    measure = seconds or business_seconds
    target = measure(cal, start, due) - paused_seconds
    elapsed = measure(cal, start, now) - paused_seconds
    return SlaState.WARNING if elapsed >= warn_share * target else SlaState.OK


_SEVERITY = {
    SlaState.MET: 0,
    SlaState.PAUSED: 1,
    SlaState.OK: 2,
    SlaState.WARNING: 3,
    SlaState.BREACHED: 4,
}


def combine_states(*states: str) -> SlaState:
    """The ticket's single `sla_state` from its targets (response, resolution).

    The worst of the live targets wins: breached > warning > ok > paused. A met
    target is no longer live, so it shows only when every target is met; a
    breached one (including one met late) stays breached, since a missed
    target cannot be made good.
    """
    if not states:
        raise ValueError("no SLA states to combine")
    return max((SlaState(s) for s in states), key=_SEVERITY.__getitem__)
