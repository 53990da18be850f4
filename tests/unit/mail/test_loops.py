"""Which mail is automatic, and why: every loop signal, the order of kinds, and people."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.core.domain import Address, Attachment, ParsedMessage
from daemon.mail.bounces import parse_bounce
from daemon.mail.forwards import unwrap
from daemon.mail.loops import Automatic, classify
from daemon.mail.parsing import parse_message

DATA = Path(__file__).resolve().parents[2] / "data"
DOMAIN = "desk.example.com"
OWN = frozenset({"helpdesk@desk.example.com", "escalations@desk.example.com"})
OUR_ID = "spocd.42.k3j9x0a1.0123456789abcdef0123@desk.example.com"


def _classify_file(path: str) -> Automatic | None:
    return classify(parse_message((DATA / path).read_bytes()), DOMAIN, OWN)


CASES = [
    ("loops/own_loop_header.eml", "own", "X-Spocd-Loop"),
    ("loops/own_message_id_only.eml", "own", "Message-ID spocd generated"),
    ("loops/own_address.eml", "own", "own address"),
    ("loops/exchange_oof_en.eml", "auto-reply", "Auto-Submitted: auto-generated"),
    ("loops/exchange_oof_pl_subject_hint.eml", "auto-reply", "out-of-office subject"),
    ("loops/gmail_vacation.eml", "auto-reply", "Auto-Submitted: auto-replied"),
    ("loops/sieve_vacation.eml", "auto-reply", "Auto-Submitted: auto-replied (vacation)"),
    ("loops/zabbix_auto_generated.eml", "auto-reply", "Auto-Submitted: auto-generated"),
    ("loops/x_autorespond.eml", "auto-reply", "x-autorespond"),
    ("loops/x_autoreply_from.eml", "auto-reply", "x-autoreply-from"),
    ("loops/precedence_auto_reply.eml", "auto-reply", "Precedence: auto_reply"),
    ("loops/otrs_x_loop.eml", "auto-reply", "X-Loop"),
    ("loops/exchange_inbox_rule.eml", "auto-reply", "inbox rule"),
    ("loops/exchange_generated.eml", "auto-reply", "Mailbox Rules Agent"),
    ("loops/other_spocd.eml", "auto-reply", "another spocd (other-desk.example.net)"),
    ("loops/null_return_path.eml", "auto-reply", "null return path"),
    ("loops/mailer_daemon_return_path.eml", "bounce", "MAILER-DAEMON@mx.partner.example.org"),
    ("loops/mailman_list.eml", "list", "list-id"),
    ("loops/google_group.eml", "list", "list-id"),
    ("loops/newsletter.eml", "list", "list-unsubscribe"),
    ("loops/precedence_junk.eml", "bulk", "Precedence: junk"),
    ("loops/feedback_id_only.eml", "bulk", "Feedback-ID"),
    ("bounces/mdn_read_receipt.eml", "auto-reply", "disposition-notification"),
    ("bounces/out_of_office.eml", "auto-reply", "Auto-Submitted"),
    ("bounces/postfix_dsn.eml", "bounce", "postfix bounce (failed)"),
    ("bounces/postfix_delayed.eml", "bounce", "postfix bounce (delayed)"),
    ("bounces/postfix_plain.eml", "bounce", "postfix"),
    ("bounces/exim.eml", "bounce", "exim"),
    ("bounces/exim_delayed.eml", "bounce", "exim bounce (delayed)"),
    ("bounces/exchange_o365_en.eml", "bounce", "exchange"),
    ("bounces/exchange_pl.eml", "bounce", "exchange"),
    ("bounces/exchange_text_only_en.eml", "bounce", "exchange"),
    ("bounces/gmail_dsn.eml", "bounce", "gmail"),
    ("bounces/gmail_text.eml", "bounce", "gmail"),
    ("bounces/sendmail.eml", "bounce", "sendmail"),
    ("bounces/sendmail_plain.eml", "bounce", "sendmail"),
    ("bounces/qmail.eml", "bounce", "qmail"),
    ("bounces/dsn_two_recipients.eml", "bounce", "dsn bounce (failed)"),
]


@pytest.mark.parametrize(("path", "kind", "reason"), CASES, ids=[c[0] for c in CASES])
def test_automatic_mail(path: str, kind: str, reason: str) -> None:
    found = _classify_file(path)
    assert found is not None
    assert found.kind == kind
    assert reason in found.reason


@pytest.mark.parametrize(
    "path",
    [
        "loops/human_reply_outlook.eml",
        # Outlook and Exchange put X-Auto-Response-Suppress on ordinary mail
        "loops/x_auto_response_suppress_only.eml",
        # an IT desk's requesters write about their out-of-office settings
        "loops/human_out_of_office_subject.eml",
        "loops/human_out_of_office_subject_en.eml",
        "loops/auto_submitted_no.eml",
        # Thunderbird builds Message-IDs from the sender's domain: not ours
        "loops/colleague_thunderbird_own_domain.eml",
        # no header says bulk: we cannot tell it from a person (rate limit applies)
        "loops/list_less_newsletter.eml",
        # a person pasting a bounce into a mail to us
        "bounces/human_pasting_bounce.eml",
        # escalations from first line are people's mail
        "forwards/outlook_en.eml",
        "forwards/attachment_outlook_en.eml",
        "forwards/gmail_pl.eml",
    ],
)
def test_people(path: str) -> None:
    assert _classify_file(path) is None


def _msg(headers: dict[str, str], **kw: object) -> ParsedMessage:
    return ParsedMessage(
        message_id=str(kw.pop("message_id", "m1@klient.example.pl")),
        subject=str(kw.pop("subject", "Drukarka")),
        sender=kw.pop("sender", Address("jan@klient.example.pl")),  # type: ignore[arg-type]
        headers={k.lower(): (v,) for k, v in headers.items()},
        text=str(kw.pop("text", "treść")),
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("headers", "kind"),
    [
        # own beats everything
        ({"X-Spocd-Loop": DOMAIN, "Auto-Submitted": "auto-replied", "List-Id": "<l>"}, "own"),
        ({"X-Spocd-Loop": "", "Precedence": "bulk"}, "own"),
        # bounce beats auto-reply, list and bulk
        ({"Return-Path": "<MAILER-DAEMON@mx>", "Auto-Submitted": "auto-replied"}, "bounce"),
        # auto-reply beats list and bulk
        ({"Auto-Submitted": "auto-replied", "List-Id": "<l>", "Precedence": "bulk"}, "auto-reply"),
        ({"X-Autoreply": "yes", "Precedence": "list"}, "auto-reply"),
        ({"Return-Path": "<>", "Auto-Submitted": "auto-replied"}, "auto-reply"),
        # list beats bulk
        ({"List-Unsubscribe": "<mailto:u@x>", "Precedence": "bulk"}, "list"),
        ({"Precedence": "list"}, "list"),
        ({"List-Post": "<mailto:l@x>"}, "list"),
        ({"Precedence": "bulk"}, "bulk"),
        ({"Precedence": " Bulk "}, "bulk"),
        ({"Auto-Submitted": "Auto-Generated"}, "auto-reply"),
        ({"Auto-Submitted": "no (comment)"}, None),
        ({"Auto-Submitted": "notification"}, "auto-reply"),  # not "no": the word, not a prefix
        ({"X-Auto-Response-Suppress": "All"}, None),
        ({"Precedence": "first-class"}, None),
        ({}, None),
    ],
)
def test_order_of_kinds(headers: dict[str, str], kind: str | None) -> None:
    found = classify(_msg(headers), DOMAIN, OWN)
    assert (found.kind if found else None) == kind


@pytest.mark.parametrize(
    ("subject", "headers", "refs", "automatic"),
    [
        ("Automatic reply: [HD-1] x", {"X-Auto-Response-Suppress": "All"}, (), True),
        ("Odpowiedź automatyczna: [HD-1] x", {}, (OUR_ID,), True),
        ("Poza biurem: [HD-1] x", {}, (OUR_ID,), True),
        ("Nieobecność: Jan Kowalski", {"X-Auto-Response-Suppress": "All"}, (), True),
        ("Out of Office: [HD-1] x", {}, (), False),  # the subject alone is not enough
        ("Automatic reply: how do I set it?", {}, ("a@gmail.example.com",), False),
        ("Re: [HD-1] out of office", {"X-Auto-Response-Suppress": "All"}, (), False),
    ],
)
def test_out_of_office_subjects_need_a_header_hint(
    subject: str, headers: dict[str, str], refs: tuple[str, ...], automatic: bool
) -> None:
    found = classify(_msg(headers, subject=subject, in_reply_to=refs), DOMAIN, OWN)
    assert (found is not None and found.kind == "auto-reply") is automatic


@pytest.mark.parametrize(
    ("sender", "message_id", "kind"),
    [
        (Address("HelpDesk@desk.example.com"), "x@y", "own"),
        (Address("jan@klient.example.pl"), OUR_ID.upper(), "own"),
        (Address("jan@klient.example.pl"), "spocd.1.abcd.0123456789abcdef0123@other.example", None),
        (Address("mailer-daemon@mx.example.org"), "x@y", "bounce"),
        (Address("postmaster@mx.example.org"), "x@y", "bounce"),
        (Address("mailer-daemon.fan@klient.example.pl"), "x@y", None),
    ],
)
def test_senders_and_ids(sender: Address, message_id: str, kind: str | None) -> None:
    found = classify(_msg({}, sender=sender, message_id=message_id), DOMAIN, OWN)
    assert (found.kind if found else None) == kind


def test_other_report_types_are_automatic_but_not_bounces() -> None:
    msg = _msg(
        {"Content-Type": "multipart/report; report-type=feedback-report; boundary=x"},
        content_type="multipart/report",
    )
    assert classify(msg, DOMAIN, OWN) == Automatic(
        "auto-reply", "multipart/report; report-type=feedback-report"
    )


# --- never raises -------------------------------------------------------------------------

_header_names = st.sampled_from(
    [
        "Auto-Submitted",
        "Precedence",
        "List-Id",
        "List-Unsubscribe",
        "X-Autoreply",
        "Return-Path",
        "X-Spocd-Loop",
        "Content-Type",
        "X-Failed-Recipients",
        "X-MS-Exchange-Message-Is-Ndr",
        "Feedback-ID",
        "X-Auto-Response-Suppress",
        "From",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    headers=st.dictionaries(_header_names, st.text(max_size=40), max_size=6),
    subject=st.text(max_size=80),
    text=st.text(max_size=300),
    sender=st.none() | st.emails().map(lambda a: Address(a.lower())),
    message_id=st.text(max_size=60),
    report=st.booleans(),
    status=st.none() | st.binary(max_size=120),
)
def test_classify_never_raises(
    headers: dict[str, str],
    subject: str,
    text: str,
    sender: Address | None,
    message_id: str,
    report: bool,
    status: bytes | None,
) -> None:
    attachments = ()
    if status is not None:
        attachments = (Attachment("s", "message/delivery-status", 0, "0" * 64, status),)
    msg = _msg(
        headers,
        subject=subject,
        text=text,
        sender=sender,
        message_id=message_id,
        content_type="multipart/report" if report else "text/plain",
        attachments=attachments,
    )
    found = classify(msg, DOMAIN, OWN)
    assert found is None or found.kind in ("own", "bounce", "auto-reply", "list", "bulk")


# --- bounded time on hostile lines ----------------------------------------------------------
# Address and Message-ID patterns searched over long runs of letters go quadratic:
# these inputs took over a minute before the scanners were made linear.

_N = 200_000
_HOSTILE = {
    "letters": "a" * _N,
    "sender-line": "From: " + "a" * _N + "\nSent: Monday\nSubject: x\n\nb",
    "at-signs": "Message-ID: <" + "a@" * (_N // 2),
    "exchange-dots": "Delivery has failed to these recipients or groups:\n" + "a." * (_N // 2),
    "dashes": "-" * _N,
    "brackets": "From: " + "[mailto:" * (_N // 8),
    "from-flood": "Od: x\n" * (_N // 6),
    "blank-flood": "Delivery to the following recipient failed permanently:\n" + " \n" * _N,
}


@pytest.mark.timeout(10)
@pytest.mark.parametrize("text", _HOSTILE.values(), ids=_HOSTILE.keys())
def test_hostile_long_lines_finish(text: str) -> None:
    msg = _msg({"Return-Path": "<>"}, text=text, sender=Address("mailer-daemon@mx.example.org"))
    unwrap(msg, parse_message)
    parse_bounce(msg)
    classify(msg, DOMAIN, OWN)
