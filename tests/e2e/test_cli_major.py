"""`spocd ticket T link HD-N` / `unlink`, and major incidents in `tickets`
and `show` (SPEC §3, §8), as real processes on SQLite and PostgreSQL."""

from __future__ import annotations

import email
import email.policy
import json
import mailbox
from pathlib import Path

import pytest

from tests.conftest import write_config
from tests.support.mail import make_mail
from tests.support.proc import spocd

JAN, EWA, MARIA = "jan.kowalski@example.org", "ewa.nowak@firma.pl", "maria@example.net"
NOW = "2026-11-25T09:00:00+00:00"


@pytest.fixture
def config(tmp_path: Path, db_url: str) -> Path:
    path = write_config(tmp_path, db_url)
    box = mailbox.mbox(str(tmp_path / "in.mbox"))
    for sender, subject in (
        (JAN, "Mail server down"),
        (EWA, "Nie działa poczta"),
        (MARIA, "Outlook cannot connect"),
    ):
        box.add(make_mail(sender=sender, subject=subject))
    box.close()
    done = spocd("ingest", str(tmp_path / "in.mbox"), "--now", NOW, config=path)
    assert done.returncode == 0, done.stderr.decode()
    return path


def run(config: Path, *args: str) -> str:
    result = spocd(*args, "--now", NOW, config=config)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def sent_to(tmp_path: Path, address: str) -> list[email.message.EmailMessage]:
    found = []
    for path in sorted((tmp_path / "sent" / "new").iterdir()):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if msg["To"] == address:
            found.append(msg)
    return found  # type: ignore[return-value]


@pytest.mark.slow
def test_link_show_list_reply_and_resolve_from_the_command_line(
    config: Path, tmp_path: Path
) -> None:
    assert "HD-2: link done" in run(config, "ticket", "HD-2", "link", "HD-1")
    run(config, "ticket", "3", "link", "hd-1", "--as", "anna@example.com")

    shown = json.loads(run(config, "show", "HD-1", "--json"))
    assert (shown["parent"], shown["children"]) == (None, ["HD-2", "HD-3"])
    child = json.loads(run(config, "show", "HD-2", "--json"))
    assert (child["parent"], child["children"]) == ("HD-1", [])
    assert [e["actor"] for e in child["events"] if e["type"] == "linked"] == ["lead@example.com"]
    listed = json.loads(run(config, "tickets", "--json"))
    assert [t["parent"] for t in listed] == [None, "HD-1", "HD-1"]
    assert all("children" not in t for t in listed)
    header, *rows = run(config, "tickets").splitlines()
    assert "(major: 2 linked) Mail server down" in rows[0]
    assert "(part of HD-1) Nie działa poczta" in rows[1]
    assert header.index("SUBJECT") == rows[1].index("(part of HD-1)")
    assert "  children            HD-2, HD-3" in run(config, "show", "HD-1")

    run(config, "ticket", "HD-1", "reply", "The mail server is back.")
    [to_ewa] = [m for m in sent_to(tmp_path, EWA) if "[HD-2]" in m["Subject"]][-1:]
    assert "The mail server is back." in to_ewa.get_body(("plain",)).get_content()
    assert JAN not in to_ewa.as_string() and MARIA not in to_ewa.as_string()

    run(config, "ticket", "HD-3", "unlink")
    assert json.loads(run(config, "show", "HD-3", "--json"))["parent"] is None
    run(config, "ticket", "HD-1", "resolve", "--code", "fixed", "--note", "Disk replaced.")
    listed = json.loads(run(config, "tickets", "--status", "all", "--json"))
    states = {t["id"]: t["status"] for t in listed}
    assert states == {"HD-1": "resolved", "HD-2": "resolved", "HD-3": "in_progress"}
    verify = [m for m in sent_to(tmp_path, EWA) if "Disk replaced." in m.as_string()]
    assert len(verify) == 1 and "[HD-2]" in verify[0]["Subject"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("HD-2", "link", "HD-2"), "cannot link a ticket to itself"),
        (("HD-2", "link", "HD-99"), "no ticket HD-99 to link to"),
        (("HD-1", "link", "HD-3"), "it is a major incident itself"),
        (("HD-3", "link", "HD-2"), "HD-2 is itself part of the major incident HD-1"),
        (("HD-3", "unlink"), "it is not linked to a major incident"),
    ],
)
def test_a_refused_link_exits_65_with_the_reason(
    config: Path, args: tuple[str, ...], says: str
) -> None:
    run(config, "ticket", "HD-2", "link", "HD-1")
    result = spocd("ticket", *args, "--now", NOW, config=config)
    assert result.returncode == 65
    assert says in result.stderr.decode()
    listed = json.loads(run(config, "tickets", "--json"))
    assert [t["parent"] for t in listed] == [None, "HD-1", None]
