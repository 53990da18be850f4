"""Morning digests with `spocd tick --now`: on working days of the calendar
only (not over the weekend, not on a holiday), once per day and person,
caught up once after downtime; agents get theirs, leads their group's
tickets at risk, nobody gets an empty one."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from daemon.app import slaclock
from daemon.config import load_settings
from tests.conftest import ROOT, write_config
from tests.support.clock import ManualClock
from tests.support.flow import ingest
from tests.support.mail import make_mail
from tests.support.proc import spocd

DIGEST = '\ndigest: {at: "08:00", calendar: office}\n'


def _desk(tmp_path: Path, sqlite_url: str, language: str) -> Path:
    """The project's rules with a digest, and without the ladder step that
    hands late tickets to third-line (so the groups stay as the test set them)."""
    rules = tmp_path / "rules.yaml"
    text = (ROOT / "rules.yaml").read_text(encoding="utf-8")
    kept = [line for line in text.splitlines() if "reassign: third-line}" not in line]
    assert len(kept) == len(text.splitlines()) - 1
    rules.write_text("\n".join(kept) + DIGEST, "utf-8")
    return write_config(
        tmp_path,
        sqlite_url,
        helpdesk={
            "address": "helpdesk@example.com",
            "name": "IT Help Desk",
            "default_language": language,
        },
        smtp={"enabled": False},
        paths={"rules": str(rules)},
    )


def _fill(config: Path, at: datetime) -> None:
    """Tuesday 22 December 2026, 10:00 in Warsaw: four tickets."""
    from daemon.service.wiring import App

    app = App(load_settings(config), ManualClock(at))
    try:
        for n in range(1, 5):
            ingest(app, make_mail(subject=f"Problem {n}", sender=f"user{n}@client.example"))
        with app.store.transaction() as tx:
            for number, change in (
                (1, {"assignee": "anna@example.com"}),  # P3, breached by Wednesday
                (2, {"assignee": "anna@example.com", "priority": "P1"}),  # breached long before
                (3, {}),  # unassigned: the lead hears of it
                (4, {"group": "telephony", "assignee": "jan@example.com", "priority": "P5"}),
            ):
                ticket = tx.tickets.get(number, for_update=True)
                assert ticket is not None
                for key, value in change.items():
                    setattr(ticket, key, value)
                slaclock.reschedule(tx, ticket, app.runtime.rules, at)
                tx.tickets.save(ticket)
    finally:
        app.close()


def _digests(sent: Path, seen: set[str]) -> list[EmailMessage]:
    """Digest mails written to the Maildir outbox since the last call."""
    found = []
    for path in sorted((sent / "new").iterdir()):
        if path.name in seen:
            continue
        seen.add(path.name)
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        if message["Subject"].startswith(("Zgłoszenia na", "Your tickets")):
            found.append(message)
    return found


def _tick(config: Path, moment: str) -> dict[str, object]:
    result = spocd("tick", "--now", moment, "--force", "--json", config=config)
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout)


def test_digests_on_working_days_once_each(tmp_path: Path, sqlite_url: str) -> None:
    config = _desk(tmp_path, sqlite_url, "pl")
    _fill(config, datetime.fromisoformat("2026-12-22T10:00:00+01:00"))
    seen: set[str] = set()
    _digests(tmp_path / "sent", seen)  # the acknowledgements of the four tickets

    # Wednesday 23 December, 08:30: the first digest of the day.
    assert _tick(config, "2026-12-23T08:30:00+01:00")["jobs"]["digests"] == 3
    mails = {m["To"]: m for m in _digests(tmp_path / "sent", seen)}
    assert set(mails) == {"anna@example.com", "lead@example.com", "jan@example.com"}
    anna = mails["anna@example.com"].get_body(("plain",)).get_content()
    assert anna.index("HD-2") < anna.index("HD-1")  # least time left first
    assert "PO TERMINIE" in anna and "HD-3" not in anna
    assert mails["anna@example.com"]["Subject"].startswith("Zgłoszenia na 23.12")
    assert mails["anna@example.com"]["Content-Language"] == "pl"
    lead = mails["lead@example.com"].get_body(("plain",)).get_content()
    assert "Grupa second-line" in lead and "HD-3" in lead and "nieprzypisane" in lead
    assert "HD-4" not in lead  # another group's ticket
    jan = mails["jan@example.com"].get_body(("plain",)).get_content()
    assert "HD-4" in jan and "HD-1" not in jan
    html = mails["jan@example.com"].get_body(("html",)).get_content()
    assert "HD-4" in html and "<table" in html

    # Later that day: nothing more.
    assert "digests" not in _tick(config, "2026-12-23T16:00:00+01:00")["jobs"]
    # Thursday 24 (Wigilia) and Friday 25 December are holidays; then a weekend.
    for day in ("2026-12-24", "2026-12-25", "2026-12-26", "2026-12-27"):
        assert "digests" not in _tick(config, f"{day}T09:00:00+01:00")["jobs"], day
    # Monday 28 December: not before 08:00, then once.
    assert "digests" not in _tick(config, "2026-12-28T07:59:00+01:00")["jobs"]
    # By now HD-4 (P5: 16 of its 18 business hours used) is at warning: its
    # group's lead hears of it too.
    assert _tick(config, "2026-12-28T08:00:30+01:00")["jobs"]["digests"] == 4
    assert "digests" not in _tick(config, "2026-12-28T12:00:00+01:00")["jobs"]
    monday = {m["To"]: m for m in _digests(tmp_path / "sent", seen)}
    everyone = ["anna@example.com", "jan@example.com", "lead@example.com", "voip-lead@example.com"]
    assert sorted(monday) == everyone
    voip = monday["voip-lead@example.com"].get_body(("plain",)).get_content()
    assert "HD-4" in voip and "OSTRZEŻENIE" in voip
    # Down from Monday noon to Thursday 31 December, 10:00: one digest, not three.
    assert _tick(config, "2026-12-31T10:00:00+01:00")["jobs"]["digests"] == 4
    assert sorted(m["To"] for m in _digests(tmp_path / "sent", seen)) == everyone


def test_english_digest_and_nobody_with_nothing(tmp_path: Path, sqlite_url: str) -> None:
    config = _desk(tmp_path, sqlite_url, "en")
    at = datetime.fromisoformat("2026-12-22T10:00:00+01:00")
    _fill(config, at)
    seen: set[str] = set()
    _digests(tmp_path / "sent", seen)
    assert _tick(config, "2026-12-22T10:30:00+01:00")["jobs"]["digests"] == 3
    mails = {m["To"]: m for m in _digests(tmp_path / "sent", seen)}
    assert "piotr@example.com" not in mails and "voip-lead@example.com" not in mails
    subject = mails["anna@example.com"]["Subject"]
    assert subject.startswith("Your tickets 22.12: 2 yours") and "breached" in subject
    text = mails["anna@example.com"].get_body(("plain",)).get_content()
    assert "BREACHED, overdue" in text and "left" in text


@pytest.mark.parametrize(
    ("digest", "problem"),
    [
        ('digest: {at: "8 am", calendar: office}', "digest.at: '8 am' is not a time of day"),
        ('digest: {at: "08:00", calendar: nope}', "unknown calendar 'nope'"),
        ('digest: {at: "08:00"}', "missing key 'calendar'"),
    ],
)
def test_bad_digest_key_is_refused_with_its_place(
    tmp_path: Path, digest: str, problem: str
) -> None:
    rules = tmp_path / "rules.yaml"
    text = (ROOT / "rules.yaml").read_text(encoding="utf-8")
    rules.write_text(text + "\n" + digest + "\n", encoding="utf-8")
    line = len((text + "\n").splitlines()) + 1
    result = spocd("rules", "check", str(rules))
    assert result.returncode != 0
    err = result.stderr.decode() + result.stdout.decode()
    assert problem in err and f"rules.yaml:{line}:" in err
