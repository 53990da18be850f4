"""Business time: calendars, durations, deadlines and SLA states.

Pure arithmetic over aware datetimes; `rules.py` builds the `Calendar` and
`Duration` values from rules.yaml, this module only computes with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


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
