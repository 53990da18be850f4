"""Business-time arithmetic and SLA states (daemon/core/businesstime.py, sla.py).

Moments are written as Europe/Warsaw wall time ("2026-05-15 16:30"; 2026-05-15
is a Friday) unless they carry an explicit offset. Calendars are built by
hand here, the way rules.py builds them from rules.yaml.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.core.businesstime import (
    Calendar,
    Duration,
    add_business,
    add_seconds,
    business_seconds,
    is_business_time,
    next_business_moment,
)
from daemon.core.sla import (
    SlaState,
    combine_states,
    resume_deadline,
    retarget,
    sla_state,
    threshold_moment,
)

WARSAW = ZoneInfo("Europe/Warsaw")
H = 3600
M = 60


def t(text: str) -> datetime:
    """Warsaw wall time, or the instant given when the text has an offset."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=WARSAW)


def hours(*spans: str) -> tuple[tuple[int, int], ...]:
    """("08:00-12:00", ...) as (start_minute, end_minute) pairs; "24:00" ends a day."""

    def minute(hhmm: str) -> int:
        hh, mm = hhmm.split(":")
        return int(hh) * 60 + int(mm)

    return tuple((minute(a), minute(b)) for a, b in (span.split("-") for span in spans))


NONE: tuple[tuple[int, int], ...] = ()
NINE_TO_FIVE = hours("08:00-17:00")
WEEKDAYS = (NINE_TO_FIVE,) * 5 + (NONE, NONE)

OFFICE = Calendar(
    "office",
    "Europe/Warsaw",
    weekly=WEEKDAYS,
    holidays=((date(2026, 12, 24), date(2026, 12, 25)),),
)
#: Christmas to New Year as one holiday range.
WINTER_BREAK = Calendar(
    "winter-break",
    "Europe/Warsaw",
    weekly=WEEKDAYS,
    holidays=((date(2026, 12, 24), date(2027, 1, 1)),),
)
LUNCH = Calendar(
    "lunch", "Europe/Warsaw", weekly=(hours("08:00-12:00", "13:00-17:00"),) * 5 + (NONE, NONE)
)
#: "mon-fri: 22:00-06:00" as the builder splits it at midnight.
NIGHT = Calendar(
    "night",
    "Europe/Warsaw",
    weekly=(
        hours("22:00-24:00"),
        hours("00:00-06:00", "22:00-24:00"),
        hours("00:00-06:00", "22:00-24:00"),
        hours("00:00-06:00", "22:00-24:00"),
        hours("00:00-06:00", "22:00-24:00"),
        hours("00:00-06:00"),
        NONE,
    ),
)
#: Only Sundays, all day: includes the hour skipped in spring and repeated in autumn.
SUNDAYS = Calendar("sundays", "Europe/Warsaw", weekly=(NONE,) * 6 + (hours("00:00-24:00"),))
#: Sundays 02:00-03:00 only (plus office hours): the range vanishes on the spring day.
NIGHT_SHIFT_SUNDAY = Calendar(
    "sunday-02", "Europe/Warsaw", weekly=(*WEEKDAYS[:6], hours("02:00-03:00"))
)
SHORT_TUESDAY = Calendar(
    "short-tuesday",
    "Europe/Warsaw",
    weekly=(NINE_TO_FIVE, hours("08:00-12:00"), NONE, NONE, NONE, NONE, NONE),
)
LUNCH_TUESDAY = Calendar(
    "lunch-tuesday",
    "Europe/Warsaw",
    weekly=(NINE_TO_FIVE, hours("08:00-12:00", "13:00-17:00"), NONE, NONE, NONE, NONE, NONE),
)
LATE_TUESDAY = Calendar(
    "late-tuesday",
    "Europe/Warsaw",
    weekly=(NINE_TO_FIVE, hours("10:00-17:00"), NONE, NONE, NONE, NONE, NONE),
)
ALWAYS_WARSAW = Calendar("always", "Europe/Warsaw", always=True)
ALWAYS = Calendar("always", "UTC", always=True)
#: Lord Howe Island moves its clocks by 30 minutes at 02:00 on Sundays.
LORD_HOWE = Calendar(
    "lord-howe",
    "Australia/Lord_Howe",
    weekly=(NINE_TO_FIVE,) * 5 + (NONE, hours("01:00-04:00", "09:00-10:00")),
)
EMPTY = Calendar("empty", "Europe/Warsaw")


# --------------------------------------------------------------------------
# Adding business seconds


@pytest.mark.parametrize(
    ("cal", "start", "seconds", "expected"),
    [
        pytest.param(OFFICE, "2026-05-15 16:30", 1 * H, "2026-05-18 08:30", id="fri 16:30 +1h"),
        pytest.param(OFFICE, "2026-05-16 10:00", 1 * H, "2026-05-18 09:00", id="sat 10:00 +1h"),
        pytest.param(OFFICE, "2026-05-18 07:00", 30 * M, "2026-05-18 08:30", id="07:00 +30m"),
        pytest.param(OFFICE, "2026-05-15 16:00", 1 * H, "2026-05-15 17:00", id="ends at 17:00"),
        pytest.param(OFFICE, "2026-05-15 17:00", 0, "2026-05-18 08:00", id="17:00 +0 is mon"),
        pytest.param(OFFICE, "2026-05-18 08:00", 45 * H, "2026-05-22 17:00", id="a week"),
        pytest.param(OFFICE, "2026-12-24 10:00", 4 * H, "2026-12-28 12:00", id="on holiday"),
        pytest.param(OFFICE, "2026-12-23 16:00", 2 * H, "2026-12-28 09:00", id="over holidays"),
        pytest.param(
            WINTER_BREAK, "2026-12-23 16:00", 2 * H, "2027-01-04 09:00", id="holiday range"
        ),
        pytest.param(LUNCH, "2026-05-18 11:30", 1 * H, "2026-05-18 13:30", id="over lunch"),
        pytest.param(LUNCH, "2026-05-18 12:15", 30 * M, "2026-05-18 13:30", id="from lunch"),
        pytest.param(LUNCH, "2026-05-18 08:00", 4 * H, "2026-05-18 12:00", id="until lunch"),
        pytest.param(LUNCH, "2026-05-18 08:00", 8 * H, "2026-05-18 17:00", id="lunch day"),
        pytest.param(NIGHT, "2026-05-18 23:00", 2 * H, "2026-05-19 01:00", id="past midnight"),
        pytest.param(NIGHT, "2026-05-22 05:00", 2 * H, "2026-05-22 23:00", id="next night"),
        pytest.param(NIGHT, "2026-05-23 05:30", 1 * H, "2026-05-25 22:30", id="over weekend"),
        pytest.param(NIGHT, "2026-05-18 12:00", 8 * H, "2026-05-19 06:00", id="one shift"),
        # DST: office hours stay 08:00-17:00 local on both sides of the change.
        pytest.param(
            OFFICE, "2026-03-27 16:00", 2 * H, "2026-03-30 07:00+00:00", id="spring forward"
        ),
        pytest.param(OFFICE, "2026-10-23 16:00", 2 * H, "2026-10-26 08:00+00:00", id="fall back"),
        pytest.param(
            SUNDAYS, "2026-03-29 00:00", 23 * H, "2026-03-30 00:00", id="23h spring sunday"
        ),
        pytest.param(
            SUNDAYS, "2026-03-29 00:00", 24 * H, "2026-04-05 01:00", id="spring sunday +1h"
        ),
        pytest.param(
            SUNDAYS, "2026-10-25 00:00", 25 * H, "2026-10-26 00:00", id="25h autumn sunday"
        ),
        pytest.param(
            ALWAYS_WARSAW,
            "2026-03-28 12:00",
            24 * H,
            "2026-03-29 13:00+02:00",
            id="always: 24 real hours in spring",
        ),
        pytest.param(
            ALWAYS_WARSAW,
            "2026-10-24 12:00",
            24 * H,
            "2026-10-25 11:00+01:00",
            id="always: 24 real hours in autumn",
        ),
        pytest.param(ALWAYS, "2026-05-16 10:00", 90 * M, "2026-05-16 11:30", id="always sat"),
    ],
)
def test_add_seconds(cal: Calendar, start: str, seconds: float, expected: str) -> None:
    result = add_seconds(cal, t(start), seconds)
    assert result == t(expected)
    assert result.tzinfo is UTC


# --------------------------------------------------------------------------
# Adding business days (and seconds)


@pytest.mark.parametrize(
    ("cal", "start", "duration", "expected"),
    [
        pytest.param(
            OFFICE, "2026-05-15 16:30", Duration(days=1), "2026-05-18 16:30", id="fri 16:30 +1d"
        ),
        pytest.param(
            OFFICE, "2026-05-15 16:30", Duration(days=3), "2026-05-20 16:30", id="fri +3d is wed"
        ),
        pytest.param(
            OFFICE,
            "2026-05-15 16:30",
            Duration(days=1, seconds=1 * H),
            "2026-05-19 08:30",
            id="fri 16:30 +1d 1h",
        ),
        pytest.param(
            OFFICE, "2026-05-16 10:00", Duration(days=1), "2026-05-19 08:00", id="sat +1d"
        ),
        pytest.param(
            OFFICE, "2026-05-18 07:00", Duration(days=1), "2026-05-19 08:00", id="before hours +1d"
        ),
        pytest.param(
            OFFICE, "2026-05-15 17:00", Duration(days=1), "2026-05-19 08:00", id="fri 17:00 +1d"
        ),
        pytest.param(
            OFFICE, "2026-05-16 10:00", Duration(), "2026-05-18 08:00", id="zero: next moment"
        ),
        pytest.param(
            OFFICE, "2026-12-23 10:00", Duration(days=1), "2026-12-28 10:00", id="over holidays"
        ),
        pytest.param(
            OFFICE,
            "2026-12-24 10:00",
            Duration(seconds=4 * H),
            "2026-12-28 12:00",
            id="opened on holiday +4h",
        ),
        pytest.param(
            WINTER_BREAK,
            "2026-12-23 10:00",
            Duration(days=1),
            "2027-01-04 10:00",
            id="over holiday range",
        ),
        pytest.param(
            OFFICE,
            "2026-03-27 10:00",
            Duration(days=1),
            "2026-03-30 08:00+00:00",
            id="spring: 10:00 local stays",
        ),
        pytest.param(
            OFFICE,
            "2026-10-23 10:00",
            Duration(days=1),
            "2026-10-26 09:00+00:00",
            id="autumn: 10:00 local stays",
        ),
        # The same wall-clock moment is not working time on the target day.
        pytest.param(
            SHORT_TUESDAY,
            "2026-05-18 15:00",
            Duration(days=1),
            "2026-05-19 12:00",
            id="shorter day: clamp to its end",
        ),
        pytest.param(
            LUNCH_TUESDAY,
            "2026-05-18 12:30",
            Duration(days=1),
            "2026-05-19 12:00",
            id="lunch gap: clamp to the morning's end",
        ),
        pytest.param(
            LATE_TUESDAY,
            "2026-05-18 09:00",
            Duration(days=1),
            "2026-05-19 10:00",
            id="before the day's hours: its start",
        ),
        pytest.param(
            SUNDAYS,
            "2026-03-22 02:30",
            Duration(days=1),
            "2026-03-29 03:00+02:00",
            id="DST gap: the jump",
        ),
        pytest.param(
            SUNDAYS,
            "2026-10-18 02:30",
            Duration(days=1),
            "2026-10-25 02:30+02:00",
            id="repeated hour: first occurrence",
        ),
        pytest.param(
            NIGHT, "2026-05-18 23:00", Duration(days=1), "2026-05-19 23:00", id="night +1d"
        ),
        pytest.param(
            NIGHT, "2026-05-19 03:00", Duration(days=1), "2026-05-20 03:00", id="small hours +1d"
        ),
        pytest.param(
            NIGHT,
            "2026-05-22 23:00",
            Duration(days=1),
            "2026-05-23 06:00",
            id="fri night +1d: sat has only the small hours",
        ),
        pytest.param(
            ALWAYS_WARSAW,
            "2026-03-28 12:00",
            Duration(days=1),
            "2026-03-29 11:00+00:00",
            id="always: 1d is 24h in spring",
        ),
        pytest.param(
            ALWAYS_WARSAW,
            "2026-10-24 12:00",
            Duration(days=1),
            "2026-10-25 10:00+00:00",
            id="always: 1d is 24h in autumn",
        ),
        pytest.param(
            ALWAYS,
            "2026-05-16 10:00",
            Duration(days=2, seconds=1 * H),
            "2026-05-18 11:00",
            id="always 2d 1h",
        ),
    ],
)
def test_add_business(cal: Calendar, start: str, duration: Duration, expected: str) -> None:
    result = add_business(cal, t(start), duration)
    assert result == t(expected)
    assert result.tzinfo is UTC


# --------------------------------------------------------------------------
# Measuring business time


@pytest.mark.parametrize(
    ("cal", "start", "end", "expected"),
    [
        pytest.param(OFFICE, "2026-05-15 16:00", "2026-05-18 09:00", 2 * H, id="over weekend"),
        pytest.param(OFFICE, "2026-05-18 09:00", "2026-05-18 09:00", 0, id="empty"),
        pytest.param(OFFICE, "2026-05-18 10:00", "2026-05-18 09:00", 0, id="backwards"),
        pytest.param(OFFICE, "2026-05-16 00:00", "2026-05-17 23:59", 0, id="weekend only"),
        pytest.param(OFFICE, "2026-12-23 00:00", "2026-12-29 00:00", 18 * H, id="holidays"),
        pytest.param(OFFICE, "2026-03-23 00:00", "2026-03-30 00:00", 45 * H, id="spring week"),
        pytest.param(OFFICE, "2026-03-27 08:00", "2026-03-30 17:00", 18 * H, id="spring weekend"),
        pytest.param(OFFICE, "2026-10-23 08:00", "2026-10-26 17:00", 18 * H, id="autumn weekend"),
        pytest.param(LUNCH, "2026-05-18 08:00", "2026-05-18 17:00", 8 * H, id="lunch day"),
        pytest.param(LUNCH, "2026-05-18 11:30", "2026-05-18 13:30", 1 * H, id="over lunch"),
        pytest.param(NIGHT, "2026-05-18 21:00", "2026-05-19 07:00", 8 * H, id="one night"),
        pytest.param(SUNDAYS, "2026-03-22 00:00", "2026-03-23 00:00", 24 * H, id="plain sunday"),
        pytest.param(SUNDAYS, "2026-03-29 00:00", "2026-03-30 00:00", 23 * H, id="spring sunday"),
        pytest.param(SUNDAYS, "2026-10-25 00:00", "2026-10-26 00:00", 25 * H, id="autumn sunday"),
        pytest.param(
            NIGHT_SHIFT_SUNDAY,
            "2026-03-29 00:00",
            "2026-03-30 00:00",
            0,
            id="02:00-03:00 vanishes in spring",
        ),
        pytest.param(
            NIGHT_SHIFT_SUNDAY,
            "2026-10-25 00:00",
            "2026-10-26 00:00",
            2 * H,
            id="02:00-03:00 from the first 02:00 in autumn",
        ),
        pytest.param(
            ALWAYS_WARSAW, "2026-03-29 00:00", "2026-03-30 00:00", 23 * H, id="always spring day"
        ),
        pytest.param(
            ALWAYS_WARSAW, "2026-10-25 00:00", "2026-10-26 00:00", 25 * H, id="always autumn day"
        ),
    ],
)
def test_business_seconds(cal: Calendar, start: str, end: str, expected: float) -> None:
    assert business_seconds(cal, t(start), t(end)) == expected


@pytest.mark.parametrize(
    ("cal", "moment", "inside"),
    [
        pytest.param(OFFICE, "2026-05-15 08:00", True, id="range start is inside"),
        pytest.param(OFFICE, "2026-05-15 16:59", True, id="friday afternoon"),
        pytest.param(OFFICE, "2026-05-15 17:00", False, id="range end is outside"),
        pytest.param(OFFICE, "2026-05-16 10:00", False, id="saturday"),
        pytest.param(OFFICE, "2026-12-24 10:00", False, id="holiday"),
        pytest.param(LUNCH, "2026-05-18 12:30", False, id="lunch"),
        pytest.param(NIGHT, "2026-05-19 00:00", True, id="midnight inside a night"),
        pytest.param(NIGHT, "2026-05-18 03:00", False, id="monday small hours"),
        pytest.param(ALWAYS, "2026-12-24 03:00", True, id="always"),
    ],
)
def test_is_business_time(cal: Calendar, moment: str, inside: bool) -> None:
    assert is_business_time(cal, t(moment)) is inside


@pytest.mark.parametrize(
    ("cal", "moment", "expected"),
    [
        pytest.param(OFFICE, "2026-05-15 12:00", "2026-05-15 12:00", id="inside: itself"),
        pytest.param(OFFICE, "2026-05-15 17:00", "2026-05-18 08:00", id="after hours"),
        pytest.param(OFFICE, "2026-12-24 10:00", "2026-12-28 08:00", id="holiday"),
        pytest.param(WINTER_BREAK, "2026-12-24 10:00", "2027-01-04 08:00", id="holiday range"),
        pytest.param(LUNCH, "2026-05-18 12:30", "2026-05-18 13:00", id="lunch"),
        pytest.param(NIGHT, "2026-05-23 07:00", "2026-05-25 22:00", id="night weekend"),
        pytest.param(
            NIGHT_SHIFT_SUNDAY, "2026-03-22 01:00", "2026-03-22 02:00", id="plain sunday 02:00"
        ),
        pytest.param(
            NIGHT_SHIFT_SUNDAY, "2026-03-29 01:00", "2026-03-30 08:00", id="02:00 skipped"
        ),
        pytest.param(ALWAYS, "2026-05-16 03:00", "2026-05-16 03:00", id="always"),
    ],
)
def test_next_business_moment(cal: Calendar, moment: str, expected: str) -> None:
    result = next_business_moment(cal, t(moment))
    assert result == t(expected)
    assert result.tzinfo is UTC


# --------------------------------------------------------------------------
# Properties: add_seconds and business_seconds are inverses

PROPERTY_CALENDARS = [OFFICE, WINTER_BREAK, LUNCH, NIGHT, SUNDAYS, LORD_HOWE, ALWAYS]

moments = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
)
calendars = st.sampled_from(PROPERTY_CALENDARS)
amounts = st.floats(min_value=0, max_value=60 * 86400, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(cal=calendars, moment=moments, seconds=amounts)
def test_business_seconds_inverts_add_seconds(
    cal: Calendar, moment: datetime, seconds: float
) -> None:
    start = next_business_moment(cal, moment)
    assert is_business_time(cal, start)
    end = add_seconds(cal, start, seconds)
    assert abs(business_seconds(cal, start, end) - seconds) < 1


@settings(max_examples=200, deadline=None)
@given(cal=calendars, a=moments, b=moments, c=moments)
def test_business_seconds_adds_up(cal: Calendar, a: datetime, b: datetime, c: datetime) -> None:
    a, b, c = sorted((a, b, c))
    whole = business_seconds(cal, a, c)
    parts = business_seconds(cal, a, b) + business_seconds(cal, b, c)
    assert abs(whole - parts) < 1e-3
    assert 0 <= whole <= (c - a).total_seconds()


@settings(max_examples=200, deadline=None)
@given(cal=calendars, moment=moments, days=st.integers(0, 30), seconds=st.integers(0, 10 * H))
def test_add_business_lands_in_working_time(
    cal: Calendar, moment: datetime, days: int, seconds: int
) -> None:
    due = add_business(cal, moment, Duration(days=days, seconds=seconds))
    assert due >= moment
    # A deadline is a working moment, or the end of a working range.
    assert is_business_time(cal, due) or is_business_time(cal, due - timedelta(microseconds=1))


# --------------------------------------------------------------------------
# Escalation thresholds, pauses, priority changes


@pytest.mark.parametrize(
    ("cal", "start", "due", "share", "expected"),
    [
        pytest.param(OFFICE, "2026-05-18 08:00", "2026-05-18 17:00", 0.75, "2026-05-18 14:45"),
        pytest.param(
            OFFICE, "2026-05-18 08:00", "2026-05-18 17:00", 1.0, "2026-05-18 17:00", id="100% at 17"
        ),
        pytest.param(OFFICE, "2026-05-18 08:00", "2026-05-18 17:00", 1.5, "2026-05-19 12:30"),
        pytest.param(OFFICE, "2026-05-18 08:00", "2026-05-18 17:00", 0.0, "2026-05-18 08:00"),
        # P3: 3 business days, 27 business hours.
        pytest.param(OFFICE, "2026-05-18 08:00", "2026-05-21 08:00", 0.75, "2026-05-20 10:15"),
        pytest.param(OFFICE, "2026-05-18 08:00", "2026-05-21 08:00", 1.0, "2026-05-21 08:00"),
        pytest.param(OFFICE, "2026-05-18 08:00", "2026-05-21 08:00", 1.5, "2026-05-22 12:30"),
        # Over a weekend: 1 h on Friday, 3 h on Monday.
        pytest.param(OFFICE, "2026-05-15 16:00", "2026-05-18 11:00", 0.75, "2026-05-18 10:00"),
        pytest.param(OFFICE, "2026-05-15 16:00", "2026-05-18 11:00", 1.5, "2026-05-18 13:00"),
        pytest.param(ALWAYS, "2026-05-16 10:00", "2026-05-16 14:00", 0.75, "2026-05-16 13:00"),
        pytest.param(ALWAYS, "2026-05-16 10:00", "2026-05-16 14:00", 1.5, "2026-05-16 16:00"),
    ],
)
def test_threshold_moment(cal: Calendar, start: str, due: str, share: float, expected: str) -> None:
    assert threshold_moment(cal, t(start), t(due), share) == t(expected)


@pytest.mark.parametrize(
    ("due", "paused_at", "resumed_at", "expected"),
    [
        pytest.param(
            "2026-05-15 16:00",
            "2026-05-15 15:00",
            "2026-05-18 10:00",
            "2026-05-18 11:00",
            id="fri 15:00 to mon 10:00: 4 business hours",
        ),
        pytest.param(
            "2026-05-15 16:00",
            "2026-05-15 15:00",
            "2026-05-18 17:00",
            "2026-05-19 09:00",
            id="resumed after the old deadline",
        ),
        pytest.param(
            "2026-05-18 12:00",
            "2026-05-15 17:30",
            "2026-05-18 07:00",
            "2026-05-18 12:00",
            id="paused over the weekend only: no change",
        ),
        pytest.param(
            "2026-05-15 12:00",
            "2026-05-15 13:00",
            "2026-05-18 10:00",
            "2026-05-15 12:00",
            id="paused after a breach: stays breached",
        ),
    ],
)
def test_resume_deadline(due: str, paused_at: str, resumed_at: str, expected: str) -> None:
    assert resume_deadline(OFFICE, t(due), t(paused_at), t(resumed_at)) == t(expected)


@pytest.mark.parametrize(
    ("cal", "target", "paused", "expected"),
    [
        # A P3 opened Monday 09:00 (office, resolution 3d: Thursday 09:00).
        pytest.param(
            ALWAYS, Duration(seconds=4 * H), 0, "2026-05-18 13:00", id="P3 to P1 (always, 4h)"
        ),
        pytest.param(
            ALWAYS,
            Duration(seconds=4 * H),
            30 * M,
            "2026-05-18 13:30",
            id="P3 to P1 after a 30m pause",
        ),
        pytest.param(
            OFFICE, Duration(seconds=8 * H), 0, "2026-05-18 17:00", id="P3 to P2 (office, 8h)"
        ),
        pytest.param(
            OFFICE,
            Duration(seconds=8 * H),
            2 * H,
            "2026-05-19 10:00",
            id="P3 to P2 after a 2h pause",
        ),
        pytest.param(OFFICE, Duration(days=5), 0, "2026-05-25 09:00", id="P3 to P4 (5d)"),
    ],
)
def test_retarget(cal: Calendar, target: Duration, paused: float, expected: str) -> None:
    assert retarget(cal, t("2026-05-18 09:00"), target, paused) == t(expected)


def test_retarget_to_p1_late_is_already_breached() -> None:
    """Raising a P3 to P1 after four hours: the elapsed time counts, so it is late."""
    start, now = t("2026-05-18 09:00"), t("2026-05-18 14:00")
    due = retarget(ALWAYS, start, Duration(seconds=4 * H), 0)
    assert sla_state(now, due=due, start=start, cal=ALWAYS) == "breached"


# --------------------------------------------------------------------------
# SLA states

# A 9-hour target: Monday 08:00 to 17:00; 75% is reached at 14:45.
MON_8, MON_17 = "2026-05-18 08:00", "2026-05-18 17:00"


@pytest.mark.parametrize(
    ("now", "start", "due", "options", "expected"),
    [
        pytest.param("2026-05-18 10:00", MON_8, MON_17, {}, "ok", id="early: ok"),
        pytest.param("2026-05-18 14:44", MON_8, MON_17, {}, "ok", id="just before 75%"),
        pytest.param("2026-05-18 14:45", MON_8, MON_17, {}, "warning", id="at 75%: warning"),
        pytest.param("2026-05-18 17:00", MON_8, MON_17, {}, "warning", id="at due: not yet late"),
        pytest.param("2026-05-18 17:01", MON_8, MON_17, {}, "breached", id="after due"),
        pytest.param(
            "2026-05-18 12:30", MON_8, MON_17, {"warn_share": 0.5}, "warning", id="warn at 50%"
        ),
        pytest.param(
            "2026-05-18 18:00", MON_8, MON_17, {"paused": True}, "paused", id="paused past due"
        ),
        pytest.param(
            "2026-05-19 09:00",
            MON_8,
            MON_17,
            {"met_at": t("2026-05-18 12:00")},
            "met",
            id="met in time",
        ),
        pytest.param(
            "2026-05-18 10:00",
            MON_8,
            MON_17,
            {"met_at": t("2026-05-18 17:00"), "paused": True},
            "met",
            id="met at due",
        ),
        pytest.param(
            "2026-05-19 09:00",
            MON_8,
            MON_17,
            {"met_at": t("2026-05-18 17:30")},
            "breached",
            id="met late",
        ),
        pytest.param(
            "2026-05-17 12:00",
            "2026-05-15 16:00",
            "2026-05-18 16:00",
            {},
            "ok",
            id="weekend does not count",
        ),
        # The 9h target after a 4h pause: due moved to Tuesday 12:00. At Tuesday 09:00,
        # 10 business hours have passed of which 6 were live: under 75% of 9h.
        pytest.param(
            "2026-05-19 09:00",
            MON_8,
            "2026-05-19 12:00",
            {"paused_seconds": 4 * H},
            "ok",
            id="paused time left out",
        ),
        pytest.param(
            "2026-05-19 09:00",
            MON_8,
            "2026-05-19 12:00",
            {},
            "warning",
            id="paused time not declared",
        ),
    ],
)
def test_sla_state(now: str, start: str, due: str, options: dict[str, Any], expected: str) -> None:
    state = sla_state(t(now), due=t(due), start=t(start), cal=OFFICE, **options)
    assert state == expected
    assert isinstance(state, str)


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        pytest.param(("met", "ok"), "ok", id="response met, resolution running"),
        pytest.param(("met", "warning"), "warning", id="response met, resolution close"),
        pytest.param(("met", "met"), "met", id="both met"),
        pytest.param(("breached", "ok"), "breached", id="late response stays"),
        pytest.param(("warning", "ok"), "warning", id="worst live"),
        pytest.param(("met", "paused"), "paused", id="waiting for the requester"),
        pytest.param(("paused", "ok"), "ok", id="a running clock beats a paused one"),
        pytest.param(("ok",), "ok", id="single target"),
    ],
)
def test_combine_states(states: tuple[str, ...], expected: str) -> None:
    assert combine_states(*states) == expected


def test_states_are_the_spec_strings() -> None:
    assert [s.value for s in SlaState] == ["ok", "warning", "breached", "paused", "met"]


# --------------------------------------------------------------------------
# Refusals and runaway protection

CALLS: list[tuple[str, Callable[[Calendar], object]]] = [
    ("is_business_time", lambda cal: is_business_time(cal, t(MON_8))),
    ("next_business_moment", lambda cal: next_business_moment(cal, t(MON_8))),
    ("add_seconds", lambda cal: add_seconds(cal, t(MON_8), 60)),
    ("add_business", lambda cal: add_business(cal, t(MON_8), Duration(days=1))),
    ("business_seconds", lambda cal: business_seconds(cal, t(MON_8), t(MON_17))),
    ("threshold_moment", lambda cal: threshold_moment(cal, t(MON_8), t(MON_17), 1.5)),
]


@pytest.mark.parametrize("call", [c for _, c in CALLS], ids=[n for n, _ in CALLS])
def test_calendar_without_hours_is_refused(call: Callable[[Calendar], object]) -> None:
    with pytest.raises(ValueError, match="no working hours"):
        call(EMPTY)


def test_endless_holidays_are_refused_quickly() -> None:
    forever = Calendar(
        "closed", "Europe/Warsaw", weekly=WEEKDAYS, holidays=((date(2026, 1, 1), date(2099, 1, 1)),)
    )
    with pytest.raises(ValueError, match="no working time"):
        add_seconds(forever, t(MON_8), 60)
    # A bounded question still has an answer.
    assert business_seconds(forever, t("2026-01-01 00:00"), t("2036-01-01 00:00")) == 0


def test_a_year_of_single_day_holidays_is_skipped() -> None:
    days = tuple(date(2026, 1, 1) + timedelta(days=n) for n in range(365))
    busy = Calendar("busy", "Europe/Warsaw", weekly=WEEKDAYS, holidays=tuple((d, d) for d in days))
    due = add_business(busy, t("2026-01-02 10:00"), Duration(days=1, seconds=H))
    # The start is a holiday, so it counts from Friday 2027-01-01 08:00; +1d is Monday.
    assert due == t("2027-01-04 09:00")


@pytest.mark.parametrize(
    "call",
    [
        lambda: add_seconds(OFFICE, t(MON_8), -1),
        lambda: add_seconds(OFFICE, t(MON_8), float("nan")),
        lambda: add_seconds(OFFICE, t(MON_8), float("inf")),
        lambda: add_business(OFFICE, t(MON_8), Duration(days=-1)),
        lambda: threshold_moment(OFFICE, t(MON_8), t(MON_17), -0.5),
        lambda: is_business_time(OFFICE, datetime(2026, 5, 18, 8)),
        lambda: business_seconds(ALWAYS, datetime(2026, 5, 18, 8), t(MON_17)),
        lambda: combine_states(),
        lambda: combine_states("late"),
    ],
    ids=[
        "negative seconds",
        "nan seconds",
        "infinite seconds",
        "negative days",
        "negative share",
        "naive moment",
        "naive moment in always",
        "no states",
        "unknown state",
    ],
)
def test_bad_arguments_are_refused(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        call()


def test_a_calendar_is_a_key_by_its_fields_in_any_process() -> None:
    """The memoised arithmetic takes calendars as keys: equal calendars hash
    equal, and one that went to another interpreter (another string-hash
    seed) by pickle hashes there as that interpreter's own."""
    holidays = ((date(2026, 12, 24), date(2026, 12, 26)),)
    office = Calendar("office", "Europe/Warsaw", weekly=(((480, 960),),) * 5 + ((), ()))
    again = Calendar("office", "Europe/Warsaw", weekly=(((480, 960),),) * 5 + ((), ()))
    assert office == again and hash(office) == hash(again)
    assert replace(office, holidays=holidays) != office
    assert hash(replace(office, holidays=holidays)) == hash(
        Calendar("office", "Europe/Warsaw", weekly=office.weekly, holidays=holidays)
    )
    check = (
        "import pickle, sys\n"
        "from daemon.core.businesstime import Calendar\n"
        "c = pickle.loads(sys.stdin.buffer.read())\n"
        "print(hash(c) == hash(Calendar(c.name, c.timezone, c.always, c.weekly, c.holidays)))\n"
    )
    for seed in ("1", "2"):
        done = subprocess.run(
            [sys.executable, "-c", check],
            input=pickle.dumps(office),
            capture_output=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
            check=True,
        )
        assert done.stdout == b"True\n"
