"""Business time: calendars, durations, and the arithmetic over working hours.

Pure arithmetic over aware datetimes; `rules` builds the `Calendar` and
`Duration` values from rules.yaml, this module only computes with them. Apart
from `sla` because adding and measuring working time is one job (DST, holidays,
caches, the many-tickets `Timeline`) and judging SLA targets another.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class Duration:
    """A span of business time: whole business days plus business seconds.

    `days` are counted as "the same business moment N working days later";
    `seconds` are counted through the calendar's working hours.
    """

    days: int = 0
    seconds: int = 0


@dataclass(frozen=True, slots=True)
class Calendar:
    """Working time of one calendar.

    `weekly[d]` holds the working ranges of weekday d (0 = Monday) as
    (start_minute, end_minute) pairs within that day, sorted and disjoint,
    end_minute at most 1440; an overnight range is split at midnight by the
    builder. `always` means 24x7 and ignores `weekly` and `holidays`.
    `holidays` are inclusive (first, last) date ranges in the calendar's zone.
    """

    name: str
    timezone: str
    always: bool = False
    weekly: tuple[tuple[tuple[int, int], ...], ...] = ((),) * 7
    holidays: tuple[tuple[date, date], ...] = ()
    #: The hash, computed once: the memoised arithmetic below takes the
    #: calendar as a key on every call, and a year of holidays is a long
    #: tuple to hash each time.
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash(self._given()))

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple[type[Calendar], tuple[object, ...]]:
        """Rebuilt, not restored, in another process: a string's hash differs
        from one interpreter to the next, so the hash is computed afresh."""
        return Calendar, self._given()

    def _given(self) -> tuple[object, ...]:
        """The fields the calendar was made with, in their order."""
        return (self.name, self.timezone, self.always, self.weekly, self.holidays)


# --------------------------------------------------------------------------
# Arithmetic
#
# Working time becomes absolute (UTC) intervals one local day at a time: a
# day's (start_minute, end_minute) ranges are wall-clock times in the
# calendar's zone, so business hours follow DST, while every sum and
# difference is taken in UTC, so a DST day is as long as it really is.
#
# Wall times that a zone skips or repeats are mapped in one place:
# - a wall time skipped by a DST gap is the moment of the jump (the first
#   moment after it), so a range lying wholly in the gap is empty;
# - a wall time repeated by a fall-back is its first occurrence (fold=0), for
#   range starts and ends alike, so ranges keep their order.
# --------------------------------------------------------------------------

_MICRO = timedelta(microseconds=1)

#: How many days in a row without working time a search may cross before it
#: gives up: longer than any sane holiday list, short enough to fail fast.
MAX_IDLE_DAYS = 5 * 366


_Interval = tuple[datetime, datetime]
_HolidayIndex = tuple[tuple[date, ...], tuple[date, ...]]


def utc(moment: datetime) -> datetime:
    """The same instant in UTC; a naive datetime is refused, never guessed."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: a timezone is required")
    return moment.astimezone(UTC)


def _zone(cal: Calendar) -> ZoneInfo:
    """The calendar's zone, after refusing a calendar that can never be worked in.

    Checked at every use so a bad calendar fails loudly instead of making a
    search walk to the end of time.
    """
    if len(cal.weekly) != 7:
        raise ValueError(f"calendar {cal.name!r}: weekly needs 7 days, has {len(cal.weekly)}")
    if not any(end > start for day in cal.weekly for start, end in day):
        raise ValueError(f"calendar {cal.name!r} has no working hours")
    return ZoneInfo(cal.timezone)


@lru_cache(maxsize=64)
def _holiday_index(holidays: tuple[tuple[date, date], ...]) -> _HolidayIndex:
    """Holiday ranges merged and sorted, as (firsts, lasts) for bisect.

    Memoised: a pure function of an immutable tuple that rarely changes, and
    sweeps ask for it once per ticket.
    """
    merged: list[list[date]] = []
    for first, last in sorted(h for h in holidays if h[0] <= h[1]):
        if merged and first <= merged[-1][1] + timedelta(days=1):
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    return tuple(m[0] for m in merged), tuple(m[1] for m in merged)


def _holiday_last(index: _HolidayIndex, day: date) -> date | None:
    """The last day of the holiday range holding `day`, or None on a normal day."""
    firsts, lasts = index
    i = bisect_right(firsts, day) - 1
    if i >= 0 and day <= lasts[i]:
        return lasts[i]
    return None


def _wall_to_utc(tz: ZoneInfo, wall: datetime) -> datetime:
    """A naive wall time in `tz` as a UTC instant (see the section comment)."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return first
    # In a gap, fold=0 reads the wall with the offset before the jump and lands
    # after the jump; fold=1 lands before it. Bisect to the jump itself.
    lo = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    hi = first
    offset_after = hi.astimezone(tz).utcoffset()
    while hi - lo > _MICRO:
        mid = lo + (hi - lo) // 2
        if mid.astimezone(tz).utcoffset() == offset_after:
            hi = mid
        else:
            lo = mid
    return hi


def _day_intervals(cal: Calendar, tz: ZoneInfo, day: date) -> list[_Interval]:
    """The working intervals (UTC) of one local day, ignoring holidays.

    Memoised: deadlines of every ticket walk the same few days, and the
    wall-to-UTC conversions are most of the cost of a deadline."""
    return list(_day_intervals_cached(cal, tz, day))


@lru_cache(maxsize=8192)
def _day_intervals_cached(cal: Calendar, tz: ZoneInfo, day: date) -> tuple[_Interval, ...]:
    midnight = datetime.combine(day, time())
    out: list[_Interval] = []
    for start_min, end_min in cal.weekly[day.weekday()]:
        a = _wall_to_utc(tz, midnight + timedelta(minutes=start_min))
        b = _wall_to_utc(tz, midnight + timedelta(minutes=end_min))
        if b <= a:
            continue  # empty, or wholly inside a DST gap
        if out and out[-1][1] >= a:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return tuple(out)


def _working_days(
    cal: Calendar, tz: ZoneInfo, first: date, last: date | None = None
) -> Iterator[tuple[date, list[_Interval]]]:
    """Days from `first` (to `last`, inclusive) that have working time, in order.

    Holiday ranges are jumped over in one step, so a year of holidays costs no
    more than one. An open-ended walk (`last` None) raises ValueError after
    MAX_IDLE_DAYS days in a row without working time.
    """
    holidays = _holiday_index(cal.holidays)
    day = first
    idle = 0
    while last is None or day <= last:
        holiday_last = _holiday_last(holidays, day)
        if holiday_last is not None:
            idle += (holiday_last - day).days + 1
            day = holiday_last
            intervals: list[_Interval] = []
        else:
            intervals = _day_intervals(cal, tz, day)
            idle = 0 if intervals else idle + 1
        if intervals:
            yield day, intervals
        elif last is None and idle > MAX_IDLE_DAYS:
            raise ValueError(
                f"calendar {cal.name!r} has no working time for {MAX_IDLE_DAYS} days "
                f"from {first.isoformat()}"
            )
        day += timedelta(days=1)


def _intervals(
    cal: Calendar, tz: ZoneInfo, since: datetime, until: datetime | None = None
) -> Iterator[_Interval]:
    """Working intervals (UTC) that end after `since`, in order.

    A local day's intervals lie within that day, so the walk starts on the
    local date of `since`; with `until` it stops after the local date of `until`.
    """
    first = since.astimezone(tz).date()
    last = until.astimezone(tz).date() if until is not None else None
    for _, intervals in _working_days(cal, tz, first, last):
        for a, b in intervals:
            if b > since:
                yield a, b


def seconds_to_delta(seconds: float) -> timedelta:
    """Refuse negative, infinite and NaN amounts: a deadline never runs backwards."""
    if not (0 <= seconds < float("inf")):
        raise ValueError(f"business seconds must be finite and >= 0, got {seconds!r}")
    return timedelta(seconds=seconds)


def is_business_time(cal: Calendar, moment: datetime) -> bool:
    """Whether `moment` lies in working time; ranges include their start, not their end."""
    if cal.always:
        utc(moment)
        return True
    tz = _zone(cal)
    moment = utc(moment)
    day = moment.astimezone(tz).date()
    if _holiday_last(_holiday_index(cal.holidays), day) is not None:
        return False
    return any(a <= moment < b for a, b in _day_intervals(cal, tz, day))


def next_business_moment(cal: Calendar, moment: datetime) -> datetime:
    """`moment` itself inside working time, else the start of the next working range."""
    moment = utc(moment)
    if cal.always:
        return moment
    tz = _zone(cal)
    for a, _ in _intervals(cal, tz, moment):
        return max(a, moment)
    raise AssertionError("unreachable: an open-ended walk yields or raises")


# Memoised (add_seconds, add_business, business_seconds): pure functions of
# hashable values, and tickets opened together share their creation moment,
# so a batch of them asks the same few questions again and again.


@lru_cache(maxsize=4096)
def add_seconds(cal: Calendar, start: datetime, seconds: float) -> datetime:
    """The moment `seconds` of business time after `start`.

    A start outside working hours counts from the next business moment. An
    amount that ends exactly where a range ends gives that range's end (Friday
    16:00 + 1 h is Friday 17:00, not Monday 08:00). In a 24x7 calendar this is
    plain UTC addition. Counting is in whole microseconds, so business_seconds
    inverts it exactly.
    """
    start = utc(start)
    remaining = seconds_to_delta(seconds)
    if cal.always:
        return start + remaining
    tz = _zone(cal)
    for a, b in _intervals(cal, tz, start):
        cursor = max(a, start)
        if remaining <= b - cursor:
            return cursor + remaining
        remaining -= b - cursor
    raise AssertionError("unreachable: an open-ended walk yields or raises")


def _add_days(cal: Calendar, tz: ZoneInfo, start: datetime, days: int) -> datetime:
    """The same business moment `days` working days after `start` (see add_business)."""
    begin = next_business_moment(cal, start)
    local = begin.astimezone(tz)
    wall_time = local.time().replace(fold=0)
    following = _working_days(cal, tz, local.date() + timedelta(days=1))
    for seen, (day, intervals) in enumerate(following, start=1):
        if seen == days:
            return _clamp(intervals, _wall_to_utc(tz, datetime.combine(day, wall_time)))
    raise AssertionError("unreachable: an open-ended walk yields or raises")


def _clamp(intervals: list[_Interval], moment: datetime) -> datetime:
    """`moment` moved into a day's working time: the latest working moment at or
    before it, or the day's first working moment when it comes before them all."""
    if moment <= intervals[0][0]:
        return intervals[0][0]
    best = intervals[0][0]
    for a, b in intervals:
        if a <= moment <= b:
            return moment
        if b <= moment:
            best = b
    return best


@lru_cache(maxsize=4096)
def add_business(cal: Calendar, start: datetime, duration: Duration) -> datetime:
    """The deadline `duration` of business time after `start`.

    `days` first, as the same business moment N working days later (Friday
    16:30 + 1d is Monday 16:30 in a Mon–Fri calendar); a start outside working
    hours counts from the next business moment; a working day is a non-holiday
    local date with working time. When that wall-clock moment is not working
    time on the target day (a shorter day, a lunch gap, a DST gap) it is
    clamped to the latest working moment before it on that day, or to the
    day's first working moment if it comes before them all. Then `seconds` are
    added with add_seconds. In a 24x7 calendar a day is 24 real hours.
    """
    if duration.days < 0 or duration.seconds < 0:
        raise ValueError(f"negative duration {duration!r}")
    start = utc(start)
    if cal.always:
        return start + timedelta(days=duration.days, seconds=duration.seconds)
    tz = _zone(cal)
    moment = _add_days(cal, tz, start, duration.days) if duration.days else start
    if duration.seconds or not duration.days:
        moment = add_seconds(cal, moment, duration.seconds)
    return moment


@lru_cache(maxsize=4096)
def business_seconds(cal: Calendar, start: datetime, end: datetime) -> float:
    """Business time between two moments in seconds; 0 when `end` <= `start`."""
    start, end = utc(start), utc(end)
    if end <= start:
        return 0.0
    if cal.always:
        return (end - start).total_seconds()
    tz = _zone(cal)
    total = timedelta()
    for a, b in _intervals(cal, tz, start, end):
        if a >= end:
            break
        total += min(b, end) - max(a, start)
    return total.total_seconds()


class Timeline:
    """Business seconds between many moments at once, for lists of tickets.

    `business_seconds` walks the days between its two moments; over 10,000
    tickets opened across weeks that walk is most of the time. A timeline
    lays out, once per calendar, the working intervals of a span of days with
    the working seconds before each, so any difference is two binary searches.
    Moments outside the span fall back to `business_seconds`. Call it like
    `business_seconds`: `timeline(cal, start, end)`.
    """

    def __init__(self, first: date, last: date) -> None:
        self.first, self.last = first, last
        # Within the span by a day's margin: local days never reach past it.
        self._lo = datetime.combine(first + timedelta(days=1), time(), UTC).timestamp()
        self._hi = datetime.combine(last - timedelta(days=1), time(), UTC).timestamp()
        self._tables: dict[Calendar, tuple[list[float], list[float], list[float]]] = {}

    def __call__(self, cal: Calendar, start: datetime, end: datetime) -> float:
        a, b = start.timestamp(), end.timestamp()
        if b <= a:
            return 0.0
        if cal.always:
            return b - a
        if a < self._lo or b > self._hi:
            return business_seconds(cal, start, end)
        table = self._tables.get(cal) or self._table(cal)
        return self._at(table, b) - self._at(table, a)

    @staticmethod
    def _at(table: tuple[list[float], list[float], list[float]], moment: float) -> float:
        starts, ends, before = table
        i = bisect_right(starts, moment) - 1
        if i < 0:
            return 0.0
        end = ends[i]
        return before[i] + (end if moment > end else moment) - starts[i]

    def _table(self, cal: Calendar) -> tuple[list[float], list[float], list[float]]:
        tz = _zone(cal)
        starts: list[float] = []
        ends: list[float] = []
        before: list[float] = []
        total = 0.0
        for _, intervals in _working_days(cal, tz, self.first, self.last):
            for a, b in intervals:
                starts.append(a.timestamp())
                ends.append(b.timestamp())
                before.append(total)
                total += (b - a).total_seconds()
        self._tables[cal] = (starts, ends, before)
        return self._tables[cal]
