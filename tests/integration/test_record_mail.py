"""The mail that tells the requester their ticket is closed (SPEC §8):
it summarises what they reported and how it was solved; under a contract
with `record: attach` it carries the incident record as one HTML page.

Every mail is read as its recipient gets it from the test's SMTP relay.
Rules: tests/data/rules/record_desk.yaml (ACME: record attached, Polish;
Globex: no record). Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from daemon.app import closure
from daemon.app.jobs import run_due
from daemon.config import load_settings
from daemon.service.wiring import App
from tests.conftest import DATA, write_config
from tests.integration.test_record import act, move, open_ticket, the_record
from tests.support.clock import ManualClock
from tests.support.flow import ingest, messages
from tests.support.mail import make_mail
from tests.support.relay import Caught, Relay

WARSAW = ZoneInfo("Europe/Warsaw")
RULES = DATA / "rules" / "record_desk.yaml"
BODY = (
    "Hello,\n\nthe mail server does not answer since 9:50.\nOutlook says: cannot connect.\n\nJan\n"
)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=WARSAW)


@pytest.fixture
def desk(tmp_path: Path, db_url: str, clock: ManualClock, relay: Relay) -> Iterator[App]:
    config = write_config(
        tmp_path,
        db_url,
        paths={"rules": str(RULES)},
        outgoing={"transport": "smtp", "host": "127.0.0.1", "port": relay.port},
    )
    app = App(load_settings(config), clock)
    yield app
    app.close()


def closing_mail(relay: Relay, requester: str) -> EmailMessage:
    found = [
        c.message
        for c in relay.caught
        if requester in c.rcpt_tos and c.message["Subject"] and _is_closing(c)
    ]
    assert len(found) == 1, [c.message["Subject"] for c in relay.caught]
    return found[0]


def _is_closing(c: Caught) -> bool:
    subject = str(c.message["Subject"])
    return subject.split("] ", 1)[-1].startswith(("Closed", "Zamknęliśmy"))


def parts(mail: EmailMessage) -> tuple[str, str]:
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content().replace("\r\n", "\n"), html.get_content()


def resolve_and_confirm(desk: App, n: int, subject: str, answer: str, sender: str) -> None:
    move(desk, at("2026-11-26 10:00"))
    act(
        desk,
        n,
        lambda c: closure.resolve(
            c, "fixed", "Freed the mail spool disk.\nMoved the logs to the archive volume."
        ),
    )
    move(desk, at("2026-11-26 11:00"))
    ingest(desk, make_mail(sender=sender, subject=f"Re: [HD-{n}] {subject}", body=answer))


def test_the_closing_mail_says_what_was_reported_and_how_it_was_solved(
    desk: App, relay: Relay
) -> None:
    n = open_ticket(desk, at("2026-11-25 10:00"), "Mail server down", BODY)
    resolve_and_confirm(
        desk, n, "Mail server down", "Yes, it works now.", "jan.kowalski@example.org"
    )
    mail = closing_mail(relay, "jan.kowalski@example.org")
    text, html = parts(mail)
    assert "What you reported:\n  Hello,\n\n  the mail server does not answer since 9:50." in text
    assert "How we solved it (resolution code: fixed):\n  Freed the mail spool disk.\n" in text
    assert "  Moved the logs to the archive volume." in text
    assert "the mail server does not answer since 9:50." in html
    assert "Freed the mail spool disk." in html
    # No contract asks for the record: nothing attached, nothing said of it.
    assert list(mail.iter_attachments()) == []
    assert "record.html" not in text


def test_polish_requester_reads_a_polish_summary(desk: App, relay: Relay) -> None:
    move(desk, at("2026-11-25 10:00"))
    outcome = ingest(
        desk,
        make_mail(
            sender="ewa.nowak@firma.pl",
            subject="Drukarka nie drukuje",
            body="Dzień dobry,\ndrukarka na 2. piętrze zgłasza zacięcie papieru.\nEwa\n",
        ),
    )
    n = int(outcome.ticket)
    move(desk, at("2026-11-25 12:00"))
    act(desk, n, lambda c: closure.resolve(c, "fixed", "Wyczyściliśmy podajnik papieru."))
    moment = at("2026-11-30 12:00")
    move(desk, moment)
    assert run_due(desk.store, lambda: desk.runtime, moment).get("auto_closed") == 1
    desk.sender.send_due()
    text, html = parts(closing_mail(relay, "ewa.nowak@firma.pl"))
    assert "Zgłosili Państwo następujący problem:\n  Dzień dobry,\n  drukarka na 2. piętrze" in text
    assert "Sposób rozwiązania (kod rozwiązania: fixed):\n  Wyczyściliśmy podajnik papieru." in text
    assert "Zgłosili Państwo następujący problem:" in html


def test_a_contract_with_record_attach_gets_the_record_in_the_closing_mail(
    desk: App, relay: Relay
) -> None:
    requester = "jan@acme.pl"
    n = open_ticket_from(desk, requester, "Serwer poczty nie odpowiada")
    # An internal note with a file: the client's record shows neither.
    note = EmailMessage()
    note["From"] = "anna@example.com"
    note["To"] = "helpdesk@example.com"
    note["Subject"] = f"Re: [HD-{n}] Serwer poczty nie odpowiada"
    note["Message-ID"] = "<note-1@example.com>"
    note.set_content("#internal\nDisk full on mx1, vendor ticket 8812.\n")
    note.add_attachment(
        b"vendor secrets", maintype="text", subtype="plain", filename="vendor-case.txt"
    )
    move(desk, at("2026-11-25 10:30"))
    ingest(desk, note.as_bytes())
    resolve_and_confirm(desk, n, "Serwer poczty nie odpowiada", "Tak, działa.", requester)

    mail = closing_mail(relay, requester)
    text, _ = parts(mail)
    [page] = list(mail.iter_attachments())
    assert page.get_content_type() == "text/html"
    assert page.get_filename() == f"HD-{n}-record.html"
    data = page.get_payload(decode=True)
    assert isinstance(data, bytes)
    html = data.decode("utf-8")
    assert '<html lang="pl">' in html and f"Karta incydentu HD-{n}" in html
    assert "ACME Sp. z o.o." in html
    assert "Freed the mail spool disk." in html
    assert "Tak, działa." in html  # how closure was verified: their words
    assert "Disk full" not in html and "vendor-case.txt" not in html
    assert "<script" not in html.lower()
    assert f"HD-{n}-record.html" in text
    # The bytes travel once, stored by hash on the closing mail's own message.
    [closing] = [m for m in messages(desk, n) if m.kind == "closed"]
    [stored] = closing.attachments if closing.attachments else _stored(desk, n, "closed")
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    # And the desk's own record lists it among the ticket's files.
    names = [f.name for f in the_record(desk, n).files]
    assert f"HD-{n}-record.html" in names and "vendor-case.txt" in names


def test_a_contract_without_record_attach_gets_no_record(desk: App, relay: Relay) -> None:
    requester = "jan@globex.com"
    n = open_ticket_from(desk, requester, "Mail server down")
    resolve_and_confirm(desk, n, "Mail server down", "Yes, it works.", requester)
    mail = closing_mail(relay, requester)
    assert list(mail.iter_attachments()) == []


def open_ticket_from(desk: App, sender: str, subject: str) -> int:
    move(desk, at("2026-11-25 10:00"))
    outcome = ingest(desk, make_mail(sender=sender, subject=subject, body=BODY))
    assert outcome.outcome == "created"
    return int(outcome.ticket)


def _stored(desk: App, n: int, kind: str) -> list[object]:
    with desk.store.reading() as tx:
        rows = tx.messages.attachment_rows(n)
        by_row = {m.row_id: m for m in tx.messages.of_ticket(n)}
    return [a for _, row, a in rows if by_row[row].kind == kind]
