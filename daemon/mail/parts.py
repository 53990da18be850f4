"""Attachments taken from the MIME tree as bytes, with exact size and hash.

Its own module because attachments are measured from the parts themselves
(or from `mimecut`'s measurements of parts cut before parsing), not from
mail-parser, and their file names must never be paths.
"""

from __future__ import annotations

import email.message
import email.utils
import hashlib
from collections.abc import Callable

from daemon.core.domain import Attachment
from daemon.mail.attachparts import clean_name
from daemon.mail.headers import decode_header_value, one_line, surrogate_bytes
from daemon.mail.mimecut import TOKEN_PREFIX, CutPart

#: Attachments recorded per message; a mail of thousands of tiny parts keeps
#: the rest in its raw bytes (retrievable) instead of as thousands of rows.
MAX_ATTACHMENTS = 100


def _is_attachment(part: email.message.Message) -> bool:
    if part.is_multipart():
        return False
    if (part.get_content_disposition() or "").lower() == "attachment" or filename_of(part):
        return True
    return part.get_content_type() not in ("text/plain", "text/html")


def take_attachments(
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
    for index, part in enumerate(walk_outer(msg)):
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
            filename=safe_filename(filename_of(part), index, ctype),
            content_type=ctype,
            size=elided.size,
            sha256=elided.sha256,
            content=elided.content,
            content_id=_content_id(part),
        )
    if not _is_attachment(part):
        return None
    return lambda: _attachment(part, index, leaf_bytes(part), limit, ctype)


def _elided(part: email.message.Message, cut: dict[str, CutPart]) -> CutPart | None:
    if not cut or part.is_multipart():
        return None
    payload = part.get_payload()
    if isinstance(payload, str) and payload.startswith(TOKEN_PREFIX):
        return cut.get(payload.strip())
    return None


def walk_outer(msg: email.message.Message):  # type: ignore[no-untyped-def]
    """Parts of this message, not descending into embedded messages."""
    yield msg
    if msg.is_multipart() and not msg.get_content_type().startswith("message/"):
        for sub in msg.get_payload():
            yield from walk_outer(sub)


def _attachment(
    part: email.message.Message, index: int, data: bytes, limit: int, ctype: str
) -> Attachment:
    return Attachment(
        filename=safe_filename(filename_of(part), index, ctype),
        content_type=ctype,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        content=data if len(data) <= limit else None,
        content_id=_content_id(part),
    )


def filename_of(part: email.message.Message) -> str | None:
    """The part's file name: Content-Disposition's `filename`, else
    Content-Type's `name`, RFC 2231 or not, as `get_filename` reads it, but
    from the raw headers. compat32 hands raw 8-bit bytes (a UTF-8 name, as
    many clients send it) to the parameter parser as U+FFFD; here they are
    decoded first, like an 8-bit header: UTF-8, the part's charset, a guess.
    A charset label no codec takes falls back as an unknown one does."""
    source = part
    raw = {name.lower(): value for name, value in reversed(list(part.raw_items()))}
    wanted = ("content-disposition", "content-type")
    if any(isinstance(raw.get(n), str) and surrogate_bytes(raw[n]) is not None for n in wanted):
        hint = _charset_of(part)
        source = email.message.Message()
        for name in wanted:
            value = raw.get(name)
            if isinstance(value, str):
                source[name] = decode_header_value(value, hint)
    value = source.get_param("filename", None, "content-disposition")
    if value is None:
        value = source.get_param("name", None, "content-type")
    if value is None:
        return None
    try:
        return email.utils.collapse_rfc2231_value(value).strip()
    except ValueError:  # "undefined" and other labels whose codec only raises
        text = value[2] if isinstance(value, tuple) else str(value)
        return email.utils.unquote(text).strip()


def _charset_of(part: email.message.Message) -> str | None:
    try:
        return part.get_content_charset()
    except (LookupError, ValueError):
        return None


def _content_id(part: email.message.Message) -> str | None:
    """The part's Content-ID without angle brackets (an inline image the HTML
    shows by `cid:`), or None."""
    value = one_line(str(part.get("Content-ID") or "")).strip().strip("<>").strip()
    return value[:250] or None


def _as_bytes(inner: email.message.Message) -> bytes:
    try:
        return inner.as_bytes()
    except Exception:  # an embedded message the generator cannot re-serialise
        return str(inner).encode("utf-8", "surrogateescape")


def leaf_bytes(part: email.message.Message) -> bytes:
    """Decoded payload; the email package repairs or keeps broken encodings."""
    try:
        data = part.get_payload(decode=True)
    except Exception:  # a part the email package cannot decode: keep its text
        data = str(part.get_payload()).encode("utf-8", "surrogateescape")
    return data if isinstance(data, bytes) else b""


def safe_filename(name: str | None, index: int, ctype: str) -> str:
    """A display name that is never a path: last component, no control chars."""
    text = clean_name(one_line(decode_header_value(name)), 200) if name else ""
    if not text:
        ext = {"message/rfc822": ".eml", "text/plain": ".txt", "text/html": ".html"}.get(
            ctype, ".bin"
        )
        text = f"part-{index}{ext}"
    return text
