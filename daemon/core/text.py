"""What a person actually wrote in a reply.

Mail clients append the whole thread and a signature to every reply. The ticket
should keep only the words the author wrote (for an agent's reply mailed to the
requester, for the resolution note, for the verification answer in `answers`), so this module
recognises the quoting styles of the clients our users have, in English and Polish:
`>` quotes and their "On ... wrote:" lines, Outlook's header blocks and separators,
forwards, the `-- ` signature delimiter and mobile footers.

The cut is conservative where it matters: the author's lines are returned exactly
as written (only blank lines around removed parts and trailing whitespace go).
Pure string work on the decoded text body: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# --- quoted history -----------------------------------------------------------------

_QUOTED = re.compile(r"^[ \t]*>")

# "-----Original Message-----" (Outlook), "-------- Forwarded Message --------"
# (Thunderbird), "---------- Forwarded message ---------" (Gmail), and the Polish ones.
_SEPARATOR = re.compile(
    r"^\s*-{2,}\s*(?:original message|forwarded message|oryginalna wiadomość"
    r"|wiadomość oryginalna|wiadomość przekazana dalej|przekazana wiadomość"
    r"|wiadomość przekazana)\s*-{2,}\s*$"
    r"|^\s*(?:begin forwarded message|początek przekazywanej wiadomości)\s*:\s*$"
    r"|^\s*_{10,}\s*$",  # Outlook on the web / mobile, before its header block
    re.IGNORECASE,
)

# Outlook's header block: From/Od followed closely by Sent/Date/Wysłano/Data.
# Labels may be bolded by an HTML-to-text conversion ("*From:*", "**Od:**").
_HEADER_FROM = re.compile(r"^\s*\*{0,2}(?:from|od)\s*:", re.IGNORECASE)
_HEADER_DATE = re.compile(r"^\s*\*{0,2}(?:sent|date|wysłano|wysłane|data)\s*:", re.IGNORECASE)
_HEADER_WINDOW = 6  # lines after From: in which a Sent:/Date: must follow

# Attribution lines, possibly wrapped over up to three lines:
# "On Mon, 3 Nov 2026 at 10:00, Jan Kowalski <jan@x.pl> wrote:" (Gmail, Apple Mail,
# Thunderbird), "W dniu 3.11.2026 o 10:00, Jan Kowalski pisze:" (Thunderbird PL),
# "Dnia 3.11.2026 ... napisał(a):", "pt., 3 lis 2026 o 10:00 Jan <jan@x.pl> napisał(a):"
# (Gmail PL), and Apple Mail PL "Wiadomość napisana przez Jan ... w dniu ..., o godz. 10:00:".
_ATTRIBUTION_VERB = re.compile(
    r"\b(?:wrote|napisał\(a\)|napisała|napisał|pisze)\s*:$", re.IGNORECASE
)
_ATTRIBUTION_OPENER = re.compile(
    r"^(?:on|w dniu|dnia|wiadomość napisana przez)\s|^(?:pon|wt|śr|czw|pt|sob|niedz|nd)\.,?\s"
    r"|^\d{1,4}[./-]\d{1,2}[./-]\d{1,4}\b|^\d{1,2}\s+\w+\.?\s+\d{4}\b",  # 3.11.2026, 3 lis 2026
    re.IGNORECASE,
)
_ATTRIBUTION_MAX_LINES = 3

# Footers that mail apps on phones add by themselves; matched as whole lines,
# optionally followed by a link (Outlook mobile writes "Get Outlook for iOS<https://...>").
_LINK = r"(?:\s*<https?://[^>\s]*>)?"
_MOBILE_FOOTER = re.compile(
    r"^\s*(?:"
    r"sent from my [^,;:!?]{1,40}"
    r"|sent (?:from|with|using) (?:outlook|mail|yahoo|aol|gmail|samsung|proton|blackberry"
    r"|my mobile)\b[^,;:!?]{0,40}"
    r"|get outlook for (?:ios|android)"
    r"|wysłan[eoa] (?:z|ze) (?:mojego |mojej )?(?:iphone|ipad|smartfon|telefon|urządzeni"
    r"|aplikacj|outlook|poczt|samsung|galaxy|huawei|xiaomi|android|tablet|komórki)"
    r"[^,;:!?]{0,40}"
    r"|pobierz (?:aplikację )?outlook dla (?:systemu )?(?:android|ios)"
    rf"){_LINK}\s*$",
    re.IGNORECASE,
)


def _blank(line: str) -> bool:
    return not line.strip()


def is_signature_delimiter(line: str) -> bool:
    # "-- " per RFC 3676; many clients and converters drop the trailing space.
    return line.rstrip() == "--"


def _is_outlook_header(lines: Sequence[str], i: int) -> bool:
    if not _HEADER_FROM.match(lines[i]):
        return False
    window = lines[i + 1 : i + 1 + _HEADER_WINDOW]
    return any(_HEADER_DATE.match(line) for line in window)


def _is_history_start(lines: Sequence[str], i: int) -> bool:
    """True when lines[i] starts text the author did not write, down to the end."""
    line = lines[i]
    return bool(
        is_signature_delimiter(line)
        or _SEPARATOR.match(line)
        or _MOBILE_FOOTER.match(line)
        or _is_outlook_header(lines, i)
    )


def _next_nonblank(lines: Sequence[str], i: int) -> int:
    while i < len(lines) and _blank(lines[i]):
        i += 1
    return i


def _is_apple_pl_attribution(joined: str) -> bool:
    low = joined.casefold()
    return low.startswith("wiadomość napisana przez ") and " w dniu " in low and low.endswith(":")


def _attribution_length(lines: Sequence[str], i: int) -> int:
    """How many lines an attribution starting at lines[i] spans; 0 if it is none.

    A line ending in "wrote:"/"napisał(a):"/"pisze:" counts when it opens like a
    client's attribution ("On", "W dniu", "Dnia", a date or a Polish weekday), or
    when a `>` quote follows it. Only such an opening line may wrap onto the next
    ones, so a sentence of one's own ending in "wrote:" above unquoted text stays.
    """
    if i >= len(lines):
        return 0
    first = lines[i].strip()
    if not first.endswith(":") and not _ATTRIBUTION_OPENER.match(first):
        return 0  # most lines: neither the end of an attribution nor an opening that wraps
    for length in range(1, _ATTRIBUTION_MAX_LINES + 1):
        part = lines[i : i + length]
        if len(part) < length or any(_blank(line) or _QUOTED.match(line) for line in part):
            return 0
        joined = " ".join(line.strip() for line in part)
        opener = bool(_ATTRIBUTION_OPENER.match(joined))
        # Both kinds end in a colon, and a line of one's own rarely does: the
        # verb's search along the whole line is most of a line's cost.
        if joined.endswith(":"):
            if _is_apple_pl_attribution(joined):
                return length
            if _ATTRIBUTION_VERB.search(joined):
                after = _next_nonblank(lines, i + length)
                quoted_next = after < len(lines) and bool(_QUOTED.match(lines[after]))
                return length if opener or quoted_next else 0
        if not opener:
            return 0
    return 0


_GAP = None  # marks where a quote was removed, so the blank lines around it collapse


def own_text(body: str) -> str:
    """The part of a reply its author wrote: quoted history and signatures cut.

    Top-posted replies keep the text above the history; bottom-posted and inline
    replies keep every unquoted line, with each removed quote (and its "wrote:"
    line) collapsed to a single blank line. Everything from a signature delimiter,
    a mobile footer, a forward/original-message separator or an Outlook header
    block on is history. An attribution that is not followed by `>` lines (an HTML
    reply turned into text) also starts history down to the end.
    """
    lines = body.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str | None] = []
    i = 0
    while i < len(lines):
        if _is_history_start(lines, i):
            break
        length = _attribution_length(lines, i)
        if length:
            after = _next_nonblank(lines, i + length)
            if after >= len(lines) or not _QUOTED.match(lines[after]):
                break
            kept.append(_GAP)
            i = after
            continue
        if _QUOTED.match(lines[i]):
            kept.append(_GAP)
            while i < len(lines) and _QUOTED.match(lines[i]):
                i += 1
            continue
        kept.append(lines[i])
        i += 1
    return _join(kept)


def _join(kept: Sequence[str | None]) -> str:
    out: list[str] = []
    gap = False
    for line in kept:
        if line is None:  # _GAP
            while out and _blank(out[-1]):
                out.pop()
            gap = bool(out)
            continue
        if gap:
            if _blank(line):
                continue
            out.append("")
            gap = False
        out.append(line)
    start = 0
    while start < len(out) and _blank(out[start]):
        start += 1
    return "\n".join(out[start:]).rstrip()


def first_own_line(body: str) -> str:
    """The first non-blank line the author wrote, stripped; "" if there is none."""
    for line in own_text(body).split("\n"):
        if line.strip():
            return line.strip()
    return ""
