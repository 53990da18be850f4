"""First-line escalations: the requester, the original and the note, per client style.

Each fixture in tests/data/forwards is written as its client writes it (MIME
structure, charsets, HTML-only bodies) and goes through parse_message first,
as in the pipeline.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.core.domain import Address, Attachment, ParsedMessage
from daemon.mail.forwards import Forwarded, parse_loose_date, strip_forward_prefix, unwrap
from daemon.mail.parsing import parse_message

DATA = Path(__file__).resolve().parents[2] / "data" / "forwards"
CET = timezone(timedelta(hours=1))


def _unwrap(name: str) -> Forwarded:
    return unwrap(parse_message((DATA / name).read_bytes()), parse_message)


# file, style, requester (addr, name), original subject, original date,
# start of the note, start of the original's text
CASES = [
    (
        "attachment_outlook_en.eml",
        "attachment",
        ("john.smith@customer.example.com", "John Smith"),
        "VPN drops every 10 minutes",
        datetime(2026, 11, 3, 9, 12, 44, tzinfo=UTC),
        "Hi team,\n\nplease take over",
        "Hello,\n\nsince this morning my VPN connection",
    ),
    (
        "attachment_gmail_pl.eml",
        "attachment",
        ("jan.kowalski@klient.example.pl", "Jan Kowalski"),
        "Drukarka nie drukuje - piętro 2",
        datetime(2026, 11, 3, 8, 47, 10, tzinfo=CET),
        "Przekazuję w załączniku, proszę o pilne sprawdzenie.",
        "Dzień dobry,\n\ndrukarka na 2. piętrze",
    ),
    (
        "attachment_and_inline.eml",
        "attachment",
        ("john.smith@customer.example.com", "John Smith"),
        "Wi-Fi in meeting room",
        datetime(2026, 11, 3, 9, 12, 44, tzinfo=CET),
        "Original attached. Earlier thread for context:",
        "The Wi-Fi in meeting room B",
    ),
    (
        "outlook_en.eml",
        "outlook",
        ("john.smith@customer.example.com", "John Smith"),
        "Outlook crashes when opening shared calendar",
        datetime(2026, 11, 3, 9, 12, tzinfo=CET),
        "Hi,\n\nescalating, see below.",
        "Hello,\n\nOutlook closes as soon as I open",
    ),
    (
        "outlook_original_message_en.eml",
        "outlook",
        ("john.smith@customer.example.com", "Smith, John"),
        "Cannot print to HP LaserJet on 2nd floor",
        datetime(2026, 11, 3, 9, 12, tzinfo=CET),
        "Second line please, driver reinstall did not help.",
        "Hi,\n\nnothing prints to the HP LaserJet",
    ),
    (
        "outlook_web_en.eml",
        "outlook",
        ("john.smith@customer.example.com", "John Smith"),
        "Teams calls drop after 30 seconds",
        datetime(2026, 11, 3, 9, 12, tzinfo=UTC),
        "Please handle, the customer is waiting.",
        "Hi, every Teams call drops",
    ),
    (
        "outlook_pl_cp1250.eml",
        "outlook",
        ("jan.kowalski@klient.example.pl", "Jan Kowalski"),
        "Nie działa drukarka sieciowa w księgowości",
        datetime(2026, 11, 3, 9, 12, tzinfo=CET),
        "Dzień dobry,\n\nprzekazuję zgłoszenie klienta do II linii.",
        "Dzień dobry,\n\nod rana drukarka sieciowa w księgowości nie drukuje.",
    ),
    (
        "outlook_pl_iso88592.eml",
        "outlook",
        ("anna.nowak@klient.example.pl", "Nowak Anna"),
        "Zablokowane konto w domenie",
        datetime(2026, 11, 3, 9, 12, tzinfo=CET),
        "Proszę o przejęcie - konto zablokowane po zmianie hasła",
        "Dzień dobry,\npo zmianie hasła nie mogę się zalogować",
    ),
    (
        "outlook_html_only_en.eml",
        "outlook",
        ("john.smith@customer.example.com", "Smith, John"),
        "New starter laptop setup",
        datetime(2026, 11, 3, 9, 12, tzinfo=CET),
        "Hi,\n\nnew user's laptop needs Office 365 apps",
        "Hello,\n\nour new colleague starts on Monday",
    ),
    (
        "outlook_html_only_pl.eml",
        "outlook",
        ("jan.kowalski@klient.example.pl", "Jan Kowalski"),
        "Brak dostępu do dysku sieciowego Z:",
        datetime(2026, 11, 3, 9, 12, tzinfo=CET),
        "Dzień dobry,\n\nprzekazuję do realizacji",
        "Dzień dobry,\n\nod dzisiaj nie widzę dysku Z:",
    ),
    (
        "outlook_web_html_only_en.eml",
        "outlook",
        ("jan.kowalski@klient.example.pl", "Kowalski, Jan"),
        "MFA prompt loops on the phone",
        datetime(2026, 11, 3, 9, 12, tzinfo=UTC),
        "Could you check this one?",
        "Hello,\n\nthe Authenticator app asks me",
    ),
    (
        "gmail_en.eml",
        "gmail",
        ("john.smith@customer.example.com", "John Smith"),
        "Laptop won't boot after Windows update",
        datetime(2026, 11, 3, 9, 12, tzinfo=CET),
        "Escalating - BitLocker recovery did not help.",
        "Hi,\n\nafter last night's Windows update",
    ),
    (
        "gmail_pl.eml",
        "gmail",
        ("jan.kowalski@klient.example.pl", "Jan Kowalski"),
        "Nie mogę się zalogować do VPN",
        datetime(2026, 11, 3, 9, 12, tzinfo=CET),
        "Proszę o przejęcie, certyfikat klienta wygląda na ważny.",
        "Dzień dobry,\n\nod rana VPN odrzuca moje hasło",
    ),
    (
        "gmail_pl_polish_labels.eml",
        "gmail",
        ("recepcja@klient.example.pl", ""),
        "Awaria telefonu VoIP na recepcji",
        datetime(2026, 11, 3, 8, 5, tzinfo=CET),
        "Telefon Yealink na recepcji nie rejestruje się w centrali.",
        'Telefon na recepcji od rana pokazuje "Brak rejestracji".',
    ),
    (
        "thunderbird_en.eml",
        "thunderbird",
        ("john.smith@customer.example.com", "John Smith"),
        "File server extremely slow",
        datetime(2026, 11, 3, 9, 12, 44, tzinfo=CET),
        "Customer reports the file server is slow",
        "Hi,\n\nopening any file on",
    ),
    (
        "thunderbird_original_message_en.eml",
        "thunderbird",
        ("john.smith@customer.example.com", "Smith, John"),
        "Scanner sends empty PDFs",
        datetime(2026, 11, 3, 9, 12, 44, tzinfo=CET),
        "Please take over.",
        "Every scan-to-mail from the Ricoh",
    ),
    (
        "thunderbird_pl.eml",
        "thunderbird",
        ("jan.kowalski@klient.example.pl", "Jan Kowalski"),
        "Awaria centrali VoIP",
        datetime(2026, 11, 3, 8, 12, 44, tzinfo=CET),
        "Centrala VoIP nie przyjmuje połączeń",
        "Dzień dobry,\n\nod 8:00 nikt nie może się do nas dodzwonić",
    ),
    (
        "apple_en.eml",
        "apple",
        ("john.smith@customer.example.com", "John Smith"),
        "Monitor flickering",
        datetime(2026, 11, 3, 9, 12, 44, tzinfo=CET),
        "FYI, this came to the service desk mailbox.",
        "Hello,\n\nmy second monitor flickers",
    ),
    (
        "apple_pl.eml",
        "apple",
        ("jan.kowalski@klient.example.pl", "Jan Kowalski"),
        "Wymiana dysku w laptopie",
        datetime(2026, 11, 3, 9, 12, 44, tzinfo=CET),
        "Dysk SMART pokazuje błędy, proszę o wymianę.",
        "Dzień dobry,\n\nlaptop bardzo zwolnił",
    ),
    (
        # the first block below the note: whoever sent the mail to the Service Desk
        "nested_outlook_over_gmail.eml",
        "outlook",
        ("anna.nowak@customer.example.com", "Anna Nowak"),
        "Fwd: Shared mailbox missing in Outlook",
        datetime(2026, 11, 3, 10, 1, tzinfo=CET),
        "The office manager forwarded this for her colleague.",
        "Could you help Piotr? See below.\n\n---------- Forwarded message ---------",
    ),
]


@pytest.mark.parametrize(
    ("name", "style", "requester", "subject", "date", "note", "text"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_forward_styles(
    name: str,
    style: str,
    requester: tuple[str, str],
    subject: str,
    date: datetime,
    note: str,
    text: str,
) -> None:
    fwd = _unwrap(name)
    assert fwd.style == style
    assert fwd.requester == Address(*requester)
    assert fwd.original is not None
    assert fwd.original.sender == fwd.requester
    assert fwd.original.subject == subject
    assert fwd.original.date == date
    assert fwd.note.startswith(note)
    assert fwd.original.text.startswith(text)


@pytest.mark.parametrize("name", [c[0] for c in CASES if c[1] != "attachment"])
def test_inline_original_has_no_header_block_and_note_no_original(name: str) -> None:
    fwd = _unwrap(name)
    assert fwd.original is not None
    first_lines = fwd.original.text.split("\n")[:3]
    labels = ("from:", "od:", "sent:", "wysłano:", "subject:", "temat:", "nadawca:", "date:")
    assert not any(line.strip().lower().startswith(labels) for line in first_lines)
    assert fwd.original.text not in fwd.note
    assert fwd.original.message_id_derived
    assert fwd.original.message_id.endswith("@derived.invalid")


@pytest.mark.parametrize("name", [c[0] for c in CASES if c[1] == "attachment"])
def test_attachment_note_does_not_repeat_the_original(name: str) -> None:
    fwd = _unwrap(name)
    assert fwd.original is not None
    assert not fwd.original.message_id_derived
    assert fwd.original.text.strip()[:40] not in fwd.note


@pytest.mark.parametrize(
    ("name", "to", "cc"),
    [
        (
            "outlook_en.eml",
            ["sd@firma.example.pl"],
            ["anna.nowak@customer.example.com", "piotr.zielinski@customer.example.com"],
        ),
        ("outlook_pl_cp1250.eml", ["sd@firma.example.pl"], ["anna.nowak@klient.example.pl"]),
        ("thunderbird_pl.eml", ["sd@firma.example.pl"], ["anna.nowak@klient.example.pl"]),
        ("gmail_en.eml", ["sd@firma.example.pl"], []),
        ("outlook_original_message_en.eml", [], []),  # "To: Service Desk": a name only
    ],
)
def test_recipients_of_the_original(name: str, to: list[str], cc: list[str]) -> None:
    original = _unwrap(name).original
    assert original is not None
    assert [a.addr for a in original.to] == to
    assert [a.addr for a in original.cc] == cc


def test_exchange_display_name_only_has_no_requester_but_keeps_the_incident() -> None:
    fwd = _unwrap("outlook_display_name_only.eml")
    assert fwd.style == "outlook"
    assert fwd.requester is None
    assert fwd.original is not None
    assert fwd.original.sender is None
    assert fwd.original.subject == "Excel macro stopped working"
    assert fwd.original.text == 'The monthly report macro fails with "Run-time error 1004".'
    assert fwd.note == "Internal colleague, please check."


def test_no_forward_keeps_the_whole_text_as_note() -> None:
    msg = parse_message((DATA / "no_forward.eml").read_bytes())
    fwd = unwrap(msg, parse_message)
    assert fwd == Forwarded("none", None, None, msg.text.strip())


def test_same_forward_twice_gets_the_same_derived_id() -> None:
    first = _unwrap("gmail_en.eml").original
    second = _unwrap("gmail_en.eml").original
    other = _unwrap("gmail_pl.eml").original
    assert first is not None and second is not None and other is not None
    assert first.message_id == second.message_id != other.message_id


# --- the same blocks as text, for notations the fixtures do not show ----------------------


def _msg(text: str, subject: str = "FW: something", **kw: object) -> ParsedMessage:
    return ParsedMessage(
        message_id="outer@firma.example.pl",
        subject=subject,
        sender=Address("marta@firma.example.pl", "Marta"),
        text=text,
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("sender_line", "expected"),
    [
        ("Jan Kowalski <jan@firma.pl>", Address("jan@firma.pl", "Jan Kowalski")),
        ('"Kowalski, Jan" <jan@firma.pl>', Address("jan@firma.pl", "Kowalski, Jan")),
        ("jan@firma.pl", Address("jan@firma.pl")),
        ("Jan Kowalski [mailto:jan@firma.pl]", Address("jan@firma.pl", "Jan Kowalski")),
        ("<jan@firma.pl>", Address("jan@firma.pl")),
        ("JAN@Firma.PL <JAN@Firma.PL>", Address("jan@firma.pl")),
        (
            "Jan Kowalski <[jan@firma.pl](mailto:jan@firma.pl)>",
            Address("jan@firma.pl", "Jan Kowalski"),
        ),
        ("jan\\_kowalski@firma.pl", Address("jan_kowalski@firma.pl")),  # html2text escape
        ("Kowalski Jan", None),
    ],
)
def test_sender_notations(sender_line: str, expected: Address | None) -> None:
    text = (
        f"note\n\nFrom: {sender_line}\nSent: Monday, November 3, 2026 9:12 AM\n"
        "To: Service Desk\nSubject: Printer\n\nbody"
    )
    fwd = unwrap(_msg(text), parse_message)
    assert fwd.style == "outlook"
    assert fwd.requester == expected
    assert fwd.original is not None and fwd.original.text == "body"


@pytest.mark.parametrize(
    "block",
    [
        # html2text without ignore_emphasis, and other converters' bold labels
        "**From:** Jan <jan@firma.pl>\n**Sent:** Monday, November 3, 2026 9:12 AM\n"
        "**To:** sd@firma.pl\n**Subject:** Printer",
        "*From:* Jan <jan@firma.pl>  \n*Sent:* Monday, November 3, 2026 9:12 AM  \n"
        "*Subject:* Printer  ",
        "**Od:** Jan <jan@firma.pl>\n**Wysłano:** poniedziałek, 3 listopada 2026 09:12\n"
        "**Do:** sd@firma.pl\n**Temat:** Printer",
        "\\-----Original Message-----\nFrom: Jan [mailto:jan@firma.pl]\nSubject: Printer",
        "* * *\n\nFrom: Jan <jan@firma.pl>\nSent: Monday\nSubject: Printer",
    ],
)
def test_markdown_renderings_of_html_forwards(block: str) -> None:
    fwd = unwrap(_msg(f"Please check.\n\n{block}\n\nThe printer is broken."), parse_message)
    assert fwd.style == "outlook"
    assert fwd.requester == Address("jan@firma.pl", "Jan")
    assert fwd.note == "Please check."
    assert fwd.original is not None
    assert fwd.original.subject == "Printer"
    assert fwd.original.text == "The printer is broken."


def test_wrapped_recipient_list_stays_in_the_header_block() -> None:
    text = (
        "From: Jan <jan@firma.pl>\nSent: Monday, November 3, 2026 9:12 AM\n"
        "To: Anna <anna@firma.pl>; Piotr <piotr@firma.pl>;\n Ewa <ewa@firma.pl>\n"
        "Subject: Printer\n\nbody"
    )
    original = unwrap(_msg(text), parse_message).original
    assert original is not None
    assert [a.addr for a in original.to] == ["anna@firma.pl", "piotr@firma.pl", "ewa@firma.pl"]
    assert original.text == "body"


def test_subject_falls_back_to_the_outer_one_without_prefixes() -> None:
    text = "note\n\n---------- Forwarded message ---------\nFrom: Jan <jan@firma.pl>\n\nbody"
    fwd = unwrap(_msg(text, subject="Fwd: FW: PD: [SD-123] Printer"), parse_message)
    assert fwd.style == "gmail"
    assert fwd.original is not None
    assert fwd.original.subject == "[SD-123] Printer"


def test_a_person_writing_from_and_sent_in_prose_is_not_a_forward() -> None:
    text = "From: my desk I cannot print.\nThe printer is on the 2nd floor.\n"
    assert unwrap(_msg(text), parse_message).style == "none"


def test_bare_separator_without_headers_still_splits_note_and_original() -> None:
    text = "please check\n-----Original Message-----\nthe printer is broken"
    fwd = unwrap(_msg(text), parse_message)
    assert (fwd.style, fwd.requester, fwd.note) == ("outlook", None, "please check")
    assert fwd.original is not None and fwd.original.text == "the printer is broken"


def _attachment(content: bytes | None) -> Attachment:
    return Attachment("fwd.eml", "message/rfc822", len(content or b""), "0" * 64, content)


def test_unreadable_attachment_falls_back_to_inline_text() -> None:
    text = "note\n\n---------- Forwarded message ---------\nFrom: Jan <jan@firma.pl>\n\nbody"
    fwd = unwrap(_msg(text, attachments=(_attachment(b"not mail at all"),)), parse_message)
    assert fwd.style == "gmail"
    assert fwd.requester == Address("jan@firma.pl", "Jan")


def test_attachment_dropped_for_size_and_no_inline_block() -> None:
    fwd = unwrap(_msg("see attachment", attachments=(_attachment(None),)), parse_message)
    assert fwd == Forwarded("attachment", None, None, "see attachment")


def test_a_recipient_named_twice_is_kept_once_in_its_first_notation() -> None:
    text = (
        "From: Jan <jan@firma.pl>\nSent: Monday, November 3, 2026 9:12 AM\n"
        "To: Anna <anna@firma.pl>; Piotr <piotr@firma.pl>; ANNA@firma.pl; Ewa <ewa@firma.pl>\n"
        "Subject: Printer\n\nbody"
    )
    original = unwrap(_msg(text), parse_message).original
    assert original is not None
    assert original.to == (
        Address("anna@firma.pl", "Anna"),
        Address("piotr@firma.pl", "Piotr"),
        Address("ewa@firma.pl", "Ewa"),
    )


# --- hostile forwards: read in linear time, and only as much as clients write -------------

_HEAD = "note\n\n-----Original Message-----\nFrom: Jan <jan@firma.pl>\nSent: Monday, 9:12 AM\n"


def _timed_unwrap(msg: ParsedMessage) -> tuple[Forwarded, float]:
    start = time.perf_counter()
    fwd = unwrap(msg, parse_message)
    return fwd, time.perf_counter() - start


def test_a_pasted_list_of_thousands_of_recipients_gives_the_first_hundred_at_once() -> None:
    # 20,000 on one line took 9 s when each was compared with all kept before.
    recipients = ", ".join(f"t{n}@victim.example" for n in range(20_000))
    fwd, seconds = _timed_unwrap(_msg(f"{_HEAD}To: {recipients}\nSubject: Printer\n\nbody"))
    assert fwd.original is not None
    assert [a.addr for a in fwd.original.to] == [f"t{n}@victim.example" for n in range(100)]
    assert max(len(v) for values in fwd.original.headers.values() for v in values) <= 16_000
    assert (fwd.original.subject, fwd.original.text) == ("Printer", "body")
    assert seconds < 1.0


def test_a_recipient_list_wrapped_over_thousands_of_lines_is_read_once() -> None:
    # Each wrapped line once copied the whole list so far: quadratic.
    wrapped = "".join(f" t{n}@victim.example;\n" for n in range(20_000))
    text = f"{_HEAD}To: anna@firma.pl;\n{wrapped}Subject: Printer\n\nbody"
    fwd, seconds = _timed_unwrap(_msg(text))
    assert fwd.original is not None
    assert len(fwd.original.to) == 100
    assert fwd.original.to[:2] == (Address("anna@firma.pl"), Address("t0@victim.example"))
    assert seconds < 1.0


def test_an_address_cut_at_the_limit_is_dropped_not_shortened() -> None:
    recipients = "; ".join(f"Person {n} <person.{n}@victim.example>" for n in range(600))
    fwd = unwrap(_msg(f"{_HEAD}To: {recipients}\n\nbody"), parse_message)
    assert fwd.original is not None
    assert all(a.addr.endswith("@victim.example") for a in fwd.original.to)


@pytest.mark.parametrize(
    "text",
    [
        "From: x@y.example\n" * 100_000,  # a bare block on every line
        ("_" * 20 + "\nTo: a@b.example\n") * 50_000,  # rules, each read as a separator
        "-----Original Message-----\n" * 70_000,
        "-" * 2_000_000,
        f"{_HEAD}To: a@b.example,\n" + "c@d.example,\n" * 150_000,
    ],
    ids=["from-lines", "rules", "separators", "one-long-line", "wrapped-lines"],
)
def test_two_megabytes_of_forward_markers_take_well_under_a_second(text: str) -> None:
    _fwd, seconds = _timed_unwrap(_msg(text))
    assert seconds < 1.0


def test_a_forward_block_is_looked_for_in_the_first_thousand_lines_only() -> None:
    block = "-----Original Message-----\nFrom: Jan <jan@firma.pl>\nSubject: Printer\n\nbody"
    assert unwrap(_msg("line\n" * 990 + block), parse_message).style == "outlook"
    assert unwrap(_msg("line\n" * 1_000 + block), parse_message).style == "none"


def test_the_note_above_an_attached_original_is_cut_in_linear_time() -> None:
    """mail-parser's text holds the original's text: the note is what stands
    before its last occurrence. str.rfind took 8 s for this 400,000-character
    needle and text (it is quadratic for "ab" + "a" * n in a run of "a")."""
    original = (
        "From: Jan <jan@firma.pl>\r\nTo: sd@firma.pl\r\nSubject: Printer\r\n"
        "Message-ID: <original@firma.pl>\r\n\r\nab" + "a" * 200_000 + "\r\n"
    )
    raw = (
        "From: Marta <marta@firma.example.pl>\r\nTo: escalations@example.com\r\n"
        "Subject: FW: Printer\r\nMessage-ID: <outer@firma.example.pl>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
        "--B\r\nContent-Type: text/plain\r\n\r\nPlease check.\r\n"
        f"--B\r\nContent-Type: message/rfc822\r\n\r\n{original}"
        "--B\r\nContent-Type: text/plain\r\n\r\n" + "a" * 400_000 + "\r\n--B--\r\n"
    ).encode()
    fwd, seconds = _timed_unwrap(parse_message(raw))
    assert (fwd.style, fwd.requester, fwd.note) == (
        "attachment",
        Address("jan@firma.pl", "Jan"),
        "Please check.",
    )
    assert seconds < 1.0


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("FW: Printer", "Printer"),
        ("Fwd: Fwd: Printer", "Printer"),
        ("PD: Drukarka", "Drukarka"),
        ("WG: Drucker", "Drucker"),
        ("RE: Printer", "RE: Printer"),
        ("Printer FW: broken", "Printer FW: broken"),
    ],
)
def test_strip_forward_prefix(subject: str, expected: str) -> None:
    assert strip_forward_prefix(subject) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Monday, November 3, 2026 9:12 AM", datetime(2026, 11, 3, 9, 12, tzinfo=CET)),
        ("Monday, November 3, 2026 9:12 PM", datetime(2026, 11, 3, 21, 12, tzinfo=CET)),
        ("Monday, November 03, 2026 12:05 AM", datetime(2026, 11, 3, 0, 5, tzinfo=CET)),
        ("poniedziałek, 3 listopada 2026 09:12", datetime(2026, 11, 3, 9, 12, tzinfo=CET)),
        ("pon., 3 lis 2026 o 09:12", datetime(2026, 11, 3, 9, 12, tzinfo=CET)),
        ("śr., 14 paź 2026 o 17:40", datetime(2026, 10, 14, 17, 40, tzinfo=CET)),
        ("Mon, Nov 3, 2026 at 9:12\u202fAM", datetime(2026, 11, 3, 9, 12, tzinfo=CET)),
        ("Mon, 3 Nov 2026 09:12:44 +0100", datetime(2026, 11, 3, 9, 12, 44, tzinfo=CET)),
        ("Mon, 3 Nov 2026 09:12:44 -0500", datetime(2026, 11, 3, 14, 12, 44, tzinfo=UTC)),
        ("3 November 2026 at 09:12:44 CET", datetime(2026, 11, 3, 9, 12, 44, tzinfo=CET)),
        ("3 listopada 2026 o 09:12:44 CEST", datetime(2026, 11, 3, 7, 12, 44, tzinfo=UTC)),
        ("November 3, 2026 at 9:12:44 AM GMT+1", datetime(2026, 11, 3, 9, 12, 44, tzinfo=CET)),
        ("03.11.2026 09:12", datetime(2026, 11, 3, 9, 12, tzinfo=CET)),
        ("2026-11-03 09:12", datetime(2026, 11, 3, 9, 12, tzinfo=CET)),
        ("yesterday", None),
        ("31 lutego 2026 10:00", None),
        ("", None),
    ],
)
def test_dates_as_clients_write_them(value: str, expected: datetime | None) -> None:
    assert parse_loose_date(value, CET) == expected


# --- never raises -------------------------------------------------------------------------

_texts = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=400
) | st.lists(
    st.sampled_from(
        [
            "From: Jan <jan@x.pl>",
            "Od: a@b",
            "Sent: Monday, November 3, 2026 9:12 AM",
            "Date: 99:99",
            "Subject:",
            "To: ;;,,<>",
            "-----Original Message-----",
            "---------- Forwarded message ---------",
            "Begin forwarded message:",
            "________________________________",
            "* * *",
            "",
            "**From:** [x](mailto:)",
            "Wysłano: 31 lis 99999 o 25:61",
        ]
    ),
    max_size=30,
).map("\n".join)


@settings(max_examples=300, deadline=None)
@given(
    text=_texts,
    subject=st.text(max_size=80),
    content=st.none() | st.binary(max_size=300),
)
def test_unwrap_never_raises(text: str, subject: str, content: bytes | None) -> None:
    msg = _msg(text, subject=subject)
    if content is not None:
        msg = replace(msg, attachments=(_attachment(content),))
    fwd = unwrap(msg, parse_message)
    assert fwd.style in ("attachment", "outlook", "gmail", "thunderbird", "apple", "none")
    assert (fwd.original is None) == (fwd.style == "none") or fwd.style == "attachment"
