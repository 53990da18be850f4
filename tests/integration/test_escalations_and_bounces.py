"""First-line escalations and bounces through the whole pipeline."""

from __future__ import annotations

import itertools
import smtplib
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from daemon.adapters.smtp.listener import SmtpIntake
from daemon.config import Settings
from daemon.mail.parsing import parse_message
from daemon.service.wiring import App
from tests.support.clock import ManualClock
from tests.support.flow import events, ingest, last_out, messages, ticket
from tests.support.mail import make_mail
from tests.support.relay import Relay, free_port
from tests.unit.mail.test_forwards import CASES

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


_OUTLOOK_FORWARD = (
    "Please take over.\n\n-----Original Message-----\n"
    "From: John Smith <john.smith@customer.example.com>\n"
    "Sent: Tuesday, November 3, 2026 9:12 AM\n"
    "To: Service Desk <sd@firma.example.pl>\n"
    "Subject: VPN down for the whole office\n\nNobody can connect.\n"
)


def test_the_external_reference_comes_from_the_subject(relay_app: App) -> None:
    raw = make_mail(
        sender="sd@firma.example.pl",
        to="escalations@example.com",
        subject="FW: [SD-4711] VPN down for the whole office",
        body=_OUTLOOK_FORWARD,
    )
    outcome = ingest(relay_app, raw, escalation=True)
    t = ticket(relay_app, outcome.ticket)
    assert (t.external_ref, t.requester, t.escalated_by) == (
        "SD-4711",
        "john.smith@customer.example.com",
        "sd@firma.example.pl",
    )
    assert t.subject == "VPN down for the whole office"


def _send(relay_app: App, rcpts: list[str], raw: bytes, sender: str) -> Any:
    """One message to the desk's SMTP listener, then through the pipeline."""
    settings = replace(relay_app.settings, smtp=replace(relay_app.settings.smtp, port=free_port()))
    intake = SmtpIntake(settings, relay_app.store, relay_app.clock.now)
    intake.start()
    try:
        with smtplib.SMTP("127.0.0.1", intake.port) as client:
            client.sendmail(sender, rcpts, raw)
    finally:
        intake.stop()
    [(_, outcome)] = relay_app.inbound.drain()
    relay_app.sender.send_due()
    return outcome


def test_over_smtp_the_escalation_address_in_the_header_alone_marks_nothing(
    relay_app: App, relay: Relay
) -> None:
    """Anyone can write the escalation address into To:; only first line's
    mail to it (the envelope) is an escalation, else a stranger posing as
    first line would have the desk acknowledge whoever the paste names."""
    raw = make_mail(
        sender="outsider@anywhere.example",
        to="helpdesk@example.com, escalations@example.com",
        subject="FW: VPN down for the whole office",
        body=_OUTLOOK_FORWARD,
    )
    outcome = _send(relay_app, ["helpdesk@example.com"], raw, "outsider@anywhere.example")
    t = ticket(relay_app, outcome.ticket)
    assert (str(t.channel), t.requester, t.escalated_by) == (
        "email",
        "outsider@anywhere.example",
        None,
    )
    assert relay.to("outsider@anywhere.example")
    assert not relay.to("john.smith@customer.example.com")


def test_over_smtp_mail_to_the_escalation_address_is_an_escalation(
    relay_app: App, relay: Relay
) -> None:
    raw = make_mail(
        sender="sd@firma.example.pl",
        to="escalations@example.com",
        subject="FW: VPN down for the whole office",
        body=_OUTLOOK_FORWARD,
    )
    outcome = _send(relay_app, ["escalations@example.com"], raw, "sd@firma.example.pl")
    t = ticket(relay_app, outcome.ticket)
    assert (str(t.channel), t.requester, t.escalated_by) == (
        "escalation",
        "john.smith@customer.example.com",
        "sd@firma.example.pl",
    )
    [ack] = relay.to("john.smith@customer.example.com")
    assert "sd@firma.example.pl" in ack.rcpt_tos


def test_without_an_envelope_only_the_escalation_flag_marks_an_escalation(
    relay_app: App, relay: Relay
) -> None:
    """`spocd ingest` (and an IMAP mailbox) say so explicitly: `--escalation`
    (`escalation = true`); the header the sender wrote does not."""
    raw = make_mail(
        sender="outsider@anywhere.example",
        to="escalations@example.com",
        subject="FW: VPN down for the whole office",
        body=_OUTLOOK_FORWARD,
    )
    t = ticket(relay_app, ingest(relay_app, raw).ticket)
    assert (str(t.channel), t.requester) == ("email", "outsider@anywhere.example")
    assert not relay.to("john.smith@customer.example.com")


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


def dsn(
    original_message_id: str,
    *failed: str,
    sender: str = "MAILER-DAEMON@mx.example.org (Mail Delivery System)",
    subject: str = "[HD-1] Received",
) -> bytes:
    """A Postfix delivery status notification for one of our mails."""
    blocks = "".join(
        f"""Final-Recipient: rfc822; {address}
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 User unknown

"""
        for address in failed
    )
    return f"""From: {sender}
To: helpdesk@example.com
Subject: Undelivered Mail Returned to Sender
Auto-Submitted: auto-replied
Message-ID: <{next(_DSN_IDS)}.bounce@mx.example.org>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B1"

--B1
Content-Type: text/plain

I'm sorry to have to inform you that your message could not be delivered.

--B1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org

{blocks}--B1
Content-Type: text/rfc822-headers

Message-ID: <{original_message_id}>
Subject: {subject}

--B1--
""".replace("\n", "\r\n").encode()


_DSN_IDS = itertools.count(1)


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


# --- who a bounce may silence ------------------------------------------------------------

MALLORY = "mallory@evil.example"
VICTIM = "jan.kowalski@example.org"
AGENT = "anna@example.com"
LEAD = "lead@example.com"


def is_failing(app: App, address: str) -> bool:
    with app.store.reading() as tx:
        return tx.addresses.is_failing(address)


def resolve(app: App, number: int) -> None:
    ingest(
        app,
        make_mail(
            sender=AGENT,
            subject=f"Re: [HD-{number}] Printer",
            body="#assign me\n#resolve HW-JAM\nCleaned the rollers.\n",
        ),
    )
    assert str(ticket(app, number).status) == "resolved"


def tick_at(app: App, moment: str) -> dict[str, int]:
    from daemon.app.jobs import run_due

    app.clock.set(datetime.fromisoformat(moment))  # type: ignore[attr-defined]
    return app.tick(lambda now: run_due(app.store, lambda: app.runtime, now)).jobs


def subjects_to(relay: Relay, address: str) -> list[str]:
    return [str(caught.message["Subject"]) for caught in relay.to(address)]


def test_a_forged_bounce_silences_no_one_else(relay_app: App, relay: Relay) -> None:
    # Mallory reports his own ticket's acknowledgement as undeliverable to the
    # group lead and to another ticket's requester.
    other = ingest(relay_app, make_mail(sender=VICTIM, subject="Printer")).ticket
    own = ingest(relay_app, make_mail(sender=MALLORY, subject="My laptop")).ticket
    ack = last_out(relay_app, own, "ack")
    outcome = ingest(relay_app, dsn(ack.message_id, LEAD, VICTIM, sender=MALLORY))
    assert (outcome.outcome, outcome.ticket) == ("bounce", own)
    assert not is_failing(relay_app, LEAD) and not is_failing(relay_app, VICTIM)
    bounce = next(e for e in events(relay_app, own) if e.type == "bounce")
    assert bounce.detail["ignored"] == [LEAD, VICTIM]
    # The other ticket's verification request still reaches its requester,
    # and silence then closes it as usual.
    resolve(relay_app, other)
    request = last_out(relay_app, other, "verification")
    assert f"<{request.message_id}>" in [str(c.message["Message-ID"]) for c in relay.to(VICTIM)]
    assert not any(e.type == "auto_reply_suppressed" for e in events(relay_app, other))
    assert tick_at(relay_app, "2026-12-10T09:00:00+00:00").get("auto_closed") == 1
    assert ticket(relay_app, other).closure == "auto"


def test_a_bounce_naming_a_forged_message_id_fails_no_one(relay_app: App) -> None:
    number = ingest(relay_app, make_mail(sender=VICTIM, subject="Printer")).ticket
    forged = f"spocd.{number}.abcd1234.0123456789abcdef0123@example.com"  # a bad signature
    outcome = ingest(relay_app, dsn(forged, VICTIM, sender=MALLORY, subject=f"[HD-{number}] x"))
    assert (outcome.outcome, outcome.ticket) == ("bounce", number)  # found by the tag
    assert not is_failing(relay_app, VICTIM)


def test_an_agents_address_is_never_silenced_by_a_bounce(relay_app: App) -> None:
    number = ingest(relay_app, make_mail(sender=VICTIM, subject="Printer")).ticket
    notice = last_out(relay_app, number, "agent_new")
    agent = notice.recipients[0]
    ingest(relay_app, dsn(notice.message_id, agent))
    assert not is_failing(relay_app, agent)
    [noted] = [e for e in events(relay_app, number) if e.type == "agent_address_bounced"]
    assert noted.detail["address"] == agent


def test_a_bounced_verification_request_stops_the_auto_close_and_tells_the_assignee(
    relay_app: App, relay: Relay
) -> None:
    gone = "gone@example.org"
    number = ingest(relay_app, make_mail(sender=gone, subject="Printer")).ticket
    resolve(relay_app, number)
    request = last_out(relay_app, number, "verification")
    ingest(relay_app, dsn(request.message_id, gone))
    assert is_failing(relay_app, gone)
    [held] = [e for e in events(relay_app, number) if e.type == "auto_close_held"]
    assert held.detail["told"] == [AGENT]
    assert any("auto-close stopped" in s for s in subjects_to(relay, AGENT))
    assert "auto_closed" not in tick_at(relay_app, "2026-12-10T09:00:00+00:00")
    assert str(ticket(relay_app, number).status) == "resolved"
    # Resolving another of their tickets while they bounce: the request is
    # suppressed, and that ticket is held at once too.
    second = ingest(relay_app, make_mail(sender=gone, subject="Scanner")).ticket
    resolve(relay_app, second)
    kinds = [e.type for e in events(relay_app, second)]
    assert "auto_reply_suppressed" in kinds and "auto_close_held" in kinds
    assert "auto_closed" not in tick_at(relay_app, "2026-12-20T09:00:00+00:00")
    assert str(ticket(relay_app, second).status) == "resolved"


@pytest.mark.parametrize(
    ("language", "words"),
    [("en", "auto-close stopped"), ("pl", "automatyczne zamknięcie wstrzymane")],
)
def test_the_auto_close_waits_for_a_requester_failing_since_before_the_resolve(
    settings: Settings, clock: ManualClock, relay: Relay, language: str, words: str
) -> None:
    desk = replace(
        settings,
        helpdesk=replace(settings.helpdesk, default_language=language),
        outgoing=replace(settings.outgoing, transport="smtp", host="127.0.0.1", port=relay.port),
    )
    app = App(desk, clock)
    try:
        number = ingest(app, make_mail(sender=VICTIM, subject="Printer")).ticket
        resolve(app, number)
        with app.store.transaction() as tx:  # marked another way (a relay's 550, say)
            tx.addresses.mark_failing(VICTIM, app.clock.now(), "550 5.1.1 User unknown")
        assert tick_at(app, "2026-12-10T09:00:00+00:00").get("auto_close_held") == 1
        assert str(ticket(app, number).status) == "resolved"
        [notice] = [c.message for c in relay.to(AGENT) if words in str(c.message["Subject"])]
        assert VICTIM in notice.get_body(("plain",)).get_content()
    finally:
        app.close()
