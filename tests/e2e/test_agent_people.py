"""Agents as people: named in rules.yaml, signing their replies, also from
the shell (`spocd ticket --as` / SPOCD_AGENT); issue 14.6."""

from __future__ import annotations

import email
import email.policy
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, write_config
from tests.support.mail import make_mail
from tests.support.proc import env, spocd

LEAD_NAME = "Marta Wiśniewska"
AGENT_NAME = "Anna Nowak"


@pytest.fixture
def config(tmp_path: Path, sqlite_url: str) -> Path:
    shipped = (ROOT / "rules.yaml").read_text(encoding="utf-8")
    named = shipped.replace(
        "second-line: {lead: lead@example.com, members: [anna@example.com, piotr@example.com]}",
        f'second-line: {{lead: "{LEAD_NAME} <lead@example.com>", '
        f'members: ["{AGENT_NAME} <anna@example.com>", piotr@example.com]}}',
    )
    assert named != shipped
    rules = tmp_path / "rules.yaml"
    rules.write_text(named, encoding="utf-8")
    return write_config(tmp_path, sqlite_url, paths={"rules": str(rules)})


def replies(tmp_path: Path) -> list[str]:
    """Text parts of the agent replies in the outgoing Maildir, oldest first."""
    found = []
    for path in sorted((tmp_path / "sent" / "new").iterdir(), key=lambda p: p.stat().st_mtime_ns):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if msg["Auto-Submitted"] is None:  # a person's reply, not an automatic mail
            text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            found.append(text.replace("\r\n", "\n"))
    return found


def test_a_reply_from_the_shell_is_signed_by_the_acting_agent(config: Path, tmp_path: Path) -> None:
    assert spocd("ingest", "-", config=config, input=make_mail(subject="Toner")).returncode == 0
    as_flag = spocd(
        "ticket", "HD-1", "reply", "Toner replaced.", "--as", "anna@example.com", config=config
    )
    assert as_flag.returncode == 0, as_flag.stderr
    from_env = spocd(
        "ticket", "HD-1", "reply", "Second toner.", config=config, SPOCD_AGENT="anna@example.com"
    )
    assert from_env.returncode == 0, from_env.stderr
    as_lead = spocd("ticket", "HD-1", "reply", "All done.", config=config)
    assert as_lead.returncode == 0, as_lead.stderr
    first, second, third = replies(tmp_path)
    assert "Toner replaced." in first and f"\n{AGENT_NAME}\nIT Help Desk" in first
    assert "Second toner." in second and f"\n{AGENT_NAME}\nIT Help Desk" in second
    assert "All done." in third and f"\n{LEAD_NAME}\nIT Help Desk" in third


def test_spocd_agent_must_name_an_agent(config: Path) -> None:
    assert spocd("ingest", "-", config=config, input=make_mail(subject="Toner")).returncode == 0
    result = spocd("ticket", "HD-1", "reply", "x", config=config, SPOCD_AGENT="eve@evil.example")
    assert result.returncode == 65
    assert b"eve@evil.example is not an agent" in result.stderr


def test_ticket_help_says_who_acts() -> None:
    result = spocd("ticket", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.decode().split())
    assert "acts as the lead of the ticket's group unless --as ADDRESS" in text
    assert "SPOCD_AGENT" in text and "signed with that agent's name" in text


def test_queue_only_intake_does_not_load_babel(config: Path) -> None:
    """Dates are formatted with Babel, but the MTA pipe renders no mail and
    must not pay for its import (timed per process)."""
    result = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "daemon",
            "ingest",
            "--queue-only",
            "-",
            "-c",
            str(config),
        ],
        input=make_mail(subject="Queued"),
        capture_output=True,
        env=env(),
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    imported = result.stderr.decode()
    assert "daemon.cli.pipe" in imported and "babel" not in imported
    # Nor the rest of spocd: no argument parser, settings classes or database.
    for heavy in ("daemon.cli.main", "daemon.config.settings", "sqlalchemy", "argparse"):
        assert heavy not in imported, heavy
