"""Value parsers for rules.yaml: durations, addresses, shares, calendars.

Each parser takes a `Reader`, a node and its YAML path, and returns the value or
None after recording an issue, so the loader can go on and report everything.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import date, timedelta
from functools import partial

from yaml.nodes import MappingNode, Node, ScalarNode

from daemon.core.businesstime import Calendar, Duration
from daemon.rules.schema import Reader, child_path

LEVELS = ("high", "medium", "low")
PRIORITIES = ("P1", "P2", "P3", "P4", "P5")
LANGUAGES = ("en", "pl")
CHANNELS = ("email", "escalation", "cli")
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

#: Ten years: anything longer is a typo, and would overflow deadline arithmetic.
MAX_DURATION_DAYS = 3650
#: A holiday range longer than a year is almost certainly a typo in a year.
MAX_HOLIDAY_DAYS = 366
#: Most days in a row a calendar may have no working time (holidays joined by
#: the weekdays without hours between them): two longest holiday ranges back
#: to back. Deadline arithmetic gives up after `businesstime.MAX_IDLE_DAYS`
#: (1830) such days and would then fail every mail; this stays well below.
MAX_CLOSED_DAYS = 2 * MAX_HOLIDAY_DAYS
#: Largest escalation share, in percent. A step fires when that share of the
#: SLA target has passed (100% is the breach); ten times the target is far
#: past any sane ladder, and keeps step moments within dates `datetime` can hold.
MAX_SHARE_PERCENT = 1000

_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
_SHARE = re.compile(r"(\d+(?:\.\d+)?)\s*%")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_CLOCK = re.compile(r"(\d{2}):(\d{2})")
_DAY = 1440  # minutes


def duration(reader: Reader, node: Node, path: str) -> Duration | None:
    """`30s`, `15m`, `4h`, `2d` or a combination in that order such as `1d4h`."""
    text = reader.string(node, path)
    if text is None:
        return None
    compact = re.sub(r"\s+", "", text)
    match = _DURATION.fullmatch(compact)
    if match is None or not any(match.groups()):
        reader.error(node, path, f"{_duration_problem(compact)}: '{text}' ({_DURATION_HINT})")
        return None
    if any(len((part or "").lstrip("0")) > _MAX_DURATION_DIGITS for part in match.groups()):
        reader.error(node, path, f"longer than {MAX_DURATION_DAYS} days: '{text}'")
        return None
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if days == 0 and total == 0:
        reader.error(node, path, f"must be longer than zero: '{text}'")
        return None
    if days + total // 86400 > MAX_DURATION_DAYS:
        reader.error(node, path, f"longer than {MAX_DURATION_DAYS} days: '{text}'")
        return None
    return Duration(days=days, seconds=total)


_DURATION_HINT = "write e.g. 30s, 15m, 4h, 2d or 1d4h"
#: Digits of the longest duration in seconds: a part with more is too long,
#: and one past 4,300 digits would make int() itself refuse with ValueError.
_MAX_DURATION_DIGITS = len(str(MAX_DURATION_DAYS * 86400))


def _duration_problem(compact: str) -> str:
    digits = compact.lstrip("+-")
    if digits.isdigit():
        return "must be longer than zero" if int(digits) == 0 else "needs a unit (s, m, h or d)"
    return "bad duration"


def address(reader: Reader, node: Node, path: str) -> str | None:
    """A bare mail address (`user@example.com`), lower-cased."""
    text = reader.string(node, path)
    if text is None:
        return None
    if not _ADDRESS.fullmatch(text.strip()):
        reader.error(node, path, f"'{text}' is not a mail address like user@example.com")
        return None
    return text.strip().lower()


#: `Anna Nowak <anna@example.com>` (the name may be in double quotes).
_PERSON = re.compile(r'\s*(?:"([^"]*)"|([^"<>]*?))\s*<([^<>]*)>\s*')
_PERSON_HINT = "like anna@example.com or Anna Nowak <anna@example.com>"


def person(reader: Reader, node: Node, path: str) -> tuple[str, str | None] | None:
    """An agent: a bare address, or a display name and an address in angle
    brackets, as mail clients write them. Returns (address lower-cased, name)."""
    text = reader.string(node, path)
    if text is None:
        return None
    if _ADDRESS.fullmatch(text.strip()):
        return text.strip().lower(), None
    match = _PERSON.fullmatch(text)
    if match is None:
        reader.error(node, path, f"'{text}' is not a mail address {_PERSON_HINT}")
        return None
    name = " ".join((match.group(1) if match.group(1) is not None else match.group(2)).split())
    addr = match.group(3).strip()
    if not _ADDRESS.fullmatch(addr):
        reader.error(node, path, f"'{addr}' in '{text}' is not a mail address {_PERSON_HINT}")
        return None
    if not name or not name.isprintable():
        reader.error(node, path, f"'{text}': the name before <{addr}> is empty or unprintable")
        return None
    return addr.lower(), name


def share(reader: Reader, node: Node, path: str) -> float | None:
    """A percentage above 0% and at most MAX_SHARE_PERCENT, such as `75%` or
    `87.5%`, as a fraction (0.75). Bounded above because the step's moment is
    the target's length times the share: a huge one overflows that arithmetic
    for every ticket."""
    text = reader.string(node, path)
    if text is None:
        return None
    match = _SHARE.fullmatch(text.strip())
    if match is None or float(match.group(1)) <= 0:
        reader.error(node, path, f"expected a positive percentage like 75%, got '{text}'")
        return None
    percent = float(match.group(1))
    if percent > MAX_SHARE_PERCENT:
        reader.error(node, path, f"must be at most {MAX_SHARE_PERCENT}%, got '{text}'")
        return None
    return percent / 100


def timezone(reader: Reader, node: Node, path: str) -> str | None:
    """An IANA zone name that zoneinfo knows (Europe/Warsaw, UTC)."""
    text = reader.string(node, path)
    if text is None:
        return None
    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        reader.error(node, path, f"unknown time zone '{text}' (write e.g. Europe/Warsaw or UTC)")
        return None
    return text


def calendar(reader: Reader, name: str, node: Node, path: str) -> Calendar | None:
    """A calendar: zone, weekly working hours (or `always`) and holidays."""
    fields = reader.mapping(node, path, required=("timezone", "hours"), optional=("holidays",))
    if fields is None:
        return None
    zone = reader.optional(fields, "timezone", path, partial(timezone, reader))
    holidays = _holidays(reader, fields.get("holidays"), child_path(path, "holidays"))
    hours_node = fields.get("hours")
    if hours_node is None or zone is None or holidays is None:
        return None
    hours_path = child_path(path, "hours")
    if isinstance(hours_node, ScalarNode) and hours_node.value == "always":
        if holidays:
            reader.error(fields["holidays"], child_path(path, "holidays"), _ALWAYS_HOLIDAYS)
            return None
        return Calendar(name=name, timezone=zone, always=True)
    weekly = _weekly(reader, hours_node, hours_path)
    if weekly is None:
        return None
    if not any(weekly):
        reader.error(hours_node, hours_path, "the calendar has no working hours at all")
        return None
    closed = closed_too_long(weekly, holidays)
    if closed is not None:
        first, last = closed
        days = (last - first).days + 1
        message = (
            f"no working time from {first.isoformat()} to {last.isoformat()} ({days} days in a"
            f" row; holidays may close the calendar for at most {MAX_CLOSED_DAYS} days in a row)"
        )
        reader.error(fields["holidays"], child_path(path, "holidays"), message)
        return None
    return Calendar(name=name, timezone=zone, weekly=weekly, holidays=holidays)


_ONE_DAY = timedelta(days=1)


def closed_too_long(
    weekly: tuple[tuple[tuple[int, int], ...], ...], holidays: tuple[tuple[date, date], ...]
) -> tuple[date, date] | None:
    """The first run of days without working time longer than MAX_CLOSED_DAYS,
    as (first, last), or None.

    Each holiday range (sorted) is widened over the weekdays without hours
    on either side, and ranges that then touch are joined: exactly the runs
    of closed days that hold a holiday (the others are shorter than a week,
    as some weekday has hours). Linear in the number of ranges, so it can be
    checked at load for any date, where a walk over days could not.
    """
    workdays = frozenset(day for day, ranges in enumerate(weekly) if ranges)
    runs: list[tuple[date, date]] = []
    for first, last in holidays:
        first = _closed_edge(first, -_ONE_DAY, workdays)
        last = _closed_edge(last, _ONE_DAY, workdays)
        if runs and (first - runs[-1][1]).days <= 1:
            runs[-1] = (runs[-1][0], max(runs[-1][1], last))
        else:
            runs.append((first, last))
    return next((run for run in runs if (run[1] - run[0]).days >= MAX_CLOSED_DAYS), None)


def _closed_edge(day: date, step: timedelta, workdays: frozenset[int]) -> date:
    """The furthest day from `day` in direction `step` before a weekday with
    hours (at most six steps), stopping at the ends of the calendar of dates."""
    while True:
        try:
            following = day + step
        except OverflowError:
            return day
        if following.weekday() in workdays:
            return day
        day = following


_ALWAYS_HOLIDAYS = "holidays have no effect with hours: always; remove them"


def _weekly(
    reader: Reader, node: Node, path: str
) -> tuple[tuple[tuple[int, int], ...], ...] | None:
    """Day specs -> ranges, overnight ranges split onto the next day, merged per day."""
    if not isinstance(node, MappingNode):
        reader.error(node, path, "expected 'always' or a mapping like {mon-fri: \"08:00-17:00\"}")
        return None
    entries = reader.entries(node, path)
    if entries is None:
        return None
    per_day: list[list[tuple[int, int]]] = [[] for _ in DAY_NAMES]
    ok = True
    for spec, key_node, value in entries:
        item_path = child_path(path, spec)
        days = _days(spec)
        if days is None:
            reader.error(key_node, item_path, f"bad day spec '{spec}' (write e.g. mon-fri, sat)")
            ok = False
            continue
        ranges = _ranges(reader, value, item_path)
        if ranges is None:
            ok = False
            continue
        for day in days:
            for start, end in ranges:
                _add_range(per_day, day, start, end)
    if not ok:
        return None
    return _merge_days(reader, node, path, per_day)


def _add_range(per_day: list[list[tuple[int, int]]], day: int, start: int, end: int) -> None:
    if start < end:
        per_day[day].append((start, end))
        return
    per_day[day].append((start, _DAY))  # overnight: the rest of this day ...
    if end > 0:
        per_day[(day + 1) % 7].append((0, end))  # ... and the morning of the next


def _merge_days(
    reader: Reader, node: Node, path: str, per_day: list[list[tuple[int, int]]]
) -> tuple[tuple[tuple[int, int], ...], ...] | None:
    """Sort each day's ranges, join touching ones, and refuse overlaps."""
    weekly: list[tuple[tuple[int, int], ...]] = []
    for day, ranges in enumerate(per_day):
        merged: list[tuple[int, int]] = []
        for start, end in sorted(ranges):
            if merged and start < merged[-1][1]:
                reader.error(node, path, f"working hours overlap on {DAY_NAMES[day]}")
                return None
            if merged and start == merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
            else:
                merged.append((start, end))
        weekly.append(tuple(merged))
    return tuple(weekly)


def _days(spec: str) -> list[int] | None:
    """`mon-fri`, `sat`, `mon,wed`, `fri-mon` (wraps over the weekend) -> weekday numbers."""
    days: list[int] = []
    for item in spec.lower().split(","):
        first, sep, last = item.strip().partition("-")
        if first not in DAY_NAMES or (sep and last not in DAY_NAMES):
            return None
        start = DAY_NAMES.index(first)
        stop = DAY_NAMES.index(last) if sep else start
        span = (stop - start) % 7
        days.extend((start + offset) % 7 for offset in range(span + 1))
    return days


def _ranges(reader: Reader, node: Node, path: str) -> list[tuple[int, int]] | None:
    """`"08:00-17:00"` or `"08:00-12:00, 13:00-17:00"` -> (start, end) minutes."""
    text = reader.string(node, path)
    if text is None:
        return None
    ranges: list[tuple[int, int]] = []
    for item in text.split(","):
        first, sep, last = item.strip().partition("-")
        start, end = _minute(first.strip()), _minute(last.strip())
        if not sep or start is None or end is None or start == _DAY:
            reader.error(node, path, f"bad hours '{item.strip()}' (write e.g. 08:00-17:00)")
            return None
        if start == end % _DAY and not (start == 0 and end == _DAY):
            reader.error(node, path, f"empty range '{item.strip()}'")
            return None
        ranges.append((start, end))
    return ranges


def _minute(text: str) -> int | None:
    """`HH:MM` -> minute of the day; `24:00` is the end of the day."""
    match = _CLOCK.fullmatch(text)
    if match is None:
        return None
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        return None
    return hours * 60 + minutes


def _holidays(reader: Reader, node: Node | None, path: str) -> tuple[tuple[date, date], ...] | None:
    """ISO dates and `first..last` ranges, as sorted inclusive pairs."""
    if node is None:
        return ()
    pairs = reader.each(node, path, lambda item, item_path: _holiday(reader, item, item_path))
    return None if pairs is None else tuple(sorted(pairs))


def _holiday(reader: Reader, node: Node, path: str) -> tuple[date, date] | None:
    text = reader.string(node, path)
    if text is None:
        return None
    first_text, sep, last_text = text.strip().partition("..")
    first, last = _date(first_text.strip()), _date((last_text if sep else first_text).strip())
    if first is None or last is None:
        reader.error(node, path, f"bad date '{text}' (write 2026-12-24 or 2026-12-24..2026-12-26)")
        return None
    if last < first:
        reader.error(node, path, f"range ends before it starts: '{text}'")
        return None
    if (last - first).days >= MAX_HOLIDAY_DAYS:
        reader.error(node, path, f"range longer than {MAX_HOLIDAY_DAYS} days: '{text}'")
        return None
    return (first, last)


def _date(text: str) -> date | None:
    if not _ISO_DATE.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None
