"""Every value `rules check` accepts works at runtime: the limits that keep it so.

A value past one of these limits used to pass the check and then fail at
runtime (a traceback in `rules check`, or every mail failing for ever); each
is now a problem with its line, and the value at the limit still works.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.core import businesstime
from daemon.rules import patterns
from daemon.rules.pattern_size import (
    MAX_EXPANSION,
    MAX_NESTING,
    MAX_PATTERN,
    expansion,
    nesting,
    openings,
    regex_refusal,
)
from daemon.rules.ruleset import Rules, load_rules
from daemon.rules.values import MAX_CLOSED_DAYS
from tests.unit.rules.test_errors import issues_of, with_section


def _rule_matching(pattern: str) -> str:
    """Rules with one rule whose subject condition is `pattern`."""
    text, _ = with_section(
        f"""
        rules:
          - name: Deep
            when: {{subject: '{pattern}'}}
            set: {{category: hardware}}
        """
    )
    return text


def _messages(text: str) -> list[str]:
    return [f"{issue.path}: {issue.message}" for issue in issues_of(text)]


def _at_depth(frames: int, call: Callable[[], Rules]) -> Rules:
    """`call()` with `frames` more Python frames on the stack, as a deep caller has."""
    return call() if frames == 0 else _at_depth(frames - 1, call)


# -- F11: nesting of regexes --------------------------------------------------------

DEEP_PATTERNS = [
    pytest.param("(?:" * 300 + "a" + ")" * 300, 300, id="300-non-capturing"),
    pytest.param("(" * 1000 + "a" + ")" * 1000, 1000, id="1000-capturing"),
    pytest.param("(?=" * 400 + "a" + ")" * 400, 400, id="400-lookaheads"),
    pytest.param("(?V1)" + "[" * 800 + "a" + "]" * 800, 800, id="800-nested-sets"),
]


@pytest.mark.parametrize(("pattern", "depth"), DEEP_PATTERNS)
def test_a_deeply_nested_rule_pattern_is_a_problem_not_a_traceback(
    pattern: str, depth: int
) -> None:
    assert _messages(_rule_matching(pattern)) == [
        "rules[0].when.subject: rule 'Deep': regex refused: groups, lookarounds and "
        f"character sets nest {depth} deep (limit {MAX_NESTING})"
    ]


def test_a_deeply_nested_external_ref_pattern_is_a_problem() -> None:
    text, _ = with_section("external_ref_pattern: '" + "(" * 400 + "x" + ")" * 400 + "'\n")
    assert _messages(text) == [
        "external_ref_pattern: regex refused: groups, lookarounds and "
        f"character sets nest 400 deep (limit {MAX_NESTING})"
    ]


@pytest.mark.parametrize(
    "pattern",
    [
        "(?:" * MAX_NESTING + "a" + ")" * MAX_NESTING,
        "(?<=" * MAX_NESTING + "a" + ")" * MAX_NESTING,
        "(?V1)" + "[" * MAX_NESTING + "a" + "]" * MAX_NESTING,
    ],
    ids=["groups", "lookbehinds", "nested-sets"],
)
def test_a_pattern_nested_to_the_limit_compiles_even_under_a_deep_caller(pattern: str) -> None:
    text = _rule_matching(pattern)
    rules = _at_depth(400, lambda: load_rules(text))
    assert rules.rules[0].name == "Deep"


def test_a_pattern_one_level_past_the_limit_is_refused() -> None:
    deeper = MAX_NESTING + 1
    pattern = "(?:" * deeper + "a" + ")" * deeper
    assert _messages(_rule_matching(pattern))[0].endswith(f"nest {deeper} deep (limit 50)")


def test_the_compiler_still_works_after_a_recursion_error_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The last guard: should a pattern slip past the scan, the compiler's
    RecursionError is a problem, and the next pattern compiles as usual."""
    monkeypatch.setattr(patterns, "regex_refusal", lambda source: None)
    assert _messages(_rule_matching("(?:" * 400 + "a" + ")" * 400)) == [
        "rules[0].when.subject: rule 'Deep': regex refused: nested too deep for the regex compiler"
    ]
    rules = load_rules(_rule_matching(r"(?i)\bprinter\s+(\w+)"))
    assert rules.rules[0].name == "Deep"
    assert rules.find_external_ref("Re: printer jam, see SD-42") == "SD-42"


@pytest.mark.parametrize(
    ("pattern", "depth"),
    [
        (r"(a(b)c)[(((]\(\(", 2),  # parentheses in a set or escaped are characters
        ("(?#((((((()x", 0),  # and so are those in a comment
        ("[[:alpha:])]((x))", 2),  # a POSIX class does not end the set
        ("[]((]", 1),  # a leading ] is a character
        ("(?V1)[a[b[c]]]", 3),  # version 1 nests sets
        ("(?x)(a # ((((\n)", 5),  # read both with and without verbose comments
    ],
)
def test_nesting_counts_what_the_parser_could_nest(pattern: str, depth: int) -> None:
    assert nesting(pattern) == depth


def test_nesting_hidden_behind_a_set_that_only_one_version_ends_is_still_counted() -> None:
    # Version 0 reads `[[)]` as one set; version 1 would still be inside it.
    pattern = "[[)]" + "(?:" * 60 + "a" + ")" * 60
    assert nesting(pattern) >= 60


def test_ordinary_patterns_are_far_below_the_nesting_limit() -> None:
    assert nesting(r"^(?:re|fw|aw|odp)\s*:\s*(?:\[(?:HD-\d+)\])?\s*(.+)$") == 2


#: Text made of what the scans read as syntax, and a few plain characters.
PATTERN_TEXT = st.text(alphabet="()[]{}\\|*+?#:^=,x\n 0123456789aV", max_size=300)


@settings(max_examples=400, deadline=None)
@given(PATTERN_TEXT)
def test_the_bounds_the_scans_are_skipped_by_hold_for_any_text(source: str) -> None:
    # `regex_refusal` runs the character scans only past these bounds.
    assert nesting(source) <= openings(source)
    if "{" not in source:
        assert expansion(source) <= len(source)


def test_a_pattern_within_the_bounds_is_not_scanned_and_one_past_them_still_is() -> None:
    assert MAX_PATTERN < MAX_EXPANSION  # a pattern without `{` cannot expand past the limit
    assert regex_refusal("(?:" * MAX_NESTING + "a" + ")" * MAX_NESTING) is None
    assert "nest 51 deep" in str(regex_refusal("(" * 51 + "a" + ")" * 51))
    assert "nest" not in str(regex_refusal("(a)" * 60))  # many groups, none nested
    assert "expand" in str(regex_refusal("((a{100}){100}){100}"))


# -- F12: plain numbers -------------------------------------------------------------


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ("closure: {reopen_days: 3651}", "closure.reopen_days: must be at most 3650"),
        ("closure: {reopen_days: 999999999}", "closure.reopen_days: must be at most 3650"),
        (
            "auto_replies: {max_per_hour: 1000001}",
            "auto_replies.max_per_hour: must be at most 1000000",
        ),
        ("version: " + "9" * 5000, "version: must be between 0 and 1000000"),
    ],
    ids=["reopen-days-past-ten-years", "reopen-days-huge", "auto-replies-huge", "version-digits"],
)
def test_a_number_past_its_ceiling_is_a_problem(snippet: str, message: str) -> None:
    text, _ = with_section(snippet + "\n")
    assert _messages(text) == [message]


def test_a_duration_with_thousands_of_digits_is_a_problem() -> None:
    text, _ = with_section("closure: {auto_close_after: " + "9" * 5000 + "d}\n")
    assert _messages(text)[0].startswith("closure.auto_close_after: longer than 3650 days: '999")


def test_numbers_at_their_ceilings_are_accepted() -> None:
    text, _ = with_section("closure: {reopen_days: 3650}\n")
    text += "auto_replies: {max_per_hour: 1000000}\n"
    rules = load_rules(text)
    assert (rules.closure.reopen_days, rules.auto_reply_max_per_hour) == (3650, 1_000_000)


def test_a_reopen_window_at_the_ceiling_is_a_date() -> None:
    closed = datetime(2026, 12, 7, tzinfo=UTC)
    rules = load_rules(with_section("closure: {reopen_days: 3650}\n")[0])
    assert closed + timedelta(days=rules.closure.reopen_days) == datetime(2036, 12, 4, tzinfo=UTC)


# -- F13: escalation shares ---------------------------------------------------------


def _ladder(at: str) -> str:
    return with_section(f"escalation:\n  - {{at: {at}, notify: [assignee]}}\n")[0]


@pytest.mark.parametrize("at", ["99999999999999999999%", "1000.5%", "9" * 400 + "%"])
def test_an_escalation_share_past_1000_percent_is_a_problem(at: str) -> None:
    assert _messages(_ladder(at)) == [f"escalation[0].at: must be at most 1000%, got '{at}'"]


def test_an_escalation_share_of_1000_percent_times_a_step_within_the_years() -> None:
    rules = load_rules(_ladder("1000%"))
    assert [step.share for step in rules.escalation] == [10.0]
    office = rules.calendars["office"]
    start = datetime(2026, 12, 7, 9, tzinfo=UTC)
    due = businesstime.add_business(office, start, businesstime.Duration(days=3650))
    size = businesstime.business_seconds(office, start, due)
    step = businesstime.add_seconds(office, due, size * (rules.escalation[0].share - 1))
    assert step.year < 2200


# -- F14: calendars closed for years ------------------------------------------------


def _office(holidays: list[str], hours: str = '{mon-fri: "08:00-17:00"}') -> str:
    listed = ", ".join(f'"{h}"' for h in holidays)
    text, _ = with_section(
        f"""
        calendars:
          office: {{timezone: Europe/Warsaw, hours: {hours}, holidays: [{listed}]}}
          always: {{timezone: UTC, hours: always}}
        """
    )
    return text


def test_holidays_that_close_a_calendar_for_years_are_a_problem() -> None:
    years = [f"{year}-01-01..{year}-12-31" for year in range(2020, 2040)]
    assert _messages(_office(years)) == [
        "calendars.office.holidays: no working time from 2020-01-01 to 2040-01-01 (7306 days"
        f" in a row; holidays may close the calendar for at most {MAX_CLOSED_DAYS} days in a row)"
    ]


def test_weekends_join_holiday_ranges_into_one_closure() -> None:
    # Each range runs Monday to Friday; the weekends between close the rest.
    weeks = [f"{d}..{d + timedelta(days=4)}" for d in _mondays(date(2030, 1, 7), 150)]
    messages = _messages(_office(weeks))
    assert messages[0].startswith(
        "calendars.office.holidays: no working time from 2030-01-05 to 2032-11-21 (1052 days"
    )


def _mondays(first: date, count: int) -> list[date]:
    return [first + timedelta(weeks=n) for n in range(count)]


def test_a_closure_of_exactly_the_limit_is_accepted_and_worked_through() -> None:
    every_day = '{mon-sun: "08:00-17:00"}'
    holidays = ["2030-01-01..2030-12-31", "2031-01-01..2031-12-31", "2032-01-01..2032-01-02"]
    office = load_rules(_office(holidays, every_day)).calendars["office"]
    start = datetime(2029, 12, 31, 16, tzinfo=UTC)
    due = businesstime.add_business(office, start, businesstime.Duration(seconds=4 * 3600))
    assert due.date() == date(2032, 1, 3)
    assert MAX_CLOSED_DAYS < businesstime.MAX_IDLE_DAYS


def test_a_closure_one_day_past_the_limit_is_refused() -> None:
    every_day = '{mon-sun: "08:00-17:00"}'
    holidays = ["2030-01-01..2030-12-31", "2031-01-01..2031-12-31", "2032-01-01..2032-01-03"]
    assert _messages(_office(holidays, every_day)) == [
        "calendars.office.holidays: no working time from 2030-01-01 to 2032-01-03 (733 days"
        f" in a row; holidays may close the calendar for at most {MAX_CLOSED_DAYS} days in a row)"
    ]


def test_holidays_at_the_ends_of_the_calendar_of_dates_are_checked_without_overflow() -> None:
    text = _office(["0001-01-01..0001-12-31", "9999-01-01..9999-12-31"])
    assert load_rules(text).calendars["office"].holidays[0][0] == date(1, 1, 1)
