"""The SLA clock, the escalation ladder and status updates, end to end.

Mail goes in through the pipeline, time moves with the ManualClock, and every
tick runs `jobs.run_due` and sends the outbox over real SMTP to the test's
relay. Runs on SQLite and PostgreSQL.

Rules: tests/data/rules/sla_desk.yaml. "Mail server down" is P2 (office hours
Mon-Fri 08:00-17:00 Warsaw; response 1h, resolution 8h, updates every 4h),
assigned to anna@example.com in second-line (lead lead@example.com). Opened
Wednesday 2026-11-25 10:00 Warsaw (conftest T0), its deadlines are: response
11:00 (75% at 10:45, 150% at 11:30); resolution Thursday 09:00 (75% Wednesday
16:00, 150% Thursday 13:00); first status update Wednesday 14:00.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from daemon.adapters.storage.tickets import SqlTickets
from daemon.app import slaclock
from daemon.app.jobs import run_due
from daemon.app.notify import Composer
from daemon.app.views import ticket_json
from daemon.config import Settings, load_settings
from daemon.core.domain import Event, Status
from daemon.mail import msgid
from daemon.ports import Rendered, Renderer
from daemon.service.wiring import App, TickReport
from tests.conftest import DATA, write_config
from tests.integration.test_pipeline import ingest
from tests.support.clock import ManualClock
from tests.support.mail import make_mail
from tests.support.relay import Caught, Relay

WARSAW = ZoneInfo("Europe/Warsaw")
RULES = DATA / "rules" / "sla_desk.yaml"
REQUESTER = "jan.kowalski@example.org"
SUBJECT = "Mail server down"


def at(text: str) -> datetime:
    """Warsaw wall time, e.g. "2026-11-25 10:45"."""
    return datetime.fromisoformat(text).replace(tzinfo=WARSAW)


def desk_settings_for(tmp_path: Path, db_url: str, relay: Relay, rules: Path = RULES) -> Settings:
    return load_settings(
        write_config(
            tmp_path,
            db_url,
            paths={"rules": str(rules)},
            outgoing={"transport": "smtp", "host": "127.0.0.1", "port": relay.port},
        )
    )


@pytest.fixture
def desk_settings(tmp_path: Path, db_url: str, relay: Relay) -> Settings:
    return desk_settings_for(tmp_path, db_url, relay)


@pytest.fixture
def desk(desk_settings: Settings, clock: ManualClock) -> Iterator[App]:
    app = App(desk_settings, clock)
    yield app
    app.close()


def jobs(app: App) -> Any:
    return lambda now: run_due(app.store, lambda: app.runtime, now)


def tick(app: App, when: str) -> TickReport:
    app.clock.set(at(when))  # type: ignore[attr-defined]
    return app.tick(jobs(app))


def open_ticket(app: App, subject: str = SUBJECT, sender: str = REQUESTER) -> int:
    outcome = ingest(app, make_mail(subject=subject, sender=sender))
    assert outcome.outcome == "created"
    return outcome.ticket


def view(app: App, number: int = 1) -> dict[str, Any]:
    with app.store.reading() as tx:
        ticket = tx.tickets.get(number)
    assert ticket is not None
    return ticket_json(ticket, app.runtime.prefix, app.runtime.rules, app.clock.now())


def events(app: App, *types: str, number: int = 1) -> list[Event]:
    with app.store.reading() as tx:
        found = tx.events.of_ticket(number)
    return [e for e in found if not types or e.type in types]


def steps(app: App, number: int = 1) -> list[tuple[str, int]]:
    return [
        (e.detail["target"], e.detail["step"]) for e in events(app, "sla_escalation", number=number)
    ]


def change(app: App, number: int = 1, **fields: Any) -> None:
    """Change a ticket the way the ticket services do: fields, an event for a
    new status, `reschedule`, save, all in one transaction."""
    now = app.clock.now()
    with app.store.transaction() as tx:
        ticket = tx.tickets.get(number, for_update=True)
        assert ticket is not None
        old_status = ticket.status
        for name, value in fields.items():
            setattr(ticket, name, value)
        if ticket.status != old_status:
            tx.events.add(
                number,
                Event(
                    at=now,
                    actor="lead@example.com",
                    type="status_changed",
                    detail={"from": str(old_status), "to": str(ticket.status)},
                ),
            )
        slaclock.reschedule(tx, ticket, app.runtime.rules, now)
        tx.tickets.save(ticket)


def respond(app: App, number: int = 1) -> None:
    """An agent's first public reply (what the agent-reply code will call)."""
    now = app.clock.now()
    with app.store.transaction() as tx:
        ticket = tx.tickets.get(number, for_update=True)
        assert ticket is not None
        assert slaclock.record_response(tx, ticket, now)
        slaclock.reschedule(tx, ticket, app.runtime.rules, now)
        tx.tickets.save(ticket)


def escalations(relay: Relay) -> list[Caught]:
    return [c for c in relay.caught if "SLA " in c.message["Subject"]]


def updates(relay: Relay) -> list[Caught]:
    return [c for c in relay.caught if "Status update" in c.message["Subject"]]


def text_of(caught: Caught) -> str:
    return caught.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


# --- the ladder --------------------------------------------------------------------


def test_the_response_ladder_mails_the_named_agents_step_by_step(desk: App, relay: Relay) -> None:
    open_ticket(desk)
    [ack, notice] = relay.caught  # to the requester, and the new-ticket notice to anna
    assert notice.rcpt_tos == ["anna@example.com"]

    assert tick(desk, "2026-11-25 10:44").jobs == {}
    assert view(desk)["sla_state"] == "ok"
    assert relay.caught == [ack, notice]

    report = tick(desk, "2026-11-25 10:45")
    assert report.jobs == {"sla_warnings": 1, "escalations": 1}
    [first] = escalations(relay)
    msg = first.message
    assert first.rcpt_tos == ["anna@example.com"]
    assert msg["To"] == "anna@example.com"
    assert msg["Subject"] == f"[HD-1] SLA warning: 75% of the response time used – {SUBJECT}"
    assert msg["Auto-Submitted"] == "auto-generated"
    message_id = msg["Message-ID"].strip("<>")
    assert msgid.verified_ticket(desk.key, "example.com", message_id) == 1
    assert msg["In-Reply-To"]
    assert {p.get_content_type() for p in msg.walk()} >= {"text/plain", "text/html"}
    assert "has used 75% of its response time target" in text_of(first)
    assert view(desk)["sla_state"] == "warning"
    [warning] = events(desk, "sla_warning")
    assert warning.detail["target"] == "response"
    [step0] = events(desk, "sla_escalation")
    assert (step0.detail["step"], step0.detail["level"], step0.detail["notified"]) == (
        0,
        0,
        ["anna@example.com"],
    )

    assert tick(desk, "2026-11-25 11:00").jobs == {"sla_breaches": 1, "escalations": 1}
    second = escalations(relay)[1]
    assert second.rcpt_tos == ["anna@example.com", "lead@example.com"]
    assert second.message["Subject"].startswith("[HD-1] SLA breached: response time target")
    # The 100% step fires when the deadline is reached; the state reads
    # "breached" once it has passed (a reply at 11:00 sharp is on time).
    assert view(desk)["sla_state"] == "warning"
    desk.clock.set(at("2026-11-25 11:01"))  # type: ignore[attr-defined]
    assert view(desk)["sla_state"] == "breached"
    assert view(desk)["escalation_level"] == 1

    assert tick(desk, "2026-11-25 11:30").jobs == {"escalations": 1}
    third = escalations(relay)[2]
    assert sorted(third.rcpt_tos) == [
        "duty-manager@example.com",
        "lead@example.com",
        "vendor-lead@example.com",  # the group that now has the ticket
    ]
    assert "handed from second-line to third-line" in text_of(third)
    data = view(desk)
    assert (data["group"], data["assignee"], data["escalation_level"]) == ("third-line", None, 1)
    [moved] = events(desk, "group_changed")
    assert (moved.detail["from"], moved.detail["to"]) == ("second-line", "third-line")
    [unassigned] = events(desk, "assignee_changed")
    assert (unassigned.detail["from"], unassigned.detail["to"]) == ("anna@example.com", None)

    # Nothing of this went to the requester; the notices are on the ticket.
    assert relay.to(REQUESTER) == [ack]
    with desk.store.reading() as tx:
        kinds = [(m.kind, m.internal) for m in tx.messages.of_ticket(1) if m.direction == "out"]
    assert kinds == [("ack", False), ("agent_new", True)] + [("escalation_notice", True)] * 3


def test_the_same_tick_twice_sends_nothing_more(desk: App, relay: Relay) -> None:
    open_ticket(desk)
    first = tick(desk, "2026-11-25 11:30")
    assert first.jobs == {"sla_warnings": 1, "sla_breaches": 1, "escalations": 3}
    assert first.sent.sent == 3
    caught = len(relay.caught)

    again = tick(desk, "2026-11-25 11:30")
    assert (again.jobs, again.sent.sent) == ({}, 0)
    assert len(relay.caught) == caught
    assert steps(desk) == [("response", 0), ("response", 1), ("response", 2)]


def test_a_restart_between_ticks_loses_and_repeats_nothing(
    desk_settings: Settings, clock: ManualClock, relay: Relay
) -> None:
    app = App(desk_settings, clock)
    open_ticket(app)
    tick(app, "2026-11-25 10:45")
    # the 100% step is queued by the sweep, then the process dies before sending
    clock.set(at("2026-11-25 11:00"))
    assert run_due(app.store, lambda: app.runtime, clock.now()) == {
        "sla_breaches": 1,
        "escalations": 1,
    }
    app.close()
    assert len(escalations(relay)) == 1

    restarted = App(desk_settings, clock)
    try:
        report = tick(restarted, "2026-11-25 11:00")
        assert (report.jobs, report.sent.sent) == ({}, 1)  # only the queued mail goes out
        assert [c.rcpt_tos for c in escalations(relay)] == [
            ["anna@example.com"],
            ["anna@example.com", "lead@example.com"],
        ]
        assert tick(restarted, "2026-11-25 11:30").jobs == {"escalations": 1}
        assert steps(restarted) == [("response", 0), ("response", 1), ("response", 2)]
    finally:
        restarted.close()


def test_catch_up_after_a_long_gap_fires_each_overdue_step_once_in_order(
    desk: App, relay: Relay
) -> None:
    open_ticket(desk)
    report = tick(desk, "2026-11-26 14:00")  # Thursday, after every step of both targets
    assert report.jobs == {
        "sla_warnings": 2,
        "sla_breaches": 2,
        "escalations": 6,
        "status_updates": 1,  # one, not one per missed interval
    }
    assert steps(desk) == [
        ("response", 0),
        ("response", 1),
        ("response", 2),
        ("resolution", 0),
        ("resolution", 1),
        ("resolution", 2),
    ]
    assert view(desk)["escalation_level"] == 2
    assert len(updates(relay)) == 1
    with desk.store.reading() as tx:
        sent = [(t.key, t.done_at is not None) for t in tx.timers.of_ticket(1, ["update"])]
    # the update that went out stays as fired; the next one counts from it
    assert sent == [
        ("2026-11-25T09:00:00+00:00", True),
        ("2026-11-26T13:00:00+00:00", False),
    ]
    assert tick(desk, "2026-11-26 14:00").jobs == {}

    # The next update is due 4h of business time after the one just sent:
    # Thursday 14:00-17:00 and Friday 08:00-09:00.
    assert tick(desk, "2026-11-26 23:00").jobs == {}
    assert tick(desk, "2026-11-27 08:59").jobs == {}
    assert tick(desk, "2026-11-27 09:00").jobs == {"status_updates": 1}
    assert len(updates(relay)) == 2


def test_a_ticket_with_many_steps_due_is_read_once_for_all_of_them(
    desk: App, relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch reads its tickets in one query; each step works on the copy
    the step before changed and saved, so eleven steps of one ticket read it
    once, and the last step sees what every one before it did."""
    open_ticket(desk)
    reads: Counter[int] = Counter()
    read_one = SqlTickets.get

    def counted(self: SqlTickets, number: int, *, for_update: bool = False) -> Any:
        reads[number] += 1
        return read_one(self, number, for_update=for_update)

    monkeypatch.setattr(SqlTickets, "get", counted)
    report = tick(desk, "2026-11-26 14:00")
    assert sum(report.jobs.values()) == 11
    assert reads[1] == 0
    assert view(desk)["escalation_level"] == 2
    assert [e.detail["level"] for e in events(desk, "sla_escalation")] == [0, 1, 1, 1, 2, 2]


# --- pauses -------------------------------------------------------------------------


def test_pending_stops_escalations_and_updates_and_resuming_moves_the_deadlines(
    desk: App, relay: Relay
) -> None:
    open_ticket(desk)
    tick(desk, "2026-11-25 10:15")
    change(desk, status=Status.PENDING)  # the agent asked the requester something
    assert view(desk)["sla_state"] == "paused"
    with desk.store.reading() as tx:
        assert tx.timers.pending(1) == []
    assert [e.type for e in events(desk)][-2:] == ["status_changed", "sla_paused"]

    for moment in ("2026-11-25 11:30", "2026-11-25 18:00", "2026-11-26 13:59"):
        assert tick(desk, moment).jobs == {}
    assert relay.to(REQUESTER)[1:] == [] and escalations(relay) == []

    # The requester answers on Thursday at 14:00: the clock runs again, and the
    # deadlines move by the business time paused: Wednesday 10:15-17:00 and
    # Thursday 08:00-14:00 = 12h45.
    desk.clock.set(at("2026-11-26 14:00"))  # type: ignore[attr-defined]
    ingest(desk, make_mail(subject=f"Re: [HD-1] {SUBJECT}", body="Here is the log you asked for."))
    data = view(desk)
    assert (data["status"], data["sla_state"]) == ("in_progress", "ok")
    [resumed] = events(desk, "sla_resumed")
    assert resumed.detail["paused_business_s"] == 12 * 3600 + 45 * 60
    # response: 15 min used before the pause, 45 left -> 14:45
    assert datetime.fromisoformat(data["first_response_due"]) == at("2026-11-26 14:45")

    assert tick(desk, "2026-11-26 14:29").jobs == {}
    assert tick(desk, "2026-11-26 14:30").jobs == {"sla_warnings": 1, "escalations": 1}
    assert escalations(relay)[0].rcpt_tos == ["anna@example.com"]
    # No status update at night: the next one is 4h of business time after the
    # requester's answer, Friday 09:00.
    assert "status_updates" not in tick(desk, "2026-11-26 23:00").jobs
    assert updates(relay) == []
    assert tick(desk, "2026-11-27 09:00").jobs.get("status_updates") == 1


# --- status updates -------------------------------------------------------------------


def test_status_updates_tell_the_requester_what_happened_and_what_comes_next(
    desk: App, relay: Relay
) -> None:
    open_ticket(desk)
    desk.clock.set(at("2026-11-25 10:30"))  # type: ignore[attr-defined]
    respond(desk)
    assert view(desk)["sla_state"] == "ok"
    assert tick(desk, "2026-11-25 13:59").jobs == {}
    assert tick(desk, "2026-11-25 14:00").jobs == {"status_updates": 1}
    [first] = updates(relay)
    msg = first.message
    assert first.rcpt_tos == [REQUESTER]
    assert msg["Subject"] == f"[HD-1] Status update: {SUBJECT}"
    assert msg["Auto-Submitted"] == "auto-generated"
    body = text_of(first)
    assert "Status:   assigned" in body
    assert "Priority: high" in body and "second-line" not in body and "P2" not in body
    assert "nothing has changed yet" in body
    assert "aim to have it done by Thursday 26 November 2026, 09:00" in body
    assert {p.get_content_type() for p in msg.walk()} >= {"text/plain", "text/html"}

    desk.clock.set(at("2026-11-25 15:00"))  # type: ignore[attr-defined]
    ingest(desk, make_mail(subject=f"Re: [HD-1] {SUBJECT}", body="It is down again."))
    # The next update: 14:00 + 4h of business time = Thursday 09:00, nothing at night.
    assert "status_updates" not in tick(desk, "2026-11-25 23:00").jobs
    assert "status_updates" not in tick(desk, "2026-11-26 08:59").jobs
    assert tick(desk, "2026-11-26 09:00").jobs.get("status_updates") == 1
    assert "we received your reply" in text_of(updates(relay)[1])

    desk.clock.set(at("2026-11-26 09:30"))  # type: ignore[attr-defined]
    change(desk, status=Status.RESOLVED, resolved_at=at("2026-11-26 09:30"))
    with desk.store.reading() as tx:
        assert tx.timers.pending(1) == []
    before = len(relay.caught)
    assert tick(desk, "2026-11-30 12:00").jobs == {}  # no updates and no escalations after
    assert len(relay.caught) == before
    assert view(desk)["sla_state"] == "breached"  # resolved after Thursday 09:00


def test_a_polish_requester_gets_polish_updates_and_agents_the_desk_language(
    desk: App, relay: Relay
) -> None:
    open_ticket(desk, subject="Server poczty nie działa", sender="anna.nowak@firma.pl")
    tick(desk, "2026-11-25 10:45")
    [notice] = escalations(relay)
    assert notice.message["Subject"].startswith("[HD-1] SLA warning: 75%")
    tick(desk, "2026-11-25 14:00")
    [update] = [
        c for c in relay.to("anna.nowak@firma.pl") if "Stan zgłoszenia" in c.message["Subject"]
    ]
    assert update.message["Subject"] == "[HD-1] Stan zgłoszenia: Server poczty nie działa"
    body = text_of(update)
    assert body.startswith("Dzień dobry,")
    assert "Stan:      przypisane" in body
    assert "konsultant skontaktuje się z Państwem najszybciej, jak to możliwe" in body
    assert "przekazaliśmy zgłoszenie wyżej, aby przyspieszyć rozwiązanie" in body
    assert "poziom" not in body  # escalation levels are internal


def test_a_held_back_update_is_retried_a_full_interval_later(desk: App, relay: Relay) -> None:
    open_ticket(desk)
    with desk.store.transaction() as tx:
        tx.addresses.mark_failing(REQUESTER, desk.clock.now(), "550 no such user")
    assert tick(desk, "2026-11-25 14:00").jobs.get("status_updates_held") == 1
    assert updates(relay) == []
    assert [e.detail["kind"] for e in events(desk, "auto_reply_suppressed")] == ["status_update"]
    assert "status_updates_held" not in tick(desk, "2026-11-25 14:30").jobs
    assert tick(desk, "2026-11-26 09:00").jobs.get("status_updates_held") == 1


# --- a step that raises the priority ------------------------------------------------------


def test_a_step_that_raises_the_priority_retargets_the_ticket(
    tmp_path: Path, db_url: str, relay: Relay, clock: ManualClock
) -> None:
    text = RULES.read_text(encoding="utf-8")
    start = text.index("escalation:")
    end = text.index("rules:", start)
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        text[:start]
        + "escalation:\n  - {at: 100%, notify: [group_lead], raise_priority: true}\n"
        + text[end:],
        encoding="utf-8",
    )
    app = App(desk_settings_for(tmp_path, db_url, relay, rules), clock)
    try:
        open_ticket(app, subject="Printer jams")  # P3: response 4h -> due 14:00
        assert view(app)["priority"] == "P3"
        assert tick(app, "2026-11-25 14:00").jobs == {
            "sla_warnings": 1,
            "sla_breaches": 1,
            "escalations": 1,
            # at P2 the requester is owed an update every 4h: one is due now
            "status_updates": 1,
        }
        data = view(app)
        assert data["priority"] == "P2"
        # P2 targets counted from creation: response 11:00 (missed: no step
        # fires twice), resolution Thursday 09:00
        assert datetime.fromisoformat(data["resolution_due"]) == at("2026-11-26 09:00")
        [changed] = events(app, "priority_changed")
        assert (changed.detail["from"], changed.detail["to"]) == ("P3", "P2")
        [retarget] = events(app, "sla_retargeted")
        assert retarget.detail["resolution_due"] == data["resolution_due"]
        assert [c.rcpt_tos for c in escalations(relay)] == [["lead@example.com"]]
        with app.store.reading() as tx:
            fired = {t.key: t.due_at for t in tx.timers.of_ticket(1) if t.done_at}
        # fired in the same sweep as the raise, and kept as they fired
        assert fired["response:warning"] == at("2026-11-25 13:00")
        assert fired["response:100%"] == at("2026-11-25 14:00")
        assert tick(app, "2026-11-25 14:00").jobs == {}
        # the resolution's 100% step now comes at the P2 deadline
        later = tick(app, "2026-11-26 09:00").jobs
        assert (later["sla_breaches"], later["escalations"]) == (1, 1)
        assert view(app)["priority"] == "P1"
        assert steps(app) == [("response", 0), ("resolution", 0)]
    finally:
        app.close()


def test_a_step_added_to_the_ladder_never_makes_another_step_fire_twice(
    tmp_path: Path, db_url: str, relay: Relay, clock: ManualClock
) -> None:
    """Step timers are keyed by share: after a step is put in front of the
    ladder, the stored 100% timer still fires the 100% step (keyed by
    position, it would have fired the 75% step a second time)."""
    text = RULES.read_text(encoding="utf-8")
    rules = tmp_path / "rules.yaml"
    rules.write_text(text, encoding="utf-8")
    app = App(desk_settings_for(tmp_path, db_url, relay, rules), clock)

    def shares() -> list[float]:
        return [e.detail["share"] for e in events(app, "sla_escalation")]

    try:
        open_ticket(app)  # P2: response due 11:00
        tick(app, "2026-11-25 10:50")
        assert shares() == [0.75]
        rules.write_text(
            text.replace("escalation:\n", "escalation:\n  - {at: 50%, notify: [group_lead]}\n"),
            encoding="utf-8",
        )
        app.reload()
        assert [s.share for s in app.runtime.rules.escalation] == [0.5, 0.75, 1.0, 1.5]
        tick(app, "2026-11-25 11:00")
        assert shares() == [0.75, 1.0]
        tick(app, "2026-11-25 11:30")
        assert shares() == [0.75, 1.0, 1.5]
    finally:
        app.close()


def test_a_first_response_ends_the_response_ladder(desk: App, relay: Relay) -> None:
    open_ticket(desk)
    desk.clock.set(at("2026-11-25 10:40"))  # type: ignore[attr-defined]
    respond(desk)
    assert tick(desk, "2026-11-25 11:30").jobs == {}
    assert escalations(relay) == []
    assert view(desk)["sla_state"] == "ok"
    [first] = events(desk, "first_response")
    assert first.detail["met"] is True


def test_the_sweep_drops_a_timer_the_ticket_no_longer_warrants(desk: App, relay: Relay) -> None:
    """Code that changes a ticket and forgets `reschedule` does not cause a
    wrong notice: the sweep asks the ticket again before acting."""
    open_ticket(desk)
    with desk.store.transaction() as tx:
        ticket = tx.tickets.get(1)
        assert ticket is not None
        tx.tickets.save(replace(ticket, first_responded_at=at("2026-11-25 10:10")))
    assert tick(desk, "2026-11-25 11:30").jobs == {"skipped": 5}
    assert escalations(relay) == []
    with desk.store.reading() as tx:
        assert all(not t.key.startswith("response") for t in tx.timers.pending(1))


# --- failures and concurrency ------------------------------------------------------------


@dataclass
class BrokenFor:
    """A renderer that fails for one ticket's escalation notices (a template
    error, say); everything else renders normally."""

    inner: Renderer
    ticket: int

    def render(self, language: str, name: str, context: dict[str, Any]) -> Rendered:
        if name == "escalation_notice" and context["ticket"]["number"] == self.ticket:
            raise RuntimeError("template exploded")
        return self.inner.render(language, name, context)


def test_a_failing_step_is_postponed_and_blocks_nothing(desk: App, relay: Relay) -> None:
    open_ticket(desk)
    open_ticket(desk, subject="Print server down", sender="ewa.nowak@example.org")
    good = desk.runtime
    composer = Composer(good.composer.identity, BrokenFor(good.composer.renderer, 1))
    broken = replace(good, composer=composer)

    desk.clock.set(at("2026-11-25 10:45"))  # type: ignore[attr-defined]
    done = run_due(desk.store, lambda: broken, desk.clock.now())
    assert done == {"sla_warnings": 2, "escalations": 1, "failed": 1}
    assert steps(desk, number=1) == []
    assert steps(desk, number=2) == [("response", 0)]
    with desk.store.reading() as tx:
        [stuck] = [t for t in tx.timers.pending(1) if t.key == "response:75%"]
    assert stuck.due_at == at("2026-11-25 10:50")
    assert stuck.detail["failures"] == 1
    assert "template exploded" in stuck.detail["last_error"]

    assert tick(desk, "2026-11-25 10:49").jobs == {}
    assert tick(desk, "2026-11-25 10:50").jobs == {"escalations": 1}  # fixed: it goes out
    assert steps(desk, number=1) == [("response", 0)]


def test_a_sweep_asked_to_stop_finishes_its_batch_and_leaves_the_rest_due(
    desk: App, clock: ManualClock
) -> None:
    """Ctrl-C in `spocd tick`: the batch in hand is fired and committed, no
    other starts, and the next sweep fires exactly what was left."""
    for i in range(4):
        open_ticket(desk, subject=f"Mail server {i} down", sender=f"user{i}@example.org")
    clock.set(at("2026-11-26 14:00"))
    asked: list[bool] = []

    def stop() -> bool:  # asked while the first batch is under way
        asked.append(True)
        return len(asked) > 1

    first = run_due(desk.store, lambda: desk.runtime, clock.now(), batch=3, stop=stop)
    assert sum(first.values()) == 3
    rest = run_due(desk.store, lambda: desk.runtime, clock.now())
    total = Counter(first) + Counter(rest)
    assert (total["escalations"], total["sla_breaches"], total["status_updates"]) == (24, 8, 4)
    assert run_due(desk.store, lambda: desk.runtime, clock.now()) == {}


def test_two_instances_sweeping_at_once_fire_every_step_once(
    desk_settings: Settings, clock: ManualClock, relay: Relay
) -> None:
    apps = [App(desk_settings, clock) for _ in range(2)]
    try:
        tickets = [
            open_ticket(apps[0], subject=f"Mail server {i} down", sender=f"user{i}@example.org")
            for i in range(8)
        ]
        clock.set(at("2026-11-26 14:00"))
        now = clock.now()
        start = threading.Barrier(len(apps))
        results: list[dict[str, int]] = []

        def sweep(app: App) -> None:
            start.wait()
            results.append(run_due(app.store, lambda: app.runtime, now, batch=3))

        threads = [threading.Thread(target=sweep, args=(app,)) for app in apps]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        total: Counter[str] = Counter()
        for result in results:
            total.update(result)
        assert len(results) == 2
        assert (total["escalations"], total["sla_breaches"], total["status_updates"]) == (
            6 * len(tickets),
            2 * len(tickets),
            len(tickets),
        )
        for number in tickets:
            assert sorted(steps(apps[0], number)) == [
                ("resolution", 0), ("resolution", 1), ("resolution", 2),
                ("response", 0), ("response", 1), ("response", 2),
            ]  # fmt: skip
        with apps[0].store.reading() as tx:
            assert tx.outbox.count("pending") == sum(
                len(
                    [e for e in events(apps[0], "sla_escalation", number=n) if e.detail["notified"]]
                )
                + 1  # the status update
                for n in tickets
            )
        assert run_due(apps[1].store, lambda: apps[1].runtime, now) == {}
    finally:
        for app in apps:
            app.close()
