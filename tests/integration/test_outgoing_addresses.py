"""Recipients that 7-bit mail cannot name (a non-ASCII local part, RFC 6531
"EAI" addresses) and internationalised domains, through both transports.

spocd writes 7-bit mail and does not use SMTPUTF8, so such a recipient is
refused for good before any transport sees it, and recorded as a relay's
5xx is (a `mail_failed` event, a requester marked failing). An IDN domain is
written as IDNA A-labels, in the headers and in the envelope alike. Nothing
here may end in a traceback or a row left leased.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from daemon.adapters.maildir import MaildirTransport
from daemon.adapters.relay import SmtpTransport
from daemon.config import Settings
from daemon.core.domain import OutgoingMail
from daemon.ports import OutboxItem
from tests.support.clock import ManualClock
from tests.support.flow import events, ingest
from tests.support.relay import Relay

EAI = "józef@żółw.example"  # no 7-bit form: the local part is not ASCII
IDN = "ala@żółw.example"  # the domain has one: xn--w-uga1v8h.example
IDN_WIRE = "ala@xn--w-uga1v8h.example"


def eai_request(sender: str = EAI, message_id: str = "idn-sender@users.example") -> bytes:
    """What a client writes for an EAI address (RFC 6532: raw UTF-8)."""
    return (
        f"From: Józef <{sender}>\r\nTo: helpdesk@example.com\r\nSubject: idn sender\r\n"
        f"Message-ID: <{message_id}>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "Drukarka nie działa.\r\n"
    ).encode()


def outbox(app: Any) -> dict[str, int]:
    with app.store.reading() as tx:
        return {s: tx.outbox.count(s) for s in ("pending", "sent", "failed")}


def reply_row(app: Any, ticket: int, recipients: tuple[str, ...]) -> None:
    mid = "reply-1@example.com"
    with app.store.transaction() as tx:
        tx.outbox.add(
            OutgoingMail(
                message_id=mid,
                recipients=recipients,
                raw=f"Message-ID: <{mid}>\r\nSubject: Re: idn\r\n\r\nDone.\r\n".encode(),
                kind="agent_reply",
                ticket_number=ticket,
                automatic=False,
            ),
            app.clock.now(),
        )


def test_an_eai_requester_gets_a_recorded_refusal_and_the_agents_their_notice(
    relay_app: Any, relay: Relay, clock: ManualClock
) -> None:
    outcome = ingest(relay_app, eai_request())  # smtplib raised UnicodeEncodeError here
    assert outcome.ticket is not None
    assert outbox(relay_app) == {"pending": 0, "sent": 1, "failed": 1}
    [notice] = relay.caught
    assert EAI not in notice.rcpt_tos
    [failed] = [e for e in events(relay_app, outcome.ticket) if e.type == "mail_failed"]
    assert failed.detail["kind"] == "ack" and failed.detail["address"] == EAI
    assert failed.detail["answer"].startswith("553 5.6.7 ")
    with relay_app.store.reading() as tx:
        assert tx.addresses.is_failing(EAI)  # as a bounce would: no more automatic mail
    clock.advance(timedelta(hours=1))  # past every lease: nothing left to crash on
    assert relay_app.sender.send_due().sent == 0
    assert outbox(relay_app)["pending"] == 0


def test_through_a_relay_an_idn_domain_goes_as_a_labels_beside_a_refused_eai_address(
    relay_app: Any, relay: Relay
) -> None:
    outcome = ingest(relay_app, eai_request())
    before = len(relay.caught)
    reply_row(relay_app, outcome.ticket, (EAI, IDN, "ops@example.org"))
    report = relay_app.sender.send_due()
    assert (report.sent, report.failed, report.deferred) == (1, 0, 0)
    assert [c.rcpt_tos for c in relay.caught[before:]] == [[IDN_WIRE, "ops@example.org"]]
    failed = [e for e in events(relay_app, outcome.ticket) if e.type == "mail_failed"]
    assert [e.detail["address"] for e in failed] == [EAI, EAI]  # the ack, then the reply


def test_a_relay_refusing_an_idn_address_is_recorded_under_the_address_as_queued(
    relay_app: Any, relay: Relay
) -> None:
    """The relay answers for `ala@xn--…`; the ticket knows `ala@żółw.example`."""
    outcome = ingest(relay_app, eai_request(sender=IDN))
    relay.refuse_rcpt(IDN_WIRE, "550 5.1.1 no such user")
    reply_row(relay_app, outcome.ticket, (IDN, "ops@example.org"))
    assert relay_app.sender.send_due().sent == 1
    failed = [e for e in events(relay_app, outcome.ticket) if e.type == "mail_failed"]
    assert [(e.detail["address"], e.detail["answer"]) for e in failed] == [
        (IDN, "550 5.1.1 no such user")
    ]
    with relay_app.store.reading() as tx:
        assert tx.addresses.is_failing(IDN)  # the requester, matched in its own form


def test_into_the_maildir_the_headers_name_addresses_never_encoded_words(app: Any) -> None:
    outcome = ingest(app, eai_request(sender=IDN, message_id="żółw-1@users9.example"))
    reply_row(app, outcome.ticket, (EAI, IDN, "ops@example.org"))
    app.sender.send_due()
    files = sorted((app.settings.outgoing.maildir / "new").iterdir())
    messages = [
        email.message_from_bytes(f.read_bytes(), policy=email.policy.default) for f in files
    ]
    [ack] = [m for m in messages if "Received" in str(m["Subject"])]
    assert ack["To"] == IDN_WIRE and "=?" not in str(ack["To"])
    assert ack["In-Reply-To"] is None and ack["References"] is None  # a UTF-8 msg-id: left out
    [reply] = [m for m in messages if m["Subject"] == "Re: idn"]
    assert reply["X-Original-To"] == f"{IDN_WIRE}, ops@example.org"
    failed = [e for e in events(app, outcome.ticket) if e.type == "mail_failed"]
    assert [e.detail["address"] for e in failed] == [EAI]
    assert outbox(app)["pending"] == 0


def test_the_smtp_transport_refuses_an_address_smtplib_cannot_send(
    settings: Settings, relay: Relay
) -> None:
    """Its own guard, should an address reach it unwritten: no UnicodeEncodeError."""
    out = replace(settings.outgoing, transport="smtp", host="127.0.0.1", port=relay.port)
    transport = SmtpTransport(out)
    item = OutboxItem(
        id=1,
        ticket_number=None,
        kind="agent_reply",
        message_id="m@example.com",
        recipients=(EAI, "ops@example.org", "x@example.org\r\nRSET"),
        raw=b"Subject: x\r\n\r\nx\r\n",
        attempts=0,
        created_at=datetime.now(UTC),
    )
    try:
        refusals = transport.send(item, "helpdesk@example.com")
    finally:
        transport.close()
    assert [(r.address, r.permanent) for r in refusals] == [
        (EAI, True),
        ("x@example.org\r\nRSET", True),
    ]
    assert [c.rcpt_tos for c in relay.caught] == [["ops@example.org"]]


def test_the_maildir_transport_folds_a_long_recipient_list(settings: Settings) -> None:
    transport = MaildirTransport(settings.outgoing.maildir)
    recipients = tuple(f"c{n}@victims.example" for n in range(2000))
    item = OutboxItem(
        id=1,
        ticket_number=None,
        kind="agent_reply",
        message_id="m@example.com",
        recipients=recipients,
        raw=b"Subject: x\r\n\r\nx\r\n",
        attempts=0,
        created_at=datetime.now(UTC),
    )
    transport.send(item, "helpdesk@example.com")
    transport.flush()
    [written] = (settings.outgoing.maildir / "new").iterdir()
    raw = written.read_bytes()
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert tuple(str(parsed["X-Original-To"]).split(", ")) == recipients
