"""Restoration on the SLA clock (SPEC §8): `restoration_due`, the timers a
restored ticket keeps, and its `sla_state`.

Rules: tests/data/rules/sla_restore.yaml. P1 is 24x7 (UTC): response 15m,
restoration 1h, resolution 4h; P2 is office hours Mon-Fri 08:00-17:00
Europe/Warsaw: response 1h, restoration 4h, resolution 8h, updates every 4h;
P3 (office, resolution 3d) names no restoration. Summer time ends on Sunday
2026-10-25 at 03:00 CEST (01:00 UTC). Every deadline is computed by hand.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from daemon.app import slaclock, slastate
from daemon.core.domain import Status, Ticket
from daemon.rules.ruleset import Rules, load_rules

WARSAW = ZoneInfo("Europe/Warsaw")
RULES_FILE = Path(__file__).resolve().parents[2] / "data" / "rules" / "sla_restore.yaml"


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_rules(RULES_FILE.read_text(encoding="utf-8"), str(RULES_FILE))


def w(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=WARSAW)


def u(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def new_ticket(rules: Rules, created: datetime, priority: str = "P2") -> Ticket:
    ticket = Ticket(
        number=7,
        subject="Mail server down",
        requester="jan@example.org",
        status=Status.ASSIGNED,
        impact="high",
        urgency="medium",
        priority=priority,
        language="en",
        created_at=created,
        group="second-line",
        assignee="anna@example.com",
        last_public_at=created,
    )
    slaclock.set_deadlines(ticket, rules)
    slaclock.align_clock(ticket, rules, created)
    return ticket


# --- restoration_due -----------------------------------------------------------------


def test_office_restoration_due_across_the_dst_change(rules: Rules) -> None:
    # Friday 15:00 CEST: 2h on Friday, then 2h on Monday from 08:00 CET.
    ticket = new_ticket(rules, w("2026-10-23 15:00"))
    assert ticket.restoration_due == u("2026-10-26 09:00")  # Monday 10:00 CET
    assert ticket.resolution_due == u("2026-10-26 13:00")  # 2h + 6h: Monday 14:00 CET
    assert ticket.first_response_due == u("2026-10-23 14:00")  # Friday 16:00 CEST


def test_24x7_restoration_due_across_the_dst_change(rules: Rules) -> None:
    # 01:30 CEST is 23:30 UTC; the 02:00-03:00 hour is lived twice that night,
    # so the deadlines are 1h and 4h of real time, not of wall time.
    ticket = new_ticket(rules, w("2026-10-25 01:30"), "P1")
    assert ticket.created_at == u("2026-10-24 23:30")
    assert ticket.restoration_due == u("2026-10-25 00:30")  # 02:30 CEST
    assert ticket.resolution_due == u("2026-10-25 03:30")  # 04:30 CET, not 05:30


def test_without_a_restoration_target_it_is_the_resolution(rules: Rules) -> None:
    ticket = new_ticket(rules, w("2026-11-23 10:00"), "P3")
    assert ticket.restoration_due == ticket.resolution_due == w("2026-11-26 10:00")


def test_a_pause_moves_the_restoration_deadline_like_the_resolution(rules: Rules) -> None:
    ticket = new_ticket(rules, w("2026-11-25 09:00"))  # Wednesday
    assert ticket.restoration_due == w("2026-11-25 13:00")
    ticket.status = Status.PENDING
    slaclock.align_clock(ticket, rules, w("2026-11-25 10:00"))
    ticket.status = Status.IN_PROGRESS
    slaclock.align_clock(ticket, rules, w("2026-11-25 11:30"))  # 1h30 paused
    assert ticket.restoration_due == w("2026-11-25 14:30")
    assert ticket.resolution_due == w("2026-11-26 09:30")  # 17:00 + 1h30: Thursday
    # A priority change retargets from creation, the pause still counted.
    ticket.priority = "P1"
    slaclock.align_clock(ticket, rules, w("2026-11-25 12:00"))
    assert ticket.restoration_due == w("2026-11-25 10:00") + (
        w("2026-11-25 11:30") - w("2026-11-25 10:00")
    )


def test_once_restored_the_restoration_deadline_stays(rules: Rules) -> None:
    ticket = new_ticket(rules, w("2026-11-25 09:00"))
    ticket.restored_at = w("2026-11-25 09:30")
    ticket.status = Status.PENDING
    slaclock.align_clock(ticket, rules, w("2026-11-25 10:00"))
    ticket.status = Status.IN_PROGRESS
    slaclock.align_clock(ticket, rules, w("2026-11-25 12:00"))
    assert ticket.restoration_due == w("2026-11-25 13:00")
    assert ticket.resolution_due == w("2026-11-26 10:00")  # moved by the 2h paused


# --- timers ------------------------------------------------------------------------------


def keys(ticket: Ticket, rules: Rules) -> dict[str, datetime]:
    return {f"{p.kind}:{p.key}": p.due_at for p in slaclock.plan_timers(ticket, rules)}


def test_restoration_has_a_warning_and_a_breach_but_no_ladder(rules: Rules) -> None:
    ticket = new_ticket(rules, w("2026-11-25 09:00"))
    planned = keys(ticket, rules)
    assert planned["sla:restoration:warning"] == w("2026-11-25 12:00")  # 75% of 4h
    assert planned["sla:restoration:breach"] == w("2026-11-25 13:00")
    assert not [k for k in planned if k.startswith("sla:restoration:") and "%" in k]
    assert planned["sla:resolution:150%"] == w("2026-11-26 12:00")  # 17:00 + 4h


def test_once_restored_no_resolution_step_only_status_updates(rules: Rules) -> None:
    ticket = new_ticket(rules, w("2026-11-25 09:00"))
    ticket.first_responded_at = ticket.restored_at = ticket.last_public_at = w("2026-11-25 09:30")
    ticket.status = Status.IN_PROGRESS
    planned = keys(ticket, rules)
    assert planned == {f"update:{slaclock.utc_iso(w('2026-11-25 09:30'))}": w("2026-11-25 13:30")}


# --- sla_state ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("restored", "resolved", "now", "state"),
    [
        # open, not restored: the restoration target leads
        (None, None, "2026-11-25 11:00", "ok"),
        (None, None, "2026-11-25 12:30", "warning"),  # past 75% of the 4h
        (None, None, "2026-11-25 13:30", "breached"),  # restoration missed
        # restored in time: met, also long past the resolution deadline
        ("2026-11-25 12:59", None, "2026-11-27 12:00", "met"),
        # restored late
        ("2026-11-25 13:01", None, "2026-11-25 13:30", "breached"),
        # resolved without a workaround: it must meet the restoration target too
        (None, "2026-11-25 12:00", "2026-11-27 12:00", "met"),
        (None, "2026-11-25 15:00", "2026-11-27 12:00", "breached"),
        # restored in time, resolved late: the client's target was met
        ("2026-11-25 10:00", "2026-11-27 12:00", "2026-11-27 12:00", "met"),
    ],
)
def test_sla_state_of_restoration(
    rules: Rules, restored: str | None, resolved: str | None, now: str, state: str
) -> None:
    ticket = new_ticket(rules, w("2026-11-25 09:00"))
    ticket.first_responded_at = w("2026-11-25 09:10")
    ticket.status = Status.IN_PROGRESS
    if restored:
        ticket.restored_at = w(restored)
    if resolved:
        ticket.resolved_at = w(resolved)
        ticket.status = Status.RESOLVED
    assert slastate.state(ticket, rules, w(now)) == state


def test_the_sla_row_names_restoration_or_not(rules: Rules) -> None:
    p1, p3 = rules.sla["P1"], rules.sla["P3"]
    assert p1.restoration_target == p1.restoration
    assert p1.restoration is not None and p1.restoration.seconds == 3600
    assert p3.restoration is None and p3.restoration_target == p3.resolution
