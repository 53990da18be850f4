"""Delivery failures: read a bounce, whoever wrote it, into one shape.

A bounce tells us that mail we sent did not arrive, so the ticket it belongs to
must learn of it and automatic mail to the failing address must pause. Most
MTAs send an RFC 3464 report (multipart/report; report-type=delivery-status)
whose machine-readable part we read first; the human-readable text and the
headers then tell which MTA wrote it and fill in what the report lacks. Older
or stripped bounces carry only text, written differently by every MTA: those are
read only when the message also looks like it came from a mail system (a
MAILER-DAEMON or postmaster sender, a null return path, X-Failed-Recipients,
Auto-Submitted, an NDR header), so a person who pastes a bounce into a mail to
us is not mistaken for one.

Pure: works on a ParsedMessage and the bytes of its report parts.
"""

from __future__ import annotations

import email.parser
import email.policy
import re
from dataclasses import dataclass

from daemon.core.domain import Attachment, ParsedMessage
from daemon.mail.bounce_texts import header_recipients, text_action, text_details, unique
from daemon.mail.headers import decode_header_value

DIAGNOSTIC_LIMIT = 500

_STATUS_TYPES = ("message/delivery-status", "message/global-delivery-status")
_RETURNED_TYPES = (
    "message/rfc822",
    "message/global",
    "text/rfc822-headers",
    "message/global-headers",
    "message/rfc822-headers",  # not registered, but some MTAs write it
)
#: Worst first: a report on several recipients is summed up by its worst action.
_ACTIONS = ("failed", "delayed", "relayed", "delivered")


@dataclass(frozen=True, slots=True)
class Bounce:
    """One delivery report on mail we sent."""

    failed_recipients: tuple[str, ...]  # the recipients the report's action concerns
    status: str | None  # enhanced status code, "5.1.1"
    action: str  # "failed" | "delayed" | "relayed" | "delivered" | "unknown"
    diagnostic: str  # the remote server's words, at most DIAGNOSTIC_LIMIT characters
    original_message_id: str | None  # Message-ID of our mail it reports on (without <>)
    original_subject: str | None
    mta: str  # "dsn" | "postfix" | "exim" | "exchange" | "gmail" | "sendmail" | "qmail" | "unknown"

    @property
    def permanent(self) -> bool:
        """Delivery will not happen: stop mailing this address automatically."""
        return self.action == "failed" or (self.status or "").startswith("5.")


def parse_bounce(msg: ParsedMessage) -> Bounce | None:
    """The delivery report in this message, or None when it is not a bounce.

    Read receipts (report-type=disposition-notification) and out-of-office
    replies are not bounces.
    """
    kind = report_type(msg)
    status_parts = [a for a in msg.attachments if a.content_type in _STATUS_TYPES]
    is_dsn = bool(status_parts) or kind == "delivery-status"
    if kind not in (None, "delivery-status") and not status_parts:
        return None
    if not is_dsn and not _from_mail_system(msg):
        return None  # the cheap header check first: most mail is no bounce
    mta = _identify(msg)
    if not is_dsn and mta is None:
        return None
    recipients: list[tuple[str, str, str | None, str]] = []
    for part in status_parts:
        recipients.extend(_dsn_recipients(part.content or b""))
    text_rcpts, text_diag = text_details(msg, mta)
    action, status, diagnostic, failed = _summarise(recipients)
    if not failed:
        failed = text_rcpts or header_recipients(msg)
    if not recipients:
        action = text_action(msg)
        failed = text_rcpts or header_recipients(msg)
        status = _find_status(text_diag)
        diagnostic = text_diag
    elif not diagnostic:
        diagnostic = text_diag
    message_id, subject = _returned(msg)
    return Bounce(
        failed_recipients=tuple(failed),
        status=status,
        action=action,
        diagnostic=_shorten(diagnostic),
        original_message_id=message_id,
        original_subject=subject,
        mta=mta or ("dsn" if is_dsn else "unknown"),
    )


def report_type(msg: ParsedMessage) -> str | None:
    """The report-type of a multipart/report (delivery-status when unnamed), else None."""
    if msg.content_type != "multipart/report":
        return None
    match = re.search(r"report-type\s*=\s*\"?([\w.-]+)", msg.header("content-type") or "", re.I)
    return match.group(1).lower() if match else "delivery-status"


# --- the RFC 3464 report ----------------------------------------------------------------

_FIELD = re.compile(r"^([A-Za-z0-9-]+)\s*:\s*(.*)$")
_STATUS_RE = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")


def _fields(block: str) -> dict[str, str]:
    """One block of `Name: value` fields, with folded continuation lines joined."""
    # Pieces gathered, joined once: a value rebuilt at each continuation line
    # was quadratic in a field folded over thousands of lines.
    parts: dict[str, list[str]] = {}
    name = None
    for line in block.split("\n"):
        if line[:1] in (" ", "\t") and name:
            parts[name].append(line.strip())
            continue
        match = _FIELD.match(line.strip())
        if match:
            name = match.group(1).lower()
            parts.setdefault(name, [match.group(2).strip()])
    return {key: " ".join(pieces) for key, pieces in parts.items()}


def _dsn_recipients(content: bytes) -> list[tuple[str, str, str | None, str]]:
    """(address, action, status, diagnostic) for each per-recipient block."""
    text = content.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
    found: list[tuple[str, str, str | None, str]] = []
    for block in re.split(r"\n[ \t]*\n", text):
        fields = _fields(block)
        addr = _typed_address(fields.get("final-recipient") or fields.get("original-recipient"))
        if not addr and "action" not in fields:
            continue  # the per-message block (Reporting-MTA, Arrival-Date)
        action = fields.get("action", "").strip().lower().split(" ")[0]
        action = {"expanded": "delivered"}.get(action, action)
        if action not in _ACTIONS:
            action = "unknown"
        status = _find_status(fields.get("status", ""))
        diagnostic = _typed_value(fields.get("diagnostic-code", ""))
        found.append((addr or "", action, status, diagnostic))
    return found


def _typed_value(value: str) -> str:
    """`smtp; 550 ...` -> `550 ...` (address-type and diagnostic-type prefixes)."""
    kind, sep, rest = value.partition(";")
    return rest.strip() if sep and re.fullmatch(r"\s*[A-Za-z0-9-]+\s*", kind) else value.strip()


def _typed_address(value: str | None) -> str:
    addr = _typed_value(value or "").strip().strip("<>").strip().lower()
    return addr if "@" in addr and " " not in addr else ""


def _summarise(
    recipients: list[tuple[str, str, str | None, str]],
) -> tuple[str, str | None, str, list[str]]:
    """Action, status and diagnostic of the worst recipient; all recipients with it."""
    if not recipients:
        return "unknown", None, "", []
    order = {action: rank for rank, action in enumerate((*_ACTIONS, "unknown"))}
    worst = min(recipients, key=lambda r: order[r[1]])
    failed = unique(r[0] for r in recipients if r[1] == worst[1] and r[0])
    return worst[1], worst[2] or _find_status(worst[3]), worst[3], failed


def _find_status(text: str) -> str | None:
    match = _STATUS_RE.search(text or "")
    return ".".join(match.groups()) if match else None


# --- who wrote it -----------------------------------------------------------------------

_MTA_TEXTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("qmail", re.compile(r"This is the qmail-send program|wasn't able to deliver your message")),
    (
        "postfix",
        re.compile(r"This is the mail system at host|I'm sorry to have to inform you", re.I),
    ),
    (
        "exim",
        re.compile(
            r"created automatically by mail delivery software"
            r"|A message that you sent (?:could not be delivered|has not yet been delivered)",
            re.I,
        ),
    ),
    (
        "exchange",
        re.compile(
            r"Delivery has failed to these recipients or groups|Dostarczanie nie powiodło się"
            r"|Your message (?:couldn't|could not) be delivered|Diagnostic information for"
            r" administrators|Informacje diagnostyczne dla administratorów"
            r"|Your message did not reach some or all of the intended recipients",
            re.I,
        ),
    ),
    (
        "gmail",
        re.compile(
            r"Delivery to the following recipients? failed|\*\* Address not found \*\*"
            r"|Your message wasn't delivered to|Message not delivered|Delivery incomplete",
            re.I,
        ),
    ),
    (
        "sendmail",
        re.compile(
            r"The following addresses had (?:permanent fatal|transient non-fatal) errors"
            r"|----- Transcript of session follows -----",
            re.I,
        ),
    ),
)
_MTA_HEADERS = (
    ("exchange", "x-ms-exchange-message-is-ndr"),
    ("exim", "x-failed-recipients"),
    ("postfix", "x-postfix-queue-id"),
)
_BOUNCE_SENDER = re.compile(
    r"^(?:mailer-daemon|mailerdaemon|mail-daemon|postmaster|microsoftexchange[0-9a-f]{32})@",
    re.I,
)
_BOUNCE_SUBJECT = re.compile(
    r"^(?:undelivered mail|undeliverable|undelivered|delivery status notification"
    r"|delivery failure|delivery has failed|mail delivery failed|returned mail|failure notice"
    r"|niedostarczalne|nie można dostarczyć|niedostarczona|warning: could not send"
    r"|delayed mail|warning: message .* delayed)",
    re.I,
)


def _identify(msg: ParsedMessage) -> str | None:
    """The MTA whose habits this message shows, or None.

    The sender and the text decide before headers do: Gmail, for one, also
    writes the X-Failed-Recipients header that Exim made popular.
    """
    sender = msg.sender.addr if msg.sender else ""
    if sender.endswith(("@googlemail.com", "@google.com")) and is_mail_system_address(sender):
        return "gmail"
    text = msg.text[:20_000]
    for mta, pattern in _MTA_TEXTS:
        if pattern.search(text):
            return mta
    for mta, name in _MTA_HEADERS:
        if msg.header(name) is not None:
            return mta
    return None


def is_mail_system_address(addr: str) -> bool:
    """MAILER-DAEMON, postmaster and Exchange's generated NDR senders."""
    local = addr.strip().strip("<>").strip().rpartition("@")[0] or addr.strip().strip("<>")
    return bool(_BOUNCE_SENDER.match(local.lower() + "@"))


def _from_mail_system(msg: ParsedMessage) -> bool:
    """Header signs that a mail system, not a person, sent this message."""
    sender = msg.sender.addr if msg.sender else ""
    return_path = (msg.header("return-path") or "").strip().strip("<>").strip()
    auto = (msg.header("auto-submitted") or "").strip().lower()
    return bool(
        is_mail_system_address(sender)
        or "mailer-daemon" in (msg.header("from") or "").lower()
        or (msg.header("return-path") is not None and not return_path)
        or (return_path and is_mail_system_address(return_path))
        or msg.header("x-failed-recipients") is not None
        or msg.header("x-ms-exchange-message-is-ndr") is not None
        or (auto and not re.match(r"no\b", auto) and _BOUNCE_SUBJECT.match(msg.subject))
    )


# --- the mail it reports on ---------------------------------------------------------------

_QUOTED_MSGID = re.compile(r"^[ \t>]*Message-I[Dd][ \t]*:\s*<?([^<>\s@]+@[^<>\s]+?)>?\s*$", re.M)
_QUOTED_SUBJECT = re.compile(
    r"^[ \t>]*(?:Subject[ \t]*:|The subject of the message is:)[ \t]*(.*(?:\n[ \t]+\S.*)*)$",
    re.M | re.I,
)
_BOUNCE_PREFIX = re.compile(
    r"^\s*(?:undeliverable|undelivered|niedostarczalne|niedostarczona|nie można dostarczyć)"
    r"\s*:\s*",
    re.I,
)


def _returned(msg: ParsedMessage) -> tuple[str | None, str | None]:
    """Message-ID and Subject of our mail: from the returned part, else the text."""
    message_id = subject = None
    for part in msg.attachments:
        if part.content_type in _RETURNED_TYPES and part.content:
            message_id, subject = _headers_of(part)
            if message_id or subject:
                break
    text = msg.text[:200_000]
    if not message_id:
        quoted = _QUOTED_MSGID.search(text)
        message_id = quoted.group(1) if quoted else None
    if not message_id:  # Exim and Gmail name the bounced mail in their own headers
        refs = (*msg.in_reply_to, *msg.references)
        message_id = refs[-1] if refs else None
    if not subject:
        quoted_subject = _QUOTED_SUBJECT.search(text)
        if quoted_subject:
            subject = _decode(quoted_subject.group(1)) or None
    if not subject and _BOUNCE_PREFIX.match(msg.subject):
        subject = _BOUNCE_PREFIX.sub("", msg.subject, count=1).strip() or None
    return message_id, subject


def _headers_of(part: Attachment) -> tuple[str | None, str | None]:
    try:
        headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(
            part.content or b""
        )
        raw_id = str(headers.get("message-id", "") or "")
        raw_subject = headers.get("subject")
    except Exception:  # a hostile returned part: the text may still name our mail
        return None, None
    ids = re.findall(r"<([^<>\s]+)>", raw_id) or raw_id.split()
    subject = _decode(str(raw_subject)) if raw_subject is not None else None
    return (ids[0] if ids else None), subject


def _decode(value: str) -> str:
    return " ".join(decode_header_value(value).split())


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    if len(text) <= DIAGNOSTIC_LIMIT:
        return text
    return text[: DIAGNOSTIC_LIMIT - 1].rstrip() + "…"
