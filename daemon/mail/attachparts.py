"""Attachments in outgoing mail: which travel, how their parts are written,
and how the outbox keeps them once.

Pure: no I/O. The composer writes each attachment's body as a reference line
(`=spocd-blob=<sha256>=`); the outbox stores that compact message and
`expand` puts the base64 bytes back when it is sent. The line cannot occur
otherwise: quoted-printable always writes "=" as "=3D", base64 has "=" only
as trailing padding, and a header line starts with its name.
"""

from __future__ import annotations

import base64
import email.policy
import re
import string
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import quote

from daemon.core.domain import Attachment

MARK = b"=spocd-blob="
_REF = re.compile(rb"^=spocd-blob=([0-9a-f]{64})=\r?$", re.MULTILINE)
_TOKEN = re.compile(r"^[A-Za-z0-9!#$&^_.+-]{1,64}/[A-Za-z0-9!#$&^_.+-]{1,64}$")
_BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
MAX_NAME = 120


@dataclass(frozen=True, slots=True)
class Item:
    """An attachment of a ticket message, with its id for `spocd attachment`.
    `content_id`: set for an inline image its HTML refers to by `cid:`."""

    id: int | None
    attachment: Attachment
    content_id: str | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """What one mail carries (`attached`) and lists only (`listed`)."""

    attached: tuple[Item, ...] = ()
    listed: tuple[Item, ...] = ()


#: A mail without attachments.
NO_FILES = Plan()


def items_of(
    ids: Sequence[int | None], attachments: Sequence[Attachment], html: str | None
) -> list[Item]:
    """The attachments of one message as items; an image its HTML shows by
    `cid:` keeps its Content-ID (when that is plain ASCII) to stay inline."""
    shown = cid_refs(html) if attachments else set()  # most mail has none to look for
    items = []
    for item_id, a in zip(ids, attachments, strict=False):
        cid = a.content_id
        inline = (
            cid is not None
            and cid.lower() in shown
            and a.content_type.lower().startswith("image/")
            and re.fullmatch(r"[!-;=?-~]{1,200}", cid) is not None
        )
        items.append(Item(item_id, a, cid if inline else None))
    return items


def plan(items: Sequence[Item], cap: int) -> Plan:
    """Smallest first while the total stays within `cap` (so the largest go
    last, or are listed); one whose bytes were not kept is always listed."""
    attached: list[Item] = []
    listed: list[Item] = []
    total = 0
    for item in sorted(items, key=lambda i: i.attachment.size):
        a = item.attachment
        if a.content is not None and total + a.size <= cap:
            attached.append(item)
            total += a.size
        else:
            listed.append(item)
    return Plan(tuple(attached), tuple(listed))


def safe_name(name: str, index: int = 0) -> str:
    """A name fit for any mail client and disk (see `clean_name`), at most
    MAX_NAME characters; `attachment-N.bin` when nothing is left."""
    return clean_name(name, MAX_NAME) or f"attachment-{index}.bin"


_LEADING = re.compile(r"^[\s.]+")


def clean_name(name: str, limit: int) -> str:
    """Last path component, no controls, no bidi overrides (which show
    "exe.jpg" for "gpj.exe"), no leading dots; shortened to `limit`
    characters keeping the extension. Empty when nothing is left."""
    text = "".join(
        ch
        for ch in name
        if ch not in _BIDI and unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp")
    )
    # Dots and spaces together: " .. .htaccess" stripped of one, then the
    # other, was still ". .htaccess" (and ". ." was ".").
    text = _LEADING.sub("", re.split(r"[\\/]", text)[-1]).strip()
    if len(text) > limit:
        stem, dot, ext = text.rpartition(".")
        ext = ext if dot and stem and 0 < len(ext) <= 10 else ""
        keep = limit - (len(ext) + 1 if ext else 0)
        text = (stem if ext else text)[:keep] + (f".{ext}" if ext else "")
    return text


def content_type(value: str) -> str:
    """The stored type when it is a plain type/subtype, else octet-stream.
    message/* and multipart/* may not be base64-encoded (RFC 2046 5.2.1,
    5.1): such a part travels as bytes, octet-stream."""
    value = (value or "").strip().lower()
    if not _TOKEN.match(value) or value.startswith(("message/", "multipart/")):
        return "application/octet-stream"
    return value


def part(item: Item, index: int) -> bytes:
    """The MIME part of one attachment, its body a reference to its bytes."""
    a = item.attachment
    name = safe_name(a.filename, index)
    ctype = content_type(a.content_type)
    head = (
        _plain_head(ctype, name, item.content_id)
        or _encoded_head(ctype, name, item.content_id)
        or _email_head(ctype, name, item.content_id)
    )
    return head + f"\r\n\r\n=spocd-blob={a.sha256}=".encode()


def _email_head(ctype: str, name: str, content_id: str | None) -> bytes:
    """The part's headers as the email package writes them: a long or
    non-ASCII name becomes RFC 2231 continuations, lines stay short."""
    head = EmailMessage(policy=email.policy.SMTP)
    head.add_header("Content-Type", ctype, name=name)
    head.add_header("Content-Disposition", "inline" if content_id else "attachment", filename=name)
    head["Content-Transfer-Encoding"] = "base64"
    if content_id:
        head["Content-ID"] = f"<{content_id}>"
    return head.as_bytes().rstrip(b"\r\n")


#: A name the email package writes as it is, quoted: printable ASCII without
#: the characters it escapes or encodes, no leading space, no double space.
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9._()+,\-](?:[A-Za-z0-9._()+,\-]| (?! ))*$")
_LINE = 78


def _plain_head(ctype: str, name: str, content_id: str | None) -> bytes | None:
    """The part's headers for a plain name whose lines fit unfolded, else None:
    byte for byte what `_email_head` writes for it, without the email
    package's header parser (0.3 ms a part, most names are plain)."""
    if not _PLAIN_NAME.match(name):
        return None
    disposition = "inline" if content_id else "attachment"
    lines = [
        f'Content-Type: {ctype}; name="{name}"',
        f'Content-Disposition: {disposition}; filename="{name}"',
        "Content-Transfer-Encoding: base64",
    ]
    if not _cid_plain(content_id):
        return None
    if content_id:
        lines.append(f"Content-ID: <{content_id}>")
    if any(len(line) > _LINE for line in lines):
        return None
    return "\r\n".join(lines).encode("ascii")


def _encoded_head(ctype: str, name: str, content_id: str | None) -> bytes | None:
    """The part's headers for a name that must be RFC 2231-encoded (any
    non-ASCII name), else None: byte for byte what `_email_head` writes for
    it, following the email package's folding of MIME parameters, without
    its header parser and refolding (1-2 ms a part, a Polish name is common)."""
    if name.isascii() or not _ENCODABLE.match(name) or not _cid_plain(content_id):
        return None
    disposition = "inline" if content_id else "attachment"
    lines = _rfc2231_param(f"Content-Type: {ctype};", "name", name)
    lines += _rfc2231_param(f"Content-Disposition: {disposition};", "filename", name)
    lines.append("Content-Transfer-Encoding: base64")
    if content_id:
        lines.append(f"Content-ID: <{content_id}>")
    if len(lines[0]) > _LINE:
        return None  # a type too long for its line: the email package folds it
    return "\r\n".join(lines).encode("ascii")


#: Characters percent-encoding leaves as they are (RFC 3986's unreserved).
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "_.-~")
#: Text that encodes to UTF-8: no lone surrogates (the email package writes
#: those as unknown-8bit, which is its own business).
_ENCODABLE = re.compile(r"^[^\ud800-\udfff]+$")


def _rfc2231_param(first: str, param: str, value: str) -> list[str]:
    """`first` (a header up to its `;`) and the parameter `param*=utf-8''...`
    after it: on the same line if it fits, else on the next, else split in
    sections of at most 78 characters a line, each cut between characters."""
    whole = f"{param}*=utf-8''{quote(value, safe='')}"
    if len(first) + len(whole) + 1 < _LINE:
        return [f"{first} {whole}"]
    if len(whole) + 2 <= _LINE:
        return [first, f" {whole}"]
    lines = [first]
    section, chrome = 0, "utf-8''"
    while value:
        room = _LINE - (len(param) + len(str(section)) + 3 + len(chrome)) - 2
        cut, used = 0, 0
        for ch in value:
            width = 1 if ch in _UNRESERVED else 3 * len(ch.encode("utf-8"))
            if used + width > room:
                break
            cut, used = cut + 1, used + width
        lines.append(f" {param}*{section}*={chrome}{quote(value[:cut], safe='')}")
        chrome, section, value = "", section + 1, value[cut:]
        if value:
            lines[-1] += ";"
    return lines


def _cid_plain(content_id: str | None) -> bool:
    """A Content-ID the email package writes as it is (or none)."""
    return content_id is None or (
        content_id.isascii() and content_id.isprintable() and "<" not in content_id
    )


def references(raw: bytes) -> list[str]:
    """The sha256 of every attachment body `raw` refers to."""
    return [m.group(1).decode() for m in _REF.finditer(raw)]


def expand(raw: bytes, lookup: Callable[[str], bytes | None]) -> bytes:
    """The message as sent: each reference replaced by its bytes in base64
    (76-character lines, CRLF), the same bytes every time. A reference whose
    bytes are gone raises LookupError."""

    def body(match: re.Match[bytes]) -> bytes:
        sha = match.group(1).decode()
        data = lookup(sha)
        if data is None:
            raise LookupError(f"attachment {sha} is no longer stored")
        encoded = base64.encodebytes(data).replace(b"\n", b"\r\n")
        return encoded[:-2] if encoded.endswith(b"\r\n") else encoded

    return _REF.sub(body, raw)


def cid_refs(html: str | None) -> set[str]:
    """Content-IDs an HTML part shows inline (`src="cid:..."`)."""
    if not html:
        return set()
    return {m.lower() for m in re.findall(r"cid:([^\"'\s>)]+)", html, flags=re.IGNORECASE)}
