"""Header values to text: RFC 2047 words, raw 8-bit bytes, Message-IDs, dates.

Its own module because every header is decoded the same way (one line, never
raising, Polish code pages guessed) wherever a message is read.
"""

from __future__ import annotations

import email.base64mime
import email.errors
import email.header
import email.quoprimime
import email.utils
import hashlib
import re
from collections.abc import Sequence
from datetime import UTC, datetime

_MSGID_RE = re.compile(r"<([^<>\s]+)>")
_BARE_MSGID_RE = re.compile(r"^\s*([^<>\s@]+@[^<>\s@]+)\s*$")
_CRLF_RE = re.compile(r"[\r\n\t\x0b\x0c]+")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_HEADER_LIMIT = 998 * 4  # longest header value we keep, in characters

#: Longest raw header value read, in characters. A value never decodes to
#: more characters than it has, so this keeps every value we keep whole
#: (even one spelled in the longest encoded words) and bounds the work.
RAW_HEADER_LIMIT = 64 * 1024


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
    """RFC 2047 words and raw 8-bit bytes, both to text; never raises.

    Reads at most RAW_HEADER_LIMIT characters of the value, in time linear
    in them, whatever the sender wrote.
    """
    if value is None:
        return ""
    if isinstance(value, email.header.Header):
        value = str(value)
    value = cut_raw(value)
    if "=?" not in value and value.isascii():
        return value  # the common case: nothing to decode
    raw8 = surrogate_bytes(value)
    if raw8 is not None:
        return _decode_8bit(raw8, hint)
    try:
        parts = decode_words(value)
    except (email.errors.HeaderParseError, ValueError):
        return value
    return "".join(
        chunk if isinstance(chunk, str) else _decode_bytes(chunk, charset)
        for chunk, charset in parts
    )


def cut_raw(value: str, limit: int = RAW_HEADER_LIMIT, *, separator: str = " \t\r\n") -> str:
    """The value cut to `limit` characters at its last `separator` (whitespace
    unless told: an encoded word or a Message-ID is kept whole or dropped,
    an address list is cut between addresses when told ","), or hard at the
    limit when the cut piece has none."""
    if len(value) <= limit:
        return value
    cut = value[:limit]
    end = max(cut.rfind(ch) for ch in separator)
    return cut[:end] if end > 0 else cut


def decode_words(value: str) -> list[tuple[bytes | str, str | None]]:
    """`email.header.decode_header`, in one linear pass.

    The same pairs for the same value (the value itself when it has no
    encoded word; adjacent words in one charset joined as bytes, so a
    character split across words survives; whitespace between words
    dropped), but the stdlib's version pops from the front of lists and
    rescans a line from every `=?`, quadratic in the words of a header.
    One difference: a word must sit on one line; the stdlib treats a
    value whose only word is broken by a line break as encoded text.

    Raises HeaderParseError on broken base64, as the stdlib does.
    """
    words: list[tuple[str, str | None, str | None]] = []
    found = False
    for line in value.splitlines():
        start = 0
        first = True
        for begin, end, charset, encoding, encoded in _encoded_words(line):
            found = True
            _add_unencoded(words, line[start:begin], first)
            first = False
            words.append((encoded, encoding.lower(), charset.lower()))
            start = end
        _add_unencoded(words, line[start:], first)
    if not found:
        return [(value, None)]
    kept = [
        word
        for n, word in enumerate(words)
        # whitespace between two encoded words is not text (RFC 2047 6.2)
        if not (
            0 < n < len(words) - 1 and words[n - 1][1] and words[n + 1][1] and word[0].isspace()
        )
    ]
    out: list[tuple[bytes | str, str | None]] = []
    pieces: list[bytes] = []
    last: str | None = None
    for text, encoding, charset in kept:
        data = _word_bytes(text, encoding)
        if pieces and charset != last:
            out.append(_joined(pieces, last))
            pieces = []
        pieces.append(data)
        last = charset
    out.append(_joined(pieces, last))
    return out


def _add_unencoded(words: list[tuple[str, str | None, str | None]], text: str, first: bool) -> None:
    if first:
        text = text.lstrip()
    if text:
        words.append((text, None, None))


def _joined(pieces: list[bytes], charset: str | None) -> tuple[bytes, str | None]:
    # unencoded runs are joined by a space, the pieces of one charset are not
    return (b" " if charset is None else b"").join(pieces), charset


def _word_bytes(text: str, encoding: str | None) -> bytes:
    if encoding == "q":
        text = email.quoprimime.header_decode(text)
    elif encoding == "b":
        padding = "=" * (-len(text) % 4)  # missing padding is forgiven, as by the stdlib
        try:
            return email.base64mime.decode(text + padding)
        except ValueError as exc:  # binascii.Error
            raise email.errors.HeaderParseError("Base64 decoding error") from exc
    return bytes(text, "raw-unicode-escape")


def _encoded_words(line: str):  # type: ignore[no-untyped-def]
    """(begin, end, charset, encoding, encoded text) of each encoded word in
    one line, leftmost first, as `email.header.ecre` finds them.

    Each `str.find` starts where the last one stopped or fails for the rest
    of the line (a word with no `?=` after it means no word after it has
    one either), so the line is read a bounded number of times.
    """
    begin = line.find("=?")
    while begin >= 0:
        mark = line.find("?", begin + 2)  # the charset ends at the first ?
        if mark < 0:
            return
        if line[mark + 1 : mark + 2] in ("q", "Q", "b", "B") and line[mark + 2 : mark + 3] == "?":
            close = line.find("?=", mark + 3)
            if close < 0:
                return
            yield begin, close + 2, line[begin + 2 : mark], line[mark + 1], line[mark + 3 : close]
            begin = line.find("=?", close + 2)
        else:
            begin = line.find("=?", begin + 1)


def _decode_bytes(data: bytes, charset: str | None) -> str:
    if charset:
        try:
            return data.decode(charset)
        except (LookupError, ValueError):  # unknown, undefined or malformed labels
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
        except (LookupError, ValueError):  # a hint may be any label the sender wrote
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


# --- writing: folding a header value we built ---------------------------------------------

#: RFC 5322 §2.1.1: a line SHOULD stay within 78 characters (and MUST within 998).
LINE = 78


def fold_items(name: str, items: Sequence[str]) -> str:
    """`items` joined by spaces, a new line (CRLF SP) before any item that
    would take its line past 78 columns. An item too long for a line of its
    own stays whole: callers bound their items so that it fits in 998."""
    joined = " ".join(items)
    if len(name) + 2 + len(joined) <= LINE:
        return joined
    lines: list[str] = []
    line: list[str] = []
    width = len(name) + 1  # "Name:", and the space before the first item
    for item in items:
        if line and width + 1 + len(item) > LINE:
            lines.append(" ".join(line))
            line, width = [], 0
        width += len(item) + 1  # the space before it (or the fold's leading one)
        line.append(item)
    lines.append(" ".join(line))
    return "\r\n ".join(lines)


def fold_list(name: str, items: Sequence[str]) -> str:
    """A comma-separated list (addresses) folded after its commas."""
    return fold_items(name, [f"{item}," for item in items[:-1]] + list(items[-1:]))
