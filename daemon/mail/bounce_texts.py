"""The words of bounces without a machine-readable report, as each MTA writes them.

Postfix, Exim, Sendmail, qmail, Exchange and Gmail each explain a failed delivery
in their own prose; these readers find the failed recipients and the remote
server's words there. `bounces` calls them only for mail that also looks like it
came from a mail system. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from daemon.core.domain import ParsedMessage
from daemon.mail.addresses import find_addresses

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


def text_details(msg: ParsedMessage, mta: str | None) -> tuple[list[str], str]:
    """Failed recipients and the remote server's words, read from the text."""
    text = msg.text[:200_000].replace("\r\n", "\n")
    reader = _TEXT_READERS.get(mta or "", _read_generic)
    recipients, diagnostic = reader(text)
    return unique(r.lower() for r in recipients), " ".join(diagnostic.split())


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
            more = [line.strip() for line in _take_while_indented(_lines_at(text, match.end()))]
            diagnostic = " ".join([match.group(2).strip(), *more])
    return recipients, diagnostic


def _lines_at(text: str, at: int, count: int = 20) -> list[str]:
    """The first `count` lines of text[at:], without copying the rest: a
    report of thousands of recipient lines with no diagnostic made every one
    of them split the whole text after it (quadratic, 7 s at 20,000)."""
    lines: list[str] = []
    while len(lines) < count:
        end = text.find("\n", at)
        if end < 0:
            lines.append(text[at:])
            break
        lines.append(text[at:end])
        at = end + 1
    return lines


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
            start = match.end()
            while text.startswith("\n", start):
                start += 1
            lines = _lines_at(text, start, 10)
            if "" in lines:  # the paragraph ends at a blank line
                lines = lines[: lines.index("")]
            diagnostic = " ".join(line.strip() for line in lines)
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


def text_action(msg: ParsedMessage) -> str:
    """Bounces without a report: failed, unless the words say delivery goes on."""
    head = msg.subject + "\n" + msg.text[:5_000]
    return "delayed" if _DELAYED.search(head) else "failed"


def header_recipients(msg: ParsedMessage) -> list[str]:
    values = ",".join(msg.header_all("x-failed-recipients"))
    return unique(find_addresses(values))


def unique(items: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        if item:
            seen.setdefault(item, None)
    return list(seen)
