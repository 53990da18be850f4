"""Tickets under contracts (SPEC §7): the contract a ticket opens under, the
targets it keeps, and a priority change that keeps the time already spent.
Runs on SQLite and PostgreSQL.

Rules: tests/data/rules/contracts_desk.yaml (the SLA desk plus ACME, office
hours with P2 at 30m/6h, and Globex with P1 at 10m/2h 24x7). The clock starts
at conftest T0, Wednesday 2026-11-25 10:00 Warsaw.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from daemon.app.views import ticket_json
from daemon.config import load_settings
from daemon.service.wiring import App
from tests.conftest import DATA, write_config
from tests.support.clock import ManualClock
from tests.support.flow import events, ingest, ticket
from tests.support.mail import make_mail

WARSAW = ZoneInfo("Europe/Warsaw")
RULES = DATA / "rules" / "contracts_desk.yaml"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=WARSAW)


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    """A copy of the desk's rules the test may edit and reload."""
    path = tmp_path / "rules.yaml"
    path.write_text(RULES.read_text("utf-8"), "utf-8")
    return path


@pytest.fixture
def desk(tmp_path: Path, db_url: str, clock: ManualClock, rules_file: Path) -> Iterator[App]:
    settings = load_settings(write_config(tmp_path, db_url, paths={"rules": str(rules_file)}))
    app = App(settings, clock)
    yield app
    app.close()


def open_ticket(app: App, sender: str, subject: str = "Printer jams", **kw: object) -> int:
    outcome = ingest(app, make_mail(sender=sender, subject=subject), **kw)  # type: ignore[arg-type]
    assert outcome.outcome == "created"
    return int(outcome.ticket)


def test_a_ticket_opens_under_its_requesters_contract(desk: App) -> None:
    number = open_ticket(desk, "Jan Kowalski <jan@biuro.acme.pl>", "Server down")
    t = ticket(desk, number)
    assert (t.contract, t.priority, t.group, t.language) == ("acme", "P2", "third-line", "pl")
    # ACME's P2 row: response 30m, resolution 6h of office time from 10:00
    assert t.first_response_due == at("2026-11-25 10:30")
    assert t.resolution_due == at("2026-11-25 16:00")
    document = ticket_json(t, desk.runtime.prefix, desk.runtime.rules, desk.clock.now())
    assert document["contract"] == "acme"
    [created] = [e for e in events(desk, number) if e.type == "created"]
    assert created.detail["contract"] == "acme"
    assert created.detail["contract_reason"] == "matched by domain acme.pl"


def test_a_requester_under_no_contract_gets_the_top_level_targets(desk: App) -> None:
    number = open_ticket(desk, "someone@example.org", "Server down")
    t = ticket(desk, number)
    assert (t.contract, t.priority, t.group, t.language) == (None, "P2", "second-line", "en")
    assert t.first_response_due == at("2026-11-25 11:00")  # top-level P2: 1h, 8h
    assert t.resolution_due == at("2026-11-26 09:00")
    assert ticket_json(t, "HD", desk.runtime.rules, desk.clock.now())["contract"] is None


def test_an_escalation_takes_the_forwarded_requesters_contract(desk: App) -> None:
    raw = make_mail(
        sender="Service Desk <sd@firstline.example.net>",
        to="escalations@example.com",
        subject="FW: [SD-11] Printer jams",
        body="Please take this one.\n\n-----Original Message-----\n"
        "From: Jan Kowalski <jan@acme.pl>\nSubject: Printer jams\n\nIt jams again.\n",
    )
    outcome = ingest(desk, raw, escalation=True)
    t = ticket(desk, outcome.ticket)
    assert (t.requester, t.escalated_by) == ("jan@acme.pl", "sd@firstline.example.net")
    assert (t.contract, t.language) == ("acme", "pl")


def test_first_line_itself_under_a_contract_does_not_lend_it(desk: App) -> None:
    raw = make_mail(
        sender="Service Desk <sd@acme.pl>",
        to="escalations@example.com",
        subject="FW: [SD-12] Printer jams",
        body="Please take this one.\n\n-----Original Message-----\n"
        "From: Ola <ola@globex.com>\nSubject: Printer jams\n\nIt jams.\n",
    )
    t = ticket(desk, ingest(desk, raw, escalation=True).ticket)
    assert (t.requester, t.contract) == ("ola@globex.com", "globex")


def test_a_rules_set_contract_wins(desk: App) -> None:
    t = ticket(desk, open_ticket(desk, "jan@acme.pl", "Partner request"))
    assert (t.contract, t.group) == ("globex", "second-line")
