"""Moments in words: Babel's CLDR words, kept between processes so that a
process writing a date does not load Babel's whole data for 19 words."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.adapters import moments
from daemon.adapters.moments import DATE_PATTERNS, human_time, words_for

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def kept_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test with a cache folder of its own, and nothing memoised."""
    monkeypatch.setattr(moments, "_kept_path", lambda locale: str(tmp_path / f"words-{locale}"))
    human_time.cache_clear()
    words_for.cache_clear()
    yield tmp_path
    human_time.cache_clear()
    words_for.cache_clear()


@pytest.mark.parametrize(
    ("moment", "language", "expected"),
    [
        (datetime(2026, 12, 7, 14, 35, tzinfo=UTC), "pl", "7 grudnia 2026 r., godz. 15:35"),
        (datetime(2026, 12, 7, 14, 35, tzinfo=UTC), "en", "Monday 7 December 2026, 15:35"),
        (datetime(2026, 7, 7, 13, 5, tzinfo=UTC), "pl", "7 lipca 2026 r., godz. 15:05"),
        (datetime(2026, 7, 7, 13, 5, tzinfo=UTC), "en", "Tuesday 7 July 2026, 15:05"),
        (datetime(2026, 3, 1, 23, 30, tzinfo=UTC), "pl", "2 marca 2026 r., godz. 00:30"),
    ],
)
def test_dates_read_as_people_write_them_in_the_desk_zone(
    moment: datetime, language: str, expected: str
) -> None:
    assert human_time(moment, ZoneInfo("Europe/Warsaw"), language) == expected


@settings(max_examples=100, deadline=None)
@given(
    moment=st.datetimes(
        min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    )
    | st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1)),
    language=st.sampled_from(["pl", "en"]),
    zone=st.sampled_from(["Europe/Warsaw", "America/New_York", "Asia/Kolkata", "UTC"]),
)
def test_dates_are_what_babels_format_datetime_writes(
    moment: datetime, language: str, zone: str
) -> None:
    """The pattern and locale looked up once give Babel's own text, DST
    changes and naive (UTC) moments included."""
    from babel.dates import format_datetime

    human_time.cache_clear()
    expected = format_datetime(
        moment, DATE_PATTERNS[language], tzinfo=ZoneInfo(zone), locale=language
    )
    assert human_time(moment, ZoneInfo(zone), language) == expected


def test_a_second_process_writes_dates_without_importing_babel(tmp_path: Path) -> None:
    """The first process takes the words from Babel and keeps them; the next
    reads them (60–90 ms of Babel's data not loaded) and writes the same."""
    script = (
        "import sys; from datetime import datetime, UTC; from zoneinfo import ZoneInfo;"
        "from daemon.adapters.moments import human_time;"
        "print(human_time(datetime(2026, 12, 7, 14, 35, tzinfo=UTC), ZoneInfo('Europe/Warsaw'),"
        " sys.argv[1]), 'babel' in sys.modules)"
    )
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # the cache folder under it
    for language, text in (
        ("pl", "7 grudnia 2026 r., godz. 15:35"),
        ("en", "Monday 7 December 2026, 15:35"),
    ):
        runs = [
            subprocess.run(
                [sys.executable, "-c", script, language],
                capture_output=True,
                text=True,
                env=env,
                cwd=ROOT,
                check=True,
            ).stdout
            for _ in range(2)
        ]
        assert runs == [f"{text} True\n", f"{text} False\n"]


def test_words_kept_from_other_babel_data_are_given_again(kept_here: Path) -> None:
    """An upgrade of Babel changes its data files, and with them the key."""
    words_for("pl")
    kept = kept_here / "words-pl"
    stale = json.loads(kept.read_text(encoding="utf-8"))
    stale["key"] = stale["key"].replace("root.dat", "old-root.dat")
    stale["months"] = ["stale"] * 12
    kept.write_text(json.dumps(stale), encoding="utf-8")
    words_for.cache_clear()
    assert words_for("pl").months[11] == "grudnia"
    assert json.loads(kept.read_text(encoding="utf-8"))["months"][11] == "grudnia"


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xfe not json",
        b"[]",
        b'{"key": null}',
        b"{}",
    ],
)
def test_a_broken_kept_file_is_not_taken(kept_here: Path, body: bytes) -> None:
    (kept_here / "words-en").write_bytes(body)
    assert human_time(datetime(2026, 7, 7, 13, 5, tzinfo=UTC), ZoneInfo("UTC"), "en") == (
        "Tuesday 7 July 2026, 13:05"
    )


@pytest.mark.parametrize(
    "change",
    [
        {"days": ["Monday"] * 6},
        {"months": [1] * 12},
        {"layout": "%(EEEE)s %(zz)s"},
        {"layout": "%s %d"},
    ],
)
def test_kept_words_of_the_right_key_but_the_wrong_shape_are_not_taken(
    kept_here: Path, change: dict[str, object]
) -> None:
    words_for("en")
    kept = kept_here / "words-en"
    broken = {**json.loads(kept.read_text(encoding="utf-8")), **change}
    kept.write_text(json.dumps(broken), encoding="utf-8")
    words_for.cache_clear()
    assert human_time(datetime(2026, 7, 7, 13, 5, tzinfo=UTC), ZoneInfo("UTC"), "en") == (
        "Tuesday 7 July 2026, 13:05"
    )
