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
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from daemon.domain import Attachment, ParsedMessage
from daemon.parsing import decode_header_value

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
    text_rcpts, text_diag = _text_details(msg, mta)
    action, status, diagnostic, failed = _summarise(recipients)
    if not failed:
        failed = text_rcpts or _header_recipients(msg)
    if not recipients:
        action = _text_action(msg)
        failed = text_rcpts or _header_recipients(msg)
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
    out: dict[str, str] = {}
    name = None
    for line in block.split("\n"):
        if line[:1] in (" ", "\t") and name:
            out[name] = f"{out[name]} {line.strip()}"
            continue
        match = _FIELD.match(line.strip())
        if match:
            name = match.group(1).lower()
            out.setdefault(name, match.group(2).strip())
    return out


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
    failed = _unique(r[0] for r in recipients if r[1] == worst[1] and r[0])
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


# --- addresses in free text -------------------------------------------------------------

_LOCAL_EXTRA = frozenset(".!#$%&'*+/=?^`{|}~-_")
_DOMAIN_AT = re.compile(r"[\w-]+(?:\.[\w-]+)+")


def address_spans(text: str) -> list[tuple[int, int]]:
    """Where mail addresses stand in free text, in linear time.

    A regular expression for addresses searched over text restarts at every
    position and rescans each run of letters: quadratic on the long hostile
    lines a bounce or forward may carry. Here each `@` is expanded once, at most
    64 characters to the left (RFC 5321's local-part limit) and 255 to the right.
    """
    spans: list[tuple[int, int]] = []
    at = text.find("@")
    while at != -1:
        start = at
        while (
            at - start < 64
            and start > 0
            and (text[start - 1].isalnum() or text[start - 1] in _LOCAL_EXTRA)
        ):
            start -= 1
        while start < at and text[start] == ".":
            start += 1
        domain = _DOMAIN_AT.match(text, at + 1, min(len(text), at + 256))
        if start < at and domain:
            spans.append((start, domain.end()))
        at = text.find("@", at + 1)
    return spans


def find_addresses(text: str) -> list[str]:
    """The mail addresses in free text, lower-cased, in order of appearance."""
    return [text[a:b].lower() for a, b in address_spans(text)]


# --- the text of non-report bounces -------------------------------------------------------

_ADDR = r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+"
_POSTFIX_RCPT = re.compile(rf"^<({_ADDR})>(?: \(expanded from <[^>]*>\))?:[ \t]*(.*)$", re.M)
_QMAIL_RCPT = re.compile(rf"^<({_ADDR})>:[ \t]*$", re.M)
_EXIM_FAILED = re.compile(
    r"(?:following address(?:\(es\)|es)? failed"
    r"|address(?:es)? to which the message has not yet been delivered (?:is|are))[^\n]*:\s*\n",
    re.I,
)
_SENDMAIL_FAILED = re.compile(r"The following addresses had [^\n]*\n", re.I)
_EXCHANGE_FAILED = re.compile(
    r"(?:Delivery has failed to these recipients or groups|Dostarczanie nie powiodło się"
    r"[^\n:]*|Your message (?:couldn't|could not) be delivered to)[^\n]*\n?",
    re.I,
)
_GMAIL_FAILED = re.compile(
    rf"(?:Your message wasn't delivered to\s+({_ADDR})"
    rf"|Delivery to the following recipients? failed[^\n]*\n\s*({_ADDR}))",
    re.I,
)
_EXCHANGE_DIAG = re.compile(
    r"(?:Remote server returned|Remote Server returned|Serwer zdalny zwrócił)\s*'?([^\n]+)", re.I
)
_SMTP_REPLY = re.compile(r"\b[45]\d\d[ -][^\n]*")


def _text_details(msg: ParsedMessage, mta: str | None) -> tuple[list[str], str]:
    """Failed recipients and the remote server's words, read from the text."""
    text = msg.text[:200_000].replace("\r\n", "\n")
    reader = _TEXT_READERS.get(mta or "", _read_generic)
    recipients, diagnostic = reader(text)
    return _unique(r.lower() for r in recipients), " ".join(diagnostic.split())


def _indented_after(text: str, start: int) -> tuple[list[str], str]:
    """Exim and Sendmail: an address line, then its indented explanation."""
    recipients: list[str] = []
    diag: list[str] = []
    for line in text[start:].split("\n")[:40]:
        if not line.strip():
            if recipients:
                break
            continue
        stripped = line.strip()
        address = re.fullmatch(rf"<?({_ADDR})>?(?:\.\.\.[^\n]*)?", stripped)
        if address and not diag:
            recipients.append(address.group(1))
        elif recipients:
            diag.append(stripped.removeprefix("(reason:").removesuffix(")").strip())
    return recipients, " ".join(diag)


def _read_exim(text: str) -> tuple[list[str], str]:
    match = _EXIM_FAILED.search(text)
    return _indented_after(text, match.end()) if match else ([], "")


def _read_sendmail(text: str) -> tuple[list[str], str]:
    match = _SENDMAIL_FAILED.search(text)
    return _indented_after(text, match.end()) if match else ([], "")


def _read_postfix(text: str) -> tuple[list[str], str]:
    recipients: list[str] = []
    diagnostic = ""
    for match in _POSTFIX_RCPT.finditer(text):
        recipients.append(match.group(1))
        if not diagnostic:
            tail = text[match.end() :].split("\n")
            more = [line.strip() for line in _take_while_indented(tail)]
            diagnostic = " ".join([match.group(2).strip(), *more])
    return recipients, diagnostic


def _take_while_indented(lines: list[str]) -> list[str]:
    out = []
    for line in lines[1:20]:
        if not line.startswith((" ", "\t")) or not line.strip():
            break
        out.append(line)
    return out


def _read_qmail(text: str) -> tuple[list[str], str]:
    recipients: list[str] = []
    diagnostic = ""
    for match in _QMAIL_RCPT.finditer(text):
        recipients.append(match.group(1))
        if not diagnostic:
            lines = text[match.end() :].lstrip("\n").split("\n\n", 1)[0].split("\n")
            diagnostic = " ".join(line.strip() for line in lines[:10])
    return recipients, diagnostic


def _read_exchange(text: str) -> tuple[list[str], str]:
    recipients: list[str] = []
    match = _EXCHANGE_FAILED.search(text)
    if match:
        inline = find_addresses(match.group(0))
        if inline:
            recipients.append(inline[0])
        else:
            for line in text[match.end() :].split("\n", 12)[:12]:
                found = find_addresses(line)
                if found:
                    recipients.append(found[0])
                    break
    diag = _EXCHANGE_DIAG.search(text)
    diagnostic = diag.group(1).strip().rstrip("'") if diag else ""
    if not diagnostic:
        reply = _SMTP_REPLY.search(text[match.end() :] if match else text)
        diagnostic = reply.group(0) if reply else ""
    return recipients, diagnostic


def _read_gmail(text: str) -> tuple[list[str], str]:
    match = _GMAIL_FAILED.search(text)
    recipients = [a for a in match.groups() if a] if match else []
    reply = _SMTP_REPLY.search(text)
    tech = re.search(r"(?:Technical details[^\n]*:|The response (?:from the remote server )?was:)"
                     r"\s*\n?\s*([^\n]+)", text, re.I)  # fmt: skip
    diagnostic = tech.group(1) if tech else reply.group(0) if reply else ""
    return recipients, diagnostic


def _read_generic(text: str) -> tuple[list[str], str]:
    recipients, diagnostic = _read_postfix(text)
    if recipients:
        return recipients, diagnostic
    reply = _SMTP_REPLY.search(text)
    return [], reply.group(0) if reply else ""


_TEXT_READERS: dict[str, Callable[[str], tuple[list[str], str]]] = {
    "postfix": _read_postfix,
    "exim": _read_exim,
    "sendmail": _read_sendmail,
    "qmail": _read_qmail,
    "exchange": _read_exchange,
    "gmail": _read_gmail,
}

_DELAYED = re.compile(
    r"has not yet been delivered|still being retried|will (?:continue|keep) trying"
    r"|could not send message for past|transient non-fatal|delivery (?:is )?delayed"
    r"|^delayed mail|^warning: message .* delayed|Delivery incomplete|opóźni",
    re.I | re.M,
)


def _text_action(msg: ParsedMessage) -> str:
    """Bounces without a report: failed, unless the words say delivery goes on."""
    head = msg.subject + "\n" + msg.text[:5_000]
    return "delayed" if _DELAYED.search(head) else "failed"


def _header_recipients(msg: ParsedMessage) -> list[str]:
    values = ",".join(msg.header_all("x-failed-recipients"))
    return _unique(find_addresses(values))


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


def _unique(items: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        if item:
            seen.setdefault(item, None)
    return list(seen)
