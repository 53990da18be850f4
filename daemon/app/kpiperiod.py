"""When a contract's KPI report is due, and which period it covers (SPEC §7).

Pure arithmetic over a calendar. A contract with `report: {every: month}`
(or `week`) gets, on the first working day of each month (week, Monday
first) at 08:00 in its calendar, the report of the period just ended. A
period runs from local midnight of its first day to local midnight of the
next period's first day, in the calendar's zone.

A working day is a day with business time in the calendar (weekends and
holidays are not; every day of a 24x7 calendar is). A period with no working
day at all (a calendar closed for a whole week, say over Christmas) has no
sending moment, so the report of the week before it is not mailed by itself
(`spocd report --contract ID --mail --since D --until D` sends it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from daemon.core import businesstime
from daemon.core.businesstime import Calendar

#: The local hour the report goes out on the first working day.
SEND_AT = time(8, 0)
#: How many periods back `due` looks for a sending moment.
LOOK_BACK = 3


@dataclass(frozen=True, slots=True)
class KpiPeriod:
    """One reporting period: local dates [first, after) and their moments."""

    every: str  # "month" | "week"
    first: date  # the first day
    after: date  # the first day of the next period
    since: datetime  # local midnight of `first` (aware)
    until: datetime  # local midnight of `after` (aware)

    @property
    def key(self) -> str:
        """What the sent record stores: the first day, ISO (sorts as time)."""
        return self.first.isoformat()

    @property
    def last(self) -> date:
        return self.after - timedelta(days=1)


def period_of(every: str, day: date, zone: str) -> KpiPeriod:
    """The period (of `every`) that holds the local date `day`."""
    if every == "week":
        first = day - timedelta(days=day.weekday())
        after = first + timedelta(days=7)
    elif every == "month":
        first = day.replace(day=1)
        after = (first + timedelta(days=32)).replace(day=1)
    else:
        raise ValueError(f"unknown report period {every!r}")
    tz = ZoneInfo(zone)
    return KpiPeriod(
        every,
        first,
        after,
        datetime.combine(first, time(), tzinfo=tz),
        datetime.combine(after, time(), tzinfo=tz),
    )


def previous(period: KpiPeriod, zone: str) -> KpiPeriod:
    return period_of(period.every, period.first - timedelta(days=1), zone)


def working_day(cal: Calendar, day: date) -> bool:
    if cal.always:
        return True
    midnight = datetime.combine(day, time(), tzinfo=ZoneInfo(cal.timezone))
    return businesstime.business_seconds(cal, midnight, midnight + timedelta(days=1)) > 0


def first_working_day(cal: Calendar, period: KpiPeriod) -> date | None:
    """The first working day of the period, or None if it has none."""
    day = period.first
    while day < period.after:
        if working_day(cal, day):
            return day
        day += timedelta(days=1)
    return None


def sending_moment(cal: Calendar, period: KpiPeriod) -> datetime | None:
    """08:00 local on the period's first working day."""
    day = first_working_day(cal, period)
    if day is None:
        return None
    return datetime.combine(day, SEND_AT, tzinfo=ZoneInfo(cal.timezone))


def due(every: str, cal: Calendar, now: datetime) -> tuple[datetime, KpiPeriod] | None:
    """The latest sending moment at or before `now` and the period it reports
    on (the one before the moment's own period); None when there is none in
    the last few periods."""
    zone = cal.timezone
    current = period_of(every, now.astimezone(ZoneInfo(zone)).date(), zone)
    for _ in range(LOOK_BACK):
        moment = sending_moment(cal, current)
        if moment is not None and moment <= now:
            return moment, previous(current, zone)
        current = previous(current, zone)
    return None
