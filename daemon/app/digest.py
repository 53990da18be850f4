"""Morning digests: each agent's open tickets, each lead's tickets at risk.

rules.yaml `digest: {at: "08:00", calendar: office}`. The sweep (run with the
other timers by `jobs.run_due`) asks for the latest digest moment at or
before now (that time on a working day of the calendar) and sends when the
moment recorded as done is older. So a late tick, or a restart after days of
downtime, sends one digest for the latest moment, never one per missed day;
the mails and the new moment are written in one transaction, so each person
gets at most one per moment, and a failed sweep sends nothing and retries.

Who gets what (`plan`, pure): an agent (a lead or member of a group) their
open tickets by time left; a group lead the group's tickets at warning or
breached and its unassigned ones; one mail per person with both parts;
nobody with nothing to show gets mail. Rows and states are the SLA board's
(`daemon.app.board`), so the digest and the board agree.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from daemon.app import board, slaclock
from daemon.app.tickets import Runtime
from daemon.core import businesstime
from daemon.ports import Store
from daemon.rules.ruleset import DigestPolicy, Rules

#: The settings row with the last digest moment sent (UTC ISO text).
SENT_KEY = "digest_sent_for"
#: How far back a digest moment is looked for (a calendar with no working day
#: in this many days has no digest).
LOOK_BACK_DAYS = 31
AT_RISK = ("warning", "breached")


def latest_moment(policy: DigestPolicy, now: datetime) -> datetime | None:
    """The last digest moment at or before `now`: `policy.at` on a working
    day of the calendar, in the calendar's zone."""
    cal = policy.calendar
    zone = ZoneInfo(cal.timezone)
    today = now.astimezone(zone).date()
    for back in range(LOOK_BACK_DAYS + 1):
        day = today - timedelta(days=back)
        moment = datetime.combine(day, policy.at, tzinfo=zone)
        if moment <= now and _working_day(cal, day, zone):
            return moment
    return None


def _working_day(cal: businesstime.Calendar, day: Any, zone: ZoneInfo) -> bool:
    if cal.always:
        return True
    midnight = datetime.combine(day, time(), tzinfo=zone)
    return businesstime.business_seconds(cal, midnight, midnight + timedelta(days=1)) > 0


@dataclass
class Digest:
    """One person's mail: their own tickets and, for a lead, each group's at risk."""

    address: str
    mine: list[board.Row] = field(default_factory=list)
    groups: dict[str, list[board.Row]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.mine and not any(self.groups.values())


def plan(rows: list[board.Row], rules: Rules) -> list[Digest]:
    """Who gets which rows (rows already ordered by time left); only people
    with something to show, in address order."""
    agents = rules.agents()
    digests: dict[str, Digest] = {}
    for r in rows:
        if r.assignee and r.assignee.lower() in agents:
            who = r.assignee.lower()
            digests.setdefault(who, Digest(who)).mine.append(r)
    for name, group in rules.groups.items():
        at_risk = [
            r for r in rows if r.group == name and (r.sla_state in AT_RISK or r.assignee is None)
        ]
        if at_risk:
            digests.setdefault(group.lead, Digest(group.lead)).groups[name] = at_risk
    return [digests[a] for a in sorted(digests) if not digests[a].empty]


def _row(r: board.Row) -> dict[str, Any]:
    return {
        "tag": r.tag,
        "subject": r.subject,
        "requester": r.requester,
        "contract": r.contract,
        "priority": r.priority,
        "group": r.group,
        "assignee": r.assignee,
        "status": r.status,
        "state": r.sla_state,
        "target": r.target,
        "due": r.due,
        "seconds_left": r.seconds_left,
        "escalation_level": r.escalation_level,
    }


def context(digest: Digest, rules: Rules, moment: datetime) -> dict[str, Any]:
    every = [*digest.mine, *(r for rows in digest.groups.values() for r in rows)]
    unique = {r.number: r for r in every}.values()
    return {
        "name": rules.agent_name(digest.address),
        "address": digest.address,
        "date": moment,
        "mine": [_row(r) for r in digest.mine],
        "groups": [
            {"name": g, "rows": [_row(r) for r in rows]} for g, rows in digest.groups.items()
        ],
        "counts": {
            "mine": len(digest.mine),
            "breached": sum(1 for r in unique if r.sla_state == "breached"),
            "warning": sum(1 for r in unique if r.sla_state == "warning"),
            "unassigned": sum(1 for r in unique if r.assignee is None),
        },
    }


def _sent(recorded: str | None, moment: datetime) -> bool:
    return recorded is not None and datetime.fromisoformat(recorded) >= moment


def sweep(store: Store, runtime: Callable[[], Runtime], now: datetime) -> Counter[str]:
    """Send the digests of the latest moment if they have not gone yet."""
    counts: Counter[str] = Counter()
    rt = runtime()
    policy = rt.rules.digest
    moment = latest_moment(policy, now) if policy is not None else None
    if moment is None:
        return counts
    with store.reading() as tx:  # the usual answer, without the write lock
        if _sent(tx.settings.get(SENT_KEY), moment):
            return counts
    with store.transaction() as tx:
        if _sent(tx.settings.get(SENT_KEY), moment):
            return counts
        rows = board.rows(tx.tickets.clocks(board.OPEN), rt.prefix, rt.rules, now)
        language = rt.settings.helpdesk.default_language
        for digest in plan(rows, rt.rules):
            if tx.addresses.is_failing(digest.address):
                counts["digests_held"] += 1
                continue
            mail = rt.composer.compose(
                template="digest",
                kind="digest",
                ticket=None,
                to=[digest.address],
                context=context(digest, rt.rules, moment),
                now=now,
                language=language,
                auto_submitted="auto-generated",
            )
            tx.outbox.add(replace(mail, internal=True), now)
            counts["digests"] += 1
        tx.settings.put(SENT_KEY, slaclock.utc_iso(moment))
    return counts
