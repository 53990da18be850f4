"""The incident record (SPEC §8) against hand-computed tickets.

Mail comes in through the pipeline, agents act as `spocd ticket` does (the
same action functions in one transaction), time moves with the ManualClock
and the sweeps run at chosen moments. Runs on SQLite and PostgreSQL.

Rules: tests/data/rules/sla_desk.yaml. Office calendar: Europe/Warsaw,
Mon-Fri 08:00-17:00; `always`: 24×7 in UTC.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from daemon.adapters.record_page import render_html, render_text
from daemon.app import actions, closure, record
from daemon.app.actions import Ctx
from daemon.app.jobs import run_due
from daemon.app.tickets import Actor
from daemon.config import load_settings
from daemon.core.record import CLIENT, IncidentRecord
from daemon.service.wiring import App
from tests.conftest import DATA, write_config
from tests.support.clock import ManualClock
from tests.support.flow import ingest
from tests.support.mail import make_mail

WARSAW = ZoneInfo("Europe/Warsaw")
UTC_ZONE = ZoneInfo("UTC")
RULES = DATA / "rules" / "sla_desk.yaml"
REQUESTER = "jan.kowalski@example.org"
HOUR = 3600.0


def at(text: str, zone: ZoneInfo = WARSAW) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone)


@pytest.fixture
def desk(tmp_path: Path, db_url: str, clock: ManualClock) -> Iterator[App]:
    settings = load_settings(write_config(tmp_path, db_url, paths={"rules": str(RULES)}))
    app = App(settings, clock)
    yield app
    app.close()


def move(app: App, moment: datetime) -> None:
    app.clock.set(moment)  # type: ignore[attr-defined]


def act(app: App, number: int, do: Callable[[Ctx], Any], actor: str = "anna@example.com") -> None:
    """One agent action, committed, as `spocd ticket` runs it."""
    now = app.clock.now()
    with app.store.transaction() as tx:
        ticket = tx.tickets.get(number, for_update=True)
        assert ticket is not None
        ctx = Ctx(tx, app.runtime, now, Actor(actor, "cli"), ticket)
        do(ctx)
        ctx.save()
    app.sender.send_due()


def sweep(app: App, moment: datetime) -> dict[str, int]:
    move(app, moment)
    return run_due(app.store, lambda: app.runtime, moment)


def requester_says(app: App, number: int, body: str, subject: str) -> None:
    ingest(app, make_mail(subject=f"Re: [HD-{number}] {subject}", body=body))


def open_ticket(app: App, moment: datetime, subject: str, body: str = "") -> int:
    move(app, moment)
    outcome = ingest(app, make_mail(subject=subject, body=body or "Hello,\nnothing works.\nJan\n"))
    assert outcome.outcome == "created"
    return int(outcome.ticket)


def the_record(app: App, number: int, audience: str = "desk") -> IncidentRecord:
    rt = app.runtime
    with app.store.reading() as tx:
        found = record.load(
            tx,
            rt.rules,
            number,
            app.clock.now(),
            prefix=rt.prefix,
            desk_name="IT Help Desk",
            desk_address="helpdesk@example.com",
            timezone="Europe/Warsaw",
            audience=audience,
        )
    assert found is not None
    return found


def targets(rec: IncidentRecord) -> dict[str, Any]:
    assert rec.sla is not None
    return {t.name: t for t in rec.sla.targets}


# --- office calendar ------------------------------------------------------------------


def office_ticket(app: App) -> int:
    """ "Mail server down": P2 on the office calendar (response 1 h, resolution
    8 h), opened Wednesday 2026-11-25 10:00 Warsaw. Response due 11:00,
    resolution due Thursday 09:00 (Wednesday 10-17 is 7 h, Thursday 08-09 1 h).

    10:30 anna replies (response: 30 min, met); 11:00 she asks the requester
    (pending: clock paused); 14:00 he answers (3 business hours paused:
    resolution due moves to Thursday 12:00); Thursday 10:00 she resolves
    (Wednesday 10:00-17:00 and Thursday 08:00-10:00 are 9 business hours, less
    3 paused: 6 h, met); Thursday 11:00 he confirms: closed, verified."""
    subject = "Mail server down"
    n = open_ticket(
        app,
        at("2026-11-25 10:00"),
        subject,
        "Hello,\n\nthe mail server does not answer since 9:50.\nOutlook says: cannot connect.\n\n"
        "> an old quote\n\nJan\n",
    )
    move(app, at("2026-11-25 10:30"))
    act(app, n, lambda c: actions.reply(c, "We are on it."))
    move(app, at("2026-11-25 11:00"))
    act(app, n, lambda c: actions.note(c, "Disk full on mx1, checking with the vendor."))
    act(app, n, actions.pending)
    move(app, at("2026-11-25 14:00"))
    requester_says(app, n, "It is the main office server.", subject)
    move(app, at("2026-11-26 10:00"))
    act(
        app,
        n,
        lambda c: closure.resolve(
            c, "fixed", "Freed the mail spool disk and moved the logs to the archive volume."
        ),
    )
    move(app, at("2026-11-26 11:00"))
    requester_says(app, n, "Yes, it works now, thank you.", subject)
    return n


def test_office_calendar_figures_are_the_hand_computed_ones(desk: App) -> None:
    n = office_ticket(desk)
    rec = the_record(desk, n)
    t = targets(rec)
    assert rec.sla is not None and rec.sla.calendar == "office"
    assert t["response"].due == at("2026-11-25 11:00")
    assert t["response"].actual == at("2026-11-25 10:30")
    assert (t["response"].taken_s, t["response"].state) == (0.5 * HOUR, "met")
    assert t["response"].size_s == HOUR
    assert t["resolution"].due == at("2026-11-26 12:00")
    assert t["resolution"].actual == at("2026-11-26 10:00")
    assert (t["resolution"].taken_s, t["resolution"].state) == (6 * HOUR, "met")
    assert t["resolution"].size_s == 8 * HOUR
    # No restoration target of its own: it counts against the resolution.
    assert (t["restoration"].due, t["restoration"].state) == (t["resolution"].due, "met")
    assert t["restoration"].by == "resolution"
    assert rec.sla.paused_s == 3 * HOUR
    [pause] = rec.sla.pauses
    assert (pause.since, pause.until, pause.business_s) == (
        at("2026-11-25 11:00"),
        at("2026-11-25 14:00"),
        3 * HOUR,
    )
    assert rec.sla.breaches == () and rec.sla.escalations == ()
    assert (rec.resolution_code, rec.resolved_by) == ("fixed", "anna@example.com")
    assert rec.closure.how == "verified"
    assert "it works now" in (rec.closure.words or "")
    assert rec.reported.startswith("Hello,\n\nthe mail server does not answer")
    assert "old quote" not in rec.reported


def test_timeline_is_in_order_and_marks_internal_notes(desk: App) -> None:
    n = office_ticket(desk)
    rec = the_record(desk, n)
    moments = [e.at for e in rec.timeline]
    assert moments == sorted(moments)
    kinds = [(e.kind, e.type) for e in rec.timeline]
    # At one moment: the mail that came in, then what it changed, then replies.
    first = kinds[: kinds.index(("message", "ack")) + 1]
    assert first[0] == ("message", "request")
    assert ("event", "created") in first
    assert kinds.index(("event", "replied")) < kinds.index(("message", "agent_reply"))
    [note] = [e for e in rec.timeline if e.type == "note"]
    assert note.internal and "Disk full" in note.text
    assert not any(e.internal for e in rec.timeline if e.type in ("request", "agent_reply"))
    text = render_text(rec)
    note_line = next(line for line in text.splitlines() if "Internal note" in line)
    assert "[internal]" in note_line
    # The client's record leaves the desk's own notes out.
    client = the_record(desk, n, audience=CLIENT)
    assert not any(e.internal for e in client.timeline)
    assert "Disk full" not in render_html(client)


# --- 24×7 and the end of summer time ------------------------------------------------


def test_always_calendar_across_the_dst_change(desk: App) -> None:
    """ "Phones down" is P1 on the 24×7 calendar (response 15 min, resolution
    4 h). Opened Sunday 2026-10-25 00:30 UTC (02:30 CEST, half an hour before
    the clocks go back): resolution due 04:30 UTC, which is 05:30 CET: three
    hours on the wall clock, four real ones. The reply at 00:50 UTC is 20 min
    (response breached, the sweep records the breach and the 100% step);
    resolved 03:30 UTC: 3 h, met."""
    n = open_ticket(desk, at("2026-10-25 00:30", UTC_ZONE), "Phones down in the whole building")
    assert sweep(desk, at("2026-10-25 00:45", UTC_ZONE)).get("sla_breaches") == 1
    move(desk, at("2026-10-25 00:50", UTC_ZONE))
    act(desk, n, lambda c: actions.reply(c, "Technician on the way."), actor="piotr@example.com")
    move(desk, at("2026-10-25 03:30", UTC_ZONE))
    act(
        desk,
        n,
        lambda c: closure.resolve(c, "fixed", "Replaced the PBX power supply."),
        actor="piotr@example.com",
    )
    rec = the_record(desk, n)
    t = targets(rec)
    assert rec.priority == "P1" and rec.sla is not None and rec.sla.always
    assert t["response"].due == at("2026-10-25 00:45", UTC_ZONE)
    assert (t["response"].taken_s, t["response"].state) == (20 * 60, "breached")
    assert t["resolution"].due == at("2026-10-25 04:30", UTC_ZONE)
    assert (t["resolution"].taken_s, t["resolution"].state) == (3 * HOUR, "met")
    [breach] = rec.sla.breaches
    assert (breach.target, breach.due) == ("response", at("2026-10-25 00:45", UTC_ZONE))
    [step] = [x for x in rec.sla.escalations if x.share == 1.0]
    assert step.level == 1 and set(step.notified) == {"piotr@example.com", "lead@example.com"}
    assert rec.closure.how is None
    # Shown in Warsaw time, the zone named: the wall clock went back an hour.
    text = render_text(rec)
    assert "25 Oct 2026, 02:30 CEST" in text and "25 Oct 2026, 05:30 CET" in text
    assert "business time taken 3 h;" in text and "business time taken 20 min;" in text


def test_office_calendar_across_the_dst_change(desk: App) -> None:
    """A P3 (response 4 h, resolution 3 business days) opened Friday
    2026-10-23 15:00 CEST: response due Monday 10:00 CET (Friday 15-17 and
    Monday 08-10), 68 real hours later, not 67; resolution due Wednesday 28
    15:00 CET. Answered Monday 09:00 CET: 3 business hours; resolved Tuesday
    12:00 CET: Friday 2 h + Monday 9 h + Tuesday 4 h = 15 h; closed by an agent
    after a phone call."""
    n = open_ticket(desk, at("2026-10-23 15:00"), "Printer on floor 2 jams")
    move(desk, at("2026-10-26 09:00"))
    act(desk, n, lambda c: actions.reply(c, "We will look at it today."))
    move(desk, at("2026-10-27 12:00"))
    act(desk, n, lambda c: closure.resolve(c, "fixed", "Cleaned the fuser."))
    move(desk, at("2026-10-27 13:00"))
    act(
        desk,
        n,
        lambda c: closure.close(c, "Confirmed by phone with Jan."),
        actor="lead@example.com",
    )
    rec = the_record(desk, n)
    t = targets(rec)
    assert rec.priority == "P3"
    assert t["response"].due == at("2026-10-26 10:00")
    assert (t["response"].due - rec.reported_at).total_seconds() == 68 * HOUR
    assert (t["response"].taken_s, t["response"].state) == (3 * HOUR, "met")
    assert t["resolution"].due == at("2026-10-28 15:00")
    assert (t["resolution"].taken_s, t["resolution"].state) == (15 * HOUR, "met")
    assert t["resolution"].size_days == 3
    assert (rec.closure.how, rec.closure.by) == ("agent", "lead@example.com")
    assert rec.closure.words == "Confirmed by phone with Jan."
    text = render_text(rec)
    assert "3 business days" in text and "business time taken 15 h;" in text


# --- attachments ---------------------------------------------------------------------------


def test_every_attachment_is_listed_with_the_command_that_fetches_it(desk: App) -> None:
    from email.message import EmailMessage

    move(desk, at("2026-11-25 10:00"))
    msg = EmailMessage()
    msg["From"] = REQUESTER
    msg["To"] = "helpdesk@example.com"
    msg["Subject"] = "Excel crashes"
    msg["Message-ID"] = "<crash-1@client.example.org>"
    msg.set_content("Hello,\nExcel crashes when I open the budget.\n")
    msg.add_attachment(b"\x89PNG fake", maintype="image", subtype="png", filename="error.png")
    msg.add_attachment(b"a,b\n1,2\n", maintype="text", subtype="csv", filename="budget.csv")
    outcome = ingest(desk, msg.as_bytes())
    n = int(outcome.ticket)
    rec = the_record(desk, n)
    names = [(f.name, f.type, f.size) for f in rec.files]
    assert names == [("error.png", "image/png", 9), ("budget.csv", "text/csv", 8)]
    first = rec.files[0]
    assert first.command == f"spocd attachment HD-{n} {first.id} --output error.png"
    assert first.message_kind == "request" and first.message_from == REQUESTER
    [request] = [e for e in rec.timeline if e.type == "request"]
    assert request.attachments == tuple(f.id for f in rec.files)
    html = render_html(rec)
    for f in rec.files:
        assert f.sha256 in html and f.command in html


# --- the page itself -----------------------------------------------------------------------


def test_the_page_is_self_contained(desk: App) -> None:
    n = office_ticket(desk)
    html = render_html(the_record(desk, n))
    assert "<script" not in html.lower()
    assert not re.search(r"(https?:|//[a-z0-9]|<link|@import|url\()", html, re.IGNORECASE)
    assert "@page" in html and "A4" in html
    assert html.count("<style>") == 1
    assert '<html lang="en">' in html


def test_a_polish_ticket_gets_a_polish_record(desk: App) -> None:
    move(desk, at("2026-11-25 10:00"))
    outcome = ingest(desk, make_mail(sender="anna.nowak@firma.pl", subject="Drukarka nie drukuje"))
    rec = the_record(desk, int(outcome.ticket))
    assert rec.language == "pl"
    html = render_html(rec)
    assert '<html lang="pl">' in html
    for words in ("Karta incydentu", "Zgłaszający", "Poziom usług (SLA)", "Przebieg"):
        assert words in html
    assert "25.11.2026, 10:00 CET" in html
