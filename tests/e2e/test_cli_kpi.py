"""`spocd report --contract ID [--mail]` and `spocd contracts` as a user runs
them (SPEC §3, §7): an unknown contract is a usage error, a removed one is
still reported and listed, the KPI mail goes now with its CSV.

Rules: tests/data/rules/contracts_desk.yaml with a monthly report for ACME.
"""

from __future__ import annotations

import csv
import email
import email.policy
import io
import json
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from daemon.config import load_settings
from daemon.service.wiring import App
from tests.conftest import DATA, write_config
from tests.support.clock import ManualClock
from tests.support.flow import ingest
from tests.support.mail import make_mail
from tests.support.proc import spocd

WARSAW = ZoneInfo("Europe/Warsaw")
RULES = DATA / "rules" / "contracts_desk.yaml"
REPORT = "    report: {every: month, to: [it-manager@acme.pl], language: en}\n"
NOW = "2026-12-02T10:00:00+01:00"


@pytest.fixture
def desk(tmp_path: Path, sqlite_url: str) -> tuple[Path, Path]:
    """Tickets of ACME (two), Globex (one) and no contract (one), opened in
    November; returns the config and the rules file."""
    rules = tmp_path / "rules.yaml"
    text = RULES.read_text("utf-8").replace(
        "    cc_priorities: [P1, P2]\n", "    cc_priorities: [P1, P2]\n" + REPORT
    )
    rules.write_text(text, "utf-8")
    config = write_config(tmp_path, sqlite_url, paths={"rules": str(rules)})
    app = App(load_settings(config), ManualClock(datetime(2026, 11, 16, 9, tzinfo=WARSAW)))
    try:
        for sender, subject in (
            ("jan@acme.pl", "Server down"),
            ("ewa@acme.pl", "Printer jams"),
            ("bob@globex.com", "Printer jams"),
            ("someone@example.org", "Printer jams"),
        ):
            assert ingest(app, make_mail(sender=sender, subject=subject)).outcome == "created"
    finally:
        app.close()
    return config, rules


def run_json(config: Path, *args: str) -> object:
    result = spocd(*args, "--now", NOW, "--json", config=config)
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout)


def test_report_per_contract(desk: tuple[Path, Path]) -> None:
    config, rules = desk
    doc = run_json(config, "report", "--since", "2026-11-01", "--contract", "acme")
    assert isinstance(doc, dict)
    assert doc["contract"] == {"id": "acme", "name": "ACME Sp. z o.o.", "in_rules": True}
    assert doc["counts"]["opened"] == 2 and list(doc["by_contract"]) == ["acme"]
    whole = run_json(config, "report", "--since", "2026-11-01")
    assert isinstance(whole, dict)
    assert {k: v["opened"] for k, v in whole["by_contract"].items()} == {
        "acme": 2,
        "globex": 1,
        "(none)": 1,
    }
    csv_out = spocd("report", "--since", "2026-11-01", "--csv", "--now", NOW, config=config)
    rows = list(csv.DictReader(io.StringIO(csv_out.stdout.decode())))
    assert [r["name"] for r in rows if r["dimension"] == "contract"] == ["acme", "globex", "(none)"]

    unknown = spocd("report", "--contract", "nope", "--now", NOW, config=config)
    assert unknown.returncode == 64
    assert b"no contract 'nope'" in unknown.stderr and b"acme, globex" in unknown.stderr

    # Globex leaves rules.yaml: its ticket keeps the id, and report still takes it.
    text = rules.read_text("utf-8")
    start = text.index("  globex:")
    kept = text[:start] + text[text.index("rules:\n") : text.index("  - name: Forced contract")]
    rules.write_text(kept, "utf-8")
    gone = run_json(config, "report", "--since", "2026-11-01", "--contract", "globex")
    assert isinstance(gone, dict)
    assert gone["contract"] == {"id": "globex", "name": None, "in_rules": False}
    assert gone["counts"]["opened"] == 1
    listed = run_json(config, "contracts")
    assert isinstance(listed, list)
    assert [(e["id"], e["in_rules"], e["open"]) for e in listed] == [
        ("acme", True, 2),
        ("globex", False, 1),
        (None, False, 1),
    ]


def test_contracts_lists_open_tickets_and_states(desk: tuple[Path, Path]) -> None:
    config, _ = desk
    listed = run_json(config, "contracts")
    assert isinstance(listed, list)
    acme = listed[0]
    assert (acme["id"], acme["name"], acme["report"], acme["open"]) == (
        "acme",
        "ACME Sp. z o.o.",
        "month",
        2,
    )
    # Opened on 16 November, nobody answered: every response is overdue by 2 December.
    assert acme["sla_states"] == {"breached": 2, "warning": 0, "ok": 0, "paused": 0}
    assert acme["worst"]["id"] in {t["id"] for t in acme["tickets"]}
    assert {t["contract"] for t in acme["tickets"]} == {"acme"}
    text = spocd("contracts", "--now", NOW, config=config)
    assert text.returncode == 0
    lines = text.stdout.decode().splitlines()
    assert lines[0].split()[:3] == ["contract", "name", "open"]
    assert lines[1].startswith("acme") and "ACME Sp. z o.o." in lines[1]
    assert lines[2].lstrip().startswith("HD-") and "breached" in lines[2]


def test_report_mail_now(desk: tuple[Path, Path], tmp_path: Path) -> None:
    config, _ = desk
    assert spocd("report", "--mail", "--now", NOW, config=config).returncode == 64
    no_plan = spocd("report", "--contract", "globex", "--mail", "--now", NOW, config=config)
    assert no_plan.returncode == 64 and b"no report" in no_plan.stderr
    result = run_json(config, "report", "--contract", "acme", "--mail")
    assert isinstance(result, dict)
    assert result["to"] == ["it-manager@acme.pl"] and result["sent"] == 1
    assert result["period"]["since"] == "2026-11-01T00:00:00+01:00"  # the last month ended
    sent = [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        for p in sorted((tmp_path / "sent" / "new").iterdir())
    ]
    mails = [m for m in sent if isinstance(m, EmailMessage) and m["To"] == "it-manager@acme.pl"]
    reports = [m for m in mails if m["Subject"].startswith("SLA report")]
    assert len(reports) == 1
    mail = reports[0]
    assert mail["Subject"] == "SLA report ACME Sp. z o.o.: November 2026"
    assert f"<{result['message_id']}>" == mail["Message-ID"]
    (attachment,) = list(mail.iter_attachments())
    data = attachment.get_payload(decode=True)
    assert isinstance(data, bytes)
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert [r["requester"] for r in rows] == ["jan@acme.pl", "ewa@acme.pl"]
    # A chosen range: named by its dates.
    ranged = run_json(
        config,
        "report",
        "--contract",
        "acme",
        "--mail",
        "--since",
        "2026-11-16",
        "--until",
        "2026-11-22",
    )
    assert isinstance(ranged, dict)
    assert ranged["subject"] == "SLA report ACME Sp. z o.o.: 16.11–22.11.2026"
