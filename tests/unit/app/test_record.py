"""The incident record's pure parts: `record.build` from values, and the text
and HTML forms of `record_page` with hostile text in them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from daemon.adapters import record_labels
from daemon.adapters.record_page import render_html, render_text
from daemon.app import record, slaclock
from daemon.core.domain import Attachment, Event, Status, StoredMessage, Ticket
from daemon.core.record import CLIENT
from daemon.rules.ruleset import load_rules
from tests.conftest import DATA

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)  # Wednesday 10:00 in Warsaw


@pytest.fixture(scope="module")
def rules():  # type: ignore[no-untyped-def]
    path = DATA / "rules" / "sla_desk.yaml"
    return load_rules(path.read_text(encoding="utf-8"), str(path))


def ticket(rules, subject: str = "Printer jams") -> Ticket:  # type: ignore[no-untyped-def]
    t = Ticket(
        number=7,
        subject=subject,
        requester="jan@example.org",
        status=Status.IN_PROGRESS,
        impact="medium",
        urgency="medium",
        priority="P3",
        language="en",
        created_at=T0,
        group="second-line",
    )
    slaclock.set_deadlines(t, rules)
    return t


def message(
    kind: str,
    body: str,
    *,
    at: datetime = T0,
    internal: bool = False,
    direction: str = "in",
    row: int = 1,
) -> StoredMessage:
    return StoredMessage(
        ticket_number=7,
        direction=direction,
        kind=kind,
        sender="jan@example.org" if direction == "in" else "helpdesk@example.com",
        recipients=("helpdesk@example.com",),
        subject="Printer jams",
        message_id=f"m{row}@x",
        at=at,
        body=body,
        internal=internal,
        row_id=row,
    )


def build(rules, t: Ticket, messages=(), events=(), rows=(), **kw):  # type: ignore[no-untyped-def]
    return record.build(
        t,
        messages,
        events,
        rows,
        rules,
        kw.pop("now", T0 + timedelta(hours=2)),
        prefix="HD",
        desk_name="IT Help Desk",
        desk_address="helpdesk@example.com",
        timezone="Europe/Warsaw",
        **kw,
    )


def test_an_open_ticket_past_nothing_is_running(rules) -> None:  # type: ignore[no-untyped-def]
    rec = build(rules, ticket(rules))
    states = {t.name: (t.state, t.taken_s) for t in rec.sla.targets}
    # P3: response 4 h; two business hours used, not yet due.
    assert states["response"] == ("running", 2 * 3600.0)
    late = build(rules, ticket(rules), now=T0 + timedelta(hours=5))
    assert {t.name: t.state for t in late.sla.targets}["response"] == "late"
    assert [b.target for b in late.sla.breaches] == ["response"]


def test_children_and_hostile_text_are_shown_safely(rules) -> None:  # type: ignore[no-untyped-def]
    t = ticket(rules, subject="<script>alert(1)</script> \u202egnp.exe")
    request = message("request", "Hello <b>there</b>\x1b]52;c;evil\x07\nline two")
    attachment = Attachment("../../etc/\u202epasswd", "text/plain", 3, "ab" * 32, b"abc")
    rec = build(rules, t, [request], [], [(5, 1, attachment)], children=[8, 9])
    assert rec.children == ("HD-8", "HD-9")
    html = render_html(rec)
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    assert "\u202e" not in html and "\x1b" not in html
    assert "HD-8, HD-9" in html
    [f] = rec.files
    assert f.name == "passwd" and f.command == "spocd attachment HD-7 5 --output passwd"
    text = render_text(rec)
    assert "\x1b" not in text and "\u202e" not in text
    assert "Linked incidents:" in text and "HD-8, HD-9" in text


def test_the_clients_record_leaves_internal_things_out(rules) -> None:  # type: ignore[no-untyped-def]
    t = ticket(rules)
    request = message("request", "It jams.", row=1)
    note = message(
        "internal_note",
        "Vendor says firmware bug.",
        internal=True,
        row=2,
        at=T0 + timedelta(minutes=5),
    )
    events = [
        Event(T0 + timedelta(minutes=6), "anna@example.com", "note", {"text": "call vendor"}),
        Event(T0 + timedelta(minutes=7), "anna@example.com", "commands", {"lines": ["#pending"]}),
    ]
    secret = Attachment("trace.log", "text/plain", 3, "cd" * 32, b"xyz")
    desk = build(rules, t, [request, note], events, [(1, 2, secret)])
    assert [e.internal for e in desk.timeline] == [False, True, True, False]
    assert [f.name for f in desk.files] == ["trace.log"]
    client = build(rules, t, [request, note], events, [(1, 2, secret)], audience=CLIENT)
    assert [e.type for e in client.timeline] == ["request"]
    assert client.files == ()


def test_every_event_reads_as_a_line_in_both_languages() -> None:
    from daemon.core.record import Entry

    def line(type_: str, lang: str, **detail: object) -> str:
        return record_labels.describe(Entry(T0, "event", type_, "x", detail), lang)

    assert line("priority_changed", "en", **{"from": "P3", "to": "P2"}) == "Priority P3 → P2"
    assert line("status_changed", "pl", **{"from": "new", "to": "pending"}) == (
        "Stan nowe → oczekuje na zgłaszającego"
    )
    assert line("closed", "pl", closure="auto") == (
        "Zamknięcie: Zamknięte automatycznie: brak odpowiedzi zgłaszającego"
    )
    assert (
        line(
            "sla_escalation", "en", target="resolution", share=1.0, level=1, notified=["a@x", "b@x"]
        )
        == "Escalation, level 1 (Resolution, 100%); told: a@x, b@x"
    )
    assert line("something_new", "en", key="value") == "something new: key=value"


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (1, "1 dzień roboczy"),
        (2, "2 dni robocze"),
        (5, "5 dni roboczych"),
        (12, "12 dni roboczych"),
        (22, "22 dni robocze"),
    ],
)
def test_polish_business_days(n: int, words: str) -> None:
    assert f"{n} {record_labels.plural(n, 'pl', 'day')}" == words


def test_moments_name_their_zone_across_the_dst_change() -> None:
    from zoneinfo import ZoneInfo

    warsaw = ZoneInfo("Europe/Warsaw")
    before = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    after = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    assert record_labels.moment(before, warsaw, "en") == "25 Oct 2026, 02:30 CEST"
    assert record_labels.moment(after, warsaw, "pl") == "25.10.2026, 02:30 CET"
    assert record_labels.duration(5400, "pl") == "1 godz. 30 min"
    assert record_labels.duration(7200, "en") == "2 h"
