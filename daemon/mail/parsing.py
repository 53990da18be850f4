"""Raw bytes -> `ParsedMessage`: the one place that knows how mail is decoded.

mail-parser decodes headers, addresses and text bodies (it survives broken MIME
and odd charsets and reports defects instead of raising). Attachments are taken
from the MIME tree (`parts`), as bytes, so their size and hash are exact and
large ones can be dropped from memory before mail-parser walks the message.
Header values are decoded by `headers`, HTML bodies bounded and sanitised by
`html`; this module puts a message together from them, within its budget.
"""

from __future__ import annotations

import codecs
import email
import email.header
import email.message
import email.utils
import logging
import re
import time
from dataclasses import dataclass

import mailparser
import mailparser.const as mailparser_const

from daemon.core.domain import Address, ParsedMessage
from daemon.core.errors import NotMail
from daemon.mail.bounded import bound_headers, for_mail_parser
from daemon.mail.headers import (
    decode_header_value,
    message_id_of,
    message_ids,
    one_line,
    parse_date,
    surrogate_bytes,
)
from daemon.mail.html import GUARD_FROM, html_to_text, sanitize_html
from daemon.mail.mimecut import cut_large_parts
from daemon.mail.parts import MAX_ATTACHMENTS, leaf_bytes, take_attachments, walk_outer

# mail-parser logs a warning for every content type it does not handle
# (rfc822-headers, pgp-encrypted, ...): those are ours to judge, not log noise.
logging.getLogger("mailparser").setLevel(logging.ERROR)

#: Charsets tried, in order, for raw 8-bit header bytes that declare none.
#: Polish mail from old clients is windows-1250 or iso-8859-2 far more often
#: than latin-1, and cp1250 decodes every iso-8859-2 letter of Polish but two.
FALLBACK_CHARSETS = ("utf-8", "cp1250", "iso-8859-2", "latin-1")  # for bodies


_BODY_LIMIT = 2_000_000  # longest text body we keep, in characters
_SENDER_HEADERS = ("from", "sender", "return-path", "reply-to")
#: Deeper MIME nesting than this is not mail anyone wrote: it is quarantined
#: (whole, with the reason) before the recursive walks of the email package,
#: mail-parser and our own could exhaust the stack.
MAX_DEPTH = 100

#: A leaf body bigger than this (encoded) is measured from the raw bytes and
#: cut out before parsing (`mimecut`), so memory stays bounded.
LARGE_PART = 1024 * 1024


#: CPU seconds one message's parsing and sanitising may take, unless
#: `limits.max_parse_seconds` says otherwise.
PARSE_SECONDS = 10


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
    bound_headers(msg)
    budget.check("reading the MIME structure")
    depth = _depth(msg)
    if depth > MAX_DEPTH:
        raise NotMail(f"MIME parts nested {depth} deep (limit {MAX_DEPTH})")
    keys = [k.lower() for k in msg]
    if not keys:
        raise NotMail("no header fields: not an RFC 5322 message")
    if not any(k in _SENDER_HEADERS for k in keys):
        raise NotMail("no From, Sender or Return-Path header: nobody to answer")

    attachments, more = take_attachments(msg, max_attachment_bytes, cut)
    _repair_charsets(msg)
    hint = _charset_hint(msg)  # after the repair: the charset the text is read in
    headers = _headers(msg, hint)
    # Nothing reads mail-parser's analysis of the relay hops (a tenth of its
    # time per message) or its decoding of Subject and the like: those stay
    # in `headers`, mail-parser sees only what it is read for.
    mp = mailparser.MailParser(for_mail_parser(msg))
    budget.check("decoding")
    sender = _first_address(mp, msg, "from", hint) or _first_address(mp, msg, "sender", hint)
    if sender is None:
        return_path = message_ids(headers.get("return-path", ("",))[0], allow_bare=True)
        sender = Address(return_path[0].lower()) if return_path else None
    if sender is None:
        raise NotMail("no usable sender address in From, Sender or Return-Path")

    html_parts = [p for p in mp.text_html if p]
    # Sanitised once, first: what is stored, shown and turned into text (which
    # agents get forwarded) never carries scripts, handlers or javascript: links.
    html = None
    if html_parts:
        html = "\n".join(html_parts)[:_BODY_LIMIT]
        if len(html) > GUARD_FROM:
            _guard_html(html)
        html = sanitize_html(html)
        budget.check("sanitising HTML")
    text = "\n".join(p for p in mp.text_plain if p)
    if not text.strip() and html:
        text = html_to_text(html)
        budget.check("turning HTML into text")
    text = text.replace("\r\n", "\n").replace("\r", "\n")[:_BODY_LIMIT]

    message_id, derived = message_id_of(headers, raw)
    return ParsedMessage(
        message_id=message_id,
        message_id_derived=derived,
        subject=one_line(headers.get("subject", ("",))[0]),
        sender=sender,
        to=_addresses(mp, msg, "to", hint),
        cc=_addresses(mp, msg, "cc", hint),
        reply_to=_addresses(mp, msg, "reply-to", hint),
        date=parse_date(headers.get("date", ("",))[0]),
        in_reply_to=tuple(message_ids(headers.get("in-reply-to", ("",))[0])),
        references=tuple(message_ids(" ".join(headers.get("references", ())))),
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


def _guard_html(html: str) -> None:
    """Refuse HTML that would cost the sanitiser too much (`htmltree`; imported
    here: 13 ms to load, and only HTML over GUARD_FROM needs it)."""
    from daemon.mail.htmltree import MAX_HTML_DEPTH, html_depth

    depth = html_depth(html)
    if depth > MAX_HTML_DEPTH:
        raise NotMail(
            f"parse budget: HTML nested {depth} deep; sanitising is bounded to "
            f"{MAX_HTML_DEPTH} levels to stay within limits.max_parse_seconds"
        )


def _headers(msg: email.message.Message, hint: str | None) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for name, value in msg.raw_items():
        key = one_line(str(name)).lower()
        if not key:
            continue
        out.setdefault(key, []).append(one_line(decode_header_value(value, hint)))
    return {k: tuple(v) for k, v in out.items()}


def _charset_hint(msg: email.message.Message) -> str | None:
    """The charset of the first text part: raw 8-bit headers are usually in it."""
    for part in walk_outer(msg):
        if part.get_content_maintype() == "text":
            return part.get_content_charset()
    return None


def _addresses(
    mp: mailparser.MailParser, msg: email.message.Message, name: str, hint: str | None
) -> tuple[Address, ...]:
    found: list[Address] = []
    seen: set[str] = set()
    raw_values = msg.get_all(name) or []
    # mail-parser reads only its own list of address headers (not Sender, for
    # one); for the others, and for raw 8-bit values, the email package does.
    # An encoded display name is decoded only after the addresses are split:
    # decoded first, a name such as "Jan\r\nBcc: x@evil" broke the address.
    if name in mailparser_const.ADDRESSES_HEADERS and not any(
        surrogate_bytes(str(v)) is not None or "=?" in str(v) for v in raw_values
    ):
        pairs = [(n, a) for n, a in (mp._header_value(name) or []) if a]
    else:
        pairs = email.utils.getaddresses([_quote_encoded_words(str(v), hint) for v in raw_values])
    for display, addr in pairs:
        addr = one_line(addr).strip("<> ").lower()
        if "@" not in addr or addr in seen or " " in addr:
            continue
        seen.add(addr)
        found.append(Address(addr=addr, name=one_line(display)))
    return tuple(found)


_ENCODED_RUN_RE = re.compile(
    r"=\?[^?\s]+\?[qQbB]\?[^?\s]*\?=(?:\s+=\?[^?\s]+\?[qQbB]\?[^?\s]*\?=)*"
)


def _quote_encoded_words(value: str, hint: str | None) -> str:
    """Each run of RFC 2047 words as one quoted string of its decoded text,
    on one line: what it decodes to (commas, colons, CR/LF) is a name, never
    address syntax."""

    def quoted(match: re.Match[str]) -> str:
        text = one_line(decode_header_value(match.group(0), hint))
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    if surrogate_bytes(value) is not None:  # raw 8-bit: to text first
        value = decode_header_value(value, hint)
    return _ENCODED_RUN_RE.sub(quoted, value)


def _first_address(
    mp: mailparser.MailParser, msg: email.message.Message, name: str, hint: str | None
) -> Address | None:
    found = _addresses(mp, msg, name, hint)
    return found[0] if found else None


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
    _repair_param_charsets(msg)
    for part in walk_outer(msg):
        if part.is_multipart() or part.get_content_maintype() != "text":
            continue
        charset = part.get_content_charset()
        if not charset:
            continue
        try:
            codecs.lookup(charset)
        except (LookupError, ValueError):  # unknown, or no codec name at all ("ascii\0")
            data = leaf_bytes(part)
            for candidate in FALLBACK_CHARSETS:
                try:
                    data.decode(candidate)
                except UnicodeDecodeError:
                    continue
                part.set_param("charset", candidate)
                break


def _repair_param_charsets(msg: email.message.Message) -> None:
    """Relabel RFC 2231 parameters whose charset makes decoding raise (the
    `undefined` codec, a NUL in the label, `idna` on a long name) as
    latin-1: the email package gives an unknown label that fallback, and
    every reader of the name (ours, mail-parser's `get_filename`) then gets
    the same text instead of an exception that would quarantine the mail."""
    for part in msg.walk():  # mail-parser reads embedded messages' parts too
        for header in ("content-disposition", "content-type"):
            if "*" not in str(part.get(header, "")):
                continue  # no RFC 2231 parameter (`name*=`): nothing to decode
            bad = [
                (name, value)
                for name, value in (part.get_params(header=header) or [])[1:]
                if isinstance(value, tuple) and not _decodable(value)
            ]
            # each repair rewrites the header: a few are a broken client,
            # more are an attack, left to fail (and be quarantined) as before
            for name, value in bad[:_PARAM_REPAIRS]:
                part.set_param(
                    name, value[2], header=header, charset="iso-8859-1", language=value[1] or ""
                )


_PARAM_REPAIRS = 10


def _decodable(value: tuple[str, str, str]) -> bool:
    try:
        email.utils.collapse_rfc2231_value(value)
    except ValueError:
        return False
    return True


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
