"""Header values of spocd's own mail: non-ASCII text as RFC 2047 words that
every reader decodes back, within the line length mail clients expect."""

from __future__ import annotations

import base64
import email
import email.policy
import re
from datetime import UTC, datetime
from email import base64mime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.adapters.templates import TemplateRenderer
from daemon.app.notify import (
    _UNSAFE,
    Composer,
    Identity,
    Thread,
    Unaddressable,
    _encoded_words,
    _visible,
    address_header,
    build_mime,
    mailbox_header,
    msg_id_header,
    one_line,
    printable,
    wire_address,
)
from daemon.core.domain import OutgoingMail
from daemon.mail import msgid

SUBJECTS = [
    "Ł",
    "Zażółć gęślą jaźń",
    "[HD-12] Drukarka na drugim piętrze nie drukuje – proszę o pilną pomoc, księgowość czeka",
    "Сервер не отвечает 🙁 " * 6,
    "a" * 40 + "ż" * 120,
]


def subject_of(raw: bytes) -> tuple[str, list[str]]:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    lines = re.search(r"^Subject: .*?(?=\r\n\S)", head, re.S | re.M)
    assert lines is not None
    return str(msg["Subject"]), lines.group(0).split("\r\n")


@pytest.mark.parametrize("subject", SUBJECTS)
def test_a_non_ascii_subject_reads_back_whole_in_lines_of_78(subject: str) -> None:
    raw = build_mime([("Subject", subject)], "text", "<p>html</p>")
    decoded, lines = subject_of(raw)
    assert decoded == subject
    assert all(len(line) <= 78 for line in lines)
    assert all(line.startswith(" ") for line in lines[1:])


@pytest.mark.parametrize("subject", SUBJECTS)
def test_every_word_is_whole_utf8_on_its_own(subject: str) -> None:
    """A reader that decodes word by word (many do) never sees half a character."""
    raw = build_mime([("Subject", subject)], "text", "<p>html</p>")
    _, lines = subject_of(raw)
    words = re.findall(r"=\?utf-8\?b\?([A-Za-z0-9+/=]*)\?=", "".join(lines))
    assert words
    assert "".join(base64.b64decode(w).decode("utf-8") for w in words) == subject
    assert all(len(f"=?utf-8?b?{w}?=") <= 75 for w in words)


def test_ascii_stays_as_it_is() -> None:
    raw = build_mime([("Subject", "[HD-3] Printer")], "text", "<p>html</p>")
    assert b"\r\nSubject: [HD-3] Printer\r\n" in b"\r\n" + raw


# --- long values: every line within 998 octets (RFC 5322 §2.1.1), 78 where it can be -----


def header_lines(raw: bytes, name: str) -> list[str]:
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    found = re.search(rf"^{name}: .*?(?=\r\n\S)", head + "\r\nX", re.S | re.M)
    assert found is not None, name
    return found.group(0).split("\r\n")


def test_a_word_too_long_for_any_line_is_written_as_encoded_words() -> None:
    url = "https://intranet.example/" + "a" * 1200  # the fuzzer's 1,226-character subject
    subject = f"[HD-3] Received: Link does not open: {url}"
    raw = build_mime([("Subject", subject)], "text", "<p>html</p>")
    decoded, lines = subject_of(raw)
    assert decoded == subject
    assert max(map(len, lines)) <= 78


def test_an_ascii_subject_longer_than_a_line_folds_at_its_spaces() -> None:
    subject = "[HD-3] Re: " + " ".join(f"word{n}" for n in range(40))
    raw = build_mime([("Subject", subject)], "text", "<p>html</p>")
    decoded, lines = subject_of(raw)
    assert decoded == subject
    assert len(lines) > 1 and max(map(len, lines)) <= 78
    assert "=?" not in "".join(lines)  # still plain text


def test_text_that_looks_like_an_encoded_word_is_encoded_so_it_reads_back_as_written() -> None:
    subject = "Error =?utf-8?b?QUJD?= in the log"
    decoded, _ = subject_of(build_mime([("Subject", subject)], "text", "<p>html</p>"))
    assert decoded == subject


def test_two_thousand_cc_fold_after_commas_into_lines_of_78() -> None:
    cc = [f"c{n}@victims.example" for n in range(2000)]
    raw = build_mime([("Cc", address_header("Cc", cc))], "text", "<p>html</p>")
    lines = header_lines(raw, "Cc")
    assert max(map(len, lines)) <= 78
    assert all(line.rstrip().endswith(",") for line in lines[:-1])
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert [a.addr_spec for a in parsed["Cc"].addresses] == cc


# --- addresses and msg-ids: written as such, never as encoded words (RFC 2047 §5) ------------


@pytest.mark.parametrize(
    ("address", "wire"),
    [
        ("jan@example.org", "jan@example.org"),
        ("ala@żółw.example", "ala@xn--w-uga1v8h.example"),
        ("Ala@Bücher.Example", "Ala@xn--bcher-kva.Example"),
        ("a b@example.org", '"a b"@example.org'),
        ('"a b"@example.org', '"a b"@example.org'),
        ("a,b@example.org", '"a,b"@example.org'),
        (".a@example.org", '".a"@example.org'),
        ("a@[192.0.2.1]", "a@[192.0.2.1]"),
    ],
)
def test_an_address_is_written_in_7_bits(address: str, wire: str) -> None:
    assert wire_address(address) == wire


@pytest.mark.parametrize(
    ("address", "answer"),
    [
        ("józef@żółw.example", "553 5.6.7 "),  # EAI: only SMTPUTF8 could carry it
        ("józef@example.org", "553 5.6.7 "),
        ("a@ż..example", "553 5.1.2 "),  # an empty label has no IDNA form
        ("a@" + "ż" * 70 + ".example", "553 5.1.2 "),  # a label over 63 octets
        ("a@exa mple.org", "553 5.1.3 "),
        ("a\r\nRCPT TO:<x@y>@example.org", "553 5.1.3 "),
        ("x" * 250 + "@example.org", "553 5.1.3 "),
        ("no-at-sign", "553 5.1.3 "),
    ],
)
def test_an_address_that_7_bit_mail_cannot_name_is_refused_with_an_answer(
    address: str, answer: str
) -> None:
    with pytest.raises(Unaddressable) as refused:
        wire_address(address)
    assert str(refused.value).startswith(answer)


def test_an_address_asked_for_again_gets_the_same_answer_refusals_included() -> None:
    """Addresses are memoised: a written one comes back the same, and a
    refused one is refused again, not remembered as written."""
    for _ in range(3):
        assert wire_address("Ala@Bücher.Example") == "Ala@xn--bcher-kva.Example"
        with pytest.raises(Unaddressable, match=r"^553 5\.6\.7 "):
            wire_address("józef@example.org")
    assert address_header("To", ["józef@example.org", "jan@example.org"]) == "jan@example.org"


def test_address_headers_use_idna_and_leave_out_what_they_cannot_name() -> None:
    to = address_header("To", ["józef@żółw.example", "ala@żółw.example", "jan@example.org"])
    assert to == "ala@xn--w-uga1v8h.example, jan@example.org"
    assert address_header("To", ["józef@żółw.example"]) is None


def test_a_non_ascii_display_name_is_encoded_and_the_address_is_not() -> None:
    raw = build_mime(
        [("From", mailbox_header("From", "Dział IT — Zażółć gęślą jaźń", "it@żółw.example"))],
        "text",
        "<p>html</p>",
    )
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    [mailbox] = parsed["From"].addresses
    assert (mailbox.display_name, mailbox.addr_spec) == (
        "Dział IT — Zażółć gęślą jaźń",
        "it@xn--w-uga1v8h.example",
    )
    assert "<it@xn--w-uga1v8h.example>" in raw.decode("ascii")


def test_a_non_ascii_msg_id_is_left_out_of_the_thread_headers() -> None:
    ids = ["żółw-repro@users9.example", "a1@users9.example", "b 2@x", "c<3>@x", "d4@x"]
    assert msg_id_header("References", ids) == "<a1@users9.example> <d4@x>"
    assert msg_id_header("In-Reply-To", ids[:1]) is None


def test_a_long_thread_folds_between_its_ids() -> None:
    ids = [f"{n:040d}@mail.example.com" for n in range(20)]
    raw = build_mime([("References", msg_id_header("References", ids))], "text", "<p>h</p>")
    lines = header_lines(raw, "References")
    assert len(lines) == 20 and max(map(len, lines)) <= 78
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert str(parsed["References"]).split() == [f"<{i}>" for i in ids]


# --- property: whatever the subject and recipients, a composed mail reads back ---------------

IDENTITY = Identity(
    address="helpdesk@example.com", name="IT Help Desk", tag_prefix="HD", key=b"k" * 32
)


@pytest.fixture(scope="module")
def composer(tmp_path_factory: pytest.TempPathFactory) -> Composer:
    root = tmp_path_factory.mktemp("templates")
    (root / "en").mkdir()
    (root / "en" / "note.subject.txt").write_text("{{ subject }}")
    (root / "en" / "note.txt").write_text("text")
    (root / "en" / "note.html").write_text("<p>html</p>")
    return Composer(IDENTITY, TemplateRenderer(root))


def _note(composer: Composer, now: datetime) -> OutgoingMail:
    return composer.compose(
        template="note",
        kind="note",
        ticket=None,
        to=["jan@example.org"],
        context={"subject": "Printer"},
        now=now,
    )


def test_every_header_line_of_a_mail_with_two_parts_keeps_to_78_columns(
    composer: Composer,
) -> None:
    """The multipart/alternative line with its boundary was 80 columns."""
    mail = _note(composer, datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    head, _ = mail.raw.split(b"\r\n\r\n", 1)
    assert max(map(len, head.split(b"\r\n"))) <= 78
    parsed = email.message_from_bytes(mail.raw, policy=email.policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]


def test_the_date_header_keeps_the_zone_of_each_moment(composer: Composer) -> None:
    """The same instant in two zones is one datetime by equality, two Date
    headers: formatting each group's moment once must not mix them up."""
    utc = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    warsaw = utc.astimezone(ZoneInfo("Europe/Warsaw"))
    dates = []
    for now in (utc, warsaw, utc):
        raw = _note(composer, now).raw
        dates.append(email.message_from_bytes(raw, policy=email.policy.default)["Date"])
    assert dates == [
        "Mon, 05 Jan 2026 09:00:00 +0000",
        "Mon, 05 Jan 2026 10:00:00 +0100",
        "Mon, 05 Jan 2026 09:00:00 +0000",
    ]


def test_message_ids_made_by_earlier_versions_still_verify() -> None:
    """Replies reference Message-IDs sent months ago: the signature is
    HMAC-SHA256 of "<ticket>.<nonce>", its first 20 hex digits, for good."""
    key = b"k" * 32
    made_before = "spocd.42.0123456789abcdef.17a8412dbd59c5bb6907@example.com"
    assert msgid.make_message_id(key, "Example.COM", 42, "0123456789ABCDEF") == made_before
    assert msgid.verified_ticket(key, "example.com", made_before) == 42
    assert msgid.verified_ticket(key, "example.com", made_before.replace("6907", "6908")) is None


_local = st.text(alphabet="abcxyz019.-_+ (,óż", min_size=1, max_size=30)
_label = st.text(alphabet="abcz09-óżü", min_size=1, max_size=20)
_domain = st.lists(_label, min_size=1, max_size=3).map(lambda ls: ".".join([*ls, "example"]))
_address = st.builds(lambda local, domain: f"{local}@{domain}", _local, _domain)
_subject = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.characters(max_codepoint=127), max_size=3000),
    st.builds(lambda a, b: a + "x" * b, st.text(max_size=50), st.integers(70, 3000)),
)


def _expected(address: str) -> tuple[str, str] | None:
    """(username, domain) as a reader finds them; None for an address left out.
    (The strategies keep addresses well under the 254-octet limit.)"""
    local, _, domain = address.rpartition("@")
    if not local.isascii():
        return None
    try:
        domain = domain if domain.isascii() else domain.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    return local, domain.lower()


@settings(max_examples=150, deadline=None)
@given(
    subject=_subject,
    to=st.lists(_address, min_size=1, max_size=5),
    cc=st.lists(_address, max_size=60),
)
def test_any_subject_and_recipients_compose_into_lines_of_998_that_read_back(
    composer: Composer, subject: str, to: list[str], cc: list[str]
) -> None:
    mail = composer.compose(
        template="note",
        kind="note",
        ticket=None,
        to=to,
        cc=cc,
        context={"subject": subject},
        now=datetime(2026, 1, 5, 9, 0, tzinfo=UTC),
        thread=Thread().after("żółw@users.example").after("a1@users.example"),
    )
    lines = mail.raw.split(b"\r\n")
    assert max(map(len, lines)) <= 998
    head = mail.raw.split(b"\r\n\r\n", 1)[0].decode("ascii")  # 7-bit headers
    parsed = email.message_from_bytes(mail.raw, policy=email.policy.default)
    assert str(parsed["Subject"] or "") == one_line(subject)
    assert all(len(line) <= 78 for line in header_lines(mail.raw, "Subject"))
    for name, given_addresses in (("To", to), ("Cc", cc)):
        header = parsed[name]
        found = [(a.username, a.domain.lower()) for a in header.addresses] if header else []
        assert found == [e for e in map(_expected, given_addresses) if e is not None]
    assert "=?" not in "".join(re.findall(r"^(?:To|Cc): .*?(?=\r\n\S)", head, re.S | re.M))
    assert parsed["References"] == "<a1@users.example>"


# --- the fast paths write what the character-at-a-time forms wrote --------------------


def _words_a_character_at_a_time(name: str, value: str) -> str:
    """The encoder as it was (2026-12-06): the reference for its byte cutting."""

    def fits(columns: int) -> int:
        return (min(columns, 75) - 12) // 4 * 3

    words: list[str] = []
    chunk: list[str] = []
    size, limit = 0, fits(78 - len(name) - 2)
    for ch in value:
        n = len(ch.encode("utf-8"))
        if chunk and size + n > limit:
            words.append(base64mime.header_encode("".join(chunk).encode("utf-8"), "utf-8"))
            chunk, size, limit = [], 0, fits(78 - 1)
        chunk.append(ch)
        size += n
    words.append(base64mime.header_encode("".join(chunk).encode("utf-8"), "utf-8"))
    return "\r\n ".join(words)


_text = st.text(
    st.characters(blacklist_categories=("Cs",)) | st.sampled_from("żółćęśąźńŁ🙁\x00\x1f\x7f\t\n"),
    max_size=300,
)


@settings(max_examples=1000, deadline=None)
@given(name=st.sampled_from(["Subject", "To", "X-Original-Subject", "Cc"]), value=_text)
def test_words_are_cut_in_bytes_exactly_where_the_character_loop_cut_them(
    name: str, value: str
) -> None:
    assert _encoded_words(name, value) == _words_a_character_at_a_time(name, value)


@settings(max_examples=1000, deadline=None)
@given(value=_text)
def test_one_line_spaces_the_controls_the_character_loop_spaced(value: str) -> None:
    spaced = "".join(ch if ch >= " " and ch != "\x7f" else " " for ch in value)
    assert one_line(value) == " ".join(printable(spaced).split())


@settings(max_examples=1000, deadline=None)
@given(
    value=st.text(
        st.characters(blacklist_categories=("Cs",))
        | st.sampled_from("żółć\x00\x1b\x7f\x85\xa0\t\n\r\u2028\u2029\u202e\u2066\u200b")
    )
)
def test_printable_gives_what_the_pattern_alone_gives(value: str) -> None:
    """The shortcut for text with nothing to drop changes no output."""
    text = value.replace("\r\n", "\n").replace("\r", "\n")
    by_pattern = _UNSAFE.sub(_visible, text.replace("\u2028", "\n").replace("\u2029", "\n"))
    assert printable(value) == by_pattern


def test_printable_marks_bidi_controls_and_keeps_tabs_and_newlines() -> None:
    assert printable("a\tb\r\nc\x1b[31md\x7f") == "a\tb\nc[31md"
    assert printable("zł\u202eoto\x85") == "zł[U+202E]oto"
