"""Who really opened an escalated incident: unwrap a first-line forward.

The Service Desk escalates by forwarding the requester's mail, so the sender of
the escalation is the first-line agent, not the person who has the problem. The
incident travels either as an attached `message/rfc822` (preferred: it is the
original, untouched) or as an inline block that each mail client writes its own
way, in English and Polish:

- Outlook: `From:/Sent:/To:/Cc:/Subject:` (`Od:/Wysłano:/Do:/DW:/Temat:`), bare,
  after `-----Original Message-----` (`-----Wiadomość oryginalna-----`), or after
  the `________________________________` line of Outlook on the web and mobile;
  the sender as `Name <addr>`, `"Last, First" <addr>` or `Name [mailto:addr]`.
- Gmail: `---------- Forwarded message ---------` (Polish Gmail: `Wiadomość
  przekazana dalej`, with `Od:` but English `Date:/Subject:/To:`; both label sets
  are read, as is the `Przekazana wiadomość` separator).
- Thunderbird: `-------- Forwarded Message --------` / `Original Message` /
  `Przekazana wiadomość`, labels `Subject/Date/From/To` (`Temat/Data/Nadawca/Adresat`).
- Apple Mail: `Begin forwarded message:` (`Początek przekazywanej wiadomości:`).

HTML-only forwards reach us as html2text output, so labels may be bold
(`**From:**`), addresses may be Markdown links and some characters escaped.

Nested forwards: the *first* block below the note is taken, because that is the
mail first line received and chose to forward; whoever sent that mail to the
Service Desk is the requester. Anything older stays in the original's text.

Pure: string work on a ParsedMessage; `parse` (bytes -> ParsedMessage) is passed
in for attached messages. Linear in the text's length, and capped where a hostile
forward could paste more than any client writes (header values, recipients), since
the pipeline reads escalations while it holds the database's write lock.
"""

from __future__ import annotations

import email.utils
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo

from daemon.core.domain import Address, ParsedMessage
from daemon.mail.addresses import address_spans

#: Content types of an attached, whole original message.
_EMBEDDED_TYPES = ("message/rfc822", "message/global")


@dataclass(frozen=True, slots=True)
class Forwarded:
    """What an escalation carries: the incident, its requester, first line's note."""

    style: str  # "attachment" | "outlook" | "gmail" | "thunderbird" | "apple" | "none"
    requester: Address | None  # the original sender; None when it cannot be found
    original: ParsedMessage | None  # the incident as the requester wrote it
    note: str  # the first-line agent's own words above the forward ("" if none)


@dataclass(frozen=True, slots=True)
class Escalation:
    """An escalation as the pipeline reads it (and `spocd rules test --escalation`
    with it, so the two cannot disagree): who escalated, whom it is about."""

    msg: ParsedMessage  # the escalation as first line sent it
    forwarded: Forwarded

    @property
    def by(self) -> str:
        """The first-line sender."""
        return self.msg.sender.addr if self.msg.sender else ""

    @property
    def found(self) -> bool:
        """Whether the original sender was found (and is not first line itself)."""
        requester = self.forwarded.requester
        return requester is not None and requester.addr != self.by

    @property
    def original(self) -> ParsedMessage | None:
        """The incident as the requester wrote it, when they were found."""
        return self.forwarded.original if self.found else None

    @property
    def requester(self) -> str:
        """The original sender; first line when none was found."""
        requester = self.forwarded.requester
        return requester.addr if requester is not None and self.found else self.by

    @property
    def incident(self) -> ParsedMessage:
        """What the rules decide on and the ticket's subject comes from."""
        return self.original or self.msg


def escalation(msg: ParsedMessage, parse: Callable[[bytes], ParsedMessage]) -> Escalation:
    """Read a first-line escalation: its forwarded incident and requester."""
    return Escalation(msg, unwrap(msg, parse))


def unwrap(msg: ParsedMessage, parse: Callable[[bytes], ParsedMessage]) -> Forwarded:
    """Find the forwarded incident in an escalation; never raises on odd mail.

    An attached message wins over inline text. When an attachment exists but
    cannot be read (dropped for size, or not mail), the inline text is tried;
    failing that the style stays "attachment" with no requester, so the caller
    knows an original was there but unreadable.
    """
    embedded = [a for a in msg.attachments if a.content_type in _EMBEDDED_TYPES]
    if embedded:
        original = _parse_embedded(embedded[0].content, parse)
        if original is not None:
            note = _without(msg.text, original.text)
            return Forwarded("attachment", original.sender, original, note)
    inline = _find_inline(msg)
    if inline is not None:
        return inline
    return Forwarded("attachment" if embedded else "none", None, None, _tidy(msg.text))


def _without(text: str, embedded_text: str) -> str:
    """The outer text less the attached message's text.

    mail-parser's text of a message includes the text parts of messages attached
    to it, so first line's note would otherwise repeat the whole incident.
    """
    inner = embedded_text.strip()
    if not inner:
        return _tidy(text)
    # The last occurrence, found forwards in the reversed strings: str.find
    # is linear whatever the strings hold, str.rfind is quadratic at worst
    # (a needle like "ab" + "a" * m in a long run of "a"), and both strings
    # are the sender's.
    found = text[::-1].find(inner[::-1])
    return _tidy(text[: len(text) - found - len(inner)] if found >= 0 else text)


def _tidy(text: str) -> str:
    """Whitespace-only lines (html2text's &nbsp; paragraphs) emptied, runs of blank
    lines squeezed to one, trailing spaces and outer blank lines dropped."""
    lines = [line.rstrip() for line in text.split("\n")]
    out: list[str] = []
    for line in lines:
        if line.strip() or (out and out[-1]):
            out.append(line if line.strip() else "")
    return "\n".join(out).strip()


def _parse_embedded(
    content: bytes | None, parse: Callable[[bytes], ParsedMessage]
) -> ParsedMessage | None:
    if not content:
        return None
    try:
        return parse(content)
    except Exception:  # hostile or truncated attachment: the inline text may still do
        return None


# --- the inline block ----------------------------------------------------------------

_SEP_PHRASES = (
    r"original message|forwarded message|wiadomość oryginalna|oryginalna wiadomość"
    r"|wiadomość przekazana dalej|przekazana wiadomość|wiadomość przekazana"
)
# Dashes tell the clients apart: Outlook 5, Thunderbird 8, Gmail 10 (then 9).
_DASHED_SEP = re.compile(rf"^(-{{2,}})\s*(?:{_SEP_PHRASES})\s*-{{2,}}$", re.IGNORECASE)
_APPLE_SEP = re.compile(
    r"^(?:begin forwarded message|początek przekazywanej wiadomości)\s*:$", re.IGNORECASE
)
# Outlook on the web / mobile write a line of underscores; html2text renders an
# <hr> as "* * *". Either only counts when a header block follows.
_RULE_SEP = re.compile(r"^(?:_{10,}|(?:\* ){2,}\*|-{20,})$")

#: Header labels of forward blocks, by meaning.
_LABELS: dict[str, str] = {
    "from": "from",
    "od": "from",
    "nadawca": "from",
    "sent": "date",
    "date": "date",
    "data": "date",
    "wysłano": "date",
    "wysłane": "date",
    "wysłana": "date",
    "to": "to",
    "do": "to",
    "adresat": "to",
    "adresaci": "to",
    "cc": "cc",
    "dw": "cc",
    "kopia": "cc",
    "subject": "subject",
    "temat": "subject",
    # read and kept out of the text, but not used
    "reply-to": "other",
    "odpowiedź do": "other",
    "importance": "other",
    "priorytet": "other",
    "ważność": "other",
    "attachments": "other",
    "załączniki": "other",
    "organization": "other",
    "organizacja": "other",
    "bcc": "other",
    "udw": "other",
}
_LABEL_LINE = re.compile(
    r"^[*_]{0,2}(?P<label>[^\W\d_][\w -]{0,18}?)[*_]{0,2}\s*:[*_]{0,2}(?:\s+|$)(?P<value>.*)$"
)
_MAX_SEPARATOR = 200  # characters: separator lines are short, and long ones slow to match
_MAX_LEADING_BLANKS = 3  # between a separator and its header block
_MAX_HEADER_LINES = 30
_MAX_BLOCK_LINES = 1_000  # with wrapped recipient lines; the body starts after them
#: Characters kept of one header value of a forward block, wrapped lines
#: included: far more than `_MAX_RECIPIENTS` long addresses need, so that a
#: pasted list of thousands costs no more than one of a hundred.
_MAX_VALUE = 16_000
#: Recipients read of an original's To: or Cc:; real ones list a few dozen.
_MAX_RECIPIENTS = 100
#: Lines of the text a forward block must start within: first line's note
#: above it is a few lines (or a few dozen, with a signature and disclaimer).
_MAX_NOTE_LINES = 1_000


@dataclass(slots=True)
class _Block:
    start: int  # first line of the forward (separator or first header line)
    end: int  # first line of the original's body
    style: str
    fields: dict[str, str] = field(default_factory=dict)
    raw: list[tuple[str, str]] = field(default_factory=list)
    full: set[str] = field(default_factory=set)  # fields cut at `_MAX_VALUE`

    def wrap(self, meaning: str, line: str) -> None:
        """Add a wrapped line to a recipient list, until the list is full.

        A full list takes no more, so each further line costs only its own
        reading, not another copy of the list.
        """
        if meaning in self.full:
            return
        value = f"{self.fields.get(meaning, '')} {_clean_value(line)}".strip()
        if len(value) > _MAX_VALUE:
            self.full.add(meaning)
        self.fields[meaning] = _capped(value)


def _find_inline(msg: ParsedMessage) -> Forwarded | None:
    lines = msg.text.split("\n")
    block = _first_block(lines)
    if block is None:
        return None
    note = _tidy("\n".join(lines[: block.start]))
    body = _tidy("\n".join(lines[block.end :]))
    requester = _one_address(block.fields.get("from", ""))
    subject = block.fields.get("subject") or strip_forward_prefix(msg.subject)
    default_tz = msg.date.tzinfo if msg.date and msg.date.tzinfo else UTC
    original = ParsedMessage(
        message_id=_derived_id(block, body),
        message_id_derived=True,
        subject=subject,
        sender=requester,
        to=_addresses(block.fields.get("to", "")),
        cc=_addresses(block.fields.get("cc", "")),
        date=parse_loose_date(block.fields.get("date", ""), default_tz),
        headers={name: (value,) for name, value in block.raw},
        text=body,
        content_type="text/plain",
        size=len(body.encode("utf-8", "surrogatepass")),
    )
    return Forwarded(block.style, requester, original, note)


def _first_block(lines: Sequence[str]) -> _Block | None:
    """The first forward block, scanning each line about once.

    A bare `From:` block that lacks a date and a subject or recipient is not a
    forward; neither is any block starting inside it (it reads a subset of the
    same header lines), so the scan goes on after it. A block must start within
    `_MAX_NOTE_LINES`: the rest of a long text is not read for one.
    """
    i = 0
    while i < min(len(lines), _MAX_NOTE_LINES):
        line = _unescape(lines[i].strip())
        i += 1
        if not line:
            continue
        style = _separator_style(line)
        if style is not None:
            block = _read_headers(lines, i, start=i - 1, style=style)
            if style != "rule":
                return block
            if "from" in block.fields:  # a rule line only counts above a header block
                block.style = "outlook"
                return block
            continue
        if _label(line) == ("from", True):
            block = _read_headers(lines, i - 1, start=i - 1, style="outlook")
            names = block.fields.keys()
            if "date" in names and ("subject" in names or "to" in names):
                return block
            i = max(i, block.end)
    return None


def _separator_style(line: str) -> str | None:
    if len(line) > _MAX_SEPARATOR:
        return None
    dashed = _DASHED_SEP.match(line)
    if dashed:
        dashes = len(dashed.group(1))
        return "outlook" if dashes <= 5 else "thunderbird" if dashes < 10 else "gmail"
    if _APPLE_SEP.match(line):
        return "apple"
    if _RULE_SEP.match(line):
        return "rule"
    return None


def _label(line: str) -> tuple[str, bool] | None:
    """The meaning of a header line's label and whether it has a value."""
    match = _LABEL_LINE.match(line)
    if not match:
        return None
    meaning = _LABELS.get(match.group("label").strip().lower())
    if meaning is None:
        return None
    return meaning, bool(match.group("value").strip())


def _read_headers(lines: Sequence[str], i: int, *, start: int, style: str) -> _Block:
    """Read `Label: value` lines from lines[i]; the body starts after them.

    The block ends at the first blank line (after at least one header) or at a
    line that is not a header; only recipient lists may wrap onto more lines,
    since clients wrap long To:/Cc: lines but the body follows other labels.
    """
    block = _Block(start=start, end=i, style=style)
    blanks = 0
    last: str | None = None
    stop = min(len(lines), i + _MAX_BLOCK_LINES)
    while i < stop and len(block.raw) < _MAX_HEADER_LINES:
        line = _unescape(lines[i].strip())
        if not line:
            if block.raw or blanks >= _MAX_LEADING_BLANKS:
                break
            blanks += 1
            i += 1
            continue
        match = _LABEL_LINE.match(line)
        meaning = _LABELS.get(match.group("label").strip().lower()) if match else None
        if match and meaning:
            value = _clean_value(match.group("value"))
            name = match.group("label").strip().lower()
            block.raw.append((name, _capped(value)))
            if meaning != "other" and meaning not in block.fields:
                block.fields[meaning] = _capped(value)
                if len(value) > _MAX_VALUE:
                    block.full.add(meaning)
            last = meaning
        elif last in ("to", "cc") and ("@" in line or ";" in line or "," in line):
            block.wrap(last, line)
        else:
            break
        i += 1
        block.end = i
    if not block.raw:
        block.end = start + 1  # a bare separator: the body follows it
    return block


# --- values ---------------------------------------------------------------------------

_MD_LINK = re.compile(r"\[([^\[\]\n]*)\]\((?:mailto:)?[^()\s]*\)")
_MD_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!<>|])")
_MAILTO = re.compile(r"\[\s*mailto:\s*([^\[\]\s]+)\s*\]", re.IGNORECASE)
_ANGLE = re.compile(r"<\s*([^<>\s@]+@[^<>\s]+)\s*>")
_MAX_SENDER = 1_000  # characters of a sender line worth reading; real ones are short
_VALID_ADDR = re.compile(r"^[^@\s<>\[\]()\",;:]+@[\w-]+(?:\.[\w-]+)+$")


def _unescape(line: str) -> str:
    """Undo html2text's Markdown escapes (`\\-----`, `jan\\_nowak`)."""
    return _MD_ESCAPE.sub(r"\1", line)


def _clean_value(value: str) -> str:
    value = _MD_LINK.sub(r"\1", value[: 2 * _MAX_VALUE])
    return value.replace("**", "").strip().strip("*_").strip()


def _capped(value: str) -> str:
    """The value cut to `_MAX_VALUE` characters at a space or a list separator,
    so that no address is cut in half into another that looks valid."""
    if len(value) <= _MAX_VALUE:
        return value
    head = value[:_MAX_VALUE]
    cut = max(head.rfind(" "), head.rfind(","), head.rfind(";"))
    return head[:cut].rstrip(" ,;") if cut > 0 else head


def _one_address(value: str) -> Address | None:
    """An Address from a sender line in any of the clients' notations."""
    value = value.strip()[:_MAX_SENDER]
    for pattern in (_MAILTO, _ANGLE):
        match = pattern.search(value)
        if match:
            addr = match.group(1).strip().lower()
            name = value[: match.start()].strip().strip("\"'").strip()
            break
    else:
        spans = address_spans(value)
        if not spans:
            return None
        addr = value[spans[0][0] : spans[0][1]].lower()
        name = value[: spans[0][0]].strip().strip("\"'").strip()
    addr = addr.rstrip(".")
    if not _VALID_ADDR.match(addr):
        return None
    if name.lower() == addr:
        name = ""
    return Address(addr=addr, name=name)


def _addresses(value: str) -> tuple[Address, ...]:
    """Recipients, the first `_MAX_RECIPIENTS` distinct ones: Outlook separates
    them by ';' (and leaves commas in names)."""
    if not value:
        return ()
    value = _capped(value)
    if ";" in value:
        parts = value.split(";")
    else:
        parts = [f"{n} <{a}>" if n else a for n, a in email.utils.getaddresses([value])]
    found: dict[str, Address] = {}  # by address: the first notation of each wins
    for part in parts:
        address = _one_address(part)
        if address and address.addr not in found:
            found[address.addr] = address
            if len(found) == _MAX_RECIPIENTS:
                break
    return tuple(found.values())


_FORWARD_PREFIX = re.compile(
    r"^\s*(?:(?:fwd?|pd|wg|tr|rv|enc|doorst|vs|fs|i|przekaż)(?:\s*\[\d+\])?\s*[:：]\s*)+",
    re.IGNORECASE,
)


def strip_forward_prefix(subject: str) -> str:
    """The subject without the forwarders' `Fwd:`/`FW:`/`PD:` prefixes.

    Reply prefixes stay: if the requester wrote "RE: ...", that was their subject.
    """
    return _FORWARD_PREFIX.sub("", subject).strip()


def _derived_id(block: _Block, body: str) -> str:
    """A stable id for a rebuilt original: the same forward twice gives one id."""
    digest = hashlib.sha256()
    for name, value in block.raw:
        digest.update(f"{name}: {value}\n".encode("utf-8", "surrogatepass"))
    digest.update(b"\n" + body.strip().encode("utf-8", "surrogatepass"))
    return f"{digest.hexdigest()[:40]}@derived.invalid"


# --- dates as clients write them --------------------------------------------------------

_MONTHS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
    "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
    "sty": 1, "lut": 2, "kwi": 4, "maj": 5, "cze": 6, "lip": 7,
    "sie": 8, "wrz": 9, "paź": 10, "paz": 10, "lis": 11, "gru": 12,
}  # fmt: skip
_ZONES = {"utc": 0, "gmt": 0, "ut": 0, "z": 0, "cet": 60, "cest": 120, "eet": 120,
          "eest": 180, "wet": 0, "west": 60, "bst": 60, "est": -300, "edt": -240,
          "cst": -360, "cdt": -300, "pst": -480, "pdt": -420}  # fmt: skip
_RFC_DATE = re.compile(r"^(?:[A-Za-z]{3},?\s*)?\d{1,2}\s+[A-Za-z]{3}\s+\d{4}\s+\d{1,2}:\d{2}")
_TIME = re.compile(r"\b(\d{1,2}):(\d{2})(?::(\d{2}))?\s*(?:([AaPp])\.?\s?[Mm]\.?)?(?!\w)")
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_DMY_DATE = re.compile(r"\b(\d{1,2})[./](\d{1,2})[./](\d{4})\b")
_YEAR = re.compile(r"\b(\d{4})\b")
_DAY = re.compile(r"(?<![\d:])(\d{1,2})(?![\d:])")
_WORD = re.compile(r"[^\W\d_]+")
_OFFSET = re.compile(r"(?:\b(?:GMT|UTC))?([+-])(\d{1,2})(?::?(\d{2}))?\b")
_ZONE_WORD = re.compile(r"\b([A-Za-z]{1,4})\s*$")


def parse_loose_date(value: str, default_tz: tzinfo = UTC) -> datetime | None:
    """A date as forward blocks show it, in English or Polish; None if unreadable.

    Outlook's `Sent:` carries no zone: it is the forwarder's local time, and the
    forwarder's client wrote the outer Date header in the same zone, so the
    caller passes that header's zone as `default_tz`.
    """
    value = value.strip()
    if not value or len(value) > 200:
        return None
    try:
        if _RFC_DATE.match(value):
            parsed = email.utils.parsedate_to_datetime(value)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=default_tz)
        return _loose(value, default_tz)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _loose(value: str, default_tz: tzinfo) -> datetime | None:
    time = _TIME.search(value)
    hour = minute = second = 0
    rest = value
    if time:
        hour, minute, second = int(time.group(1)), int(time.group(2)), int(time.group(3) or 0)
        if time.group(4):
            hour = hour % 12 + (12 if time.group(4).lower() == "p" else 0)
        rest = value[: time.start()] + " " + value[time.end() :]
    iso, dmy = _ISO_DATE.search(rest), _DMY_DATE.search(rest)
    if iso:
        year, month, day = int(iso.group(1)), int(iso.group(2)), int(iso.group(3))
    elif dmy:
        day, month, year = int(dmy.group(1)), int(dmy.group(2)), int(dmy.group(3))
    else:
        year_match = _YEAR.search(rest)
        month = next(
            (_MONTHS[w[:3].lower()] for w in _WORD.findall(rest) if w[:3].lower() in _MONTHS),
            None,
        )
        day_match = _DAY.search(_YEAR.sub(" ", rest))
        if not (year_match and month and day_match):
            return None
        year, day = int(year_match.group(1)), int(day_match.group(1))
    zone = _zone(value[time.end() :] if time else "", default_tz)
    return datetime(year, month, day, hour, minute, second, tzinfo=zone)


def _zone(tail: str, default_tz: tzinfo) -> tzinfo:
    offset = _OFFSET.search(tail)
    if offset:
        minutes = int(offset.group(2)) * 60 + int(offset.group(3) or 0)
        if minutes < 24 * 60:
            sign = -1 if offset.group(1) == "-" else 1
            return timezone(timedelta(minutes=sign * minutes))
    word = _ZONE_WORD.search(tail)
    if word and word.group(1).lower() in _ZONES:
        return timezone(timedelta(minutes=_ZONES[word.group(1).lower()]))
    return default_tz
