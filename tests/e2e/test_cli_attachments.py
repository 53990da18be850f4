"""Attachments from the shell (issue 19): `show` lists them, `spocd attachment`
writes their bytes (kept, or from the raw message when they were too large to
keep), and `ticket reply --attach` mails files to the requester. Real `spocd`
processes; the mail read from the Maildir the desk writes to."""

from __future__ import annotations

import email
import email.policy
import hashlib
import json
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.conftest import write_config
from tests.support.mail import make_mail
from tests.support.proc import spocd

REQUESTER = "jan.kowalski@example.org"
SHOT = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 2
HUGE = bytes(range(256)) * 40  # 10 KiB: over the 4 KiB kept below


@pytest.fixture
def config(tmp_path: Path, sqlite_url: str) -> Path:
    return write_config(tmp_path, sqlite_url, limits={"max_attachment_bytes": 4096})


def with_files(raw: bytes, *files: tuple[str, bytes]) -> bytes:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    for name, data in files:
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return msg.as_bytes()


def ok(result) -> str:  # type: ignore[no-untyped-def]
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def sent(tmp_path: Path) -> list[EmailMessage]:
    return [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
        for p in sorted((tmp_path / "sent" / "new").iterdir())
    ]


@pytest.mark.slow
def test_show_lists_attachments_and_attachment_writes_their_bytes(
    config: Path, tmp_path: Path
) -> None:
    raw = with_files(make_mail(subject="Error on login"), ("error.png", SHOT), ("dump.bin", HUGE))
    ok(spocd("ingest", "-", config=config, input=raw))
    ok(spocd("ingest", "-", config=config, input=with_files(make_mail(), ("other.txt", b"x"))))
    data = json.loads(ok(spocd("show", "HD-1", "--json", config=config)))
    [request] = [m for m in data["messages"] if m["kind"] == "request"]
    listed = {a["name"]: a for a in request["attachments"]}
    assert set(listed) == {"error.png", "dump.bin"}
    shot = listed["error.png"]
    assert shot["size"] == len(SHOT) and shot["sha256"] == hashlib.sha256(SHOT).hexdigest()
    assert shot["type"] == "application/octet-stream" and isinstance(shot["id"], int)
    text = ok(spocd("show", "HD-1", config=config))
    assert f"attachment {shot['id']}: error.png" in text

    target = tmp_path / "shot.png"
    ok(spocd("attachment", "HD-1", str(shot["id"]), "--output", str(target), config=config))
    assert target.read_bytes() == SHOT
    assert spocd("attachment", "hd-1", str(shot["id"]), config=config).stdout == SHOT
    # Over max_attachment_bytes its bytes were not kept: they come from the raw message.
    huge = spocd("attachment", "1", str(listed["dump.bin"]["id"]), config=config)
    assert huge.returncode == 0 and hashlib.sha256(huge.stdout).digest() == (
        hashlib.sha256(HUGE).digest()
    )

    [other] = json.loads(ok(spocd("show", "HD-2", "--json", config=config)))["messages"][0][
        "attachments"
    ]
    for wrong in ("9999", str(other["id"]), "seven"):
        result = spocd("attachment", "HD-1", wrong, config=config)
        assert result.returncode == 65 and result.stdout == b""
        assert b"Traceback" not in result.stderr


def test_a_cli_reply_with_attach_mails_the_files_to_the_requester(
    config: Path, tmp_path: Path
) -> None:
    ok(spocd("ingest", "-", config=config, input=make_mail()))
    manual = tmp_path / "instrukcja drukarki.pdf"
    manual.write_bytes(b"%PDF-1.4\n" + bytes(range(256)) * 8)
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    ok(
        spocd(
            "ticket", "HD-1", "reply", "Please follow the attached instructions.",
            "--attach", str(manual), "--attach", str(empty), config=config,
        )
    )  # fmt: skip
    [reply] = [m for m in sent(tmp_path) if "instructions" in m.get_body(("plain",)).get_content()]
    assert reply["To"] == REQUESTER
    files = {p.get_filename(): p for p in reply.iter_attachments()}
    assert set(files) == {"instrukcja drukarki.pdf", "empty.txt"}
    assert files["instrukcja drukarki.pdf"].get_content_type() == "application/pdf"
    assert files["instrukcja drukarki.pdf"].get_payload(decode=True) == manual.read_bytes()
    assert files["empty.txt"].get_payload(decode=True) == b""
    data = json.loads(ok(spocd("show", "HD-1", "--json", config=config)))
    [out] = [m for m in data["messages"] if m["kind"] == "agent_reply"]
    assert [a["name"] for a in out["attachments"]] == ["instrukcja drukarki.pdf", "empty.txt"]

    missing = spocd(
        "ticket", "HD-1", "reply", "x", "--attach", str(tmp_path / "nope"), config=config
    )
    assert missing.returncode == 64 and b"cannot read" in missing.stderr
