"""The command line as people at the desk read it: headers, their own time,
plain words for empty lists, and escalations decided as the pipeline does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import write_config
from tests.support.mail import make_mail
from tests.support.proc import spocd

FORWARDS = Path(__file__).resolve().parents[1] / "data" / "forwards"
WINTER, SUMMER = "2026-01-15T12:00:00+00:00", "2026-07-15T12:00:00+00:00"


@pytest.fixture
def config(tmp_path: Path, sqlite_url: str) -> Path:
    return write_config(tmp_path, sqlite_url)


def out(result) -> str:  # type: ignore[no-untyped-def]
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def opened_in_winter_and_summer(config: Path) -> None:
    for moment, subject in ((WINTER, "Printer jams"), (SUMMER, "VPN drops")):
        out(spocd("ingest", "-", "--now", moment, config=config, input=make_mail(subject=subject)))


def test_tickets_has_a_header_row_and_local_times_to_the_minute(config: Path) -> None:
    opened_in_winter_and_summer(config)
    header, *rows = out(spocd("tickets", "--now", SUMMER, config=config)).splitlines()
    assert header.split() == [
        "TICKET", "STATUS", "PRI", "SLA", "GROUP", "ASSIGNEE", "CREATED", "SUBJECT"
    ]  # fmt: skip
    assert header.index("SUBJECT") == rows[0].index("Printer jams")
    assert header.index("CREATED") == rows[0].index("2026-01-15")
    # Europe/Warsaw: UTC+1 in winter, UTC+2 in summer time.
    assert "HD-1" in rows[0] and "2026-01-15 13:00 CET " in rows[0]
    assert "HD-2" in rows[1] and "2026-07-15 14:00 CEST " in rows[1]
    listed = json.loads(out(spocd("tickets", "--json", "--now", SUMMER, config=config)))
    assert [t["created_at"] for t in listed] == [WINTER, SUMMER]


def test_show_gives_local_times_and_json_keeps_iso_with_offset(config: Path) -> None:
    opened_in_winter_and_summer(config)
    winter = out(spocd("show", "HD-1", "--now", SUMMER, config=config))
    assert "  created_at          2026-01-15 13:00 CET\n" in winter
    assert "  2026-01-15 13:00 CET <- request" in winter  # the message
    assert "  2026-01-15 13:00 CET jan.kowalski@example.org (email) created" in winter  # history
    assert "+00:00" not in winter and "T12:00" not in winter
    summer = out(spocd("show", "HD-2", "--now", SUMMER, config=config))
    assert "  created_at          2026-07-15 14:00 CEST\n" in summer
    data = json.loads(out(spocd("show", "HD-2", "--json", "--now", SUMMER, config=config)))
    assert data["created_at"] == SUMMER
    assert {m["at"] for m in data["messages"]} == {SUMMER}


def test_an_empty_queue_says_so(config: Path) -> None:
    listed = spocd("queue", "list", config=config)
    assert listed.returncode == 0
    assert (listed.stdout, listed.stderr.decode()) == (b"", "queue empty\n")
    assert json.loads(out(spocd("queue", "list", "--json", config=config))) == []


def test_rules_test_escalation_decides_on_the_original_requester(config: Path) -> None:
    eml = str(FORWARDS / "outlook_en.eml")  # first line in Poland forwards an English mail
    plain = json.loads(out(spocd("rules", "test", "--json", eml, config=config)))
    data = json.loads(out(spocd("rules", "test", "--escalation", "--json", eml, config=config)))
    # The pipeline decides on the forwarded incident: the requester's domain
    # sets the language, not first line's.
    assert (plain["decision"]["language"], data["decision"]["language"]) == ("pl", "en")
    assert data["escalation"] == {
        "escalated_by": "marta.wisniewska@firma.example.pl",
        "requester": "john.smith@customer.example.com",
        "requester_found": True,
        "forward_style": "outlook",
    }
    escalated = out(spocd("rules", "test", "--escalation", eml, config=config)).splitlines()
    assert "escalated: by marta.wisniewska@firma.example.pl" in escalated
    assert (
        "requester: john.smith@customer.example.com (the original sender, outlook forward)"
        in escalated
    )
    assert "language:  en" in escalated


def test_rules_test_escalation_without_a_forward_keeps_first_line_as_requester(
    config: Path,
) -> None:
    escalated = out(
        spocd("rules", "test", "--escalation", str(FORWARDS / "no_forward.eml"), config=config)
    )
    assert (
        "requester: " in escalated
        and "(not found in the forward: first line is the requester)" in escalated
    )
