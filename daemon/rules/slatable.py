"""A ticket's SLA table as JSON: the targets it opened under, kept with it.

A ticket keeps the targets of the contract it opened under (SPEC §7): a
reload changes only tickets opened after it, and a contract removed by a
reload leaves its open tickets on the targets they had. So the effective
table (every priority: the contract's rows over the top-level ones) is stored
with the ticket when it opens, and read back from there.

The encoding is generic over `SlaPolicy`'s dataclass fields, so a field added
to the policy (say `restoration`) travels without a change here: calendars by
name (each written once, in full, under `calendars`), `Duration`s as
`{"days", "seconds"}`, `timedelta`s as `{"timedelta_s"}`, plain JSON values as
they are. `key` is a digest of the rest: decoding is cached by it, so the
many tickets opened under one table share one decoded table.
"""

from __future__ import annotations

import hashlib
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


def encode(table: Mapping[str, SlaPolicy]) -> dict[str, Any]:
    """The JSON value of a table (priority -> policy)."""
    calendars: dict[str, Any] = {}
    rows: dict[str, Any] = {}
    for priority, policy in table.items():
        row: dict[str, Any] = {}
        for f in fields(policy):
            row[f.name] = _value(getattr(policy, f.name), calendars)
        rows[priority] = row
    body = {"calendars": calendars, "rows": rows}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return {"key": hashlib.sha256(text.encode()).hexdigest()[:16], **body}


def decode(value: Mapping[str, Any]) -> Mapping[str, SlaPolicy] | None:
    """The table of a stored value, or None if it is not one (a bad or foreign
    value: the caller falls back to the current rules)."""
    key = value.get("key") if isinstance(value, Mapping) else None
    if not isinstance(key, str):
        return None
    table = _decoded.get(key)
    if table is not None:
        return table
    try:
        calendars = {name: _calendar(name, raw) for name, raw in value["calendars"].items()}
        table = MappingProxyType(
            {
                priority: SlaPolicy(**{k: _back(v, calendars) for k, v in row.items()})
                for priority, row in value["rows"].items()
            }
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    if len(_decoded) >= _CACHE_SIZE:
        _decoded.clear()
    _decoded[key] = table
    return table


def remember(value: Mapping[str, Any], table: Mapping[str, SlaPolicy]) -> None:
    """Seed the cache with a table already built (the current rules' own)."""
    _decoded.setdefault(value["key"], table)


def _value(value: Any, calendars: dict[str, Any]) -> Any:
    if isinstance(value, Calendar):
        calendars[value.name] = {
            "timezone": value.timezone,
            "always": value.always,
            "weekly": [[list(r) for r in day] for day in value.weekly],
            "holidays": [[a.isoformat(), b.isoformat()] for a, b in value.holidays],
        }
        return {"calendar": value.name}
    if isinstance(value, Duration):
        return {"days": value.days, "seconds": value.seconds}
    if isinstance(value, timedelta):
        return {"timedelta_s": value.total_seconds()}
    return value


def _back(value: Any, calendars: Mapping[str, Calendar]) -> Any:
    if isinstance(value, dict):
        if "calendar" in value:
            return calendars[value["calendar"]]
        if "timedelta_s" in value:
            return timedelta(seconds=value["timedelta_s"])
        return Duration(days=int(value["days"]), seconds=int(value["seconds"]))
    return value


def _calendar(name: str, raw: Mapping[str, Any]) -> Calendar:
    return Calendar(
        name=name,
        timezone=raw["timezone"],
        always=bool(raw["always"]),
        weekly=tuple(tuple((int(a), int(b)) for a, b in day) for day in raw["weekly"]),
        holidays=tuple((date.fromisoformat(a), date.fromisoformat(b)) for a, b in raw["holidays"]),
    )
