"""The record of a contract's ticket with a workaround (SPEC §7, §8): the
contract by id and name, its own targets, restoration against its own target,
the workaround and the resolution each against theirs.

Rules: tests/data/rules/record_desk.yaml. ACME's P2 row on the office
calendar (Europe/Warsaw, Mon-Fri 08-17): response 30 min, restoration 2 h,
resolution 6 h.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from daemon.adapters.record_page import render_html, render_text
from daemon.app import actions, closure, restoration
from daemon.service.wiring import App
from tests.integration.test_record import act, move, the_record
from tests.integration.test_record_mail import desk  # noqa: F401 (the fixture)
from tests.support.flow import ingest
from tests.support.mail import make_mail

WARSAW = ZoneInfo("Europe/Warsaw")
HOUR = 3600.0


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=WARSAW)


def test_workaround_and_resolution_against_the_contracts_targets(desk: App) -> None:  # noqa: F811
    """Opened Wednesday 2026-11-25 16:00: response due 16:30; restoration
    (2 h) due Thursday 09:00 (Wednesday 16-17, Thursday 08-09); resolution
    (6 h) due Thursday 13:00. Reply 16:10 (10 min, met); workaround Thursday
    08:30 (1 h 30 min, met); resolved Thursday 14:00 (1 h + 6 h = 7 h,
    breached)."""
    move(desk, at("2026-11-25 16:00"))
    outcome = ingest(desk, make_mail(sender="jan@acme.pl", subject="Mail server down"))
    n = int(outcome.ticket)
    move(desk, at("2026-11-25 16:10"))
    act(desk, n, lambda c: actions.reply(c, "Sprawdzamy."))
    move(desk, at("2026-11-26 08:30"))
    act(desk, n, lambda c: restoration.workaround(c, "Poczta idzie przez zapasowy serwer."))
    move(desk, at("2026-11-26 14:00"))
    act(desk, n, lambda c: closure.resolve(c, "fixed", "Wymieniony dysk w mx1."))
    rec = the_record(desk, n)
    assert (rec.contract_id, rec.contract_name) == ("acme", "ACME Sp. z o.o.")
    assert rec.language == "pl" and rec.priority == "P2"
    assert rec.sla is not None
    t = {x.name: x for x in rec.sla.targets}
    assert (t["response"].due, t["response"].taken_s, t["response"].state) == (
        at("2026-11-25 16:30"),
        10 * 60,
        "met",
    )
    assert (t["restoration"].size_s, t["restoration"].due) == (2 * HOUR, at("2026-11-26 09:00"))
    assert (t["restoration"].actual, t["restoration"].taken_s) == (
        at("2026-11-26 08:30"),
        1.5 * HOUR,
    )
    assert (t["restoration"].state, t["restoration"].by) == ("met", "workaround")
    assert (t["resolution"].due, t["resolution"].taken_s) == (at("2026-11-26 13:00"), 7 * HOUR)
    assert t["resolution"].state == "breached"
    assert rec.restored_at == at("2026-11-26 08:30")
    assert rec.workaround == "Poczta idzie przez zapasowy serwer."
    assert rec.workaround_by == "anna@example.com"
    html = render_html(rec)
    assert "ACME Sp. z o.o." in html and "Obejście problemu" in html
    assert "dotrzymany (obejściem problemu)" in html and "przekroczony" in html
    text = render_text(rec)
    assert "Przywrócenie usługi:" in text and "1 godz. 30 min" in text
