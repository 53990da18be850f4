"""Raw bytes -> `ParsedMessage`: the one place that knows how mail is decoded.

mail-parser decodes headers, addresses and text bodies (it survives broken MIME
and odd charsets and reports defects instead of raising). Attachments are taken
from the MIME tree here, as bytes, so their size and hash are exact and large
ones can be dropped from memory before mail-parser walks the message.
"""

from __future__ import annotations

import codecs
import email
import email.header
import email.message
import email.utils
import hashlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import html2text
import mailparser
import mailparser.const as mailparser_const
import nh3

from daemon.core.domain import Address, Attachment, ParsedMessage
from daemon.core.errors import NotMail
from daemon.mail.attachparts import clean_name
from daemon.mail.mimecut import TOKEN_PREFIX, CutPart, cut_large_parts

# mail-parser logs a warning for every content type it does not handle
# (rfc822-headers, pgp-encrypted, ...): those are ours to judge, not log noise.
logging.getLogger("mailparser").setLevel(logging.ERROR)

#: Charsets tried, in order, for raw 8-bit header bytes that declare none.
#: Polish mail from old clients is windows-1250 or iso-8859-2 far more often
#: than latin-1, and cp1250 decodes every iso-8859-2 letter of Polish but two.
FALLBACK_CHARSETS = ("utf-8", "cp1250", "iso-8859-2", "latin-1")  # for bodies

_MSGID_RE = re.compile(r"<([^<>\s]+)>")
_BARE_MSGID_RE = re.compile(r"^\s*([^<>\s@]+@[^<>\s@]+)\s*$")
_CRLF_RE = re.compile(r"[\r\n\t\x0b\x0c]+")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_HEADER_LIMIT = 998 * 4  # longest header value we keep, in characters
_BODY_LIMIT = 2_000_000  # longest text body we keep, in characters
_SENDER_HEADERS = ("from", "sender", "return-path", "reply-to")

#: Deeper MIME nesting than this is not mail anyone wrote: it is quarantined
#: (whole, with the reason) before the recursive walks of the email package,
#: mail-parser and our own could exhaust the stack.
MAX_DEPTH = 100

#: A leaf body bigger than this (encoded) is measured from the raw bytes and
#: cut out before parsing (`mimecut`), so memory stays bounded.
LARGE_PART = 1024 * 1024
#: Attachments recorded per message; a mail of thousands of tiny parts keeps
#: the rest in its raw bytes (retrievable) instead of as thousands of rows.
MAX_ATTACHMENTS = 100

#: CPU seconds one message's parsing and sanitising may take, unless
#: `limits.max_parse_seconds` says otherwise.
PARSE_SECONDS = 10
#: HTML nested deeper than this is not handed to nh3: html5ever's cost grows
#: with the depth (200,000 nested <div>s took 188 s, 1,000 take milliseconds)
#: and C code cannot be stopped half-way, so the depth is checked before.
MAX_HTML_DEPTH = 1000
#: Elements that never nest: void, or closed by the next of their kind.
_FLAT_ELEMENTS = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "colgroup",
        "dd",
        "dt",
        "embed",
        "hr",
        "img",
        "input",
        "li",
        "link",
        "meta",
        "option",
        "optgroup",
        "p",
        "param",
        "rb",
        "rp",
        "rt",
        "rtc",
        "source",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "track",
        "wbr",
    ]
)
_TAG_RE = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]*+)[^<>]*+>")  # possessive: linear


@dataclass(slots=True)
class ParseBudget:
    """CPU time one message may spend in parsing and sanitising.

    Checked between stages: each stage is linear in the message by
    construction (`mimecut` walks only the real MIME structure, nh3 only
    gets HTML of bounded depth), so a message over the budget is caught
    one stage late at worst, and quarantined with the reason.
    """

    seconds: float
    started: float = 0.0

    def __post_init__(self) -> None:
        self.started = time.thread_time()

    def check(self, stage: str) -> None:
        spent = time.thread_time() - self.started
        if spent > self.seconds:
            raise NotMail(
                f"parse budget spent: {spent:.1f} s of CPU by the end of {stage} "
                f"(limits.max_parse_seconds = {self.seconds:g})"
            )


def parse_message(
    raw: bytes,
    *,
    max_attachment_bytes: int = 10 * 1024 * 1024,
    max_parse_seconds: float = PARSE_SECONDS,
) -> ParsedMessage:
    """Decode one message; raise NotMail when the bytes are not mail at all,
    or when no parser can make sense of them.

    Parsing is a pure function of the bytes: what fails once fails on every
    retry, so any failure to read them is an answer (quarantine, with the
    reason and the raw message kept, for `spocd queue retry` after a fix),
    not a temporary error.
    """
    try:
        return _parse(raw, max_attachment_bytes, ParseBudget(max_parse_seconds))
    except NotMail:
        raise
    except RecursionError as exc:
        raise NotMail(f"MIME parts nested too deeply to read (limit {MAX_DEPTH})") from exc
    except MemoryError:
        raise
    except Exception as exc:  # mail-parser or the email package on hostile MIME
        raise NotMail(f"unreadable MIME ({type(exc).__name__}: {exc})"[:500]) from exc


def _parse(raw: bytes, max_attachment_bytes: int, budget: ParseBudget) -> ParsedMessage:
    if not raw or not raw.strip():
        raise NotMail("empty input")
    skeleton, cut = cut_large_parts(raw, LARGE_PART, max_attachment_bytes)
    budget.check("cutting large parts")
    msg = email.message_from_bytes(skeleton)  # recursive: a level per nested part
    budget.check("reading the MIME structure")
    depth = _depth(msg)
    if depth > MAX_DEPTH:
        raise NotMail(f"MIME parts nested {depth} deep (limit {MAX_DEPTH})")
    keys = [k.lower() for k in msg]
    if not keys:
        raise NotMail("no header fields: not an RFC 5322 message")
    if not any(k in _SENDER_HEADERS for k in keys):
        raise NotMail("no From, Sender or Return-Path header: nobody to answer")

    attachments, more = _take_attachments(msg, max_attachment_bytes, cut)
    _repair_charsets(msg)
    mp = mailparser.MailParser(msg)
    budget.check("decoding")
    headers = _headers(msg)
    sender = _first_address(mp, msg, "from") or _first_address(mp, msg, "sender")
    if sender is None:
        return_path = _ids(headers.get("return-path", ("",))[0], allow_bare=True)
        sender = Address(return_path[0].lower()) if return_path else None
    if sender is None:
        raise NotMail("no usable sender address in From, Sender or Return-Path")

    html_parts = [p for p in mp.text_html if p]
    # Sanitised once, first: what is stored, shown and turned into text (which
    # agents get forwarded) never carries scripts, handlers or javascript: links.
    html = None
    if html_parts:
        html = "\n".join(html_parts)[:_BODY_LIMIT]
        depth = html_depth(html)
        if depth > MAX_HTML_DEPTH:
            raise NotMail(
                f"parse budget: HTML nested {depth} deep; sanitising is bounded to "
                f"{MAX_HTML_DEPTH} levels to stay within limits.max_parse_seconds"
            )
        html = sanitize_html(html)
        budget.check("sanitising HTML")
    text = "\n".join(p for p in mp.text_plain if p)
    if not text.strip() and html:
        text = html_to_text(html)
        budget.check("turning HTML into text")
    text = text.replace("\r\n", "\n").replace("\r", "\n")[:_BODY_LIMIT]

    message_id, derived = _message_id(headers, raw)
    return ParsedMessage(
        message_id=message_id,
        message_id_derived=derived,
        subject=_one_line(headers.get("subject", ("",))[0]),
        sender=sender,
        to=_addresses(mp, msg, "to"),
        cc=_addresses(mp, msg, "cc"),
        reply_to=_addresses(mp, msg, "reply-to"),
        date=_date(headers.get("date", ("",))[0]),
        in_reply_to=tuple(_ids(headers.get("in-reply-to", ("",))[0])),
        references=tuple(_ids(" ".join(headers.get("references", ())))),
        headers=headers,
        text=text,
        html=html,
        attachments=attachments,
        defects=_defects(mp)
        + (
            (f"{more} more attachments than {MAX_ATTACHMENTS}: kept in the raw message only",)
            if more
            else ()
        ),
        content_type=msg.get_content_type(),
        size=len(raw),
    )


def parse_many(
    raws: list[bytes], max_attachment_bytes: int, max_parse_seconds: float = PARSE_SECONDS
) -> list[ParsedMessage | NotMail]:
    """Parse a batch; input that is not mail gives its NotMail instead of raising
    (a worker process returns both kinds to the caller)."""
    out: list[ParsedMessage | NotMail] = []
    for raw in raws:
        try:
            out.append(
                parse_message(
                    raw,
                    max_attachment_bytes=max_attachment_bytes,
                    max_parse_seconds=max_parse_seconds,
                )
            )
        except NotMail as exc:
            out.append(exc)
    return out


def html_to_text(html: str) -> str:
    """A readable plain-text rendering of an HTML-only body."""
    converter = html2text.HTML2Text()
    converter.body_width = 0
    converter.ignore_images = True
    converter.ignore_emphasis = True
    converter.ignore_links = False
    try:
        return converter.handle(html).strip()
    except Exception:  # html2text on hostile markup: fall back to stripped tags
        return re.sub(r"<[^>]*>", " ", html)


def html_depth(html: str) -> int:
    """How deep the elements of `html` nest, counted in one pass over its
    tags (elements that cannot nest are left out); an upper bound of what
    an HTML parser builds."""
    depth = deepest = 0
    for match in _TAG_RE.finditer(html):
        if match.group(2).lower() in _FLAT_ELEMENTS or match.group(0).endswith("/>"):
            continue
        if match.group(1):
            depth = max(depth - 1, 0)
        else:
            depth += 1
            deepest = max(deepest, depth)
    return deepest


def sanitize_html(html: str) -> str:
    """HTML safe to show or forward: no scripts, handlers, or remote tricks.
    `cid:` links stay: they name a part of the same message (an inline image
    that must stay inline when the mail is passed on)."""
    return nh3.clean(html, url_schemes=_URL_SCHEMES)


_URL_SCHEMES = nh3.ALLOWED_URL_SCHEMES | {"cid"}


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
    raw8 = _surrogate_bytes(value)
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


def _surrogate_bytes(value: str) -> bytes | None:
    """compat32 carries raw 8-bit header bytes as surrogate escapes."""
    if value.isascii() or not any("\udc80" <= ch <= "\udcff" for ch in value):
        return None
    return value.encode("ascii", "surrogateescape")


def _one_line(value: str) -> str:
    """Fold a header to one line: CR/LF can never reach an outgoing header."""
    return _CONTROL_RE.sub("", _CRLF_RE.sub(" ", value)).strip()[:_HEADER_LIMIT]


def _headers(msg: email.message.Message) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    hint = _charset_hint(msg)
    for name, value in msg.raw_items():
        key = _one_line(str(name)).lower()
        if not key:
            continue
        out.setdefault(key, []).append(_one_line(decode_header_value(value, hint)))
    return {k: tuple(v) for k, v in out.items()}


def _charset_hint(msg: email.message.Message) -> str | None:
    """The charset of the first text part: raw 8-bit headers are usually in it."""
    for part in _walk_outer(msg):
        if part.get_content_maintype() == "text":
            return part.get_content_charset()
    return None


def _addresses(
    mp: mailparser.MailParser, msg: email.message.Message, name: str
) -> tuple[Address, ...]:
    found: list[Address] = []
    seen: set[str] = set()
    raw_values = msg.get_all(name) or []
    # mail-parser reads only its own list of address headers (not Sender, for
    # one); for the others, and for raw 8-bit values, the email package does.
    # An encoded display name is decoded only after the addresses are split:
    # decoded first, a name such as "Jan\r\nBcc: x@evil" broke the address.
    if name in mailparser_const.ADDRESSES_HEADERS and not any(
        _surrogate_bytes(str(v)) is not None or "=?" in str(v) for v in raw_values
    ):
        pairs = [(n, a) for n, a in (mp._header_value(name) or []) if a]
    else:
        hint = _charset_hint(msg)
        pairs = email.utils.getaddresses([_quote_encoded_words(str(v), hint) for v in raw_values])
    for display, addr in pairs:
        addr = _one_line(addr).strip("<> ").lower()
        if "@" not in addr or addr in seen or " " in addr:
            continue
        seen.add(addr)
        found.append(Address(addr=addr, name=_one_line(display)))
    return tuple(found)


_ENCODED_RUN_RE = re.compile(
    r"=\?[^?\s]+\?[qQbB]\?[^?\s]*\?=(?:\s+=\?[^?\s]+\?[qQbB]\?[^?\s]*\?=)*"
)


def _quote_encoded_words(value: str, hint: str | None) -> str:
    """Each run of RFC 2047 words as one quoted string of its decoded text,
    on one line: what it decodes to (commas, colons, CR/LF) is a name, never
    address syntax."""

    def quoted(match: re.Match[str]) -> str:
        text = _one_line(decode_header_value(match.group(0), hint))
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    if _surrogate_bytes(value) is not None:  # raw 8-bit: to text first
        value = decode_header_value(value, hint)
    return _ENCODED_RUN_RE.sub(quoted, value)


def _first_address(
    mp: mailparser.MailParser, msg: email.message.Message, name: str
) -> Address | None:
    found = _addresses(mp, msg, name)
    return found[0] if found else None


def _ids(value: str, *, allow_bare: bool = False) -> list[str]:
    ids = _MSGID_RE.findall(value or "")
    if not ids and (allow_bare or value):
        bare = _BARE_MSGID_RE.match(value or "")
        if bare:
            ids = [bare.group(1)]
    return [i[:_HEADER_LIMIT] for i in ids]


def _message_id(headers: dict[str, tuple[str, ...]], raw: bytes) -> tuple[str, bool]:
    ids = _ids(headers.get("message-id", ("",))[0])
    if ids and "@" in ids[0]:
        return ids[0], False
    return derived_message_id(raw), True


def _date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed


def _defects(mp: mailparser.MailParser) -> tuple[str, ...]:
    out: list[str] = []
    for entry in mp.defects or []:
        if isinstance(entry, dict):
            for where, items in entry.items():
                out.extend(f"{where}: {item}" for item in items)
        else:
            out.append(str(entry))
    return tuple(out[:100])


def _repair_charsets(msg: email.message.Message) -> None:
    """Give text parts with an unknown charset the one their bytes decode in,
    so a Polish body labelled `x-unknown` still reads as Polish."""
    for part in _walk_outer(msg):
        if part.is_multipart() or part.get_content_maintype() != "text":
            continue
        charset = part.get_content_charset()
        if not charset:
            continue
        try:
            codecs.lookup(charset)
        except LookupError:
            data = _leaf_bytes(part)
            for candidate in FALLBACK_CHARSETS:
                try:
                    data.decode(candidate)
                except UnicodeDecodeError:
                    continue
                part.set_param("charset", candidate)
                break


def _is_attachment(part: email.message.Message) -> bool:
    if part.is_multipart():
        return False
    if (part.get_content_disposition() or "").lower() == "attachment" or part.get_filename():
        return True
    return part.get_content_type() not in ("text/plain", "text/html")


def _take_attachments(
    msg: email.message.Message, limit: int, cut: dict[str, CutPart]
) -> tuple[tuple[Attachment, ...], int]:
    """Collect attachments (and embedded messages) as bytes, the first
    MAX_ATTACHMENTS of them; also how many more there were.

    Embedded `message/rfc822` parts are kept whole as an attachment, because a
    first-line escalation carries the original incident that way. Parts cut
    before parsing (`mimecut`) are taken from their measurements.
    """
    found: list[Attachment] = []
    more = 0
    for index, part in enumerate(_walk_outer(msg)):
        make = _attachment_of(part, index, limit, cut)
        if make is None:
            continue
        if len(found) < MAX_ATTACHMENTS:
            found.append(make())
        else:
            more += 1
    return tuple(found), more


def _attachment_of(
    part: email.message.Message, index: int, limit: int, cut: dict[str, CutPart]
) -> Callable[[], Attachment] | None:
    """How to read the part as an attachment (not done yet: past the cap it
    is only counted), or None when it is none."""
    ctype = part.get_content_type()
    if ctype in ("message/rfc822", "message/delivery-status") and part.is_multipart():
        blocks = part.get_payload()
        return lambda: _attachment(
            part, index, b"\n".join(_as_bytes(block) for block in blocks), limit, ctype
        )
    elided = _elided(part, cut)
    if elided is not None:
        part.set_payload("")  # the token must not reach the text bodies
        return lambda: Attachment(
            filename=safe_filename(part.get_filename(), index, ctype),
            content_type=ctype,
            size=elided.size,
            sha256=elided.sha256,
            content=elided.content,
            content_id=_content_id(part),
        )
    if not _is_attachment(part):
        return None
    return lambda: _attachment(part, index, _leaf_bytes(part), limit, ctype)


def _elided(part: email.message.Message, cut: dict[str, CutPart]) -> CutPart | None:
    if not cut or part.is_multipart():
        return None
    payload = part.get_payload()
    if isinstance(payload, str) and payload.startswith(TOKEN_PREFIX):
        return cut.get(payload.strip())
    return None


def _depth(msg: email.message.Message) -> int:
    """How deep the MIME tree goes, embedded messages included (no recursion)."""
    deepest = 0
    stack = [(msg, 1)]
    while stack:
        part, level = stack.pop()
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            break
        payload = part.get_payload() if part.is_multipart() else None
        if isinstance(payload, list):
            stack.extend(
                (sub, level + 1) for sub in payload if isinstance(sub, email.message.Message)
            )
    return deepest


def _walk_outer(msg: email.message.Message):  # type: ignore[no-untyped-def]
    """Parts of this message, not descending into embedded messages."""
    yield msg
    if msg.is_multipart() and not msg.get_content_type().startswith("message/"):
        for sub in msg.get_payload():
            yield from _walk_outer(sub)


def _attachment(
    part: email.message.Message, index: int, data: bytes, limit: int, ctype: str
) -> Attachment:
    return Attachment(
        filename=safe_filename(part.get_filename(), index, ctype),
        content_type=ctype,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        content=data if len(data) <= limit else None,
        content_id=_content_id(part),
    )


def _content_id(part: email.message.Message) -> str | None:
    """The part's Content-ID without angle brackets (an inline image the HTML
    shows by `cid:`), or None."""
    value = _one_line(str(part.get("Content-ID") or "")).strip().strip("<>").strip()
    return value[:250] or None


def _as_bytes(inner: email.message.Message) -> bytes:
    try:
        return inner.as_bytes()
    except Exception:  # an embedded message the generator cannot re-serialise
        return str(inner).encode("utf-8", "surrogateescape")


def _leaf_bytes(part: email.message.Message) -> bytes:
    """Decoded payload; the email package repairs or keeps broken encodings."""
    try:
        data = part.get_payload(decode=True)
    except Exception:  # a part the email package cannot decode: keep its text
        data = str(part.get_payload()).encode("utf-8", "surrogateescape")
    return data if isinstance(data, bytes) else b""


def find_attachment(raw: bytes, sha256: str, max_parts: int = 1000) -> bytes | None:
    """The bytes of the attachment with this SHA-256 in a raw message, looked
    for in embedded messages too (an escalation's original): for one whose
    bytes were over the limit when it came. Only decoded from its transfer
    encoding, nothing else."""
    queue = [raw]
    seen = 0
    while queue and seen < max_parts:
        msg = parse_message(queue.pop(0), max_attachment_bytes=len(raw) + 1)
        for a in msg.attachments:
            seen += 1
            if a.sha256 == sha256 and a.content is not None:
                return a.content
            if a.content_type == "message/rfc822" and a.content is not None:
                queue.append(a.content)
    return None


def safe_filename(name: str | None, index: int, ctype: str) -> str:
    """A display name that is never a path: last component, no control chars."""
    text = clean_name(_one_line(decode_header_value(name)), 200) if name else ""
    if not text:
        ext = {"message/rfc822": ".eml", "text/plain": ".txt", "text/html": ".html"}.get(
            ctype, ".bin"
        )
        text = f"part-{index}{ext}"
    return text
