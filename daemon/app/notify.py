"""Compose outgoing mail from templates. It never sends: the outbox does.

Every mail carries the ticket tag, a signed Message-ID of our own domain,
In-Reply-To/References to the thread, RFC 3834 `Auto-Submitted` for automatic
mail, a loop header, and a text part plus an HTML part.
"""

from __future__ import annotations

import binascii
import email.utils
import functools
import re
import secrets
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import base64mime
from typing import Any

from daemon.core.domain import OutgoingMail, Ticket
from daemon.mail import attachparts, msgid
from daemon.mail.attachparts import NO_FILES, Plan
from daemon.mail.headers import LINE, fold_items, fold_list
from daemon.mail.threads import format_tag
from daemon.ports import Renderer

LOOP_HEADER = "X-Spocd-Loop"
#: Encoded words in base64: choosing the shorter of Q and B per header (the
#: email package's default for UTF-8) costs more than the whole rest of a mail.
#: Bidi embeddings, overrides and isolates: what follows one can display
#: reversed ("gpj.exe" as "exe.jpg"), so they are shown, never obeyed.
_BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
#: C0 controls but tab and newline, DEL, C1 controls (ESC starts terminal
#: escapes: colours, OSC 52 clipboard writes), and the bidi controls.
_UNSAFE = re.compile(f"[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f{_BIDI}]")
#: What `one_line` makes a space: every C0 control and DEL.
_SPACED = dict.fromkeys((*range(0x20), 0x7F), " ")


@dataclass(frozen=True, slots=True)
class Identity:
    """Who we are on the wire."""

    address: str
    name: str
    tag_prefix: str
    key: bytes = field(repr=False)

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2].lower()


@dataclass(frozen=True, slots=True)
class Thread:
    """Where a new mail sits in a conversation."""

    in_reply_to: str | None = None
    references: tuple[str, ...] = ()

    def after(self, message_id: str) -> Thread:
        refs = tuple(r for r in self.references if r != message_id)[-20:]
        return Thread(in_reply_to=message_id, references=(*refs, message_id))


class Composer:
    """Renders a template for a ticket into an `OutgoingMail`."""

    def __init__(self, identity: Identity, renderer: Renderer) -> None:
        self.identity = identity
        self.renderer = renderer

    @functools.cached_property
    def _sender(self) -> tuple[Folded, str]:
        """From and Reply-To: the same in every mail."""
        name, address = self.identity.name, self.identity.address
        return mailbox_header("From", name, address), wire_address(address)

    def new_message_id(self, ticket_number: int | None) -> str:
        return msgid.make_message_id(
            self.identity.key, self.identity.domain, ticket_number, secrets.token_hex(8)
        )

    def compose(
        self,
        *,
        template: str,
        kind: str,
        ticket: Ticket | None,
        to: Sequence[str],
        context: dict[str, Any],
        now: datetime,
        language: str | None = None,
        cc: Sequence[str] = (),
        thread: Thread = Thread(),
        auto_submitted: str | None = "auto-replied",
        attachments: Plan = NO_FILES,
    ) -> OutgoingMail:
        """`auto_submitted` None marks a mail a person sent (an agent's reply).
        `attachments`: the files the mail carries and those it only lists
        (the templates list both as `attachments`, inline images as
        `inline_images`)."""
        lang = language or (ticket.language if ticket else "en")
        number = ticket.number if ticket else None
        full_context = {
            "helpdesk": {"name": self.identity.name, "address": self.identity.address},
            "tag": format_tag(self.identity.tag_prefix, number) if number else "",
            "ticket": ticket_context(ticket, self.identity.tag_prefix) if ticket else None,
            "now": now,  # for "time left" in the facts agents read
            "attachments": attachment_context(attachments, ticket, self.identity.tag_prefix),
            "inline_images": [
                {"cid": i.content_id, "name": attachparts.safe_name(i.attachment.filename)}
                for i in attachments.attached
                if i.content_id
            ],
            **context,
        }
        rendered = self.renderer.render(lang, template, full_context)
        subject = one_line(rendered.subject)
        text, html = printable(rendered.text), printable(rendered.html)
        message_id = self.new_message_id(number)
        sender, reply_to = self._sender
        headers: list[tuple[str, str | None]] = [
            ("From", sender),
            ("Reply-To", reply_to),
            # A recipient that cannot be written (see `wire_address`) is left
            # out here and refused for good, with a record, by the sender.
            ("To", address_header("To", to)),
            ("Cc", address_header("Cc", cc)),
            ("Subject", subject),
            ("Date", _date_header(now, now.utcoffset())),
            ("Message-ID", f"<{message_id}>"),
            (
                "In-Reply-To",
                msg_id_header("In-Reply-To", [thread.in_reply_to] if thread.in_reply_to else []),
            ),
            ("References", msg_id_header("References", thread.references)),
            ("Auto-Submitted", auto_submitted),
            ("X-Auto-Response-Suppress", "All" if auto_submitted else None),
            (
                "Precedence",
                ("auto_reply" if auto_submitted == "auto-replied" else "bulk")
                if auto_submitted
                else None,
            ),
            (LOOP_HEADER, self.identity.domain),
            ("Content-Language", lang),
        ]
        raw = build_mime(headers, text, html, attachments.attached)
        recipients = tuple(dict.fromkeys(a.lower() for a in (*to, *cc)))
        return OutgoingMail(
            message_id=message_id,
            recipients=recipients,
            raw=raw,
            kind=kind,
            ticket_number=number,
            automatic=auto_submitted is not None,
            subject=subject,
            text=text,
        )


@functools.lru_cache(maxsize=8)
def _date_header(now: datetime, offset: timedelta | None) -> str:
    """The Date header: every mail of a group commit has the group's `now`,
    so it is formatted once, not per mail. `offset` is in the key because
    equal instants in different zones are equal datetimes but other headers."""
    return email.utils.format_datetime(now)


def build_mime(
    headers: Sequence[tuple[str, str | None]],
    text: str,
    html: str,
    attached: Sequence[attachparts.Item] = (),
) -> bytes:
    """multipart/alternative with a text and an HTML part, UTF-8 quoted-printable,
    CRLF line ends; with attachments, that inside a multipart/mixed whose other
    parts are the files (bodies as references, see `attachparts`), and inline
    images beside the HTML in a multipart/related.

    Written out directly, without the email package's generic folding (the
    slowest part of composing): a value is text (`_header_value` folds it,
    non-ASCII as RFC 2047 words) or already `Folded` (addresses, msg-ids).
    The boundary starts with "=_", which quoted-printable output can never
    contain.
    """
    inline = [i for i in attached if i.content_id]
    files = [i for i in attached if not i.content_id]
    html_part = _text_part("html", html)
    if inline:
        html_part = _multipart(
            "related", [html_part, *(attachparts.part(i, n) for n, i in enumerate(inline, 1))]
        )
    body = _multipart("alternative", [_text_part("plain", text), html_part])
    if files:
        body = _multipart(
            "mixed", [body, *(attachparts.part(i, n) for n, i in enumerate(files, 1))]
        )
    lines = ["MIME-Version: 1.0"]
    for name, value in headers:
        if value is None:
            continue
        lines.append(f"{name}: {_header_value(name, value)}")
    return "\r\n".join(lines).encode("ascii") + b"\r\n" + body + b"\r\n"


def _text_part(subtype: str, body: str) -> bytes:
    return b"\r\n".join(
        [
            f'Content-Type: text/{subtype}; charset="utf-8"'.encode(),
            b"Content-Transfer-Encoding: quoted-printable",
            b"",
            _quoted_printable(body),
        ]
    )


def _multipart(subtype: str, parts: Sequence[bytes]) -> bytes:
    """A multipart entity (its Content-Type line first, then its parts). The
    boundary goes on a folded line of its own: with `alternative` the line
    would be 80 columns, past the 78 every header line keeps to."""
    boundary = f"=_spocd_{secrets.token_hex(12)}"
    out = [f'Content-Type: multipart/{subtype};\r\n boundary="{boundary}"'.encode(), b""]
    for chunk in parts:
        out += [f"--{boundary}".encode(), chunk]
    out.append(f"--{boundary}--".encode())
    return b"\r\n".join(out)


def attachment_context(plan: Plan, ticket: Ticket | None, prefix: str) -> list[dict[str, Any]]:
    """Every attachment as the templates show it: name and size, whether it
    is attached, and for one that is not, the command that fetches it."""
    tid = f"{prefix}-{ticket.number}" if ticket else ""
    out = []
    for attached, items in ((True, plan.attached), (False, plan.listed)):
        for n, item in enumerate(items, 1):
            a = item.attachment
            out.append(
                {
                    "name": attachparts.safe_name(a.filename, n),
                    "type": attachparts.content_type(a.content_type),
                    "size": human_size(a.size),
                    "attached": attached,
                    "inline": bool(item.content_id) and attached,
                    "command": (
                        f"spocd attachment {tid} {item.id} --output "
                        f"{shlex.quote(attachparts.safe_name(a.filename, n))}"
                        if not attached and item.id is not None and tid
                        else None
                    ),
                }
            )
    return out


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


#: Where an unstructured value may be folded: one space between two words (a
#: fold there unfolds back to the same text).
_FOLD_POINT = re.compile(r"(?<=\S) (?=\S)")


class Folded(str):
    """A header value already in its wire form: 7-bit, folded into lines
    within 998 octets. `build_mime` writes it as it is."""


def _header_value(name: str, value: str) -> str:
    """An unstructured value (Subject) folded at spaces into lines of 78. One
    with a word too long for a line, non-ASCII, or holding "=?" (text a reader
    would decode as an encoded word) is written as RFC 2047 words, which can
    be split anywhere."""
    if isinstance(value, Folded):
        return value
    if value.isascii() and "=?" not in value:
        if len(name) + 2 + len(value) <= LINE:
            return value
        words = _FOLD_POINT.split(value)
        if len(name) + 2 + len(words[0]) <= LINE and all(len(w) < LINE for w in words):
            return fold_items(name, words)
    return _encoded_words(name, value)


class Unaddressable(ValueError):
    """An address that cannot be written in 7-bit mail; the message is the
    answer recorded for it, in the form a relay's refusal takes."""


#: RFC 5322 atext: what a dot-atom (a local part or domain as it is) is made of.
_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~-"
_DOT_ATOM = re.compile(rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*")
_LITERAL = re.compile(r"\[[!-Z^-~]*\]")
_QUOTED = re.compile(r'"(?:[ !#-\[\]-~]|\\[ -~])*"')
_HOSTNAME = re.compile(r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
#: RFC 5321 §4.5.3.1.3: a path holds at most 256 octets, brackets included.
MAX_ADDRESS = 254


@functools.lru_cache(maxsize=4096)
def wire_address(address: str) -> str:
    """`address` as an addr-spec in 7-bit mail (header and SMTP envelope
    alike): a non-ASCII domain as IDNA A-labels, a local part that is neither
    a dot-atom nor quoted already, quoted. Raises `Unaddressable` for a
    non-ASCII local part: it needs SMTPUTF8 and UTF-8 headers (RFC 6531/6532),
    and spocd writes 7-bit mail whatever the transport, so such a recipient
    is refused for good; and for what is no address at all.

    Memoised: the same few addresses (the desk's, its agents', a ticket's
    requester) are written into every header of every mail. A refusal is an
    exception, which is never kept."""
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise Unaddressable(f"553 5.1.3 not an address: {address[:100]!r}")
    if not local.isascii():
        raise Unaddressable(
            "553 5.6.7 non-ASCII local part: spocd sends 7-bit mail only (no SMTPUTF8)"
        )
    if not (_DOT_ATOM.fullmatch(local) or _QUOTED.fullmatch(local)):
        if not all(" " <= ch <= "~" for ch in local):
            raise Unaddressable("553 5.1.3 control character in the local part")
        local = '"' + local.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            domain = ""
        if not _HOSTNAME.fullmatch(domain):
            raise Unaddressable("553 5.1.2 the domain has no IDNA form")
    elif not (_DOT_ATOM.fullmatch(domain) or _LITERAL.fullmatch(domain)):
        raise Unaddressable(f"553 5.1.3 not a domain: {domain[:100]!r}")
    wire = f"{local}@{domain}"
    if len(wire) > MAX_ADDRESS:
        raise Unaddressable(f"553 5.1.3 address longer than {MAX_ADDRESS} octets")
    return wire


def writable(address: str) -> str | None:
    """`wire_address`, or None for an address it refuses."""
    try:
        return wire_address(address)
    except Unaddressable:
        return None


def address_header(name: str, addresses: Sequence[str]) -> Folded | None:
    """A list of addr-specs folded after its commas; addresses that cannot be
    written are left out (None when none is left)."""
    wire = [w for w in map(writable, addresses) if w is not None]
    if not wire:
        return None
    return Folded(fold_list(name, wire))


def mailbox_header(name: str, display: str, address: str) -> Folded:
    """`Display <addr-spec>`: a plain ASCII name as `formataddr` writes it
    (quoted when needed), any other as RFC 2047 words; never the address."""
    addr = wire_address(address)
    if display.isascii() and "=?" not in display:
        plain = email.utils.formataddr((display, addr))
        return Folded(fold_items(name, _FOLD_POINT.split(plain)))
    words = _encoded_words(name, display)
    _, fold, last = words.rpartition("\r\n")
    width = len(last) if fold else len(name) + 2 + len(last)
    glue = " " if width + 1 + len(addr) + 2 <= LINE else "\r\n "
    return Folded(f"{words}{glue}<{addr}>")


#: A msg-id's content (RFC 5322 id-left "@" id-right, read loosely: some
#: clients leave the "@" out): atext, dots and a domain literal's brackets,
#: short enough for a line of its own.
_MSG_ID = re.compile(rf"[.@\[\]{_ATEXT}]{{1,900}}")


def msg_id_header(name: str, ids: Sequence[str]) -> Folded | None:
    """`<id>` after `<id>`, folded between ids. An id that is not a plain
    ASCII msg-id (a sender's UTF-8 Message-ID) is left out, never written
    as an encoded word: no reader would match it (None when none is left)."""
    wire = [f"<{i}>" for i in ids if _MSG_ID.fullmatch(i)]
    return Folded(fold_items(name, wire)) if wire else None


#: The framing of one RFC 2047 word (`=?utf-8?b?`, `?=`) and its longest form.
_WORD_FRAME, _WORD_MAX = 12, 75


def _word_bytes(columns: int) -> int:
    """The UTF-8 bytes one word may carry in `columns` (base64: 4 per 3)."""
    return (min(columns, _WORD_MAX) - _WORD_FRAME) // 4 * 3


def _encoded_words(name: str, value: str) -> str:
    """A header value as RFC 2047 base64 words, each split between characters
    (never inside a UTF-8 sequence) so every line stays within 78 columns,
    folded with CRLF SP. What email.header.Header writes, without its generic
    folding machinery: a quarter of composing a mail with a Polish subject.
    Cut in the UTF-8 bytes, a word at a time (backing off a cut that falls
    inside a character), not a character at a time."""
    data = value.encode("utf-8")
    words: list[str] = []
    start = 0
    limit = _word_bytes(78 - len(name) - 2)  # the first line also holds "Name: "
    while len(data) - start > limit:
        end = start + limit
        while data[end] & 0xC0 == 0x80:  # a continuation byte: the cut is inside a character
            end -= 1
        words.append(_word(data[start:end]))
        start, limit = end, _word_bytes(78 - 1)
    words.append(_word(data[start:]))
    return "\r\n ".join(words)


def _word(data: bytes) -> str:
    return base64mime.header_encode(data, "utf-8")


def _quoted_printable(text: str) -> bytes:
    data = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    return binascii.b2a_qp(data, istext=True).replace(b"\n", b"\r\n")


def one_line(text: str) -> str:
    """Header text from user data: CR, LF and other controls become spaces
    (then `printable`)."""
    if not text.isprintable():  # a printable text has none of them to replace
        # (str.translate looks each other character up in the table, and
        # each miss is a KeyError raised and cleared in C)
        text = text.translate(_SPACED)
    return " ".join(printable(text).split())


def printable(text: str) -> str:
    """Outgoing text from user data: controls dropped but tab and newline
    (Unicode's line separators become newlines), bidi controls shown as a
    visible mark such as `[U+202E]`."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text.replace("\n", " ").replace("\t", " ").isprintable():
        # Every character the pattern drops or marks is one `isprintable`
        # refuses, and this test costs a fraction of the pattern's scan on
        # text beyond Latin-1 (Polish): most rendered mail passes it.
        return text
    return _UNSAFE.sub(_visible, text.replace("\u2028", "\n").replace("\u2029", "\n"))


def _visible(match: re.Match[str]) -> str:
    char = match.group(0)
    return f"[U+{ord(char):04X}]" if char in _BIDI else ""


def ticket_context(ticket: Ticket, prefix: str) -> dict[str, Any]:
    """The ticket as plain data for templates (user text stays data)."""
    return {
        "id": f"{prefix}-{ticket.number}",
        "number": ticket.number,
        "subject": ticket.subject,
        "requester": ticket.requester,
        "status": str(ticket.status),
        "priority": ticket.priority,
        "impact": ticket.impact,
        "urgency": ticket.urgency,
        "category": ticket.category,
        "group": ticket.group,
        "assignee": ticket.assignee,
        "external_ref": ticket.external_ref,
        "escalated_by": ticket.escalated_by,
        "created_at": ticket.created_at,
        "first_response_due": ticket.first_response_due,
        "first_responded_at": ticket.first_responded_at,
        "resolution_due": ticket.resolution_due,
        "resolution_code": ticket.resolution_code,
        "resolution_note": ticket.resolution_note,
    }
