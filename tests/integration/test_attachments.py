"""Attachments travel with the conversation (SPEC §4, issue 19).

Every mail goes over real SMTP to the test's relay and is read as its
recipient's mail client reads it: the MIME parts, their names, their bytes
(compared by SHA-256) and the inline images of the HTML part.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
from collections.abc import Iterator
from dataclasses import replace
from email.message import EmailMessage
from email.utils import format_datetime, localtime, make_msgid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from daemon.adapters.storage.models import OUTBOX
from daemon.config import Settings
from daemon.service.wiring import App
from tests.integration.test_escalations_and_bounces import dsn
from tests.support.clock import ManualClock
from tests.support.flow import ingest, last_out, messages
from tests.support.relay import Caught, Relay

ROOT = Path(__file__).resolve().parents[2]
REQUESTER = "jan.kowalski@example.org"
COLLEAGUE = "ewa.nowak@example.org"
AGENT = "anna@example.com"
STRANGER = "mallory@elsewhere.example.net"
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
HOSTILE = "..\u202egpj.exe/../../" + "\x00evil" + "x" * 300 + ".pdf"


# --- mail as its recipient reads it -----------------------------------------------------


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files_of(caught: Caught) -> dict[str, bytes]:
    """Every attachment (and inline part) by name, its bytes decoded."""
    found = {}
    for part in caught.message.walk():
        if part.is_multipart() or (
            part.get_content_maintype() == "text" and not part["Content-Disposition"]
        ):
            continue
        data = part.get_payload(decode=True)
        found[part.get_filename()] = data if isinstance(data, bytes) else b""
    return found


def html_of(caught: Caught) -> str:
    return caught.message.get_body(("html",)).get_content()  # type: ignore[union-attr]


def text_of(caught: Caught) -> str:
    return caught.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def mail(
    *,
    sender: str = REQUESTER,
    subject: str = "Printer on floor 2 jams",
    body: str = "It jams on every page.\n",
    cc: str | None = None,
    files: tuple[tuple[str, bytes, str], ...] = (),
    html: str | None = None,
    inline: tuple[tuple[str, bytes, str], ...] = (),
) -> bytes:
    """A mail as a client builds it: text (and HTML with inline images by
    Content-ID) and attached files (name, bytes, type)."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, "helpdesk@example.com", subject
    if cc:
        msg["Cc"] = cc
    msg["Date"] = format_datetime(localtime())
    msg["Message-ID"] = make_msgid(domain="client.example.org")
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
        html_part = msg.get_payload()[1]  # type: ignore[index]
        for cid, data, ctype in inline:
            maintype, subtype = ctype.split("/")
            html_part.add_related(data, maintype, subtype, cid=f"<{cid}>", filename=f"{cid}.png")
    for name, data, ctype in files:
        maintype, subtype = ctype.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg.as_bytes()


def open_ticket(app: App, **kw: Any) -> int:
    outcome = ingest(app, mail(**kw))
    assert outcome.outcome == "created"
    return int(outcome.ticket)


def outbox_raws(app: App) -> list[bytes]:
    with app.store.engine.connect() as conn:  # type: ignore[attr-defined]
        return [bytes(r[0]) for r in conn.execute(select(OUTBOX.c.raw))]


@pytest.fixture
def capped_app(settings: Settings, clock: ManualClock, relay: Relay) -> Iterator[App]:
    """Mail through the relay; at most 5000 bytes of attachments per mail,
    and the bytes of none over 20000 kept."""
    smtp = replace(settings.outgoing, transport="smtp", host="127.0.0.1", port=relay.port)
    limits = replace(
        settings.limits, max_outgoing_attachment_bytes=5000, max_attachment_bytes=20000
    )
    app = App(replace(settings, outgoing=smtp, limits=limits), clock)
    yield app
    app.close()


# --- an agent's reply carries its files to the requester and cc --------------------------


def test_an_agent_reply_carries_its_files_and_inline_image_to_requester_and_cc(
    relay_app: App, relay: Relay
) -> None:
    number = open_ticket(relay_app, cc=COLLEAGUE)
    seen = len(relay.caught)
    reply = mail(
        sender=AGENT,
        subject=f"Re: [HD-{number}] Printer",
        body="Please follow the attached instructions.\n",
        html='<p>Please follow the attached instructions.</p><img src="cid:step1@anna">',
        inline=(("step1@anna", PNG, "image/png"),),
        files=(
            ("instructions.pdf", PDF, "application/pdf"),
            (HOSTILE, b"%PDF-1.4 hostile", "application/pdf"),
            ("empty.txt", b"", "text/plain"),
        ),
    )
    ingest(relay_app, reply)

    [sent] = [c for c in relay.caught[seen:] if REQUESTER in c.rcpt_tos]
    assert sorted(sent.rcpt_tos) == sorted([REQUESTER, COLLEAGUE])
    assert sent.message.get_content_type() == "multipart/mixed"
    files = files_of(sent)
    assert sha(files["instructions.pdf"]) == sha(PDF)
    assert files["empty.txt"] == b""  # a 0-byte attachment travels
    [hostile] = [n for n in files if n.endswith(".pdf") and n != "instructions.pdf"]
    assert "/" not in hostile and "\\" not in hostile and "\x00" not in hostile
    assert "\u202e" not in hostile and not hostile.startswith(".") and len(hostile) <= 120
    assert files[hostile] == b"%PDF-1.4 hostile"
    types = {p.get_filename(): p.get_content_type() for p in sent.message.walk()}
    assert types["instructions.pdf"] == "application/pdf"
    # The inline image stays inline: beside the HTML in multipart/related,
    # with its Content-ID, and the HTML of our mail shows it.
    [related] = [p for p in sent.message.walk() if p.get_content_type() == "multipart/related"]
    html_part, image = related.get_payload()  # type: ignore[misc]
    assert html_part.get_content_type() == "text/html"
    assert image["Content-ID"] == "<step1@anna>"
    assert image.get_content_disposition() == "inline"
    assert sha(image.get_payload(decode=True)) == sha(PNG)
    assert 'src="cid:step1@anna"' in html_of(sent)
    assert "Please follow the attached instructions." in text_of(sent)
    assert "instructions.pdf" in text_of(sent)
    # What the relay got is the whole mail, not the outbox's compact form.
    assert b"=spocd-blob=" not in sent.raw


def test_a_requester_screenshot_reaches_the_group_in_the_new_ticket_notice(
    relay_app: App, relay: Relay
) -> None:
    number = open_ticket(relay_app, files=(("error.png", PNG, "image/png"),))
    [notice] = [c for c in relay.caught if AGENT in c.rcpt_tos]
    assert f"HD-{number}" in str(notice.message["Subject"])
    assert sha(files_of(notice)["error.png"]) == sha(PNG)
    assert "error.png" in text_of(notice) and "error.png" in html_of(notice)
    [ack] = [c for c in relay.caught if REQUESTER in c.rcpt_tos]
    assert files_of(ack) == {}  # the requester is not sent their own file back


def test_a_screenshot_with_still_broken_reaches_the_assignee_in_the_reopen_notice(
    relay_app: App, relay: Relay
) -> None:
    number = open_ticket(relay_app)
    say = f"Re: [HD-{number}] Printer"
    ingest(relay_app, mail(sender=AGENT, subject=say, body="#assign me\n#resolve fixed\nDone.\n"))
    seen = len(relay.caught)
    ingest(
        relay_app, mail(subject=say, body="Still broken.\n", files=(("e.png", PNG, "image/png"),))
    )
    [notice] = [c for c in relay.caught[seen:] if c.rcpt_tos == [AGENT]]
    assert "reopened" in text_of(notice)
    assert sha(files_of(notice)["e.png"]) == sha(PNG)


def test_an_escalation_carries_the_originals_attachments_to_the_group(
    relay_app: App, relay: Relay
) -> None:
    original = mail(
        sender="john.smith@customer.example.com",
        subject="VPN down",
        body="Nobody can connect.\n",
        files=(("vpn-log.txt", b"ERROR tunnel closed\n" * 50, "text/plain"),),
    )
    first_line = EmailMessage()
    first_line["From"] = "sd@firma.example.pl"
    first_line["To"] = "escalations@example.com"
    first_line["Subject"] = "FW: [SD-4711] VPN down"
    first_line["Message-ID"] = make_msgid(domain="firma.example.pl")
    first_line.set_content("Please take over.\n")
    first_line.add_attachment(email.message_from_bytes(original, policy=email.policy.default))
    outcome = ingest(relay_app, first_line.as_bytes(), escalation=True)
    assert outcome.outcome == "created"
    assert relay.to("john.smith@customer.example.com")  # the original's sender is the requester
    [notice] = [c for c in relay.caught if " New " in str(c.message["Subject"])]
    files = files_of(notice)
    assert sha(files["vpn-log.txt"]) == sha(b"ERROR tunnel closed\n" * 50)
    assert not any(p.get_content_type() == "message/rfc822" for p in notice.message.walk())


# --- the cap -----------------------------------------------------------------------------


def test_over_the_cap_the_largest_is_listed_with_the_command_that_fetches_it(
    capped_app: App, relay: Relay
) -> None:
    big, small = b"B" * 8000, b"s" * 900
    number = open_ticket(
        capped_app,
        files=(
            ("big-dump.bin", big, "application/octet-stream"),
            ("core.dump", b"C" * 30000, "application/octet-stream"),  # bytes not kept
            ("small.txt", small, "text/plain"),
        ),
    )
    [notice] = [c for c in relay.caught if AGENT in c.rcpt_tos]
    assert files_of(notice) == {"small.txt": small}
    with capped_app.store.reading() as tx:
        ids = {a.filename: i for i, _, a in tx.messages.attachment_rows(number)}
    text = re.sub(r"\s+", " ", text_of(notice))
    for name, size in (("big-dump.bin", "7.8 KB"), ("core.dump", "29.3 KB")):
        command = f"spocd attachment HD-{number} {ids[name]} --output {name}"
        assert f"{name} (application/octet-stream, {size}): not attached" in text
        assert command in text and command in html_of(notice)
    # Largest last: the one attached, then those listed by size.
    assert text.index("small.txt") < text.index("big-dump.bin") < text.index("core.dump")


# --- what never travels ------------------------------------------------------------------


def test_internal_notes_untrusted_agent_mail_and_strangers_send_no_files_to_requesters(
    settings: Settings, clock: ManualClock, relay: Relay
) -> None:
    smtp = replace(settings.outgoing, transport="smtp", host="127.0.0.1", port=relay.port)
    trusting = replace(settings.agents, trust="authentication-results")
    app = App(replace(settings, outgoing=smtp, agents=trusting), clock)
    try:
        number = open_ticket(app)
        seen = len(relay.caught)
        secret = (("passwords.xlsx", b"secret" * 100, "application/octet-stream"),)
        trusted = "Authentication-Results: mx.example.com; dmarc=pass header.from=example.com\n"
        note = trusted.encode() + mail(
            sender=AGENT, subject=f"Re: [HD-{number}] x", body="#internal\nsee file\n", files=secret
        )
        ingest(app, note)
        untrusted = mail(
            sender=AGENT,
            subject=f"Re: [HD-{number}] x",
            body="#resolve fixed\nDone.\n",
            files=secret,
        )
        ingest(app, untrusted)
        ingest(
            app,
            mail(sender=STRANGER, subject=f"Re: [HD-{number}] x", body="Look.\n", files=secret),
        )
        to_requester = [c for c in relay.caught[seen:] if REQUESTER in c.rcpt_tos]
        assert to_requester == []
        for caught in relay.caught[seen:]:
            if STRANGER in caught.rcpt_tos:
                assert files_of(caught) == {}
        assert [m.kind for m in messages(app, number) if m.direction == "out"].count(
            "agent_reply"
        ) == 0
    finally:
        app.close()


def test_a_bounce_carries_its_attachments_to_nobody(relay_app: App, relay: Relay) -> None:
    number = open_ticket(relay_app)
    ingest(
        relay_app,
        mail(sender=AGENT, subject=f"Re: [HD-{number}] x", body="#assign me\nWhich floor?\n"),
    )
    reply = last_out(relay_app, number, "agent_reply")
    seen = len(relay.caught)
    outcome = ingest(relay_app, dsn(reply.message_id, REQUESTER, subject=f"[HD-{number}] Re"))
    assert outcome.outcome == "bounce"
    assert relay.caught[seen:], "the assignee hears of the bounce"
    for caught in relay.caught[seen:]:
        assert files_of(caught) == {}


# --- the outbox keeps each attachment once ----------------------------------------------


def test_a_file_sent_to_a_group_of_five_is_stored_once_and_resent_byte_identical(
    settings: Settings, clock: ManualClock, relay: Relay, tmp_path: Path
) -> None:
    rules = (ROOT / "rules.yaml").read_text(encoding="utf-8")
    five = "members: [anna@example.com, piotr@example.com, ola@example.com, ben@example.com]"
    rules = rules.replace("members: [anna@example.com, piotr@example.com]", five, 1)
    (tmp_path / "rules5.yaml").write_text(rules, encoding="utf-8")
    smtp = replace(settings.outgoing, transport="smtp", host="127.0.0.1", port=relay.port)
    paths = replace(settings.paths, rules=tmp_path / "rules5.yaml")
    app = App(replace(settings, outgoing=smtp, paths=paths), clock)
    try:
        dump = bytes(range(256)) * 1024  # 256 KiB
        ingest(app, mail(files=(("dump.bin", dump, "application/octet-stream"),)), send=False)
        stored = outbox_raws(app)
        assert len(stored) == 2  # the acknowledgement and one notice to all five
        assert sum(len(r) for r in stored) < 20_000  # the 256 KiB is not in the outbox
        with app.store.engine.connect() as conn:  # type: ignore[attr-defined]
            [copies] = conn.execute(
                select(func.count()).select_from(OUTBOX).where(OUTBOX.c.kind == "agent_new")
            ).one()
        assert copies == 1
        # A crash between composing and sending: what is taken to send is the
        # same bytes each time.
        with app.store.transaction() as tx:
            first = [i.raw for i in tx.outbox.due(clock.now(), 10)]
        with app.store.transaction() as tx:
            again = [i.raw for i in tx.outbox.due(clock.now(), 10)]
        assert first == again
        app.sender.send_due()
        notices = [c for c in relay.caught if "ben@example.com" in c.rcpt_tos]
        [notice] = notices
        assert len(notice.rcpt_tos) == 5
        assert sha(files_of(notice)["dump.bin"]) == sha(dump)
        assert notice.raw.replace(b"\r\n", b"\n") in [r.replace(b"\r\n", b"\n") for r in first]
    finally:
        app.close()
