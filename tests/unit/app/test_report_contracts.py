"""`spocd report` per contract (SPEC §7): `by_contract` for the whole desk,
`contract=ID` restricting every figure, a removed contract still named, the
contract in the text and CSV outputs.

Rules: tests/data/rules/contracts_desk.yaml (ACME and Globex). Period: the
week of Monday 16 November 2026, Warsaw; P2/P3 on office hours 08-17.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from daemon.app import report
from daemon.core.domain import Status, Ticket
from daemon.rules.ruleset import Rules, load_rules

WARSAW = ZoneInfo("Europe/Warsaw")
RULES_FILE = Path(__file__).resolve().parents[2] / "data" / "rules" / "contracts_desk.yaml"
PERIOD = report.Period(datetime(2026, 11, 16, tzinfo=WARSAW), datetime(2026, 11, 23, tzinfo=WARSAW))
NOW = datetime(2026, 11, 25, 12, tzinfo=WARSAW)


def w(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text).replace(tzinfo=WARSAW) if text else None


def t(
    number: int,
    contract: str | None,
    created: str,
    response_due: str,
    responded: str | None = None,
    priority: str = "P2",
) -> Ticket:
    return Ticket(
        number=number,
        subject=f"Ticket {number}",
        requester="jan@acme.pl",
        status=Status.IN_PROGRESS if responded else Status.NEW,
        impact="medium",
        urgency="medium",
        priority=priority,
        language="pl",
        created_at=w(created),  # type: ignore[arg-type]
        group="second-line",
        first_response_due=w(response_due),
        resolution_due=w("2026-12-31T12:00"),
        first_responded_at=w(responded),
        contract=contract,
    )


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_rules(RULES_FILE.read_text("utf-8"), str(RULES_FILE))


def tickets() -> list[Ticket]:
    return [
        # ACME: one response met (30 min, office hours), one breached (1h late).
        t(1, "acme", "2026-11-16T09:00", "2026-11-16T09:30", "2026-11-16T09:20"),
        t(2, "acme", "2026-11-17T10:00", "2026-11-17T10:30", "2026-11-17T11:30"),
        # Globex: met.
        t(3, "globex", "2026-11-18T10:00", "2026-11-18T11:00", "2026-11-18T10:10"),
        # No contract: breached and still open.
        t(4, None, "2026-11-19T10:00", "2026-11-19T11:00", priority="P3"),
        # A contract since removed from rules.yaml: its ticket keeps the id.
        t(5, "oldco", "2026-11-20T10:00", "2026-11-20T11:00", "2026-11-20T10:30"),
    ]


def test_by_contract_for_the_whole_desk(rules: Rules) -> None:
    doc = report.build(tickets(), [], rules, PERIOD, NOW, "HD")
    assert doc["contract"] is None
    assert list(doc["by_contract"]) == ["acme", "globex", "(none)", "oldco"]
    acme = doc["by_contract"]["acme"]
    assert set(acme) == set(doc["by_priority"]["P2"])  # the same shape
    assert (acme["opened"], acme["response_compliance"], acme["breaches"]) == (2, 0.5, 1)
    assert (acme["first_response_median_s"], acme["first_response_p90_s"]) == (
        3300,
        5400,
    )  # 20m and 1h30m
    assert doc["by_contract"]["globex"]["response_compliance"] == 1.0
    assert doc["by_contract"]["(none)"]["breaches"] == 1
    assert doc["by_contract"]["oldco"]["opened"] == 1
    assert doc["counts"]["opened"] == 5
    assert {b["ticket"]: b["contract"] for b in doc["breaches"]} == {"HD-2": "acme", "HD-4": None}


def test_contract_restricts_every_figure(rules: Rules) -> None:
    doc = report.build(tickets(), [], rules, PERIOD, NOW, "HD", contract="acme")
    assert doc["contract"] == {"id": "acme", "name": "ACME Sp. z o.o.", "in_rules": True}
    assert doc["counts"] == {"opened": 2, "resolved": 0, "closed": 0, "open": 2}
    assert doc["by_priority"]["P2"]["opened"] == 2 and doc["by_priority"]["P3"]["opened"] == 0
    assert doc["by_group"]["second-line"]["opened"] == 2
    assert list(doc["by_contract"]) == ["acme"]
    assert doc["overall"]["response_compliance"] == 0.5
    assert [b["ticket"] for b in doc["breaches"]] == ["HD-2"]
    assert doc["backlog"]["total"] == 2


def test_a_removed_contract_is_still_reported(rules: Rules) -> None:
    doc = report.build(tickets(), [], rules, PERIOD, NOW, "HD", contract="oldco")
    assert doc["contract"] == {"id": "oldco", "name": None, "in_rules": False}
    assert doc["counts"]["opened"] == 1
    assert doc["overall"]["response_compliance"] == 1.0


def test_text_and_csv_carry_the_contract(rules: Rules) -> None:
    doc = report.build(tickets(), [], rules, PERIOD, NOW, "HD")
    text = report.format_text(doc)
    section = text.split("By contract\n", 1)[1].split("\n\n", 1)[0]
    assert [line.split()[0] for line in section.splitlines()[1:]] == [
        "acme",
        "globex",
        "(none)",
        "oldco",
    ]
    assert "HD-2" in text and " acme " in text.split("Breaches", 1)[1]
    rows = list(csv.DictReader(io.StringIO(report.format_csv(doc))))
    by_contract = {r["name"]: r for r in rows if r["dimension"] == "contract"}
    assert list(by_contract) == ["acme", "globex", "(none)", "oldco"]
    assert by_contract["acme"]["response_compliance"] == "0.5"
    only = report.format_text(
        report.build(tickets(), [], rules, PERIOD, NOW, "HD", contract="acme")
    )
    assert only.splitlines()[0].endswith("contract acme (ACME Sp. z o.o.)")
