"""What the email parser is given of a large message: large parts cut out,
a message's own oversize text body shortened at a line's end."""

from __future__ import annotations

import base64
import hashlib
import tracemalloc

from daemon.core.domain import ParsedMessage
from daemon.mail.mimecut import BODY_BYTES, cut_large_parts
from daemon.mail.parsing import LARGE_PART, parse_message

HEAD = b"From: a@example.com\r\nTo: helpdesk@example.com\r\nSubject: big\r\n"


def parsed_with_peak(raw: bytes) -> tuple[ParsedMessage, int]:
    """The parse of `raw` and the most memory it held at once."""
    tracemalloc.start()
    try:
        msg = parse_message(raw)
        return msg, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_plain_mails_oversize_body_is_shortened_at_a_line_end() -> None:
    body = b"line of text\r\n" * 300_000  # 4.2 MB
    raw = HEAD + b"\r\n" + body
    skeleton, cut = cut_large_parts(raw, LARGE_PART, 10 * 1024 * 1024)
    assert cut == {}  # nothing to keep aside: the rest stays in the raw message only
    kept = skeleton[len(HEAD) + 2 :]
    assert body.startswith(kept) and kept.endswith(b"\r\n")
    assert BODY_BYTES - 14 < len(kept) <= BODY_BYTES


def test_a_base64_body_is_shortened_to_whole_quanta_and_still_decodes() -> None:
    text = ("Zażółć gęślą jaźń. " * 200_000).encode()  # 4.6 MB, 6 MB encoded
    raw = (
        HEAD
        + b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(text).replace(b"\n", b"\r\n")
    )
    msg = parse_message(raw)
    assert 900_000 < len(msg.text) < 2_000_000  # 1.5 MB of UTF-8, a third of it two-byte
    assert text.decode().startswith(msg.text.rstrip("\n"))  # no broken character at the end


def test_a_body_of_blank_lines_costs_the_parser_little_memory() -> None:
    """20 MB of blank lines, one str object each in the email parser, took
    300 MB and 5 s; shortened, the parse holds a few times 2 MB."""
    raw = HEAD + b"\r\n" + b"\n" * 20_000_000
    msg, peak = parsed_with_peak(raw)
    assert peak < 80_000_000, f"{peak / 1e6:.0f} MB"
    assert msg.subject == "big" and msg.text.strip() == ""


def test_a_single_line_body_without_line_ends_is_cut_at_a_multiple_of_four() -> None:
    raw = HEAD + b"\r\n" + b"x" * 5_000_001
    skeleton, _ = cut_large_parts(raw, LARGE_PART, 10 * 1024 * 1024)
    assert len(skeleton) - len(HEAD) - 2 == BODY_BYTES and BODY_BYTES % 4 == 0


def test_a_message_that_is_one_large_file_has_it_cut_out_like_a_part() -> None:
    """A scan sent as the whole message (no multipart): 20 MB went whole
    through the email parser, 260 MB for one message; now the file is
    measured from the raw bytes and the parser sees a token."""
    data = bytes(range(256)) * 60_000  # 15 MB
    raw = (
        HEAD
        + b'Content-Type: application/pdf; name="umowa.pdf"\r\n'
        + b"Content-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(data).replace(b"\n", b"\r\n")
    )
    skeleton, cut = cut_large_parts(raw, LARGE_PART, 10 * 1024 * 1024)
    assert len(skeleton) < 1000
    [part] = cut.values()
    assert (part.size, part.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert part.content is None  # over max_attachment_bytes: only in the raw message
    msg, peak = parsed_with_peak(raw)
    assert peak < 80_000_000, f"{peak / 1e6:.0f} MB"
    [attachment] = msg.attachments
    assert (attachment.filename, attachment.size) == ("umowa.pdf", len(data))
    assert attachment.sha256 == hashlib.sha256(data).hexdigest()


def test_a_small_file_sent_as_the_whole_message_is_left_to_the_parser() -> None:
    raw = HEAD + b"Content-Type: application/pdf\r\n\r\n" + b"%PDF" * 100_000
    skeleton, cut = cut_large_parts(raw, LARGE_PART, 10 * 1024 * 1024)
    assert (skeleton, cut) == (raw, {})
