"""The SLA clock's pure parts: which timers a ticket should have, and when.

Moments are Europe/Warsaw wall time ("2026-11-25 10:00" is a Wednesday);
the rules are tests/data/rules/sla_desk.yaml: P2 is office hours Mon-Fri
08:00-17:00, response 1h, resolution 8h, updates every 4h; the ladder is
75% (assignee), 100% (assignee, lead, raise level), 150% (lead, duty
manager, reassign to third-line).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from daemon.app import slaclock
from daemon.app.jobs import notify_list, what_happened
from daemon.app.tickets import Runtime
from daemon.core.businesstime import is_business_time
from daemon.core.domain import Event, Status, Ticket
from daemon.core.sla import threshold_moment
from daemon.rules.ruleset import EscalationStep, Rules, load_rules

WARSAW = ZoneInfo("Europe/Warsaw")
RULES_FILE = Path(__file__).resolve().parents[2] / "data" / "rules" / "sla_desk.yaml"


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_rules(RULES_FILE.read_text(encoding="utf-8"), str(RULES_FILE))


def w(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=WARSAW)


def new_ticket(rules: Rules, created: str, priority: str = "P2", **fields: object) -> Ticket:
    ticket = Ticket(
        number=7,
        subject="Mail server down",
        requester="jan@example.org",
        status=Status.ASSIGNED,
        impact="high",
        urgency="medium",
        priority=priority,
        language="en",
        created_at=w(created),
        group="second-line",
        assignee="anna@example.com",
        last_public_at=w(created),
    )
    for name, value in fields.items():
        setattr(ticket, name, value)
    slaclock.set_deadlines(ticket, rules)
    slaclock.align_clock(ticket, rules, ticket.created_at)
    return ticket


def planned(ticket: Ticket, rules: Rules) -> dict[str, str]:
    """key -> due as Warsaw wall time, for the sla timers; "update" for the update."""
    out = {}
    for p in slaclock.plan_timers(ticket, rules):
        key = p.key if p.kind == slaclock.SLA else "update"
        out[key] = p.due_at.astimezone(WARSAW).strftime("%a %H:%M")
    return out


def test_a_new_p2_ticket_gets_every_step_of_both_targets_and_an_update(rules: Rules) -> None:
    ticket = new_ticket(rules, "2026-11-25 10:00")
    assert planned(ticket, rules) == {
        # response 1h: due 11:00; 75% = 45 min; 150% = 30 min past due
        "response:warning": "Wed 10:45",
        "response:breach": "Wed 11:00",
        "response:75%": "Wed 10:45",
        "response:100%": "Wed 11:00",
        "response:150%": "Wed 11:30",
        # resolution 8h: 7h on Wednesday and 1h on Thursday; 75% = 6h; 150% = due + 4h
        "resolution:warning": "Wed 16:00",
        "resolution:breach": "Thu 09:00",
        "resolution:75%": "Wed 16:00",
        "resolution:100%": "Thu 09:00",
        "resolution:150%": "Thu 13:00",
        # 4h of business time after the acknowledgement
        "update": "Wed 14:00",
    }


def test_a_friday_evening_ticket_escalates_on_monday_morning_not_at_night(rules: Rules) -> None:
    ticket = new_ticket(rules, "2026-11-27 16:30")
    got = planned(ticket, rules)
    # 30 minutes on Friday, the rest from Monday 08:00
    assert got["response:75%"] == "Mon 08:15"
    assert got["response:breach"] == "Mon 08:30"
    assert got["response:150%"] == "Mon 09:00"
    assert got["update"] == "Mon 11:30"
    policy = rules.sla["P2"]
    for p in slaclock.plan_timers(ticket, rules):
        assert is_business_time(policy.calendar, p.due_at), p


@pytest.mark.parametrize(
    ("change", "value"),
    [
        ("status", Status.PENDING),
        ("paused_at", w("2026-11-25 10:10")),
        ("status", Status.RESOLVED),
        ("status", Status.CLOSED),
        ("status", Status.CANCELLED),
        ("merged_into", 3),
    ],
)
def test_no_timers_while_paused_or_once_no_longer_open(
    rules: Rules, change: str, value: object
) -> None:
    ticket = new_ticket(rules, "2026-11-25 10:00")
    setattr(ticket, change, value)
    assert slaclock.plan_timers(ticket, rules) == []


def test_the_first_response_ends_the_response_ladder(rules: Rules) -> None:
    ticket = new_ticket(rules, "2026-11-25 10:00", first_responded_at=w("2026-11-25 10:20"))
    assert not [k for k in planned(ticket, rules) if k.startswith("response")]
    assert "resolution:150%" in planned(ticket, rules)


def test_plan_can_be_asked_for_one_timer(rules: Rules) -> None:
    ticket = new_ticket(rules, "2026-11-25 10:00")
    [one] = slaclock.plan_timers(ticket, rules, only=(slaclock.SLA, "resolution:100%"))
    assert one.detail == {
        "target": "resolution",
        "due": ticket.resolution_due.isoformat(),  # type: ignore[union-attr]
        "step": 1,
        "share": 1.0,
    }
    assert slaclock.plan_timers(ticket, rules, only=(slaclock.SLA, "response:9")) == []


def test_pause_and_resume_move_deadlines_and_steps_by_the_business_time_paused(
    rules: Rules,
) -> None:
    ticket = new_ticket(rules, "2026-11-25 10:00")
    ticket.status = Status.PENDING
    assert slaclock.align_clock(ticket, rules, w("2026-11-25 10:15")) == [
        ("sla_paused", {"reason": "pending"})
    ]
    ticket.status = Status.IN_PROGRESS
    [(event, detail)] = slaclock.align_clock(ticket, rules, w("2026-11-25 13:15"))
    assert (event, detail["paused_business_s"]) == ("sla_resumed", 3 * 3600)
    assert ticket.paused_seconds == 3 * 3600
    assert ticket.first_response_due == w("2026-11-25 14:00")
    assert ticket.resolution_due == w("2026-11-26 12:00")
    got = planned(ticket, rules)
    # 15 minutes ran before the pause, 30 more after it make 75% of 1h
    assert got["response:75%"] == "Wed 13:45"
    assert got["response:150%"] == "Wed 14:30"
    # 6h of running time: 15 min before, 5h45 after 13:15 -> 3h45 today + 2h tomorrow
    assert got["resolution:75%"] == "Thu 10:00"
    # the requester just answered: the update interval counts from the resume
    assert got["update"] == "Thu 08:15"


def test_step_moments_count_running_time_where_threshold_moment_stretches(
    rules: Rules,
) -> None:
    cal = rules.sla["P2"].calendar
    start, due = w("2026-11-25 10:00"), w("2026-11-25 14:00")  # 1h target + 3h paused
    assert slaclock.step_moment(cal, start, due, 3600, 0.75) == w("2026-11-25 13:45")
    assert threshold_moment(cal, start, due, 0.75) == w("2026-11-25 13:00")
    assert slaclock.step_moment(cal, start, due, 3600, 1.0) == due
    assert slaclock.step_moment(cal, start, due, 3600, 1.5) == w("2026-11-25 14:30")


def test_a_pause_after_the_deadline_does_not_undo_the_breach(rules: Rules) -> None:
    ticket = new_ticket(rules, "2026-11-25 10:00")
    ticket.status = Status.PENDING
    slaclock.align_clock(ticket, rules, w("2026-11-25 11:30"))
    ticket.status = Status.IN_PROGRESS
    slaclock.align_clock(ticket, rules, w("2026-11-25 15:30"))
    assert ticket.first_response_due == w("2026-11-25 11:00")
    assert planned(ticket, rules)["response:150%"] == "Wed 11:30"


def test_a_new_priority_retargets_from_creation(rules: Rules) -> None:
    ticket = new_ticket(rules, "2026-11-25 10:00", priority="P3")
    assert ticket.first_response_due == w("2026-11-25 14:00")  # 4h
    assert ticket.resolution_due == w("2026-11-30 10:00")  # 3 business days: Thu, Fri, Mon
    ticket.priority = "P2"
    [(event, detail)] = slaclock.align_clock(ticket, rules, w("2026-11-25 10:30"))
    assert event == "sla_retargeted"
    assert (detail["from"], detail["to"]) == ("P3", "P2")
    assert ticket.first_response_due == w("2026-11-25 11:00")
    assert ticket.resolution_due == w("2026-11-26 09:00")
    assert slaclock.align_clock(ticket, rules, w("2026-11-25 10:31")) == []


def test_reopening_treats_the_time_resolved_as_paused(rules: Rules) -> None:
    ticket = new_ticket(rules, "2026-11-25 10:00", first_responded_at=w("2026-11-25 10:30"))
    ticket.status, ticket.resolved_at = Status.RESOLVED, w("2026-11-25 15:00")
    assert slaclock.plan_timers(ticket, rules) == []
    ticket.status = Status.IN_PROGRESS  # the requester said "not fixed"
    [(event, detail)] = slaclock.align_clock(ticket, rules, w("2026-11-26 10:00"))
    assert (event, detail["reason"]) == ("sla_resumed", "reopened")
    # resolved Wed 15:00-17:00 and Thu 08:00-10:00: 4h; due Thu 09:00 -> 13:00
    assert detail["paused_business_s"] == 4 * 3600
    assert ticket.resolved_at is None
    assert ticket.resolution_due == w("2026-11-26 13:00")
    assert planned(ticket, rules)["resolution:breach"] == "Thu 13:00"


def test_update_basis_is_the_latest_of_our_mail_a_resume_and_a_held_back_update(
    rules: Rules,
) -> None:
    ticket = new_ticket(rules, "2026-11-25 10:00")
    assert slaclock.update_basis(ticket) == w("2026-11-25 10:00")
    ticket.last_public_at = w("2026-11-25 11:00")
    assert planned(ticket, rules)["update"] == "Wed 15:00"
    ticket.extra["update_tried_at"] = w("2026-11-25 12:00").isoformat()
    assert planned(ticket, rules)["update"] == "Wed 16:00"


def test_clock_inputs_change_with_what_moves_timers_only(rules: Rules) -> None:
    ticket = new_ticket(rules, "2026-11-25 10:00")
    before = slaclock.clock_inputs(ticket)
    ticket.escalation_level, ticket.group, ticket.assignee = 2, "third-line", None
    assert slaclock.clock_inputs(ticket) == before
    ticket.last_public_at = w("2026-11-25 12:00")
    assert slaclock.clock_inputs(ticket) != before


# --- who an escalation step tells -------------------------------------------------


def runtime(rules: Rules) -> Runtime:
    return Runtime(settings=None, rules=rules, composer=None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("step", "assignee", "expected"),
    [
        (EscalationStep(0.75, ("assignee",)), "anna@example.com", ["anna@example.com"]),
        # nobody assigned: the group lead hears the early warning instead
        (EscalationStep(0.75, ("assignee",)), None, ["lead@example.com"]),
        (
            EscalationStep(1.0, ("assignee", "group_lead", "LEAD@example.com"), raise_level=True),
            "anna@example.com",
            ["anna@example.com", "lead@example.com"],
        ),
        (
            EscalationStep(1.5, ("group_lead", "duty-manager@example.com"), reassign="third-line"),
            "anna@example.com",
            ["lead@example.com", "duty-manager@example.com", "vendor-lead@example.com"],
        ),
        # the requester is never told, even when named
        (EscalationStep(1.0, ("jan@example.org", "group_lead")), None, ["lead@example.com"]),
    ],
)
def test_notify_list(
    rules: Rules, step: EscalationStep, assignee: str | None, expected: list[str]
) -> None:
    ticket = new_ticket(rules, "2026-11-25 10:00", assignee=assignee)
    assert notify_list(runtime(rules), ticket, step) == expected


def test_what_happened_keeps_what_a_requester_may_know_in_order() -> None:
    since = w("2026-11-25 10:00")

    def ev(minute: int, type_: str, **detail: object) -> Event:
        return Event(at=w(f"2026-11-25 10:{minute:02d}"), actor="x", type=type_, detail=detail)

    events = [
        ev(0, "created"),
        ev(1, "message_received", role="requester", kind="reply"),
        ev(2, "message_received", role="requester", kind="reply"),
        ev(3, "message_received", role="agent", kind="agent_reply"),
        ev(4, "message_received", role="requester", kind="auto_reply"),
        ev(5, "sla_warning", target="response"),
        ev(6, "sla_escalation", level=0, level_raised=False, reassigned_to=None),
        ev(7, "sla_escalation", level=1, level_raised=True, reassigned_to=None),
        ev(8, "group_changed", to="third-line", **{"from": "second-line"}),
        ev(9, "assignee_changed", to=None),
        ev(10, "priority_changed", to="P1", **{"from": "P2"}),
        ev(11, "status_changed", to="in_progress"),
        ev(12, "untrusted_commands"),
        ev(13, "assignee_changed", to="anna@example.com"),
        ev(14, "assignee_changed", to="piotr@example.com"),
    ]
    names = {"anna@example.com": "Anna Nowak"}
    # Group names and escalation levels are internal: not even in the data.
    assert what_happened(events, since, names.get) == [
        {"type": "reply_received"},
        {"type": "escalated"},
        {"type": "group"},
        {"type": "priority", "old": "P2", "new": "P1"},
        {"type": "status", "to": "in_progress"},
        {"type": "assigned", "agent": "Anna Nowak"},
        {"type": "assigned", "agent": None},
    ]


def test_timer_keys_and_details_are_utc_whatever_zone_a_moment_came_in(rules: Rules) -> None:
    """`--now` may carry an offset; the database gives UTC back: both must
    name the same timer, or an update could fire twice."""
    ticket = new_ticket(rules, "2026-11-25 10:00")
    [update] = [p for p in slaclock.plan_timers(ticket, rules) if p.kind == slaclock.UPDATE]
    assert update.key == "2026-11-25T09:00:00+00:00" == update.detail["after"]
    [breach] = slaclock.plan_timers(ticket, rules, only=(slaclock.SLA, "response:breach"))
    assert breach.detail["due"] == "2026-11-25T10:00:00+00:00"
