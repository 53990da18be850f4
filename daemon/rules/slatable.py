"""A ticket's SLA table as JSON: the targets it opened under, kept with it.

A ticket keeps the targets of the contract it opened under (SPEC §7): a
reload changes only tickets opened after it, and a contract removed by a
reload leaves its open tickets on the targets they had. So the effective
table (every priority: the contract's rows over the top-level ones) is stored
with the ticket when it opens, and read back from there.

The encoding is generic over `SlaPolicy`'s dataclass fields, so a field added
to the policy (say `restoration`) travels without a change here: calendars by
name (each written once, in full, under `calendars`), `Duration`s as
`{"d", "s"}`, `timedelta`s as `{"td"}` (seconds), plain JSON values as they
are. The table is kept as one JSON text (a string inside the ticket's
`extra`): reading and writing a ticket then costs one string, not a tree of
a few hundred values, and decoding is cached by the text, so the many
tickets opened under one table share one decoded table.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import fields
from datetime import date, timedelta
from types import MappingProxyType
from typing import Any

from daemon.core.businesstime import Calendar, Duration
from daemon.rules.model import SlaPolicy

_CACHE_SIZE = 512
_decoded: dict[str, Mapping[str, SlaPolicy]] = {}


def encode(table: Mapping[str, SlaPolicy]) -> str:
    """The JSON text of a table (priority -> policy)."""
    calendars: dict[str, Any] = {}
    rows: dict[str, Any] = {}
    for priority, policy in table.items():
        rows[priority] = {
            f.name: _value(getattr(policy, f.name), calendars) for f in fields(policy)
        }
    return json.dumps({"calendars": calendars, "rows": rows}, separators=(",", ":"))


def decode(text: object) -> Mapping[str, SlaPolicy] | None:
    """The table of a stored text, or None if it is not one (a bad or foreign
    value: the caller falls back to the current rules)."""
    if not isinstance(text, str):
        return None
    table = _decoded.get(text)
    if table is not None:
        return table
    try:
        value = json.loads(text)
        calendars = {name: _calendar(name, raw) for name, raw in value["calendars"].items()}
        table = MappingProxyType(
            {
                priority: SlaPolicy(**{k: _back(v, calendars) for k, v in row.items()})
                for priority, row in value["rows"].items()
            }
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    remember(text, table)
    return table


def remember(text: str, table: Mapping[str, SlaPolicy]) -> None:
    """Cache a decoded table (the current rules' own, when they encode it)."""
    if len(_decoded) >= _CACHE_SIZE:
        _decoded.clear()
    _decoded.setdefault(text, table)


def _value(value: Any, calendars: dict[str, Any]) -> Any:
    if isinstance(value, Calendar):
        if value.always:
            calendars[value.name] = {"tz": value.timezone, "always": True}
        else:
            calendars[value.name] = {
                "tz": value.timezone,
                "weekly": [[list(r) for r in day] for day in value.weekly],
                "holidays": [_span(a, b) for a, b in value.holidays],
            }
        return {"cal": value.name}
    if isinstance(value, Duration):
        return {"d": value.days, "s": value.seconds}
    if isinstance(value, timedelta):
        return {"td": value.total_seconds()}
    return value


def _back(value: Any, calendars: Mapping[str, Calendar]) -> Any:
    if isinstance(value, dict):
        if "cal" in value:
            return calendars[value["cal"]]
        if "td" in value:
            return timedelta(seconds=value["td"])
        return Duration(days=int(value["d"]), seconds=int(value["s"]))
    return value


def _span(first: date, last: date) -> str:
    return first.isoformat() if first == last else f"{first.isoformat()}..{last.isoformat()}"


def _calendar(name: str, raw: Mapping[str, Any]) -> Calendar:
    if raw.get("always"):
        return Calendar(name=name, timezone=raw["tz"], always=True)
    holidays = []
    for text in raw["holidays"]:
        first, _, last = text.partition("..")
        holidays.append((date.fromisoformat(first), date.fromisoformat(last or first)))
    return Calendar(
        name=name,
        timezone=raw["tz"],
        weekly=tuple(tuple((int(a), int(b)) for a, b in day) for day in raw["weekly"]),
        holidays=tuple(holidays),
    )
