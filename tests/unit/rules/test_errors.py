"""Validation of rules.yaml: every kind of error, with file, line, column and path.

Each row replaces one top-level section of tests/data/rules/minimal.yaml with a
broken snippet (appended at the end of the file) and names the one issue it
must produce; line numbers in a row count from the snippet's first line.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from daemon.rules.ruleset import RuleIssue, RulesError, load_rules
from tests.support.proc import env as proc_env

DATA = Path(__file__).parents[2] / "data" / "rules"
MINIMAL = (DATA / "minimal.yaml").read_text(encoding="utf-8")


def without(text: str, key: str) -> str:
    """The document without its top-level section `key`."""
    kept: list[str] = []
    skipping = False
    for line in text.splitlines(keepends=True):
        if line[:1] not in (" ", "#", "\n", ""):
            skipping = line.startswith(f"{key}:")
        if not skipping:
            kept.append(line)
    return "".join(kept)


def with_section(snippet: str) -> tuple[str, int]:
    """Minimal rules with `snippet` in place of its section; and the snippet's line offset."""
    snippet = textwrap.dedent(snippet).lstrip("\n")
    base = without(MINIMAL, snippet.split(":", 1)[0])
    return base + snippet, base.count("\n")


def issues_of(text: str, filename: str = "rules.yaml") -> list[RuleIssue]:
    with pytest.raises(RulesError) as caught:
        load_rules(text, filename)
    return caught.value.issues


def test_minimal_fixture_is_valid() -> None:
    assert load_rules(MINIMAL).rules == ()


SECTION_ERRORS = [
    # -- version ----------------------------------------------------------------
    pytest.param(
        'version: "1"',
        1,
        10,
        "version",
        "expected a whole number, got a string",
        id="version-quoted",
    ),
    pytest.param("version: 2", 1, 10, "version", "unsupported version 2", id="version-2"),
    # -- priority matrix ----------------------------------------------------------
    pytest.param(
        """
        priority_matrix:
          high:   {high: P1, medium: P2}
          medium: {high: P2, medium: P3, low: P4}
          low:    {high: P3, medium: P4, low: P5}
        """,
        2,
        11,
        "priority_matrix.high",
        "missing key 'low'",
        id="matrix-missing-urgency",
    ),
    pytest.param(
        """
        priority_matrix:
          high:   {high: P1, medium: P2, low: P3}
          medium: {high: P2, medium: P3, low: P4}
        """,
        2,
        3,
        "priority_matrix",
        "missing key 'low'",
        id="matrix-missing-impact",
    ),
    pytest.param(
        """
        priority_matrix:
          high:   {high: P1, medium: P2, low: P3}
          medium: {high: P2, medium: P3, low: P6}
          low:    {high: P3, medium: P4, low: P5}
        """,
        3,
        39,
        "priority_matrix.medium.low",
        "'P6' is not one of P1, P2, P3, P4, P5",
        id="matrix-bad-priority",
    ),
    pytest.param(
        """
        priority_matrix:
          high:   {high: P1, medium: P2, low: P3}
          medium: {high: P2, medium: P3, low: P4}
          low:    {high: P3, medium: P4, low: P5}
          critical: {high: P1, medium: P1, low: P1}
        """,
        5,
        3,
        "priority_matrix.critical",
        "unknown key 'critical'",
        id="matrix-unknown-impact",
    ),
    # -- defaults -----------------------------------------------------------------
    pytest.param(
        "defaults: {impact: medium, urgency: medium, group: helpdesk}",
        1,
        52,
        "defaults.group",
        "unknown group 'helpdesk' (groups: second-line, telephony)",
        id="defaults-unknown-group",
    ),
    pytest.param(
        "defaults: {impact: huge, urgency: medium, group: second-line}",
        1,
        20,
        "defaults.impact",
        "'huge' is not one of high, medium, low",
        id="defaults-bad-impact",
    ),
    pytest.param(
        "defaults: [medium, medium]",
        1,
        11,
        "defaults",
        "expected a mapping, got a list",
        id="defaults-wrong-type",
    ),
    pytest.param(
        "defaults: {impact: medium, group: second-line}",
        1,
        11,
        "defaults",
        "missing key 'urgency'",
        id="defaults-missing-key",
    ),
    # -- groups -------------------------------------------------------------------
    pytest.param(
        """
        groups:
          second-line: {lead: lead@example.com, member: [anna@example.com]}
          telephony: {lead: voip-lead@example.com}
        """,
        2,
        41,
        "groups.second-line.member",
        "unknown key 'member' (expected one of lead, members)",
        id="group-unknown-key",
    ),
    pytest.param(
        """
        groups:
          second-line: {lead: lead-at-example.com}
          telephony: {lead: voip-lead@example.com}
        """,
        2,
        23,
        "groups.second-line.lead",
        "'lead-at-example.com' is not a mail address",
        id="group-lead-not-address",
    ),
    pytest.param(
        """
        groups:
          second-line: {lead: lead@example.com, members: anna@example.com}
          telephony: {lead: voip-lead@example.com}
        """,
        2,
        50,
        "groups.second-line.members",
        "expected a list, got a string",
        id="group-members-not-list",
    ),
    pytest.param(
        """
        groups:
          second-line: {lead: lead@example.com, members: [anna@example.com, Anna@Example.com]}
          telephony: {lead: voip-lead@example.com}
        """,
        2,
        69,
        "groups.second-line.members[1]",
        "'anna@example.com' is listed twice",
        id="group-member-twice",
    ),
    pytest.param(
        """
        groups:
          second-line: {members: [anna@example.com]}
          telephony: {lead: voip-lead@example.com}
        """,
        2,
        16,
        "groups.second-line",
        "missing key 'lead'",
        id="group-missing-lead",
    ),
    pytest.param(
        """
        groups:
          second-line: {lead: lead@example.com}
          telephony: {lead: voip-lead@example.com}
          second-line: {lead: other@example.com}
        """,
        4,
        3,
        "groups.second-line",
        "duplicate key (first at line",
        id="group-duplicate-key",
    ),
    pytest.param(
        """
        groups:
          second-line: {lead: lead@example.com}
          telephony: {lead: voip-lead@example.com}
          first line: {lead: sd@example.com}
        """,
        4,
        3,
        'groups["first line"]',
        "a group name may use only letters",
        id="group-name-with-space",
    ),
    # -- calendars ----------------------------------------------------------------
    pytest.param(
        """
        calendars:
          office: {timezone: Europe/Warszawa, hours: {mon-fri: "08:00-17:00"}}
          always: {timezone: UTC, hours: always}
        """,
        2,
        22,
        "calendars.office.timezone",
        "unknown time zone 'Europe/Warszawa'",
        id="calendar-unknown-zone",
    ),
    pytest.param(
        """
        calendars:
          office: {timezone: Europe/Warsaw, hours: {mon-fry: "08:00-17:00"}}
          always: {timezone: UTC, hours: always}
        """,
        2,
        45,
        "calendars.office.hours.mon-fry",
        "bad day spec 'mon-fry'",
        id="calendar-bad-day",
    ),
    pytest.param(
        """
        calendars:
          office: {timezone: Europe/Warsaw, hours: {mon-fri: "8-17"}}
          always: {timezone: UTC, hours: always}
        """,
        2,
        54,
        "calendars.office.hours.mon-fri",
        "bad hours '8-17' (write e.g. 08:00-17:00)",
        id="calendar-bad-hours",
    ),
    pytest.param(
        """
        calendars:
          office: {timezone: Europe/Warsaw, hours: {mon-fri: "08:00-08:00"}}
          always: {timezone: UTC, hours: always}
        """,
        2,
        54,
        "calendars.office.hours.mon-fri",
        "empty range '08:00-08:00'",
        id="calendar-empty-range",
    ),
    pytest.param(
        """
        calendars:
          office: {timezone: Europe/Warsaw, hours: {mon-fri: "08:00-17:00", mon: "12:00-18:00"}}
          always: {timezone: UTC, hours: always}
        """,
        2,
        44,
        "calendars.office.hours",
        "working hours overlap on mon",
        id="calendar-overlap",
    ),
    pytest.param(
        """
        calendars:
          office: {timezone: Europe/Warsaw, hours: {}}
          always: {timezone: UTC, hours: always}
        """,
        2,
        44,
        "calendars.office.hours",
        "the calendar has no working hours at all",
        id="calendar-no-hours",
    ),
    pytest.param(
        """
        calendars:
          office: {timezone: Europe/Warsaw, hours: 9to5}
          always: {timezone: UTC, hours: always}
        """,
        2,
        44,
        "calendars.office.hours",
        "expected 'always' or a mapping",
        id="calendar-hours-wrong-type",
    ),
    pytest.param(
        """
        calendars:
          office:
            timezone: Europe/Warsaw
            hours: {mon-fri: "08:00-17:00"}
            holidays: ["2026-12-24", "2026-02-30"]
          always: {timezone: UTC, hours: always}
        """,
        5,
        30,
        "calendars.office.holidays[1]",
        "bad date '2026-02-30'",
        id="calendar-bad-date",
    ),
    pytest.param(
        """
        calendars:
          office:
            timezone: Europe/Warsaw
            hours: {mon-fri: "08:00-17:00"}
            holidays: ["24.12.2026"]
          always: {timezone: UTC, hours: always}
        """,
        5,
        16,
        "calendars.office.holidays[0]",
        "bad date '24.12.2026'",
        id="calendar-date-not-iso",
    ),
    pytest.param(
        """
        calendars:
          office:
            timezone: Europe/Warsaw
            hours: {mon-fri: "08:00-17:00"}
            holidays: ["2026-12-26..2026-12-24"]
          always: {timezone: UTC, hours: always}
        """,
        5,
        16,
        "calendars.office.holidays[0]",
        "range ends before it starts",
        id="calendar-holiday-range-reversed",
    ),
    pytest.param(
        """
        calendars:
          office: {timezone: Europe/Warsaw, hours: {mon-fri: "08:00-17:00"}}
          always: {timezone: UTC, hours: always, holidays: ["2026-12-24"]}
        """,
        3,
        52,
        "calendars.always.holidays",
        "holidays have no effect with hours: always",
        id="calendar-always-with-holidays",
    ),
    pytest.param(
        """
        calendars:
          office: {timezone: Europe/Warsaw, hours: {mon-fri: "08:00-17:00"}, closed: [sun]}
          always: {timezone: UTC, hours: always}
        """,
        2,
        70,
        "calendars.office.closed",
        "unknown key 'closed'",
        id="calendar-unknown-key",
    ),
    # -- sla ----------------------------------------------------------------------
    pytest.param(
        """
        sla:
          P1: {calendar: always, response: 15m, resolution: 4h, update_every: 1h}
          P2: {calendar: office, response: 1h, resolution: 8h, update_every: 4h}
          P3: {calendar: office, response: 4h, resolution: 3d, update_every: 1d}
          P4: {calendar: office, response: 1d, resolution: 5d, update_every: 2d}
        """,
        2,
        3,
        "sla",
        "missing key 'P5'",
        id="sla-missing-priority",
    ),
    pytest.param(
        """
        sla:
          P1: {calendar: always, response: 15m, resolution: 4h, update_every: 1h}
          P2: {calendar: office, response: 1h, resolution: 8h, update_every: 4h}
          P3: {calendar: office, response: 4h, resolution: 3d, update_every: 1d}
          P4: {calendar: office, response: 1d, resolution: 5d, update_every: 2d}
          P5: {calendar: weekend, response: 2d, resolution: 10d, update_every: 5d}
        """,
        6,
        18,
        "sla.P5.calendar",
        "unknown calendar 'weekend' (calendars: office, always)",
        id="sla-unknown-calendar",
    ),
    pytest.param(
        """
        sla:
          P1: {calendar: always, response: 0, resolution: 4h, update_every: 1h}
          P2: {calendar: office, response: 1h, resolution: 8h, update_every: 4h}
          P3: {calendar: office, response: 4h, resolution: 3d, update_every: 1d}
          P4: {calendar: office, response: 1d, resolution: 5d, update_every: 2d}
          P5: {calendar: office, response: 2d, resolution: 10d, update_every: 5d}
        """,
        2,
        36,
        "sla.P1.response",
        "must be longer than zero: '0'",
        id="duration-zero",
    ),
    pytest.param(
        """
        sla:
          P1: {calendar: always, response: 15m, resolution: -4h, update_every: 1h}
          P2: {calendar: office, response: 1h, resolution: 8h, update_every: 4h}
          P3: {calendar: office, response: 4h, resolution: 3d, update_every: 1d}
          P4: {calendar: office, response: 1d, resolution: 5d, update_every: 2d}
          P5: {calendar: office, response: 2d, resolution: 10d, update_every: 5d}
        """,
        2,
        53,
        "sla.P1.resolution",
        "bad duration: '-4h'",
        id="duration-negative",
    ),
    pytest.param(
        """
        sla:
          P1: {calendar: always, response: 15m, resolution: 4h, update_every: soon}
          P2: {calendar: office, response: 1h, resolution: 8h, update_every: 4h}
          P3: {calendar: office, response: 4h, resolution: 3d, update_every: 1d}
          P4: {calendar: office, response: 1d, resolution: 5d, update_every: 2d}
          P5: {calendar: office, response: 2d, resolution: 10d, update_every: 5d}
        """,
        2,
        71,
        "sla.P1.update_every",
        "bad duration: 'soon'",
        id="duration-garbage",
    ),
    pytest.param(
        """
        sla:
          P1: {calendar: always, response: 15m, restoration: soon, resolution: 4h, update_every: 1h}
          P2: {calendar: office, response: 1h, resolution: 8h, update_every: 4h}
          P3: {calendar: office, response: 4h, resolution: 3d, update_every: 1d}
          P4: {calendar: office, response: 1d, resolution: 5d, update_every: 2d}
          P5: {calendar: office, response: 2d, resolution: 10d, update_every: 5d}
        """,
        2,
        54,
        "sla.P1.restoration",
        "bad duration: 'soon'",
        id="restoration-garbage",
    ),
    pytest.param(
        """
        sla:
          P1: {calendar: always, response: 15, resolution: 4h, update_every: 1h}
          P2: {calendar: office, response: 1h, resolution: 8h, update_every: 4h}
          P3: {calendar: office, response: 4h, resolution: 3d, update_every: 1d}
          P4: {calendar: office, response: 1d, resolution: 5d, update_every: 2d}
          P5: {calendar: office, response: 2d, resolution: 10d, update_every: 5d}
        """,
        2,
        36,
        "sla.P1.response",
        "needs a unit (s, m, h or d)",
        id="duration-no-unit",
    ),
    pytest.param(
        """
        sla:
          P1: {calendar: always, response: 15m, resolution: 4h, update_every: 1h}
          P2: {calendar: office, response: 1h, resolution: 8h, update_every: 4h}
          P3: {calendar: office, response: 4h, resolution: 1h1d, update_every: 1d}
          P4: {calendar: office, response: 1d, resolution: 5d, update_every: 2d}
          P5: {calendar: office, response: 2d, resolution: 10d, update_every: 5d}
        """,
        4,
        52,
        "sla.P3.resolution",
        "bad duration: '1h1d'",
        id="duration-wrong-order",
    ),
    # -- escalation ---------------------------------------------------------------
    pytest.param(
        """
        escalation:
          - {at: 75, notify: [assignee]}
        """,
        2,
        10,
        "escalation[0].at",
        "expected a positive percentage like 75%, got '75'",
        id="escalation-at-not-percent",
    ),
    pytest.param(
        """
        escalation:
          - {at: 75%, notify: [requester]}
        """,
        2,
        24,
        "escalation[0].notify[0]",
        "'requester' is neither assignee, group_lead",
        id="escalation-bad-notify",
    ),
    pytest.param(
        """
        escalation:
          - {at: 150%, notify: [group_lead], reassign: vendors}
        """,
        2,
        48,
        "escalation[0].reassign",
        "unknown group 'vendors'",
        id="escalation-unknown-group",
    ),
    pytest.param(
        """
        escalation:
          - {at: 100%, notify: [group_lead], raise_level: "yes please"}
        """,
        2,
        51,
        "escalation[0].raise_level",
        "expected true or false, got a string",
        id="escalation-bad-bool",
    ),
    pytest.param(
        """
        escalation:
          - {at: 75%, notify: [assignee]}
          - {at: 75.0%, notify: [group_lead]}
        """,
        3,
        5,
        "escalation[1].at",
        "a step at 75% already exists",
        id="escalation-same-share",
    ),
    pytest.param(
        """
        escalation:
          - {at: 50%}
        """,
        2,
        5,
        "escalation[0]",
        "the step does nothing",
        id="escalation-step-does-nothing",
    ),
    pytest.param(
        """
        escalation: {at: 75%, notify: [assignee]}
        """,
        1,
        13,
        "escalation",
        "expected a list, got a mapping",
        id="escalation-not-a-list",
    ),
    # -- closure ------------------------------------------------------------------
    pytest.param(
        "closure: {reopen_days: -1}",
        1,
        24,
        "closure.reopen_days",
        "must be at least 0",
        id="closure-negative-days",
    ),
    pytest.param(
        "closure: {auto_close_after: 3 days}",
        1,
        29,
        "closure.auto_close_after",
        "bad duration: '3 days'",
        id="closure-bad-duration",
    ),
    pytest.param(
        "closure: {yes_words: tak}",
        1,
        22,
        "closure.yes_words",
        "expected a list, got a string",
        id="closure-words-not-list",
    ),
    pytest.param(
        "closure: {yes_words: [tak, ok], no_words: [nie, OK]}",
        1,
        10,
        "closure",
        "words in both yes_words and no_words: ok",
        id="closure-word-in-both",
    ),
    pytest.param(
        "closure: {reopen_after: 14}",
        1,
        11,
        "closure.reopen_after",
        "unknown key 'reopen_after'",
        id="closure-unknown-key",
    ),
    # -- external ref, languages, strangers, auto replies ---------------------------
    pytest.param(
        "external_ref_pattern: '(SD-\\d+'",
        1,
        23,
        "external_ref_pattern",
        "bad regex: missing )",
        id="external-ref-bad-regex",
    ),
    pytest.param(
        "languages: {default: de}",
        1,
        22,
        "languages.default",
        "'de' is not one of en, pl",
        id="language-unknown",
    ),
    pytest.param(
        "languages: {default: en, by_domain: {example.de: de}}",
        1,
        50,
        'languages.by_domain["example.de"]',
        "'de' is not one of en, pl",
        id="language-by-domain-unknown",
    ),
    pytest.param(
        "languages: {default: en, by_domain: {'not a domain': pl}}",
        1,
        38,
        'languages.by_domain["not a domain"]',
        "is not a domain like example.pl",
        id="language-by-domain-bad-domain",
    ),
    pytest.param(
        "strangers: reject",
        1,
        12,
        "strangers",
        "'reject' is not one of new_ticket, quarantine",
        id="strangers-unknown",
    ),
    pytest.param(
        "auto_replies: {max_per_hour: 0}",
        1,
        30,
        "auto_replies.max_per_hour",
        "must be at least 1",
        id="auto-replies-zero",
    ),
    pytest.param(
        "auto_replies: {per_hour: 5}",
        1,
        16,
        "auto_replies.per_hour",
        "unknown key 'per_hour'",
        id="auto-replies-unknown-key",
    ),
    # -- rules --------------------------------------------------------------------
    pytest.param(
        "rules: {name: x}", 1, 8, "rules", "expected a list, got a mapping", id="rules-not-a-list"
    ),
    pytest.param(
        """
        rules:
          - name: Printers
            when: {subject: printer}
            set: {category: hardware}
          - name: Printers
            when: {subject: drukarka}
            set: {category: hardware}
        """,
        5,
        11,
        "rules[1].name",
        "duplicate rule name (first at line",
        id="rule-name-twice",
    ),
    pytest.param(
        """
        rules:
          - name: Printers
            when: {subject: printer}
        """,
        2,
        5,
        "rules[0]",
        "missing key 'set'",
        id="rule-missing-set",
    ),
    pytest.param(
        """
        rules:
          - when: {subject: printer}
            set: {category: hardware}
        """,
        2,
        5,
        "rules[0]",
        "missing key 'name'",
        id="rule-missing-name",
    ),
    pytest.param(
        """
        rules:
          - name: Printers
            when: {subject: printer}
            set: {category: hardware}
            contine: true
        """,
        5,
        5,
        "rules[0].contine",
        "unknown key 'contine'",
        id="rule-unknown-key",
    ),
    pytest.param(
        """
        rules:
          - name: Printers
            when: {subject: printer}
            set: {category: hardware}
            continue: "yes"
        """,
        5,
        15,
        "rules[0].continue",
        "expected true or false, got a string",
        id="rule-continue-quoted",
    ),
    pytest.param(
        """
        rules:
          - name: Printers
            when: {subjekt: printer}
            set: {category: hardware}
        """,
        3,
        12,
        "rules[0].when.subjekt",
        "unknown condition 'subjekt'",
        id="condition-unknown",
    ),
    pytest.param(
        """
        rules:
          - name: Printers
            when: {subject: '(?i)[drukark'}
            set: {category: hardware}
        """,
        3,
        21,
        "rules[0].when.subject",
        "bad regex: unterminated character set at position 12",
        id="condition-bad-regex",
    ),
    pytest.param(
        """
        rules:
          - name: Printers
            when:
              any:
                - subject: printer
                - body: '(a|b'
            set: {category: hardware}
        """,
        6,
        17,
        "rules[0].when.any[1].body",
        "bad regex: missing )",
        id="condition-bad-regex-nested",
    ),
    pytest.param(
        """
        rules:
          - name: Printers
            when: {}
            set: {category: hardware}
        """,
        3,
        11,
        "rules[0].when",
        "empty condition",
        id="condition-empty",
    ),
    pytest.param(
        """
        rules:
          - name: Printers
            when: {any: []}
            set: {category: hardware}
        """,
        3,
        17,
        "rules[0].when.any",
        "`any` needs at least one condition",
        id="condition-empty-any",
    ),
    pytest.param(
        """
        rules:
          - name: Printers
            when: {not: [{subject: printer}]}
            set: {category: hardware}
        """,
        3,
        17,
        "rules[0].when.not",
        "expected a mapping, got a list",
        id="condition-not-a-mapping",
    ),
    pytest.param(
        """
        rules:
          - name: Printers
            when: {all: {subject: printer}}
            set: {category: hardware}
        """,
        3,
        17,
        "rules[0].when.all",
        "expected a list, got a mapping",
        id="condition-all-not-a-list",
    ),
    pytest.param(
        """
        rules:
          - name: Bulk
            when: {header: {}}
            set: {ignore: true}
        """,
        3,
        20,
        "rules[0].when.header",
        "name at least one header",
        id="condition-no-header",
    ),
    pytest.param(
        """
        rules:
          - name: Bulk
            when: {header: {Precedence: '(bulk'}}
            set: {ignore: true}
        """,
        3,
        33,
        "rules[0].when.header.Precedence",
        "bad regex",
        id="condition-bad-header-regex",
    ),
    pytest.param(
        """
        rules:
          - name: Bulk
            when: {header: {"List Id": '.'}}
            set: {ignore: true}
        """,
        3,
        21,
        'rules[0].when.header["List Id"]',
        "'List Id' is not a header name",
        id="condition-bad-header-name",
    ),
    pytest.param(
        """
        rules:
          - name: SMS
            when: {channel: sms}
            set: {category: sms}
        """,
        3,
        21,
        "rules[0].when.channel",
        "'sms' is not one of email, escalation, cli",
        id="condition-unknown-channel",
    ),
    pytest.param(
        """
        rules:
          - name: Attachments
            when: {has_attachment: "yes"}
            set: {tags: [attachment]}
        """,
        3,
        28,
        "rules[0].when.has_attachment",
        "expected true or false",
        id="condition-attachment-not-bool",
    ),
    pytest.param(
        """
        rules:
          - name: Printers
            when: {subject: printer}
            set: {}
        """,
        4,
        10,
        "rules[0].set",
        "set needs at least one action",
        id="action-empty-set",
    ),
    pytest.param(
        """
        rules:
          - name: Printers
            when: {subject: printer}
            set: {prio: P1}
        """,
        4,
        11,
        "rules[0].set.prio",
        "unknown key 'prio'",
        id="action-unknown",
    ),
    pytest.param(
        """
        rules:
          - name: Printers
            when: {subject: printer}
            set: {group: printers}
        """,
        4,
        18,
        "rules[0].set.group",
        "unknown group 'printers'",
        id="action-unknown-group",
    ),
    pytest.param(
        """
        rules:
          - name: Printers
            when: {subject: printer}
            set: {assignee: stranger@example.com}
        """,
        4,
        21,
        "rules[0].set.assignee",
        "'stranger@example.com' is no lead or member of any group",
        id="action-assignee-not-agent",
    ),
    pytest.param(
        """
        rules:
          - name: Phones
            when: {subject: phone}
            set: {group: telephony, assignee: anna@example.com}
        """,
        4,
        39,
        "rules[0].set.assignee",
        "'anna@example.com' is not in group 'telephony'",
        id="action-assignee-not-in-group",
    ),
    pytest.param(
        """
        rules:
          - name: Printers
            when: {subject: printer}
            set: {impact: critical}
        """,
        4,
        19,
        "rules[0].set.impact",
        "'critical' is not one of high, medium, low",
        id="action-bad-impact",
    ),
    pytest.param(
        """
        rules:
          - name: Printers
            when: {subject: printer}
            set: {urgency: asap}
        """,
        4,
        20,
        "rules[0].set.urgency",
        "'asap' is not one of high, medium, low",
        id="action-bad-urgency",
    ),
    pytest.param(
        """
        rules:
          - name: Printers
            when: {subject: printer}
            set: {priority: P0}
        """,
        4,
        21,
        "rules[0].set.priority",
        "'P0' is not one of P1, P2, P3, P4, P5",
        id="action-bad-priority",
    ),
    pytest.param(
        """
        rules:
          - name: Printers
            when: {subject: printer}
            set: {language: de}
        """,
        4,
        21,
        "rules[0].set.language",
        "'de' is not one of en, pl",
        id="action-bad-language",
    ),
    pytest.param(
        """
        rules:
          - name: Printers
            when: {subject: printer}
            set: {tags: printer}
        """,
        4,
        17,
        "rules[0].set.tags",
        "expected a list, got a string",
        id="action-tags-not-list",
    ),
    pytest.param(
        """
        rules:
          - name: Printers
            when: {subject: printer}
            set: {ignore: sometimes}
        """,
        4,
        19,
        "rules[0].set.ignore",
        "expected true or false, got a string",
        id="action-ignore-not-bool",
    ),
    pytest.param(
        """
        rules:
          - name: Printers
            when: {subject: printer}
            set: {category: ~}
        """,
        4,
        21,
        "rules[0].set.category",
        "expected a string, got null",
        id="action-category-null",
    ),
]


@pytest.mark.parametrize(("snippet", "line", "column", "path", "message"), SECTION_ERRORS)
def test_section_error(snippet: str, line: int, column: int, path: str, message: str) -> None:
    text, offset = with_section(snippet)
    issues = issues_of(text)
    found = [(issue.line - offset, issue.column, issue.path, issue.message) for issue in issues]
    assert len(found) == 1, found
    assert found[0][:3] == (line, column, path), found
    assert message in found[0][3]
    assert str(issues[0]).startswith(f"rules.yaml:{offset + line}:{column}: {path}: ")


DOCUMENT_ERRORS = [
    pytest.param("", 1, 1, "", "the file is empty", id="empty"),
    pytest.param("# only a comment\n", 1, 1, "", "the file is empty", id="only-comment"),
    pytest.param("- version: 1\n", 1, 1, "", "expected a mapping, got a list", id="root-list"),
    pytest.param(
        "version: 1\ngroups: {a: [b, c}\n",
        2,
        18,
        "",
        "YAML syntax error: while parsing a flow sequence",
        id="syntax-unclosed-bracket",
    ),
    pytest.param(
        "version: 1\ngroups:\n\tsecond-line: {}\n",
        3,
        1,
        "",
        "YAML syntax error: while scanning for the next token: found character '\\t'",
        id="syntax-tab",
    ),
    pytest.param(
        "version: 1\n---\nversion: 1\n",
        2,
        1,
        "",
        "YAML syntax error: expected a single document",
        id="two-documents",
    ),
    pytest.param(
        "version: 1\nrules: []\x07\n",
        2,
        10,
        "",
        "YAML syntax error: special characters are not allowed",
        id="control-char",
    ),
    pytest.param(
        "a: &a [*a]\n", 1, 1, "", "the document expands to more than", id="recursive-alias"
    ),
]


@pytest.mark.parametrize(("text", "line", "column", "path", "message"), DOCUMENT_ERRORS)
def test_document_error(text: str, line: int, column: int, path: str, message: str) -> None:
    issues = issues_of(text)
    assert [(i.line, i.column, i.path) for i in issues] == [(line, column, path)]
    assert issues[0].message.startswith(message), issues[0].message
    assert str(issues[0]).startswith(f"rules.yaml:{line}:{column}: {message}")


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("version", "missing key 'version'"),
        ("priority_matrix", "missing key 'priority_matrix'"),
        ("defaults", "missing key 'defaults'"),
        ("groups", "missing key 'groups'"),
        ("calendars", "missing key 'calendars'"),
        ("sla", "missing key 'sla'"),
    ],
)
def test_missing_section(section: str, message: str) -> None:
    issues = issues_of(without(MINIMAL, section))
    first_line = next(
        n
        for n, text in enumerate(without(MINIMAL, section).splitlines(), 1)
        if text and not text.startswith("#")
    )
    assert [(i.line, i.column, i.path, i.message) for i in issues] == [(first_line, 1, "", message)]


def test_unknown_top_level_key() -> None:
    text = MINIMAL + "colour: blue\n"
    issues = issues_of(text)
    assert [(i.line, i.column, i.path) for i in issues] == [(text.count("\n"), 1, "colour")]
    assert issues[0].message.startswith("unknown key 'colour' (expected one of auto_replies,")


def test_duplicate_top_level_key() -> None:
    text = MINIMAL + "version: 1\n"
    issues = issues_of(text)
    assert [str(i) for i in issues] == [
        f"rules.yaml:{text.count(chr(10))}:1: version: duplicate key (first at line 2)"
    ]


def test_deep_nesting_is_refused() -> None:
    condition = "{subject: x}"
    for _ in range(20):
        condition = "{not: " + condition + "}"
    text, offset = with_section(
        f"rules:\n  - {{name: deep, when: {condition}, set: {{tags: [x]}}}}\n"
    )
    issues = issues_of(text)
    assert len(issues) == 1
    assert issues[0].message == "conditions nested deeper than 16 levels"
    assert issues[0].line == offset + 2


def test_alias_bomb_is_refused_quickly() -> None:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]" for n in range(1, 9)]
    started = time.monotonic()
    issues = issues_of("\n".join(lines) + "\n")
    assert time.monotonic() - started < 5
    assert issues[0].message.startswith("the document expands to more than 200000 nodes")


def test_several_errors_are_all_reported_in_file_order() -> None:
    text = (DATA / "several_errors.yaml").read_text(encoding="utf-8")
    issues = issues_of(text, "/etc/spocd/rules.yaml")
    assert [str(issue) for issue in issues] == [
        "/etc/spocd/rules.yaml:3:11: priority_matrix.high: missing key 'low'",
        "/etc/spocd/rules.yaml:6:52: defaults.group: unknown group 'helpdesk'"
        " (groups: second-line, telephony)",
        "/etc/spocd/rules.yaml:11:22: calendars.office.timezone:"
        " unknown time zone 'Europe/Warszawa' (write e.g. Europe/Warsaw or UTC)",
        "/etc/spocd/rules.yaml:16:52: sla.P3.resolution:"
        " bad duration: '3 days' (write e.g. 30s, 15m, 4h, 2d or 1d4h)",
        "/etc/spocd/rules.yaml:21:21: rules[0].when.subject: bad regex: missing ) at position 17",
        "/etc/spocd/rules.yaml:22:18: rules[0].set.group: unknown group 'voip'"
        " (groups: second-line, telephony)",
        "/etc/spocd/rules.yaml:25:5: rules[1].priority: unknown key 'priority'"
        " (expected one of continue, name, set, when)",
    ]
    with pytest.raises(RulesError) as caught:
        load_rules(text, "/etc/spocd/rules.yaml")
    assert str(caught.value).splitlines() == [str(issue) for issue in issues]
    assert isinstance(caught.value, ValueError)


BOMB = "(((a{1000}){1000}){1000}){1000}"  # 10^12 copies once compiled: 24 GB and more


def _limited_memory() -> None:
    """The child may use 1.5 GB of address space: a pattern that slips
    through fails there with MemoryError instead of exhausting the machine."""
    resource.setrlimit(resource.RLIMIT_AS, (1536 * 1024 * 1024, 1536 * 1024 * 1024))


@pytest.mark.parametrize(
    ("snippet", "named"),
    [
        (
            f"""
            rules:
              - name: Bomb
                when: {{subject: '{BOMB}'}}
                set: {{category: hardware}}
            """,
            "rules[0].when.subject: rule 'Bomb': regex refused",
        ),
        (
            f"""
            rules:
              - name: Header bomb
                when: {{any: [{{header: {{X-Test: '{BOMB}'}}}}]}}
                set: {{category: hardware}}
            """,
            "rule 'Header bomb': regex refused",
        ),
        (f"external_ref_pattern: '{BOMB}'\n", "external_ref_pattern: regex refused"),
    ],
    ids=["rule", "header", "external-ref"],
)
def test_a_pattern_that_would_exhaust_memory_is_refused_before_compiling(
    tmp_path: Path, snippet: str, named: str
) -> None:
    text, _ = with_section(snippet)
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "daemon", "rules", "check", str(path)],
        capture_output=True,
        timeout=120,
        env=proc_env(),
        preexec_fn=_limited_memory,
        check=False,
    )
    err = done.stderr.decode()
    assert done.returncode == 65, err[-2000:]
    assert named in err and "1,000,000,000,000" in err
    assert "Traceback" not in err


def test_counted_repeats_within_the_bound_still_compile() -> None:
    text, _ = with_section(
        """
        rules:
          - name: Ticket numbers
            when: {subject: '(INC-\\d{6}\\s*){1,20}|[A-Z]{2,10}-\\d{1,8}|.{0,200}x'}
            set: {category: hardware}
        """
    )
    assert load_rules(text).rules[0].name == "Ticket numbers"
