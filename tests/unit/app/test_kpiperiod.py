"""When a contract's KPI report goes: 08:00 on the first working day of the
month (week) in its calendar, for the period just ended."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from daemon.app import kpiperiod
from daemon.core.businesstime import Calendar

WARSAW = ZoneInfo("Europe/Warsaw")
OFFICE_DAY = ((480, 1020),)
#: Mon-Fri 08:00-17:00 Warsaw, with New Year, Epiphany and Christmas off.
OFFICE = Calendar(
    "office",
    "Europe/Warsaw",
    weekly=(OFFICE_DAY,) * 5 + ((), ()),
    holidays=(
        (date(2026, 12, 24), date(2026, 12, 26)),
        (date(2027, 1, 1), date(2027, 1, 1)),
        (date(2027, 1, 6), date(2027, 1, 6)),
        (date(2027, 5, 3), date(2027, 5, 3)),
    ),
)
ALWAYS = Calendar("always", "UTC", always=True)


def w(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=WARSAW)


@pytest.mark.parametrize(
    ("every", "day", "first_working"),
    [
        # Friday 1 January 2027 is a holiday, then the weekend: Monday 4th.
        ("month", date(2027, 1, 20), date(2027, 1, 4)),
        # 1 May 2027 is a Saturday, Sunday, then 3 May (a holiday): Tuesday 4th.
        ("month", date(2027, 5, 15), date(2027, 5, 4)),
        # August 2026 starts on a Saturday.
        ("month", date(2026, 8, 31), date(2026, 8, 3)),
        ("month", date(2026, 12, 1), date(2026, 12, 1)),
        # The week of Christmas: Monday 21 December works.
        ("week", date(2026, 12, 24), date(2026, 12, 21)),
        # The week of New Year: Monday 28 December works, too.
        ("week", date(2027, 1, 1), date(2026, 12, 28)),
        # The week of Epiphany (Wednesday): Monday 4 January.
        ("week", date(2027, 1, 6), date(2027, 1, 4)),
    ],
)
def test_first_working_day(every: str, day: date, first_working: date) -> None:
    period = kpiperiod.period_of(every, day, "Europe/Warsaw")
    assert period.first <= day < period.after
    assert kpiperiod.first_working_day(OFFICE, period) == first_working


def test_a_week_with_no_working_day_has_no_moment() -> None:
    closed = Calendar(
        "closed",
        "Europe/Warsaw",
        weekly=(OFFICE_DAY,) * 5 + ((), ()),
        holidays=((date(2026, 12, 28), date(2027, 1, 3)),),
    )
    week = kpiperiod.period_of("week", date(2026, 12, 30), "Europe/Warsaw")
    assert kpiperiod.sending_moment(closed, week) is None
    # So on 2 January the latest moment is still the week before's.
    moment, period = kpiperiod.due("week", closed, w("2027-01-02T12:00")) or (None, None)
    assert moment == w("2026-12-21T08:00")
    assert period is not None and period.first == date(2026, 12, 14)


def test_periods_run_midnight_to_midnight_local() -> None:
    month = kpiperiod.period_of("month", date(2026, 10, 15), "Europe/Warsaw")
    assert (month.first, month.last, month.after) == (
        date(2026, 10, 1),
        date(2026, 10, 31),
        date(2026, 11, 1),
    )
    assert month.since == w("2026-10-01T00:00") and month.until == w("2026-11-01T00:00")
    assert month.until.utcoffset() != month.since.utcoffset()  # DST ends in October
    assert month.key == "2026-10-01"
    december = kpiperiod.period_of("month", date(2026, 12, 31), "Europe/Warsaw")
    assert december.after == date(2027, 1, 1)
    week = kpiperiod.period_of("week", date(2026, 11, 29), "Europe/Warsaw")  # a Sunday
    assert (week.first, week.last) == (date(2026, 11, 23), date(2026, 11, 29))


@pytest.mark.parametrize(
    ("now", "moment", "first"),
    [
        # Before 08:00 on the first working day: the month before's moment.
        ("2027-01-04T07:59", "2026-12-01T08:00", date(2026, 11, 1)),
        ("2027-01-04T08:00", "2027-01-04T08:00", date(2026, 12, 1)),
        # New Year's Day and the weekend are no working days.
        ("2027-01-02T09:00", "2026-12-01T08:00", date(2026, 11, 1)),
        # Weeks later, after downtime: still the latest one only.
        ("2027-01-29T18:00", "2027-01-04T08:00", date(2026, 12, 1)),
    ],
)
def test_due_is_the_latest_moment(now: str, moment: str, first: date) -> None:
    found = kpiperiod.due("month", OFFICE, w(now))
    assert found is not None
    assert found[0] == w(moment)
    assert found[1].first == first


def test_a_24x7_calendar_sends_on_the_first_day_in_its_zone() -> None:
    # 1 August 2026 is a Saturday; on a 24x7 calendar it works. UTC 08:00.
    found = kpiperiod.due("month", ALWAYS, datetime.fromisoformat("2026-08-01T08:00+00:00"))
    assert found is not None
    assert found[0] == datetime.fromisoformat("2026-08-01T08:00+00:00")
    assert found[1].first == date(2026, 7, 1)
    week = kpiperiod.due("week", ALWAYS, datetime.fromisoformat("2026-08-01T08:00+00:00"))
    assert week is not None and week[0] == datetime.fromisoformat("2026-07-27T08:00+00:00")
    assert week[1].first == date(2026, 7, 20)
