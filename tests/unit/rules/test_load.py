"""load_rules(): what a valid file compiles into, value by value."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.core.businesstime import Calendar, Duration
from daemon.rules.ruleset import (
    ClosurePolicy,
    EscalationStep,
    Group,
    RulesError,
    load_rules,
    raise_priority,
)
from daemon.rules.schema import Reader
from daemon.rules.values import calendar, duration

MINIMAL = (Path(__file__).parents[2] / "data" / "rules" / "minimal.yaml").read_text("utf-8")
MON_FRI_8_17 = (((480, 1020),),) * 5 + ((), ())


def test_minimal_rules_compile_to_values() -> None:
    rules = load_rules(MINIMAL)
    assert rules.version == hashlib.sha256(MINIMAL.encode()).hexdigest()[:12]
    assert rules.default_language == "en"
    assert dict(rules.languages_by_domain) == {"pl": "pl", "firma.com": "pl", "en.firma.pl": "en"}
    assert rules.priority_matrix["high"]["low"] == "P3"
    assert (rules.defaults.impact, rules.defaults.group, rules.defaults.category) == (
        "medium",
        "second-line",
        None,
    )
    assert rules.groups["telephony"] == Group(
        "telephony", "voip-lead@example.com", ("jan@example.com",)
    )
    assert rules.calendars["office"] == Calendar(
        "office", "Europe/Warsaw", weekly=MON_FRI_8_17, holidays=((date(2026, 12, 24),) * 2,)
    )
    assert rules.calendars["always"] == Calendar("always", "UTC", always=True)
    assert rules.sla["P1"].calendar.name == "always"
    assert (rules.sla["P3"].response, rules.sla["P3"].resolution) == (
        Duration(seconds=4 * 3600),
        Duration(days=3),
    )
    assert rules.escalation == (
        EscalationStep(0.75, ("assignee",)),
        EscalationStep(1.0, ("assignee", "group_lead"), raise_level=True),
    )
    assert rules.closure == ClosurePolicy()  # the SPEC defaults
    assert (rules.strangers, rules.auto_reply_max_per_hour, rules.rules) == ("new_ticket", 10, ())


def test_version_changes_with_the_text() -> None:
    assert load_rules(MINIMAL).version != load_rules(MINIMAL + "# edited\n").version


def test_optional_sections_have_defaults() -> None:
    text = "\n".join(
        line
        for line in MINIMAL.splitlines()
        if not line.startswith(("languages", "escalation", "  - {at", "closure", "external"))
    )
    rules = load_rules(text)
    assert (rules.default_language, dict(rules.languages_by_domain)) == ("en", {})
    assert rules.escalation == ()
    assert rules.closure.yes_words == ("yes", "ok", "confirmed", "tak", "potwierdzam")
    assert rules.external_ref is None
    assert rules.find_external_ref("[SD-1] x") is None


def test_strangers_and_auto_replies() -> None:
    rules = load_rules(MINIMAL + "strangers: quarantine\nauto_replies: {max_per_hour: 3}\n")
    assert (rules.strangers, rules.auto_reply_max_per_hour) == ("quarantine", 3)


def test_yaml_1_1_booleans_stay_words_where_words_are_expected() -> None:
    rules = load_rules(
        MINIMAL.replace("reopen_days: 14}", "yes_words: [Yes, ok], no_words: [no, off]}")
    )
    assert rules.closure.yes_words == ("yes", "ok")
    assert rules.closure.no_words == ("no", "off")


def test_unquoted_holiday_dates_are_accepted() -> None:
    rules = load_rules(MINIMAL.replace('holidays: ["2026-12-24"]', "holidays: [2026-12-24]"))
    assert rules.calendars["office"].holidays == ((date(2026, 12, 24), date(2026, 12, 24)),)


def test_groups_agents_and_group_of() -> None:
    rules = load_rules(MINIMAL)
    assert rules.agents() == {
        "lead@example.com",
        "anna@example.com",
        "piotr@example.com",
        "voip-lead@example.com",
        "jan@example.com",
    }
    group = rules.group_of("Jan@Example.com")
    assert group is not None and group.name == "telephony"
    assert rules.group_of("stranger@example.com") is None


@pytest.mark.parametrize(
    ("impact", "urgency", "priority"),
    [
        ("high", "high", "P1"),
        ("high", "low", "P3"),
        ("medium", "medium", "P3"),
        ("low", "low", "P5"),
    ],
)
def test_priority_for(impact: str, urgency: str, priority: str) -> None:
    assert load_rules(MINIMAL).priority_for(impact, urgency) == priority


def test_priority_for_refuses_unknown_levels() -> None:
    with pytest.raises(ValueError, match=r"must be high\|medium\|low"):
        load_rules(MINIMAL).priority_for("huge", "high")


@pytest.mark.parametrize(
    ("before", "after"), [("P5", "P4"), ("P3", "P2"), ("P2", "P1"), ("P1", "P1")]
)
def test_raise_priority(before: str, after: str) -> None:
    assert raise_priority(before) == after


@pytest.mark.parametrize(
    ("pattern", "subject", "found"),
    [
        (r"\b(SD-\d+)\b", "Fwd: [SD-4711] Drukarka", "SD-4711"),
        (r"\b(SD-\d+)\b", "Drukarka", None),
        (r"INC\d{6}", "RE: INC004711 printer", "INC004711"),  # no group: the whole match
        (r"(?i)zgłoszenie nr (\d+)", "Zgłoszenie NR 815", "815"),
    ],
)
def test_find_external_ref(pattern: str, subject: str, found: str | None) -> None:
    text = MINIMAL.replace(
        r"external_ref_pattern: '\b(SD-\d+)\b'", f"external_ref_pattern: '{pattern}'"
    )
    assert load_rules(text).find_external_ref(subject) == found


# -- durations ---------------------------------------------------------------------


def parse_duration(text: str) -> Duration | None:
    return duration(Reader("t.yaml"), yaml.compose(text, Loader=yaml.SafeLoader), "d")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", Duration(seconds=30)),
        ("15m", Duration(seconds=900)),
        ("4h", Duration(seconds=14_400)),
        ("2d", Duration(days=2)),
        ("1d4h", Duration(days=1, seconds=14_400)),
        ("1h30m", Duration(seconds=5_400)),
        ("1d 2h 3m 4s", Duration(days=1, seconds=7_384)),
        ("90m", Duration(seconds=5_400)),
    ],
)
def test_duration(text: str, expected: Duration) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["0", "0m", "-4h", "4", "4 hours", "1h1d", "h", "''", "1w", "9999d"]
)
def test_bad_duration(text: str) -> None:
    reader = Reader("t.yaml")
    assert duration(reader, yaml.compose(text, Loader=yaml.SafeLoader), "d") is None
    assert len(reader.issues) == 1


@given(st.integers(0, 99), st.integers(0, 99), st.integers(0, 99), st.integers(0, 99))
def test_duration_combinations(days: int, hours: int, minutes: int, seconds: int) -> None:
    text = "".join(
        f"{n}{unit}" for n, unit in zip((days, hours, minutes, seconds), "dhms", strict=True) if n
    )
    parsed = parse_duration(text or "0s")
    if not text:
        assert parsed is None
    else:
        assert parsed == Duration(days, hours * 3600 + minutes * 60 + seconds)


# -- calendars ----------------------------------------------------------------------


def parse_calendar(text: str) -> Calendar | None:
    reader = Reader("t.yaml")
    result = calendar(reader, "c", yaml.compose(text, Loader=yaml.SafeLoader), "calendars.c")
    assert reader.issues == [] or result is None
    return result


def week(**days: tuple[tuple[int, int], ...]) -> tuple[tuple[tuple[int, int], ...], ...]:
    names = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    return tuple(days.get(name, ()) for name in names)


H = 60  # minutes in an hour

CALENDARS = [
    pytest.param('{mon-fri: "08:00-17:00"}', MON_FRI_8_17, id="mon-fri"),
    pytest.param(
        '{"mon,wed": "09:00-12:00", sat: "10:00-14:00"}',
        week(mon=((9 * H, 12 * H),), wed=((9 * H, 12 * H),), sat=((10 * H, 14 * H),)),
        id="list-and-single-day",
    ),
    pytest.param(
        '{fri-mon: "10:00-11:00"}',
        week(**{d: ((10 * H, 11 * H),) for d in ("fri", "sat", "sun", "mon")}),
        id="range-wraps-over-weekend",
    ),
    pytest.param(
        '{Mon: "08:00-12:00, 13:00-17:00"}',
        week(mon=((8 * H, 12 * H), (13 * H, 17 * H))),
        id="several-ranges",
    ),
    pytest.param(
        '{mon: "08:00-12:00, 12:00-16:00"}', week(mon=((8 * H, 16 * H),)), id="touching-merged"
    ),
    pytest.param(
        '{fri: "22:00-06:00"}', week(fri=((22 * H, 24 * H),), sat=((0, 6 * H),)), id="overnight"
    ),
    pytest.param(
        '{sun: "22:00-06:00"}', week(sun=((22 * H, 24 * H),), mon=((0, 6 * H),)), id="overnight-sun"
    ),
    pytest.param('{sat: "18:00-00:00"}', week(sat=((18 * H, 24 * H),)), id="until-midnight"),
    pytest.param('{sun: "00:00-24:00"}', week(sun=((0, 24 * H),)), id="whole-day"),
]


@pytest.mark.parametrize(("hours", "weekly"), CALENDARS)
def test_calendar_hours(hours: str, weekly: tuple[tuple[tuple[int, int], ...], ...]) -> None:
    parsed = parse_calendar(f"{{timezone: Europe/Warsaw, hours: {hours}}}")
    assert parsed is not None
    assert parsed.weekly == weekly


def test_calendar_holidays_single_and_ranges_sorted() -> None:
    parsed = parse_calendar(
        '{timezone: Europe/Warsaw, hours: {mon-fri: "08:00-17:00"},'
        ' holidays: ["2027-01-01", "2026-12-24..2026-12-26"]}'
    )
    assert parsed is not None
    assert parsed.holidays == (
        (date(2026, 12, 24), date(2026, 12, 26)),
        (date(2027, 1, 1), date(2027, 1, 1)),
    )


# -- robustness ---------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_any_text_loads_or_raises_rules_error(text: str) -> None:
    try:
        load_rules(text)
    except RulesError as exc:
        assert exc.issues
        assert all(issue.line >= 1 and issue.column >= 1 for issue in exc.issues)


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(st.sampled_from(["version", "groups", "rules", "sla", "when"]), inner)
        ),
        max_leaves=30,
    )
)
def test_any_yaml_structure_loads_or_raises_rules_error(data: object) -> None:
    text = MINIMAL + yaml.safe_dump({"rules": data})
    try:
        load_rules(text)
    except RulesError as exc:
        assert exc.issues
