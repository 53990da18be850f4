"""The pure side of outgoing attachments: the cap, safe names, and the
outbox's references put back to the same bytes every time."""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.app.notify import build_mime
from daemon.core.domain import Attachment
from daemon.mail.attachparts import (
    Item,
    _email_head,
    _encoded_head,
    _plain_head,
    clean_name,
    content_type,
    expand,
    items_of,
    part,
    plan,
    references,
    safe_name,
)


def att(
    name: str, data: bytes | None, size: int | None = None, cid: str | None = None
) -> Attachment:
    digest = hashlib.sha256(data or b"").hexdigest()
    ctype = "image/png" if name.endswith(".png") else "application/pdf"
    length = size if size is not None else len(data or b"")
    return Attachment(name, ctype, length, digest, data, content_id=cid)


def test_smallest_travel_first_and_the_largest_over_the_cap_is_listed() -> None:
    big, mid, small = att("big", b"b" * 700), att("mid", b"m" * 300), att("small", b"s" * 100)
    gone = att("gone", None, size=10)  # its bytes were not kept: always listed
    chosen = plan([Item(1, big), Item(2, mid), Item(3, small), Item(4, gone)], cap=500)
    assert [i.id for i in chosen.attached] == [3, 2]
    assert [i.id for i in chosen.listed] == [4, 1]
    assert plan([Item(1, att("empty", b""))], cap=0).attached  # 0 bytes always fit


def test_hostile_names_become_plain_names_keeping_the_extension() -> None:
    name = safe_name("..\u202egpj.exe/../" + "\x00" + "a" * 300 + ".pdf")
    assert name.endswith(".pdf") and len(name) == 120
    assert "\x00" not in name and "/" not in name and not name.startswith(".")
    assert safe_name("\u202e") == "attachment-0.bin"
    assert clean_name("C:\\Users\\x\\report.xlsx", 200) == "report.xlsx"


@pytest.mark.parametrize(
    ("name", "clean"),
    [
        (" .. . .htaccess", "htaccess"),  # dots and spaces interleaved
        (". .", ""),  # nothing left: safe_name gives attachment-N.bin
        ("\u3000.profile", "profile"),  # an ideographic space is a space too
        ("report v1.2 .pdf", "report v1.2 .pdf"),  # inner dots and spaces stay
    ],
)
def test_no_name_starts_with_a_dot_whatever_spaces_hide_it(name: str, clean: str) -> None:
    assert clean_name(name, 200) == clean


def test_only_images_the_html_shows_stay_inline() -> None:
    shown = att("a.png", b"png", cid="a@x")
    hidden = att("b.png", b"png", cid="b@x")
    items = items_of([1, 2], [shown, hidden], '<img src="cid:a@x">')
    assert [i.content_id for i in items] == ["a@x", None]


def test_the_outbox_form_expands_to_the_same_mail_every_time() -> None:
    data = bytes(range(256)) * 20
    item = Item(1, att("x.pdf", data))
    raw = build_mime([("Subject", "s")], "text =spocd-blob=x", "<p>=</p>", [item])
    assert references(raw) == [item.attachment.sha256]
    assert data not in raw and base64.b64encode(data)[:60] not in raw
    blobs = {item.attachment.sha256: data}
    first, again = expand(raw, blobs.get), expand(raw, blobs.get)
    assert first == again
    msg = email.message_from_bytes(first, policy=email.policy.default)
    [part] = list(msg.iter_attachments())  # type: ignore[attr-defined]
    assert part.get_payload(decode=True) == data
    assert msg.get_body(("plain",)).get_content() == "text =spocd-blob=x"  # type: ignore[union-attr]


def test_a_long_non_ascii_name_keeps_every_line_short_and_reads_back_whole() -> None:
    data = b"png"
    name = "zrzut ekranu – błąd „krytyczny” " * 3 + ".png"
    item = Item(1, att(name, data))
    raw = expand(
        build_mime([("Subject", "s")], "t", "h", [item]), {item.attachment.sha256: data}.get
    )
    assert max(len(line) for line in raw.split(b"\r\n") if b"name" in line) <= 78
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    [part] = list(msg.iter_attachments())  # type: ignore[attr-defined]
    assert part.get_filename() == safe_name(name)


def test_a_forwarded_message_travels_as_bytes_not_as_an_unencodable_message_part() -> None:
    # message/rfc822 and multipart/* may not be base64-encoded (RFC 2046):
    # the email package cannot even write such a part with a body reference.
    assert content_type("message/rfc822") == "application/octet-stream"
    assert content_type("multipart/mixed") == "application/octet-stream"
    assert content_type("image/png") == "image/png"


_PLAIN = string.ascii_letters + string.digits + "._()+,- "


@settings(max_examples=400, deadline=None)
@given(
    name=st.text(alphabet=_PLAIN, min_size=1, max_size=90),
    ctype=st.sampled_from(["application/pdf", "image/png", "application/vnd.ms-excel.x" * 3]),
    cid=st.one_of(st.none(), st.text(alphabet=string.printable, max_size=70)),
)
def test_a_plain_name_is_written_as_the_email_package_writes_it(
    name: str, ctype: str, cid: str | None
) -> None:
    plain = _plain_head(ctype, name, cid or None)
    if plain is not None:  # names it does not take go to the email package itself
        assert plain == _email_head(ctype, name, cid or None)


@settings(max_examples=1000, deadline=None)
@given(
    name=st.text(min_size=1, max_size=160),
    ctype=st.sampled_from(["application/pdf", "image/png", "application/vnd.ms-excel.x" * 3]),
    cid=st.one_of(st.none(), st.text(alphabet=string.printable, max_size=70)),
)
def test_a_non_ascii_name_is_encoded_as_the_email_package_encodes_it(
    name: str, ctype: str, cid: str | None
) -> None:
    name = safe_name(name, 1)  # as `part` gives it
    encoded = _encoded_head(ctype, name, cid or None)
    if encoded is not None:  # ASCII names, surrogates and long types are not its
        assert encoded == _email_head(ctype, name, cid or None)


def test_a_long_polish_name_is_split_in_sections_a_reader_joins_again() -> None:
    name = "Raport kwartalny ŁÓDŹ 2026 — bardzo długa nazwa pliku z ogonkami ąęśćżźół.xlsx"
    head = _encoded_head("application/pdf", name, None)
    assert head is not None
    assert b"name*0*=utf-8''Raport%20kwartalny" in head and b" name*2*=" in head
    assert max(len(line) for line in head.split(b"\r\n")) <= 78
    msg = email.message_from_bytes(head + b"\r\n\r\nx", policy=email.policy.default)
    assert msg.get_filename() == name and msg.get_param("name") == name
    # ASCII names are not its: plain ones are `_plain_head`'s, the rest the email package's
    assert _encoded_head("application/pdf", 'q"x.txt', None) is None


def test_a_name_the_email_package_must_quote_encode_or_fold_is_left_to_it() -> None:
    for name in ('q"x.txt', "a;b.txt", "zażółć.txt", "a\\b.txt", " lead.txt", "a" * 70 + ".pdf"):
        assert _plain_head("application/pdf", name, None) is None
    assert _plain_head("application/pdf", "report.pdf", "<odd>") is None
    head = part(Item(1, att("Raport końcowy.pdf", b"x")), 1)
    assert b"filename*=utf-8''Raport%20ko%C5%84cowy.pdf" in head
