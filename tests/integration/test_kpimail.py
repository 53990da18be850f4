"""The contracts' KPI report by mail (SPEC §7): sent once per period on the
first working day at 08:00, caught up once after downtime, never twice (also
with two instances racing on PostgreSQL), its CSV checked against tickets
whose times were worked out by hand; an empty period still mails "no
incidents". Runs on SQLite and PostgreSQL.

Rules: tests/data/rules/contracts_desk.yaml with a monthly Polish report for
ACME (office calendar, mon-fri 08:00-17:00 Warsaw; its P2 row 30m / 6h) and
a weekly English one for Globex (no calendar: the top-level P3 row's, office).
"""

from __future__ import annotations

import csv
import email
import email.policy
import io
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from daemon.app import actions, closure, jobs, kpimail
from daemon.app.actions import Ctx
from daemon.app.tickets import Actor
from daemon.config import load_settings
from daemon.service.wiring import App
from tests.conftest import DATA, write_config
from tests.support.clock import ManualClock
from tests.support.flow import ingest
from tests.support.mail import make_mail

WARSAW = ZoneInfo("Europe/Warsaw")
RULES = DATA / "rules" / "contracts_desk.yaml"
ACME_REPORT = "    report: {every: month, to: [it-manager@acme.pl, ceo@acme.pl], language: pl}\n"
GLOBEX_REPORT = "    report: {every: week, to: [cto@globex.com], language: en}\n"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=WARSAW)


def rules_text() -> str:
    text = RULES.read_text("utf-8")
    text = text.replace(
        "    cc_priorities: [P1, P2]\n", "    cc_priorities: [P1, P2]\n" + ACME_REPORT
    )
    text = text.replace(
        "      P1: {calendar: always, response: 10m, resolution: 2h, update_every: 30m}\n",
        "      P1: {calendar: always, response: 10m, resolution: 2h, update_every: 30m}\n"
        + GLOBEX_REPORT,
    )
    assert ACME_REPORT in text and GLOBEX_REPORT in text
    return text


@pytest.fixture
def config(tmp_path: Path, db_url: str) -> Path:
    rules = tmp_path / "rules.yaml"
    rules.write_text(rules_text(), "utf-8")
    return write_config(tmp_path, db_url, paths={"rules": str(rules)})


@pytest.fixture
def desk(config: Path) -> Iterator[App]:
    app = App(load_settings(config), ManualClock(at("2026-10-01T09:00")))
    yield app
    app.close()


def set_clock(app: App, moment: datetime) -> None:
    assert isinstance(app.clock, ManualClock)
    app.clock.set(moment)


def open_at(app: App, moment: datetime, sender: str, subject: str) -> int:
    set_clock(app, moment)
    outcome = ingest(app, make_mail(sender=sender, subject=subject))
    assert outcome.outcome == "created"
    return int(outcome.ticket)


def act(app: App, number: int, moment: datetime, do: Callable[[Ctx], None]) -> None:
    set_clock(app, moment)
    with app.store.transaction() as tx:
        t = tx.tickets.get(number, for_update=True)
        assert t is not None
        ctx = Ctx(tx, app.runtime, moment, Actor("anna@example.com", "cli"), t)
        do(ctx)
        ctx.save()
    app.sender.send_due()


def reply(app: App, number: int, moment: str) -> None:
    act(app, number, at(moment), lambda c: actions.reply(c, "We are on it."))


def resolve(app: App, number: int, moment: str) -> None:
    act(app, number, at(moment), lambda c: closure.resolve(c, "fixed", "Restarted the server."))


def close(app: App, number: int, moment: str) -> None:
    act(app, number, at(moment), lambda c: closure.close(c, None))


def fill(app: App) -> dict[str, int]:
    """The tickets whose figures the test knows (office hours 08-17, mon-fri):

    n1 ACME P2, Mon 2 Nov 10:00: response due 10:30, resolution due 16:00;
       replied 10:20 (met, 20m), resolved 15:00 (met, 5h), closed Wed 4 Nov.
    n2 ACME P2, Thu 5 Nov 16:45: response due Fri 08:15, resolution due Fri
       13:45; replied Fri 09:00 (breached, 1h15m), resolved Fri 16:00
       (breached, 8h15m).
    n3 ACME P3, Mon 30 Nov 16:00: response due Tue 1 Dec 11:00; open at the
       end of November, nothing due yet.
    old ACME, October, resolved and closed in October: not in November's.
    gx  Globex, Tue 10 Nov, resolved the same day: not ACME's.
    """
    old = open_at(app, at("2026-10-05T10:00"), "jan@acme.pl", "Printer jams")
    resolve(app, old, "2026-10-05T12:00")
    close(app, old, "2026-10-06T09:00")
    n1 = open_at(app, at("2026-11-02T10:00"), "Jan Kowalski <jan@acme.pl>", "Server down")
    reply(app, n1, "2026-11-02T10:20")
    resolve(app, n1, "2026-11-02T15:00")
    close(app, n1, "2026-11-04T09:00")
    n2 = open_at(app, at("2026-11-05T16:45"), "ewa@biuro.acme.pl", "Server down again")
    reply(app, n2, "2026-11-06T09:00")
    resolve(app, n2, "2026-11-06T16:00")
    n3 = open_at(app, at("2026-11-30T16:00"), "jan@acme.pl", "Printer jams on floor 3")
    gx = open_at(app, at("2026-11-10T10:00"), "bob@globex.com", "Printer jams")
    resolve(app, gx, "2026-11-10T12:00")
    return {"old": old, "n1": n1, "n2": n2, "n3": n3, "gx": gx}


def run(app: App, moment: str) -> dict[str, int]:
    set_clock(app, at(moment))
    counts = jobs.run_due(app.store, lambda: app.runtime, at(moment))
    app.sender.send_due()
    return counts


def reports(sent: Path, seen: set[str]) -> list[EmailMessage]:
    """KPI report mails written to the Maildir since the last call."""
    found = []
    for path in sorted((sent / "new").iterdir()):
        if path.name in seen:
            continue
        seen.add(path.name)
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        if message["Subject"].startswith("Raport SLA") or message["Subject"].startswith(
            "SLA report"
        ):
            found.append(message)
    return found


def csv_rows(message: EmailMessage) -> tuple[str, list[dict[str, str]]]:
    parts = [p for p in message.iter_attachments() if p.get_content_type() == "text/csv"]
    assert len(parts) == 1
    data = parts[0].get_payload(decode=True)
    assert isinstance(data, bytes) and data.startswith(b"\xef\xbb\xbf")  # BOM for spreadsheets
    return parts[0].get_filename() or "", list(
        csv.DictReader(io.StringIO(data.decode("utf-8-sig")))
    )


def test_monthly_report_caught_up_once_after_downtime(desk: App, tmp_path: Path) -> None:
    n = fill(desk)
    seen: set[str] = set()
    reports(tmp_path / "sent", seen)
    # The first tick (Monday 30 November, 17:00) sends what the schedule had
    # last: ACME's October (it has the old ticket) and Globex's week of 23-29
    # November (nothing: "no incidents"); it also auto-closes n2, whose
    # requester never answered.
    counts = run(desk, "2026-11-30T17:00")
    assert counts["kpi_reports"] == 2
    first = {m["To"]: m for m in reports(tmp_path / "sent", seen)}
    october = first["it-manager@acme.pl, ceo@acme.pl"]
    assert october["Subject"] == "Raport SLA ACME Sp. z o.o.: październik 2026"
    assert [r["tag"] for r in csv_rows(october)[1]] == [f"HD-{n['old']}"]
    globex = first["cto@globex.com"]
    assert globex["Subject"] == "SLA report Globex Polska: 23.11–29.11.2026, no incidents"
    assert globex["Content-Language"] == "en"
    assert "No incidents" in globex.get_body(("plain",)).get_content()
    assert csv_rows(globex) == ("kpi-globex-2026-11-23.csv", [])
    # Then the daemon is down until Thursday 3 December: December's first
    # working day (Tue 1st, 08:00) passed unseen; November's goes now, once.
    assert run(desk, "2026-12-03T10:00")["kpi_reports"] == 1
    mails = {m["To"]: m for m in reports(tmp_path / "sent", seen)}
    assert set(mails) == {"it-manager@acme.pl, ceo@acme.pl"}
    acme = mails["it-manager@acme.pl, ceo@acme.pl"]
    assert acme["Subject"] == "Raport SLA ACME Sp. z o.o.: listopad 2026"
    assert acme["Auto-Submitted"] == "auto-generated" and acme["Content-Language"] == "pl"
    assert acme["Message-ID"].endswith("@example.com>") and acme["X-Spocd-Loop"]
    text = acme.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert "Dzień dobry," in text and "za listopad 2026 r." in text
    assert (
        "- przyjęte: 3\n- rozwiązane: 2\n- zamknięte: 2\n- otwarte na koniec okresu: 1 (P3: 1)"
        in text
    )
    # P2: response 1 of 2 on time, median (20m + 1h15m) / 2, p90 the larger.
    assert "P2: przyjęte 2, rozwiązane 2, przekroczenia 2" in text
    assert (
        "reakcja w terminie: 50,0% (czas reakcji: mediana 48 min, 90. percentyl 1 godz. 15 min)"
        in text
    )
    # Medians round to whole minutes: (20m + 1h15m) / 2 = 47.5m, (5h + 8h15m) / 2 = 6h37.5m.
    assert "mediana 6 godz. 38 min, 90. percentyl 8 godz. 15 min" in text
    assert "P3: przyjęte 1, rozwiązane 0, przekroczenia 0\n  w tym okresie nie minął" in text
    assert f"HD-{n['n2']} (P2), reakcja: termin 6 listopada 2026 r., godz. 08:15" in text
    assert "opóźnienie 45 min" in text and "opóźnienie 2 godz. 15 min" in text
    assert f"HD-{n['gx']}" not in text and f"HD-{n['old']}" not in text
    html = acme.get_body(("html",)).get_content()
    assert "<table" in html and "50,0%" in html and f"HD-{n['n2']}" in html
    name, rows = csv_rows(acme)
    assert name == "kpi-acme-2026-11-01.csv"
    assert [r["tag"] for r in rows] == [f"HD-{n['n1']}", f"HD-{n['n2']}", f"HD-{n['n3']}"]
    r1, r2, r3 = rows
    assert (r1["subject"], r1["requester"], r1["priority"]) == ("Server down", "jan@acme.pl", "P2")
    assert (r1["opened"], r1["responded"]) == (
        "2026-11-02T10:00:00+01:00",
        "2026-11-02T10:20:00+01:00",
    )
    assert (r1["resolved"], r1["closed"]) == (
        "2026-11-02T15:00:00+01:00",
        "2026-11-04T09:00:00+01:00",
    )
    assert (r1["response_due"], r1["resolution_due"]) == (
        "2026-11-02T10:30:00+01:00",
        "2026-11-02T16:00:00+01:00",
    )
    assert (r1["response"], r1["resolution"], r1["closure"]) == ("met", "met", "agent")
    assert (r2["response_due"], r2["resolution_due"]) == (
        "2026-11-06T08:15:00+01:00",
        "2026-11-06T13:45:00+01:00",
    )
    assert (r2["response"], r2["resolution"]) == ("breached", "breached")
    assert (r2["closed"], r2["closure"]) == ("2026-11-30T17:00:00+01:00", "auto")
    assert (r3["priority"], r3["response_due"]) == ("P3", "2026-12-01T11:00:00+01:00")
    assert (r3["responded"], r3["response"], r3["resolution"], r3["status"]) == ("", "", "", "new")

    # Later, and days later: nothing more for November (Globex's next week is due Mon 7 Dec).
    assert run(desk, "2026-12-03T11:00").get("kpi_reports", 0) == 0
    assert run(desk, "2026-12-04T16:00").get("kpi_reports", 0) == 0
    assert reports(tmp_path / "sent", seen) == []
    assert run(desk, "2026-12-07T08:30")["kpi_reports"] == 1  # Globex, 30 Nov - 6 Dec
    assert [m["To"] for m in reports(tmp_path / "sent", seen)] == ["cto@globex.com"]


def test_report_mail_at_eight_and_an_empty_period(desk: App, tmp_path: Path) -> None:
    """Tuesday 1 December is the first working day: at 07:59 the latest moment
    is still 2 November's (a desk that never sent one sends it: October's),
    at 08:00 November's goes, with no tickets: "bez zgłoszeń"."""
    seen: set[str] = set()
    assert run(desk, "2026-12-01T07:59")["kpi_reports"] == 2  # ACME October, Globex 23-29 Nov
    subjects = sorted(m["Subject"] for m in reports(tmp_path / "sent", seen))
    assert subjects[0] == "Raport SLA ACME Sp. z o.o.: październik 2026, bez zgłoszeń"
    assert run(desk, "2026-12-01T08:00")["kpi_reports"] == 1
    mail = reports(tmp_path / "sent", seen)[0]
    assert mail["Subject"] == "Raport SLA ACME Sp. z o.o.: listopad 2026, bez zgłoszeń"
    text = mail.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert "nie przyjęliśmy od Państwa żadnych zgłoszeń" in text
    assert "za listopad 2026 r." in text
    assert csv_rows(mail) == ("kpi-acme-2026-11-01.csv", [])


def test_two_instances_send_it_once(config: Path, tmp_path: Path) -> None:
    """Two instances (on PostgreSQL; on SQLite, two ticks) sweep at the same
    moment, five times over: each report goes once."""
    moment = at("2026-12-01T08:05")
    apps = [App(load_settings(config), ManualClock(moment)) for _ in range(2)]
    try:
        barrier = threading.Barrier(2)
        results: list[int] = []
        errors: list[BaseException] = []

        def tick(app: App) -> None:
            try:
                for _ in range(5):
                    barrier.wait()
                    got = kpimail.sweep(app.store, lambda: app.runtime, moment)
                    results.append(got["kpi_reports"])
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=tick, args=(a,)) for a in apps]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors
        assert sum(results) == 2  # ACME's November and Globex's last week, once each
        with apps[0].store.reading() as tx:
            assert tx.settings.get(kpimail.sent_key("acme")) == "2026-11-01"
            assert tx.settings.get(kpimail.sent_key("globex")) == "2026-11-23"
        apps[0].sender.send_due()
        assert len(reports(tmp_path / "sent", set())) == 2
    finally:
        for a in apps:
            a.close()


def test_the_sent_record_only_moves_forward(desk: App) -> None:
    """`settings.advance`: what keeps a report from going twice."""
    with desk.store.transaction() as tx:
        assert tx.settings.advance("kpi_report_sent:x", "2026-11-01") is True
        assert tx.settings.advance("kpi_report_sent:x", "2026-11-01") is False
        assert tx.settings.advance("kpi_report_sent:x", "2026-10-01") is False
        assert tx.settings.advance("kpi_report_sent:x", "2026-12-01") is True
        assert tx.settings.get("kpi_report_sent:x") == "2026-12-01"
