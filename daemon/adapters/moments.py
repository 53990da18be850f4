"""A moment in words, as people write it in a letter: „7 grudnia 2026 r., godz.
15:35”, "Monday 7 December 2026, 15:35".

The words are CLDR's, from Babel: the Polish month in the genitive, the
English weekday. To give them Babel reads all its CLDR data for the language
(its import, the shared data and the locale's: 60–90 ms the first time a
process writes a date), while a moment needs 19 of its words. So the
pattern's layout and those words are kept in a small file in the compiled
templates' cache folder, keyed by Babel's data files they came from; the next
process reads the file instead, and Babel is not imported at all. Without
the folder, or with a file that does not match, Babel gives the words again.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from daemon.adapters.template_cache import bytecode_cache

#: How people write a moment in a sentence (CLDR patterns; month names come
#: from Babel in the right case: Polish „7 grudnia”, not „7 grudzień”).
DATE_PATTERNS = {
    "pl": "d MMMM y 'r., godz.' HH:mm",
    "en": "EEEE d MMMM y, HH:mm",
}
#: The pattern fields written here, each as Babel writes it (`human_time`).
FIELDS = frozenset({"d", "y", "MMMM", "EEEE", "HH", "mm"})
_FIELD = re.compile(r"%\((\w+)\)s")
#: Part of every key: a change to what is kept, or to how, makes new files.
WORDS_VERSION = 1


@dataclass(frozen=True, slots=True)
class Words:
    """A language's pattern as a %-format (Babel's own) and the words it takes."""

    layout: str
    days: tuple[str, ...]  # Monday first, as `datetime.weekday()`
    months: tuple[str, ...]  # January first


@lru_cache(maxsize=1024)
def human_time(value: datetime, zone: ZoneInfo, language: str) -> str:
    """`value` in words in `zone` (a naive moment is UTC). Memoised: tickets
    opened together share their deadlines."""
    words = words_for(language)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    local = value.astimezone(zone)
    return words.layout % {
        "d": local.day,
        "y": local.year,
        "MMMM": words.months[local.month - 1],
        "EEEE": words.days[local.weekday()],
        "HH": f"{local.hour:02d}",
        "mm": f"{local.minute:02d}",
    }


@lru_cache(maxsize=8)
def words_for(language: str) -> Words:
    """From the kept file when it came from the Babel data installed now,
    else from Babel (and kept for the next process)."""
    pattern = DATE_PATTERNS.get(language, DATE_PATTERNS["en"])
    locale = language if language in DATE_PATTERNS else "en"
    key = _key(locale, pattern)
    path = _kept_path(locale)
    if key is not None and path is not None:
        kept = _read(path, key)
        if kept is not None:
            return kept
    words = from_babel(locale, pattern)
    if key is not None and path is not None:
        _write(path, key, words)
    return words


def from_babel(locale: str, pattern: str) -> Words:
    from babel import Locale
    from babel.dates import parse_pattern

    layout = parse_pattern(pattern).format
    if not _fillable(layout):  # a pattern of DATE_PATTERNS this module cannot fill
        raise ValueError(f"date pattern {pattern!r}: fields other than {sorted(FIELDS)}")
    data = Locale.parse(locale)
    return Words(
        layout=layout,
        days=tuple(data.days["format"]["wide"][i] for i in range(7)),
        months=tuple(data.months["format"]["wide"][i] for i in range(1, 13)),
    )


def _key(locale: str, pattern: str) -> str | None:
    """What the words depend on: Babel's data files (their size and time,
    without importing Babel), the pattern and this module's version."""
    spec = importlib.util.find_spec("babel")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    stamps: list[object] = [WORDS_VERSION, locale, pattern]
    for name in ("global.dat", "locale-data/root.dat", f"locale-data/{locale}.dat"):
        try:
            found = (root / name).stat()
        except OSError:
            return None
        stamps.append([str(root / name), found.st_size, found.st_mtime_ns])
    return json.dumps(stamps)


def _kept_path(locale: str) -> str | None:
    cache = bytecode_cache()
    own_file = getattr(cache, "own_file", None)
    return own_file(f"moments-{locale}") if own_file else None


def _read(path: str, key: str) -> Words | None:
    """The kept words, or None for a file that is missing, of another key,
    or not what this module writes."""
    try:
        with open(path, "rb") as fh:
            kept = json.loads(fh.read(65536))
        if kept["key"] != key:
            return None
        words = Words(kept["layout"], tuple(kept["days"]), tuple(kept["months"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    sound = (
        isinstance(words.layout, str)
        and _fillable(words.layout)
        and len(words.days) == 7
        and len(words.months) == 12
        and all(isinstance(w, str) for w in (*words.days, *words.months))
    )
    return words if sound else None


def _fillable(layout: str) -> bool:
    """Whether `human_time` can fill the layout: only its fields, and no
    other % directive."""
    if not set(_FIELD.findall(layout)) <= FIELDS:
        return False
    try:
        layout % dict.fromkeys(FIELDS, "")
    except (ValueError, TypeError, KeyError):
        return False
    return True


def _write(path: str, key: str, words: Words) -> None:
    """Written whole or not at all (another process may be reading it); the
    file is only a saving, so a failure is not an error."""
    body = json.dumps(
        {"key": key, "layout": words.layout, "days": words.days, "months": words.months},
        ensure_ascii=False,
    ).encode("utf-8")
    temporary = f"{path}.{os.getpid()}.tmp"
    with contextlib.suppress(OSError):
        try:
            with open(temporary, "xb") as fh:
                fh.write(body)
            os.replace(temporary, path)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
