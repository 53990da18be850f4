"""`spocd report`: the KPIs of SPEC §3 from the stored tickets and events.

A pure computation over tickets and escalation events (the CLI loads them);
every duration is business time in the calendar of the ticket's SLA policy.

How a target (response, resolution) of a ticket counts in a period
[since, until), where `end` = min(until, now):

- met or missed in the period: its moment (first response; resolution) lies
  in the period; met when at or before the deadline, else a breach;
- still open at `end` and past its deadline: a breach (SPEC: an open ticket
  already past its target counts as one), unless the clock was paused before
  the deadline and still is;
- otherwise (decided before the period, or not yet due) it does not count.

The first response is the first public agent reply; a ticket resolved
without one counts its resolution as the response (the resolution is mailed
to the requester). Resolution time leaves out the time the clock was paused
(waiting for the requester, or resolved before a reopen). Cancelled tickets
count as opened and nothing else. Priority, group and contract are the
ticket's current ones; `by_contract` files tickets without a contract under
"(none)" (as `by_group` does; no contract id can be written so), and
`build(..., contract=ID)` restricts every figure to that contract's tickets.
Medians are the usual median; p90 is the nearest-rank 90th percentile (an
observed value), both rounded to whole seconds; compliance is met / (met +
breached), rounded to 4 places, or null when nothing counted.

Restoration (SPEC §8) is a third target, counted the same way: its moment is
the first workaround (`restored_at`), else the resolution (a fix restores the
service too); its deadline is `restoration_due`, which is the resolution
deadline when the SLA row names no `restoration`. Restoration time leaves out
the time paused before the workaround. `resolution_or_workaround_compliance`
is the client's "time to resolution or workaround" KPI: a ticket restored by a
workaround within its restoration target counts as met (at the workaround),
else its resolution counts as in `resolution_compliance`, which stays the
strict figure beside it. A missed restoration is a breach of its own (in
`breaches`) only when the row names its own target; otherwise it is the
resolution breach already counted.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from daemon.app import slaclock, slastate
from daemon.core import businesstime
from daemon.core.domain import OPEN_STATES, Event, Status, Ticket
from daemon.rules.ruleset import Rules
from daemon.rules.values import PRIORITIES

NO_GROUP = "(none)"
#: The `by_contract` key of tickets under no contract.
NO_CONTRACT = "(none)"
TARGETS = ("response", "resolution")
#: The event types the report reads besides the tickets.
EVENT_TYPES = ("sla_escalation",)
KPI_FIELDS = (
    "opened",
    "resolved",
    "response_compliance",
    "resolution_compliance",
    "first_response_median_s",
    "first_response_p90_s",
    "resolution_median_s",
    "resolution_p90_s",
    "breaches",
    "restoration_compliance",
    "resolution_or_workaround_compliance",
    "restoration_median_s",
    "restoration_p90_s",
)


@dataclass(frozen=True, slots=True)
class Period:
    since: datetime
    until: datetime


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one target of one ticket counts in the period."""

    target: str
    met: bool
    due: datetime
    at: datetime | None  # when it was met (or met late); None while still open
    late_s: float  # business seconds past the deadline (0 when met)


@dataclass(slots=True)
class _Facts:
    """What one ticket contributes to the figures."""

    ticket: Ticket
    opened: bool
    resolved: bool
    outcomes: list[Outcome]
    response_s: float | None  # business seconds to the first response, if in the period
    resolution_s: float | None  # business seconds to resolution, if in the period
    restoration: Outcome | None = None  # the restoration target, if it counts
    either: Outcome | None = None  # restored in time, or resolved: the client's KPI
    restoration_s: float | None = None  # business seconds to restoration, if in the period


def build(
    tickets: Iterable[Ticket],
    events: Sequence[tuple[int, Event]],
    rules: Rules,
    period: Period,
    now: datetime,
    prefix: str,
    contract: str | None = None,
) -> dict[str, Any]:
    """The report document (`spocd report --json`); with `contract`, of that
    contract's tickets only."""
    end = min(period.until, now)
    facts = [
        _facts(t, rules, period, end)
        for t in tickets
        if t.merged_into is None and (contract is None or t.contract == contract)
    ]
    by_priority = {p: _kpis([f for f in facts if f.ticket.priority == p]) for p in PRIORITIES}
    groups = sorted({*rules.groups, *(f.ticket.group or NO_GROUP for f in facts)})
    by_group = {g: _kpis([f for f in facts if (f.ticket.group or NO_GROUP) == g]) for g in groups}
    named = [contract] if contract is not None else list(rules.contracts)
    keys = list(dict.fromkeys([*named, *sorted({contract_key(f.ticket) for f in facts})]))
    by_contract = {c: _kpis([f for f in facts if contract_key(f.ticket) == c]) for c in keys}
    found = rules.contracts.get(contract) if contract is not None else None
    return {
        "period": {"since": period.since.isoformat(), "until": period.until.isoformat()},
        "contract": None
        if contract is None
        else {"id": contract, "name": found.name if found else None, "in_rules": bool(found)},
        "counts": _counts(facts, period, end),
        "by_priority": by_priority,
        "by_group": by_group,
        "by_contract": by_contract,
        "overall": _kpis(facts),
        "breaches": _breaches(facts, prefix),
        "backlog": _backlog(facts, end),
        "escalations": _escalations(events, period),
    }


def contract_key(ticket: Ticket) -> str:
    return ticket.contract or NO_CONTRACT


# --- one ticket ------------------------------------------------------------------


def _facts(ticket: Ticket, rules: Rules, period: Period, end: datetime) -> _Facts:
    policy = slaclock.policy_of(ticket, rules)
    cal = policy.calendar if policy else None
    opened = period.since <= ticket.created_at < period.until
    if ticket.status == Status.CANCELLED:
        return _Facts(ticket, opened, False, [], None, None)
    resolved_at = ticket.resolved_at
    responded_at = ticket.first_responded_at or resolved_at
    resolved = resolved_at is not None and _within(resolved_at, period)
    outcomes = []
    for target, due, met_at in (
        ("response", ticket.first_response_due, responded_at),
        ("resolution", ticket.resolution_due, resolved_at),
    ):
        outcome = _outcome(ticket, cal, target, due, met_at, period, end)
        if outcome is not None:
            outcomes.append(outcome)
    response_s = resolution_s = None
    if cal is not None and responded_at is not None and _within(responded_at, period):
        response_s = businesstime.business_seconds(cal, ticket.created_at, responded_at)
    if cal is not None and resolved:
        assert resolved_at is not None
        spent = businesstime.business_seconds(cal, ticket.created_at, resolved_at)
        resolution_s = max(spent - ticket.paused_seconds, 0.0)
    facts = _Facts(ticket, opened, resolved, outcomes, response_s, resolution_s)
    _restoration(facts, cal, own_target=bool(policy and policy.restoration), period=period, end=end)
    return facts


def _restoration(
    facts: _Facts,
    cal: businesstime.Calendar | None,
    *,
    own_target: bool,
    period: Period,
    end: datetime,
) -> None:
    """The restoration outcome and time, and the "resolution or workaround" one."""
    ticket = facts.ticket
    due = slastate.restoration_deadline(ticket)
    restored = slastate.restored_moment(ticket)
    facts.restoration = _outcome(ticket, cal, "restoration", due, restored, period, end)
    if own_target and facts.restoration is not None and not facts.restoration.met:
        facts.outcomes.append(facts.restoration)
    if ticket.restored_at is None:
        facts.restoration_s = facts.resolution_s
    elif cal is not None and _within(ticket.restored_at, period) and ticket.restored_at < end:
        spent = businesstime.business_seconds(cal, ticket.created_at, ticket.restored_at)
        paused = ticket.extra.get(slastate.RESTORED_PAUSED_KEY, ticket.paused_seconds)
        facts.restoration_s = max(spent - float(paused), 0.0)
    if slastate.restored_in_time(ticket):
        assert ticket.restored_at is not None and due is not None
        if ticket.restored_at < end and ticket.restored_at >= period.since:
            facts.either = Outcome("resolution_or_workaround", True, due, ticket.restored_at, 0.0)
        return
    strict = next((o for o in facts.outcomes if o.target == "resolution"), None)
    facts.either = strict


def _outcome(
    ticket: Ticket,
    cal: businesstime.Calendar | None,
    target: str,
    due: datetime | None,
    met_at: datetime | None,
    period: Period,
    end: datetime,
) -> Outcome | None:
    if due is None:
        return None
    if met_at is not None and met_at < end:
        if met_at < period.since:
            return None  # decided before the period
        late = _late(cal, due, met_at)
        return Outcome(target, met_at <= due, due, met_at, late)
    # Still open at the end of the period.
    if due >= end or ticket.created_at >= end:
        return None
    paused_at = ticket.paused_at
    if paused_at is not None and paused_at <= end and paused_at < due:
        return None  # the clock stopped before the deadline and has not run since
    return Outcome(target, False, due, None, _late(cal, due, end))


def _late(cal: businesstime.Calendar | None, due: datetime, moment: datetime) -> float:
    if moment <= due:
        return 0.0
    if cal is None:
        return (moment - due).total_seconds()
    return businesstime.business_seconds(cal, due, moment)


def _within(moment: datetime, period: Period) -> bool:
    return period.since <= moment < period.until


# --- figures -----------------------------------------------------------------------


def _kpis(facts: Sequence[_Facts]) -> dict[str, Any]:
    outcomes = [o for f in facts for o in f.outcomes]
    responses = [f.response_s for f in facts if f.response_s is not None]
    resolutions = [f.resolution_s for f in facts if f.resolution_s is not None]
    restorations = [f.restoration_s for f in facts if f.restoration_s is not None]
    return {
        "opened": sum(f.opened for f in facts),
        "resolved": sum(f.resolved for f in facts),
        "response_compliance": _compliance(o for o in outcomes if o.target == "response"),
        "resolution_compliance": _compliance(o for o in outcomes if o.target == "resolution"),
        "first_response_median_s": _median(responses),
        "first_response_p90_s": _p90(responses),
        "resolution_median_s": _median(resolutions),
        "resolution_p90_s": _p90(resolutions),
        "breaches": sum(not o.met for o in outcomes),
        "restoration_compliance": _compliance(f.restoration for f in facts if f.restoration),
        "resolution_or_workaround_compliance": _compliance(f.either for f in facts if f.either),
        "restoration_median_s": _median(restorations),
        "restoration_p90_s": _p90(restorations),
    }


def _compliance(outcomes: Iterable[Outcome]) -> float | None:
    counted = [o.met for o in outcomes]
    return round(sum(counted) / len(counted), 4) if counted else None


def _median(values: Sequence[float]) -> int | None:
    return round(statistics.median(values)) if values else None


def _p90(values: Sequence[float]) -> int | None:
    """Nearest rank: the smallest value with at least 90% of them at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[math.ceil(0.9 * len(ordered)) - 1])


def _counts(facts: Sequence[_Facts], period: Period, end: datetime) -> dict[str, int]:
    return {
        "opened": sum(f.opened for f in facts),
        "resolved": sum(f.resolved for f in facts),
        "closed": sum(
            f.ticket.closed_at is not None and _within(f.ticket.closed_at, period) for f in facts
        ),
        "open": sum(_open_at(f.ticket, end) for f in facts),
    }


def _open_at(ticket: Ticket, end: datetime) -> bool:
    """Open at `end`: created before it, neither resolved nor closed by then, not
    cancelled (a cancellation keeps no moment, so it counts as always)."""
    if ticket.created_at >= end or ticket.status == Status.CANCELLED:
        return False
    return not any(m is not None and m < end for m in (ticket.resolved_at, ticket.closed_at))


def _breaches(facts: Sequence[_Facts], prefix: str) -> list[dict[str, Any]]:
    rows = [
        {
            "ticket": f"{prefix}-{f.ticket.number}",
            "subject": f.ticket.subject,
            "target": o.target,
            "priority": f.ticket.priority,
            "group": f.ticket.group,
            "contract": f.ticket.contract,
            "assignee": f.ticket.assignee,
            "due": o.due.isoformat(),
            "met_at": o.at.isoformat() if o.at else None,
            "open": o.at is None,
            "late_s": round(o.late_s),
        }
        for f in facts
        for o in f.outcomes
        if not o.met
    ]
    return sorted(rows, key=lambda r: (r["due"], r["ticket"], r["target"]))


def _backlog(facts: Sequence[_Facts], end: datetime) -> dict[str, Any]:
    """Tickets open at the end of the period, by state and priority. A ticket
    resolved since then shows under `resolved_later`: its state at that moment
    is not stored."""
    open_tickets = [f.ticket for f in facts if _open_at(f.ticket, end)]
    states = Counter(str(t.status) if t.is_open else "resolved_later" for t in open_tickets)
    priorities = Counter(t.priority for t in open_tickets)
    by_state = {str(s): states.pop(str(s), 0) for s in Status if s in OPEN_STATES}
    by_state.update(states)
    return {
        "as_of": end.isoformat(),
        "total": len(open_tickets),
        "by_state": by_state,
        "by_priority": {p: priorities[p] for p in PRIORITIES},
    }


def _escalations(events: Sequence[tuple[int, Event]], period: Period) -> dict[str, Any]:
    steps = [e for _, e in events if e.type == "sla_escalation" and _within(e.at, period)]
    levels = Counter(str(e.detail.get("level", 0)) for e in steps)
    targets = Counter(str(e.detail.get("target", "")) for e in steps)
    return {
        "total": len(steps),
        "by_level": {k: levels[k] for k in sorted(levels, key=int)},
        "by_target": {t: targets[t] for t in TARGETS},
    }


# --- output ----------------------------------------------------------------------


def duration_text(seconds: int | None) -> str:
    """Business time as hours and minutes: business days differ in length."""
    if seconds is None:
        return "-"
    minutes = round(seconds / 60)
    return f"{minutes // 60}h {minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def format_text(report: dict[str, Any]) -> str:
    """A readable table for people."""
    period, counts = report["period"], report["counts"]
    about = report.get("contract")
    heading = f"SLA report {period['since']} .. {period['until']}"
    if about:
        heading += f", contract {about['id']}" + (f" ({about['name']})" if about["name"] else "")
    lines = [
        heading,
        "",
        f"Tickets: opened {counts['opened']}, resolved {counts['resolved']}, "
        f"closed {counts['closed']}, open at the end {counts['open']}",
        "",
    ]
    header = (
        f"{'':<16}{'opened':>7}{'resolved':>9}{'response':>10}{'resolution':>11}"
        f"{'1st resp med':>13}{'p90':>9}{'resol. med':>11}{'p90':>10}{'breaches':>9}"
        f"{'restore':>9}{'res./wa':>9}{'restor. med':>12}{'p90':>10}"
    )
    for title, rows in (
        ("By priority", report["by_priority"]),
        ("By group", report["by_group"]),
        ("By contract", report["by_contract"]),
        ("All", {"all": report["overall"]}),
    ):
        lines += [title, header]
        for name, k in rows.items():
            lines.append(
                f"{name[:15]:<16}{k['opened']:>7}{k['resolved']:>9}"
                f"{_percent(k['response_compliance']):>10}"
                f"{_percent(k['resolution_compliance']):>11}"
                f"{duration_text(k['first_response_median_s']):>13}"
                f"{duration_text(k['first_response_p90_s']):>9}"
                f"{duration_text(k['resolution_median_s']):>11}"
                f"{duration_text(k['resolution_p90_s']):>10}{k['breaches']:>9}"
                f"{_percent(k['restoration_compliance']):>9}"
                f"{_percent(k['resolution_or_workaround_compliance']):>9}"
                f"{duration_text(k['restoration_median_s']):>12}"
                f"{duration_text(k['restoration_p90_s']):>10}"
            )
        lines.append("")
    backlog = report["backlog"]
    states = ", ".join(f"{k} {v}" for k, v in backlog["by_state"].items()) or "-"
    prios = ", ".join(f"{k} {v}" for k, v in backlog["by_priority"].items() if v) or "-"
    lines += [
        f"Backlog at {backlog['as_of']}: {backlog['total']}",
        f"  by state:    {states}",
        f"  by priority: {prios}",
        "",
    ]
    lines += [
        "restore: restoration compliance; res./wa: resolution or workaround "
        "(restored within the restoration target, or resolved in time)",
        "",
    ]
    esc = report["escalations"]
    levels = ", ".join(f"level {k}: {v}" for k, v in esc["by_level"].items()) or "-"
    lines += [f"Escalations: {esc['total']} ({levels})", ""]
    breaches = report["breaches"]
    lines.append(f"Breaches ({len(breaches)}):")
    for b in breaches:
        state = "still open" if b["open"] else f"met {b['met_at']}"
        lines.append(
            f"  {b['ticket']:<9} {b['priority']:<3} {b['target']:<10} due {b['due']}  "
            f"late {duration_text(b['late_s'])}  {state}  {(b['group'] or NO_GROUP)}  "
            f"{b['contract'] or NO_CONTRACT}  "
            f"{b['subject'][:50]}"
        )
    return "\n".join(lines).rstrip() + "\n"


def format_csv(report: dict[str, Any]) -> str:
    """The KPI rows for a spreadsheet: one per priority, group, contract, and overall."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["dimension", "name", *KPI_FIELDS])
    for dimension, rows in (
        ("priority", report["by_priority"]),
        ("group", report["by_group"]),
        ("contract", report["by_contract"]),
        ("all", {"all": report["overall"]}),
    ):
        for name, k in rows.items():
            writer.writerow([dimension, name, *("" if k[f] is None else k[f] for f in KPI_FIELDS)])
    return out.getvalue()
