"""Delivery failures from every MTA we meet, each fixture as that MTA writes it."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.core.domain import Address, Attachment, ParsedMessage
from daemon.mail.bounces import DIAGNOSTIC_LIMIT, Bounce, parse_bounce
from daemon.mail.parsing import parse_message

DATA = Path(__file__).resolve().parents[2] / "data" / "bounces"
HD42 = "spocd.42.k3j9x0a1.0123456789abcdef0123@desk.example.com"
HD42_SUBJECT = "[HD-42] Zgłoszenie przyjęte: drukarka"


def _bounce(name: str) -> Bounce | None:
    return parse_bounce(parse_message((DATA / name).read_bytes()))


# file, mta, action, status, permanent, failed recipients, original Message-ID,
# original subject, words the diagnostic must contain
CASES = [
    (
        "postfix_dsn.eml",
        "postfix",
        "failed",
        "5.1.1",
        True,
        ("jan.kowalski@klient.example.pl",),
        HD42,
        HD42_SUBJECT,
        "User unknown in virtual mailbox table",
    ),
    (
        "postfix_delayed.eml",
        "postfix",
        "delayed",
        "4.4.1",
        False,
        ("anna.nowak@klient.example.pl",),
        HD42,
        HD42_SUBJECT,
        "Connection timed out",
    ),
    (
        "postfix_plain.eml",
        "postfix",
        "failed",
        "5.2.2",
        True,
        ("piotr@old.example.org",),
        HD42,
        HD42_SUBJECT,
        "Mailbox full",
    ),
    (
        "exim.eml",
        "exim",
        "failed",
        "5.1.1",
        True,
        ("biuro@sklep.example.pl",),
        HD42,
        HD42_SUBJECT,
        "Recipient address rejected: User unknown",
    ),
    (
        "exim_delayed.eml",
        "exim",
        "delayed",
        "4.3.0",
        False,
        ("biuro@sklep.example.pl",),
        HD42,  # from the warning's References header
        HD42_SUBJECT,  # from "The subject of the message is:"
        "Temporary lookup failure",
    ),
    (
        "exchange_o365_en.eml",
        "exchange",
        "failed",
        "5.1.10",
        True,
        ("john.smith@customer.example.com",),
        "spocd.7.zz91kk2a.fedcba9876543210fedc@desk.example.com",
        "[HD-7] Ticket received",
        "RESOLVER.ADR.RecipientNotFound",
    ),
    (
        "exchange_pl.eml",
        "exchange",
        "failed",
        "5.2.2",
        True,
        ("jan.kowalski@klient.example.pl",),
        HD42,
        HD42_SUBJECT,
        "QuotaExceededException",
    ),
    (
        "exchange_text_only_en.eml",
        "exchange",
        "failed",
        "5.1.1",
        True,
        ("john.smith@customer.example.com",),
        "spocd.9.aa11bb22.00112233445566778899@desk.example.com",
        "[HD-9] Status update",
        "RESOLVER.ADR.RecipNotFound",
    ),
    (
        "gmail_dsn.eml",
        "gmail",
        "failed",
        "5.1.1",
        True,
        ("jan.kowalski.typo@gmail.example.com",),
        "spocd.11.q1w2e3r4.abcdefabcdefabcdefab@desk.example.com",
        "[HD-11] Ticket received",
        "does not exist",
    ),
    (
        "gmail_text.eml",
        "gmail",
        "failed",
        "5.2.1",
        True,
        ("old.user@gmail.example.com",),
        "spocd.12.m9n8b7v6.0a1b2c3d4e5f6a7b8c9d@desk.example.com",
        "[HD-12] Status update",
        "is disabled",
    ),
    (
        "sendmail.eml",
        "sendmail",
        "failed",
        "5.1.1",
        True,
        ("ewa@partner.example.org",),
        HD42,
        HD42_SUBJECT,
        "User unknown",
    ),
    (
        "sendmail_plain.eml",
        "sendmail",
        "failed",
        "5.2.2",
        True,
        ("tomasz@legacy.partner.example.org",),
        HD42,
        HD42_SUBJECT,
        "Mailbox full",
    ),
    (
        "qmail.eml",
        "qmail",
        "failed",
        "5.7.1",
        True,
        ("support@vendor.example.com",),
        HD42,
        HD42_SUBJECT,
        "Relay access denied",
    ),
    (
        # the worst action sums up a report on several recipients
        "dsn_two_recipients.eml",
        "dsn",
        "failed",
        "5.1.1",
        True,
        ("gone@unknown-mta.example", "gone2@unknown-mta.example"),
        "spocd.50.abcd1234.5566778899aabbccddee@desk.example.com",
        "[HD-50] Ticket received",
        "no such user",
    ),
]


@pytest.mark.parametrize(
    ("name", "mta", "action", "status", "permanent", "failed", "message_id", "subject", "words"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_bounces_of_every_mta(
    name: str,
    mta: str,
    action: str,
    status: str,
    permanent: bool,
    failed: tuple[str, ...],
    message_id: str,
    subject: str,
    words: str,
) -> None:
    bounce = _bounce(name)
    assert bounce is not None
    assert bounce.mta == mta
    assert bounce.action == action
    assert bounce.status == status
    assert bounce.permanent is permanent
    assert bounce.failed_recipients == failed
    assert bounce.original_message_id == message_id
    assert bounce.original_subject == subject
    assert words in bounce.diagnostic
    assert "\n" not in bounce.diagnostic


@pytest.mark.parametrize(
    "name",
    [
        "mdn_read_receipt.eml",  # multipart/report, but disposition-notification
        "out_of_office.eml",  # auto-reply with a null return path: not a delivery failure
        "human_pasting_bounce.eml",  # a person quoting Postfix's words
    ],
)
def test_not_bounces(name: str) -> None:
    assert _bounce(name) is None


def _msg(**kw: object) -> ParsedMessage:
    base = ParsedMessage(
        message_id="b@mx.example.org",
        subject="Undelivered Mail Returned to Sender",
        sender=Address("mailer-daemon@mx.example.org"),
        headers={"return-path": ("<>",)},
        text="",
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def _status(content: bytes) -> Attachment:
    return Attachment("status", "message/delivery-status", len(content), "0" * 64, content)


@pytest.mark.parametrize(
    ("status_fields", "action", "status", "permanent"),
    [
        (b"Action: failed\nStatus: 5.0.0", "failed", "5.0.0", True),
        (b"Action: delayed\nStatus: 4.4.7", "delayed", "4.4.7", False),
        (b"Action: relayed\nStatus: 2.0.0", "relayed", "2.0.0", False),
        (b"Action: delivered\nStatus: 2.0.0", "delivered", "2.0.0", False),
        (b"Action: expanded\nStatus: 2.0.0", "delivered", "2.0.0", False),
        (b"Action: failed (bad mailbox)\nStatus: 5.1.1 (no such user)", "failed", "5.1.1", True),
        (b"Action: exploded\nStatus: 5.7.1", "unknown", "5.7.1", True),
        (b"Action: delayed\nStatus: 5.4.7", "delayed", "5.4.7", True),
    ],
)
def test_dsn_actions_and_permanence(
    status_fields: bytes, action: str, status: str, permanent: bool
) -> None:
    content = b"Reporting-MTA: dns; mx\n\nFinal-Recipient: rfc822; a@b.example\n" + status_fields
    bounce = parse_bounce(_msg(content_type="multipart/report", attachments=(_status(content),)))
    assert bounce is not None
    assert (bounce.action, bounce.status, bounce.permanent) == (action, status, permanent)
    assert bounce.failed_recipients == ("a@b.example",)


def test_diagnostic_is_shortened() -> None:
    content = (
        b"Final-Recipient: rfc822; a@b.example\nAction: failed\nStatus: 5.0.0\n"
        b"Diagnostic-Code: smtp; 550 " + b"very long reason " * 100
    )
    bounce = parse_bounce(_msg(content_type="multipart/report", attachments=(_status(content),)))
    assert bounce is not None
    assert len(bounce.diagnostic) == DIAGNOSTIC_LIMIT
    assert bounce.diagnostic.endswith("…")


def test_quoted_message_id_in_text_when_nothing_is_returned() -> None:
    text = (
        "This message was created automatically by mail delivery software.\n\n"
        "A message that you sent could not be delivered to one or more of its\n"
        "recipients. The following address(es) failed:\n\n  x@y.example\n    550 no\n\n"
        "------ This is a copy of the message's headers. ------\n\n"
        "Message-ID:\n <abc.123@desk.example.com>\n"
        "Subject: =?utf-8?q?Zg=C5=82oszenie?= [HD-3]\n"
    )
    bounce = parse_bounce(_msg(text=text))
    assert bounce is not None
    assert bounce.mta == "exim"
    assert bounce.original_message_id == "abc.123@desk.example.com"
    assert bounce.original_subject == "Zgłoszenie [HD-3]"


def test_unrecognised_mailer_daemon_text_is_not_guessed_at() -> None:
    assert parse_bounce(_msg(text="Something happened.")) is None


def test_mta_phrases_without_any_mail_system_sign_are_not_a_bounce() -> None:
    msg = _msg(
        sender=Address("jan@klient.example.pl"),
        headers={},
        text="Hi. This is the qmail-send program at mail.example.\n<a@b.example>:\nno\n",
    )
    assert parse_bounce(msg) is None


# --- never raises -------------------------------------------------------------------------

_lines = st.sampled_from(
    [
        "This is the mail system at host x.",
        "I'm sorry to have to inform you",
        "A message that you sent could not be delivered",
        "The following address(es) failed:",
        "Delivery has failed to these recipients or groups:",
        "Dostarczanie nie powiodło się do tych adresatów lub grup:",
        "   ----- The following addresses had permanent fatal errors -----",
        "Hi. This is the qmail-send program at x.",
        "** Address not found **",
        "Your message wasn't delivered to a@b.c because",
        "<a@b.example>:",
        "<a@b.example>: host said 550 5.1.1 no",
        "  a@b.example",
        "    (reason: 550",
        "Message-ID: <",
        "Message-ID: <x@y>",
        "Subject: =?utf-8?q?=ZZ?=",
        "Remote Server returned '",
        "",
    ]
)
_texts = st.text(max_size=300) | st.lists(_lines, max_size=25).map("\n".join)
_status_bytes = st.binary(max_size=200) | st.lists(
    st.sampled_from(
        [
            b"Final-Recipient: rfc822; a@b.example",
            b"Final-Recipient: ;",
            b"Action: failed",
            b"Action:",
            b"Status: 5.1.1",
            b"Status: 9.9",
            b"Diagnostic-Code: smtp; 550",
            b"  folded",
            b"",
            b"\xff\xfe",
        ]
    ),
    max_size=20,
).map(b"\n".join)


@settings(max_examples=300, deadline=None)
@given(
    text=_texts,
    subject=st.text(max_size=60),
    report=st.booleans(),
    status=st.none() | _status_bytes,
    returned=st.none() | st.binary(max_size=200),
    sender=st.sampled_from(["mailer-daemon@x.example", "jan@x.example", "postmaster@x"]),
)
def test_parse_bounce_never_raises(
    text: str,
    subject: str,
    report: bool,
    status: bytes | None,
    returned: bytes | None,
    sender: str,
) -> None:
    attachments = []
    if status is not None:
        attachments.append(_status(status))
    if returned is not None:
        attachments.append(Attachment("r", "text/rfc822-headers", 0, "0" * 64, returned))
    msg = _msg(
        text=text,
        subject=subject,
        sender=Address(sender),
        content_type="multipart/report" if report else "text/plain",
        attachments=tuple(attachments),
    )
    bounce = parse_bounce(msg)
    if bounce is not None:
        assert len(bounce.diagnostic) <= DIAGNOSTIC_LIMIT
        assert bounce.action in ("failed", "delayed", "relayed", "delivered", "unknown")


# --- hostile reports: linear, whatever their shape -------------------------------------


def test_a_text_report_of_thousands_of_bare_recipient_lines_is_read_in_one_pass() -> None:
    """Each recipient line without a diagnostic split the whole text after it:
    20,000 of them took 7 s, twice per message (loop check, then the ticket)."""
    raw = (
        "From: MAILER-DAEMON <mailer-daemon@mx.example.org>\r\nTo: helpdesk@example.com\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nContent-Type: text/plain\r\n\r\n"
        "This is the mail system at host mx.example.org.\r\n\r\n" + "<a@b.cc>:\r\n" * 20_000
    ).encode()
    msg = parse_message(raw)
    started = time.process_time()
    bounce = parse_bounce(msg)
    assert time.process_time() - started < 1.0
    assert bounce is not None and (bounce.mta, bounce.failed_recipients) == ("postfix", ("a@b.cc",))


def test_a_status_field_folded_over_many_lines_is_joined_once() -> None:
    """A value rebuilt at each continuation line: 320,000 lines took 2.6 s."""
    folded = "Diagnostic-Code: smtp; 550" + "\r\n x" * 320_000
    raw = (
        "From: MAILER-DAEMON <mailer-daemon@mx.example.org>\r\nTo: helpdesk@example.com\r\n"
        "Subject: Delivery Status Notification\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="r"\r\n\r\n'
        "--r\r\nContent-Type: text/plain\r\n\r\nYour mail was not delivered.\r\n"
        "--r\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n"
        "\r\nFinal-Recipient: rfc822; a@b.cc\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        + folded
        + "\r\n--r--\r\n"
    ).encode()
    msg = parse_message(raw)
    started = time.process_time()
    bounce = parse_bounce(msg)
    assert time.process_time() - started < 1.0
    assert bounce is not None and bounce.failed_recipients == ("a@b.cc",)
    assert bounce.diagnostic.startswith("550 x x x")
