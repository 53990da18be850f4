"""First-line escalations and bounces through the whole pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from daemon.parsing import parse_message
from daemon.service import App
from tests.support.flow import events, ingest, last_out, messages, ticket
from tests.support.mail import make_mail
from tests.support.relay import Relay
from tests.unit.test_forwards import CASES

FORWARDS = Path(__file__).resolve().parents[1] / "data" / "forwards"


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_each_forward_style_makes_the_original_sender_the_requester(
    relay_app: App, relay: Relay, case: tuple[Any, ...]
) -> None:
    name, _style, (requester, _name) = case[0], case[1], case[2]
    raw = (FORWARDS / name).read_bytes()
    first_line = parse_message(raw).sender.addr  # type: ignore[union-attr]
    outcome = ingest(relay_app, raw, escalation=True)
    assert outcome.outcome == "created"
    t = ticket(relay_app, outcome.ticket)
    assert str(t.channel) == "escalation"
    assert t.requester == requester
    assert t.escalated_by == first_line
    kinds = [m.kind for m in messages(relay_app, t.number) if m.direction == "in"]
    assert kinds == ["escalation", "request"]  # the note and the original, both kept
    [ack] = relay.to(requester)
    assert first_line in ack.rcpt_tos  # first line gets a copy
    assert str(ack.message["Subject"]).startswith(f"[HD-{t.number}]")


def test_the_external_reference_comes_from_the_subject(relay_app: App) -> None:
    raw = make_mail(
        sender="sd@firma.example.pl",
        to="escalations@example.com",
        subject="FW: [SD-4711] VPN down for the whole office",
        body="Please take over.\n\n-----Original Message-----\n"
        "From: John Smith <john.smith@customer.example.com>\n"
        "Sent: Tuesday, November 3, 2026 9:12 AM\n"
        "To: Service Desk <sd@firma.example.pl>\n"
        "Subject: VPN down for the whole office\n\nNobody can connect.\n",
    )
    outcome = ingest(relay_app, raw)  # the escalation address alone marks it
    t = ticket(relay_app, outcome.ticket)
    assert (t.external_ref, t.requester, t.escalated_by) == (
        "SD-4711",
        "john.smith@customer.example.com",
        "sd@firma.example.pl",
    )
    assert t.subject == "VPN down for the whole office"


def test_when_the_original_sender_is_missing_first_line_is_the_requester(relay_app: App) -> None:
    raw = make_mail(
        sender="sd@firma.example.pl",
        subject="Server room too hot",
        body="Please check the air conditioning in the server room.\n",
    )
    outcome = ingest(relay_app, raw, escalation=True)
    t = ticket(relay_app, outcome.ticket)
    assert t.requester == "sd@firma.example.pl" and t.escalated_by == "sd@firma.example.pl"
    assert any(e.type == "requester_unknown" for e in events(relay_app, t.number))


def dsn(original_message_id: str, failed: str) -> bytes:
    """A Postfix delivery status notification for one of our mails."""
    return f"""From: MAILER-DAEMON@mx.example.org (Mail Delivery System)
To: helpdesk@example.com
Subject: Undelivered Mail Returned to Sender
Auto-Submitted: auto-replied
Message-ID: <20261125.bounce.1@mx.example.org>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B1"

--B1
Content-Type: text/plain

I'm sorry to have to inform you that your message could not be delivered.

--B1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org

Final-Recipient: rfc822; {failed}
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 User unknown

--B1
Content-Type: text/rfc822-headers

Message-ID: <{original_message_id}>
Subject: [HD-1] Received

--B1--
""".replace("\n", "\r\n").encode()


def test_a_bounce_lands_on_its_ticket_and_pauses_automatic_mail(
    relay_app: App, relay: Relay
) -> None:
    number = ingest(relay_app, make_mail(sender="gone@example.org", subject="Laptop")).ticket
    ack = last_out(relay_app, number, "ack")
    outcome = ingest(relay_app, dsn(ack.message_id, "gone@example.org"))
    assert (outcome.outcome, outcome.ticket) == ("bounce", number)
    assert [m.kind for m in messages(relay_app, number)].count("bounce") == 1
    bounce = next(e for e in events(relay_app, number) if e.type == "bounce")
    assert bounce.detail["failed"] == ["gone@example.org"] and bounce.detail["permanent"]
    with relay_app.store.reading() as tx:
        assert tx.addresses.is_failing("gone@example.org")
        tickets = tx.tickets.listing(None)
    assert len(tickets) == 1  # no ticket opened for the bounce
    before = len(relay.to("gone@example.org"))
    # Automatic mail to the failing address now stays in the outbox, suppressed.
    ingest(relay_app, make_mail(sender="gone@example.org", subject="Another problem"))
    assert len(relay.to("gone@example.org")) == before
    assert any(e.type == "auto_reply_suppressed" for e in events(relay_app, 2))
