"""Header values to text: RFC 2047 words, raw 8-bit bytes, Message-IDs, dates.

Its own module because every header is decoded the same way (one line, never
raising, Polish code pages guessed) wherever a message is read.
"""

from __future__ import annotations

import email.errors
import email.header
import email.utils
import hashlib
import re
from datetime import UTC, datetime

_MSGID_RE = re.compile(r"<([^<>\s]+)>")
_BARE_MSGID_RE = re.compile(r"^\s*([^<>\s@]+@[^<>\s@]+)\s*$")
_CRLF_RE = re.compile(r"[\r\n\t\x0b\x0c]+")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_HEADER_LIMIT = 998 * 4  # longest header value we keep, in characters


def derived_message_id(raw: bytes) -> str:
    """A stable id for a message without Message-ID, from its sender, date,
    subject and body, so a re-delivery with extra Received lines matches."""
    head, _, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    digest = hashlib.sha256()
    for line in head.split(b"\n"):
        name = line.split(b":", 1)[0].strip().lower()
        if name in (b"from", b"date", b"subject", b"to"):
            digest.update(line.strip() + b"\n")
    digest.update(b"\n" + body.rstrip())
    return f"{digest.hexdigest()[:40]}@derived.invalid"


def decode_header_value(value: str | email.header.Header | None, hint: str | None = None) -> str:
    """RFC 2047 words and raw 8-bit bytes, both to text; never raises."""
    if value is None:
        return ""
    if isinstance(value, email.header.Header):
        value = str(value)
    if "=?" not in value and value.isascii():
        return value  # the common case: nothing to decode
    raw8 = surrogate_bytes(value)
    if raw8 is not None:
        return _decode_8bit(raw8, hint)
    try:
        parts = email.header.decode_header(value)
    except (email.errors.HeaderParseError, ValueError):
        return value
    return "".join(
        chunk if isinstance(chunk, str) else _decode_bytes(chunk, charset)
        for chunk, charset in parts
    )


def _decode_bytes(data: bytes, charset: str | None) -> str:
    if charset:
        try:
            return data.decode(charset)
        except (LookupError, UnicodeDecodeError):
            pass
    return _decode_8bit(data)


def _decode_8bit(data: bytes, hint: str | None = None) -> str:
    """Undeclared 8-bit text: UTF-8, the message's own charset, or the
    Polish code page its bytes point to."""
    for charset in ("utf-8", hint, _polish_guess(data)):
        if not charset:
            continue
        try:
            return data.decode(charset)
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode("latin-1")


#: Bytes where windows-1250 and iso-8859-2 differ on Polish letters:
#: 0x8c-0x9f are letters in cp1250 (ś, ź, Ś, Ź) and controls in iso-8859-2;
#: 0xa1 0xa6 0xac 0xb1 0xb6 0xbc are letters in iso-8859-2 (Ą Ś Ź ą ś ź).
_CP1250_ONLY = frozenset(range(0x80, 0xA0))
_ISO_8859_2_ONLY = frozenset((0xA1, 0xA6, 0xAC, 0xB1, 0xB6, 0xBC))


def _polish_guess(data: bytes) -> str:
    present = set(data)
    if present & _CP1250_ONLY:
        return "cp1250"
    if present & _ISO_8859_2_ONLY:
        return "iso-8859-2"
    return "cp1250"


def surrogate_bytes(value: str) -> bytes | None:
    """compat32 carries raw 8-bit header bytes as surrogate escapes."""
    if value.isascii() or not any("\udc80" <= ch <= "\udcff" for ch in value):
        return None
    return value.encode("ascii", "surrogateescape")


def one_line(value: str) -> str:
    """Fold a header to one line: CR/LF can never reach an outgoing header."""
    return _CONTROL_RE.sub("", _CRLF_RE.sub(" ", value)).strip()[:_HEADER_LIMIT]


def message_ids(value: str, *, allow_bare: bool = False) -> list[str]:
    ids = _MSGID_RE.findall(value or "")
    if not ids and (allow_bare or value):
        bare = _BARE_MSGID_RE.match(value or "")
        if bare:
            ids = [bare.group(1)]
    return [i[:_HEADER_LIMIT] for i in ids]


def message_id_of(headers: dict[str, tuple[str, ...]], raw: bytes) -> tuple[str, bool]:
    ids = message_ids(headers.get("message-id", ("",))[0])
    if ids and "@" in ids[0]:
        return ids[0], False
    return derived_message_id(raw), True


def parse_date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed
