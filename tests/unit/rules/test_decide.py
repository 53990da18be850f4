"""decide(): conditions, combinators, actions, rule order, priority, language, trace.

Every test loads tests/data/rules/minimal.yaml with a `rules:` section of its
own, and runs it over ParsedMessage objects built here.
"""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from daemon.core.domain import Address, Attachment, ParsedMessage
from daemon.rules.ruleset import Decision, Rules, decide, load_rules

MINIMAL = (Path(__file__).parents[2] / "data" / "rules" / "minimal.yaml").read_text("utf-8")


def rules_with(rules_yaml: str) -> Rules:
    return load_rules(MINIMAL + "rules:\n" + textwrap.indent(textwrap.dedent(rules_yaml), "  "))


def message(
    subject: str = "",
    body: str = "",
    sender: str | None = "user@example.com",
    to: tuple[str, ...] = ("helpdesk@example.com",),
    cc: tuple[str, ...] = (),
    headers: Mapping[str, tuple[str, ...]] | None = None,
    attachments: int = 0,
) -> ParsedMessage:
    files = tuple(
        Attachment(f"file{n}.pdf", "application/pdf", 3, "0" * 64, b"pdf")
        for n in range(attachments)
    )
    return ParsedMessage(
        message_id="test@example.com",
        subject=subject,
        sender=Address(sender) if sender else None,
        to=tuple(Address(a) for a in to),
        cc=tuple(Address(a) for a in cc),
        headers={name.lower(): values for name, values in (headers or {}).items()},
        text=body,
        attachments=files,
    )


# -- conditions -----------------------------------------------------------------

CONDITIONS = [
    # subject: case-sensitive unless (?i)
    pytest.param("{subject: Printer}", {"subject": "Printer jam"}, "email", True, id="subject"),
    pytest.param(
        "{subject: Printer}", {"subject": "printer jam"}, "email", False, id="subject-case"
    ),
    pytest.param(
        "{subject: '(?i)printer'}", {"subject": "PRINTER jam"}, "email", True, id="subject-(?i)"
    ),
    pytest.param(
        "{subject: '(?i)\\bdrukark\\w*'}",
        {"subject": "Zepsuta DRUKARKĘ w księgowości"},
        "email",
        True,
        id="subject-polish-stem",
    ),
    pytest.param(
        "{subject: '(?i)\\bnie uruchamia się\\b'}",
        {"subject": "Komputer NIE URUCHAMIA SIĘ po aktualizacji"},
        "email",
        True,
        id="subject-polish-diacritics",
    ),
    # body: the text body, capped at 64 KiB
    pytest.param(
        "{body: 'TeamViewer ID'}", {"body": "Mój TeamViewer ID: 123"}, "email", True, id="body"
    ),
    pytest.param(
        "{body: needle}",
        {"body": "x" * 70_000 + "needle"},
        "email",
        False,
        id="body-after-64KiB-unseen",
    ),
    # from / from_domain: the sender, lower-cased
    pytest.param(
        "{from: '^anna@example\\.com$'}", {"sender": "Anna@Example.com"}, "email", True, id="from"
    ),
    pytest.param("{from: '.'}", {"sender": None}, "email", False, id="from-no-sender"),
    pytest.param(
        "{from_domain: '^firma\\.pl$'}", {"sender": "jan@firma.pl"}, "email", True, id="from-domain"
    ),
    pytest.param(
        "{from_domain: '^firma\\.pl$'}",
        {"sender": "jan@biuro.firma.pl"},
        "email",
        False,
        id="from-domain-anchored",
    ),
    # to: any of To and Cc
    pytest.param("{to: '^vip@'}", {"cc": ("vip@example.com",)}, "email", True, id="to-matches-cc"),
    pytest.param(
        "{to: '^vip@'}", {"to": ("helpdesk@example.com",)}, "email", False, id="to-no-match"
    ),
    pytest.param("{to: '.'}", {"to": ()}, "email", False, id="to-no-recipients"),
    # header: name case-insensitive, any value, several names all must match
    pytest.param(
        "{header: {X-Priority: '^1'}}",
        {"headers": {"X-Priority": ("1 (Highest)",)}},
        "email",
        True,
        id="header",
    ),
    pytest.param(
        "{header: {x-priority: '^1'}}",
        {"headers": {"X-PRIORITY": ("1",)}},
        "email",
        True,
        id="header-name-any-case",
    ),
    pytest.param("{header: {X-Priority: '^1'}}", {}, "email", False, id="header-missing"),
    pytest.param(
        "{header: {Received: 'mx\\.firma\\.pl'}}",
        {"headers": {"Received": ("from a.example.com", "from mx.firma.pl")}},
        "email",
        True,
        id="header-any-value",
    ),
    pytest.param(
        "{header: {Precedence: bulk, List-Id: '.'}}",
        {"headers": {"Precedence": ("bulk",)}},
        "email",
        False,
        id="header-several-all-must-match",
    ),
    pytest.param(
        "{header: {Precedence: bulk, List-Id: '.'}}",
        {"headers": {"Precedence": ("bulk",), "List-Id": ("<news.example.com>",)}},
        "email",
        True,
        id="header-several-all-match",
    ),
    # channel: exact names, one or a list
    pytest.param("{channel: escalation}", {}, "escalation", True, id="channel"),
    pytest.param("{channel: escalation}", {}, "email", False, id="channel-other"),
    pytest.param("{channel: [email, cli]}", {}, "cli", True, id="channel-list"),
    # has_attachment
    pytest.param("{has_attachment: true}", {"attachments": 1}, "email", True, id="attachment"),
    pytest.param("{has_attachment: true}", {}, "email", False, id="attachment-none"),
    pytest.param("{has_attachment: false}", {}, "email", True, id="attachment-false"),
    # combinators
    pytest.param(
        "{subject: VPN, from_domain: firma}",
        {"subject": "VPN", "sender": "a@firma.pl"},
        "email",
        True,
        id="several-keys-all-match",
    ),
    pytest.param(
        "{subject: VPN, from_domain: firma}",
        {"subject": "VPN"},
        "email",
        False,
        id="several-keys-one-fails",
    ),
    pytest.param(
        "{all: [{subject: VPN}, {body: down}]}",
        {"subject": "VPN", "body": "down"},
        "email",
        True,
        id="all",
    ),
    pytest.param(
        "{all: [{subject: VPN}, {body: down}]}",
        {"subject": "VPN"},
        "email",
        False,
        id="all-one-fails",
    ),
    pytest.param(
        "{any: [{subject: VPN}, {body: VPN}]}", {"body": "my VPN"}, "email", True, id="any"
    ),
    pytest.param(
        "{any: [{subject: VPN}, {body: VPN}]}", {"subject": "Wi-Fi"}, "email", False, id="any-none"
    ),
    pytest.param(
        "{not: {from_domain: '^example\\.com$'}}", {"sender": "x@firma.pl"}, "email", True, id="not"
    ),
    pytest.param("{not: {from_domain: '^example\\.com$'}}", {}, "email", False, id="not-fails"),
    pytest.param(
        "{all: [{any: [{subject: VoIP}, {subject: SIP}]}, {not: {channel: cli}}]}",
        {"subject": "SIP trunk"},
        "email",
        True,
        id="nested",
    ),
]


@pytest.mark.parametrize(("when", "fields", "channel", "expected"), CONDITIONS)
def test_condition(when: str, fields: dict[str, Any], channel: str, expected: bool) -> None:
    rules = rules_with(f"- {{name: probe, when: {when}, set: {{category: hit}}}}\n")
    decision = decide(rules, message(**fields), channel)
    assert decision.matched == (("probe",) if expected else ())
    assert decision.category == ("hit" if expected else None)


def test_rule_without_when_matches_everything() -> None:
    rules = rules_with("- {name: catch-all, set: {category: other}}\n")
    decision = decide(rules, message(subject="anything"))
    assert decision.matched == ("catch-all",)
    assert decision.trace[1].condition == "always (no when)"


# -- actions --------------------------------------------------------------------

ACTIONS = [
    pytest.param("{category: voip}", {"category": "voip"}, id="category"),
    pytest.param("{group: telephony}", {"group": "telephony"}, id="group"),
    pytest.param("{assignee: jan@example.com}", {"assignee": "jan@example.com"}, id="assignee"),
    pytest.param(
        "{assignee: Jan@Example.com}", {"assignee": "jan@example.com"}, id="assignee-lower-cased"
    ),
    pytest.param(
        "{impact: high, urgency: high}",
        {"impact": "high", "urgency": "high", "priority": "P1", "priority_explicit": False},
        id="impact-urgency-matrix",
    ),
    pytest.param(
        "{impact: low}", {"impact": "low", "urgency": "medium", "priority": "P4"}, id="impact-only"
    ),
    pytest.param(
        "{priority: P1}",
        {"impact": "medium", "urgency": "medium", "priority": "P1", "priority_explicit": True},
        id="priority-explicit",
    ),
    pytest.param("{language: pl}", {"language": "pl"}, id="language"),
    pytest.param("{tags: [vip, vip, printer]}", {"tags": ("vip", "printer")}, id="tags"),
    pytest.param("{ignore: true}", {"ignore": True}, id="ignore"),
]


@pytest.mark.parametrize(("set_yaml", "expected"), ACTIONS)
def test_action(set_yaml: str, expected: dict[str, Any]) -> None:
    rules = rules_with(f"- {{name: act, when: {{subject: x}}, set: {set_yaml}}}\n")
    decision = decide(rules, message(subject="x"))
    for name, value in expected.items():
        assert getattr(decision, name) == value, name


def test_defaults_without_a_match() -> None:
    rules = rules_with("- {name: never, when: {subject: '^$never'}, set: {category: x}}\n")
    decision = decide(rules, message(subject="hello"))
    assert (decision.category, decision.group, decision.assignee) == (None, "second-line", None)
    assert (decision.impact, decision.urgency, decision.priority) == ("medium", "medium", "P3")
    assert (decision.priority_explicit, decision.tags, decision.ignore) == (False, (), False)
    assert decision.matched == ()


# -- order: first match wins, continue, overrides --------------------------------

ORDER_RULES = """
- name: VIP
  when: {from_domain: '^vip\\.pl$'}
  set: {tags: [vip], urgency: high}
  continue: true
- name: Escalated
  when: {channel: escalation}
  set: {tags: [first-line, vip], group: telephony}
  continue: true
- name: Phones
  when: {subject: '(?i)telefon'}
  set: {category: voip, group: telephony, impact: high}
- name: Everything else
  set: {category: general, urgency: low}
"""

ORDER = [
    pytest.param(
        {"subject": "Telefon nie działa"},
        "email",
        ("Phones",),
        {"category": "voip", "group": "telephony", "impact": "high", "urgency": "medium"},
        id="first-match-wins",
    ),
    pytest.param(
        {"subject": "Pytanie"},
        "email",
        ("Everything else",),
        {"category": "general", "urgency": "low", "priority": "P4"},
        id="falls-through-to-catch-all",
    ),
    pytest.param(
        {"subject": "Telefon", "sender": "ceo@vip.pl"},
        "email",
        ("VIP", "Phones"),
        {
            "category": "voip",
            "urgency": "high",
            "impact": "high",
            "priority": "P1",
            "tags": ("vip",),
        },
        id="continue-then-match",
    ),
    pytest.param(
        {"subject": "Pytanie", "sender": "ceo@vip.pl"},
        "escalation",
        ("VIP", "Escalated", "Everything else"),
        {
            "tags": ("vip", "first-line"),
            "group": "telephony",
            "urgency": "low",
            "category": "general",
        },
        id="later-match-overrides-field-by-field-tags-accumulate",
    ),
]


@pytest.mark.parametrize(("fields", "channel", "matched", "expected"), ORDER)
def test_rule_order(
    fields: dict[str, Any], channel: str, matched: tuple[str, ...], expected: dict[str, Any]
) -> None:
    decision = decide(rules_with(ORDER_RULES), message(**fields), channel)
    assert decision.matched == matched
    for name, value in expected.items():
        assert getattr(decision, name) == value, name


def test_rules_after_the_first_match_are_not_evaluated() -> None:
    decision = decide(rules_with(ORDER_RULES), message(subject="telefon"))
    assert {entry.rule for entry in decision.trace} == {"VIP", "Escalated", "Phones"}


def test_explicit_priority_survives_later_impact_change() -> None:
    rules = rules_with(
        """
        - {name: Boss, when: {from: '^ceo@'}, set: {priority: P1}, continue: true}
        - {name: Printer, when: {subject: printer}, set: {impact: low, urgency: low}}
        """
    )
    decision = decide(rules, message(subject="printer", sender="ceo@example.com"))
    assert (decision.impact, decision.urgency) == ("low", "low")
    assert (decision.priority, decision.priority_explicit) == ("P1", True)


def test_ignore_can_be_taken_back_by_a_later_rule() -> None:
    rules = rules_with(
        """
        - {name: Bulk, when: {header: {Precedence: bulk}}, set: {ignore: true}, continue: true}
        - {name: Our alerts, when: {from: '^monitoring@'}, set: {ignore: false}}
        """
    )
    bulk = {"headers": {"Precedence": ("bulk",)}}
    assert decide(rules, message(**bulk)).ignore is True
    assert decide(rules, message(sender="monitoring@example.com", **bulk)).ignore is False


# -- language -------------------------------------------------------------------

LANGUAGE = [
    # minimal.yaml: by_domain {pl: pl, "firma.com": pl, "en.firma.pl": en}, default en
    pytest.param("jan@firma.pl", None, "pl", id="tld-key-covers-every-pl-domain"),
    pytest.param("jan@firma.com", None, "pl", id="exact-domain"),
    pytest.param("jan@biuro.firma.com", None, "pl", id="subdomain"),
    pytest.param("jan@en.firma.pl", None, "en", id="longest-key-wins"),
    pytest.param("jan@notfirma.com", None, "en", id="label-wise-not-substring"),
    pytest.param("jan@example.com", None, "en", id="default"),
    pytest.param(None, None, "en", id="no-sender"),
    pytest.param("jan@firma.pl", "en", "en", id="rule-overrides-domain"),
]


@pytest.mark.parametrize(("sender", "rule_language", "expected"), LANGUAGE)
def test_language(sender: str | None, rule_language: str | None, expected: str) -> None:
    rule = f"- {{name: lang, set: {{language: {rule_language}}}}}\n"
    rules = rules_with(rule) if rule_language else load_rules(MINIMAL)
    assert decide(rules, message(sender=sender)).language == expected


# -- trace and output -------------------------------------------------------------

TRACE_RULES = """
- name: Phones
  when:
    all:
      - subject: '(?i)telefon'
      - not: {channel: cli}
  set: {category: voip, group: telephony, tags: [phone]}
"""


def test_trace_lists_every_condition_with_its_result() -> None:
    decision = decide(rules_with(TRACE_RULES), message(subject="Telefon padł"))
    rows = [(e.path, e.condition, str(e.result), e.detail, e.depth) for e in decision.trace]
    assert rows == [
        ("rules[0]", "rule 'Phones'", "matched", "first match wins: evaluation stops here", 0),
        ("rules[0].when.all", "all of 2", "matched", None, 1),
        ("rules[0].when.all[0].subject", "subject ~ /(?i)telefon/", "matched", "Telefon", 2),
        ("rules[0].when.all[1].not", "not", "matched", None, 2),
        (
            "rules[0].when.all[1].not.channel",
            "channel in [cli]",
            "not matched",
            "channel is email",
            3,
        ),
    ]


def test_to_json_has_the_shape_of_rules_test() -> None:
    decision = decide(rules_with(TRACE_RULES), message(subject="telefon"))
    document = json.loads(json.dumps(decision.to_json()))
    assert document["decision"] == {
        "category": "voip",
        "group": "telephony",
        "assignee": None,
        "impact": "medium",
        "urgency": "medium",
        "priority": "P3",
        "language": "en",
        "tags": ["phone"],
        "ignore": False,
        "contract": None,
        "contract_reason": "no contract matches user@example.com",
    }
    assert document["matched"] == ["Phones"]
    assert document["trace"][2] == {
        "rule": "Phones",
        "path": "rules[0].when.all[0].subject",
        "depth": 2,
        "condition": "subject ~ /(?i)telefon/",
        "result": "matched",
        "detail": "telefon",
    }


def test_format_text_shows_decision_and_trace() -> None:
    text = decide(rules_with(TRACE_RULES), message(subject="telefon")).format_text()
    assert "priority:  P3 (from the matrix)" in text
    assert "matched:   Phones" in text
    assert "  rule 'Phones' (rules[0]): matched  (first match wins" in text
    assert "      rules[0].when.all[0].subject: subject ~ /(?i)telefon/ -> matched" in text


def test_unknown_channel_is_refused() -> None:
    with pytest.raises(ValueError, match="channel must be one of"):
        decide(load_rules(MINIMAL), message(), "fax")


# -- regex safety ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "subject"),
    [
        pytest.param("(a+)+$", "a" * 50_000 + "b", id="nested-quantifier"),
        pytest.param("(x+x+)+y", "x" * 50_000, id="overlapping-quantifiers"),
    ],
)
def test_catastrophic_regex_times_out_in_bounded_time(pattern: str, subject: str) -> None:
    rules = rules_with(
        f"""
        - {{name: Catastrophic, when: {{subject: '{pattern}'}}, set: {{category: never}}}}
        - {{name: Fine, when: {{subject: '^[ax]'}}, set: {{category: reached}}}}
        """
    )
    started = time.monotonic()
    decision = decide(rules, message(subject=subject))
    assert time.monotonic() - started < 5
    results = [(e.path, str(e.result)) for e in decision.trace]
    assert results[:2] == [("rules[0]", "timeout"), ("rules[0].when.subject", "timeout")]
    assert decision.trace[1].detail == "search stopped after 0.10 s"
    assert decision.matched == ("Fine",)
    assert decision.category == "reached"


def test_not_over_a_timeout_does_not_match() -> None:
    rules = rules_with("- {name: Inverted, when: {not: {subject: '(a+)+$'}}, set: {category: x}}")
    decision = decide(rules, message(subject="a" * 50_000 + "b"))
    assert [(e.path, str(e.result)) for e in decision.trace] == [
        ("rules[0]", "timeout"),
        ("rules[0].when.not", "timeout"),
        ("rules[0].when.not.subject", "timeout"),
    ]
    assert decision.matched == ()


def test_many_catastrophic_rules_share_one_time_budget() -> None:
    rules_yaml = "".join(
        f"- {{name: slow{n}, when: {{subject: '(a+)+$'}}, set: {{category: x}}}}\n"
        for n in range(30)
    )
    started = time.monotonic()
    decision = decide(rules_with(rules_yaml), message(subject="a" * 50_000 + "b"))
    assert time.monotonic() - started < 5
    timeouts = [e for e in decision.trace if e.depth == 1]
    assert len(timeouts) == 30
    assert all(str(e.result) == "timeout" for e in timeouts)
    assert "budget is spent" in (timeouts[-1].detail or "")


def test_decision_is_immutable() -> None:
    decision: Decision = decide(load_rules(MINIMAL), message())
    with pytest.raises(AttributeError):
        decision.priority = "P1"  # type: ignore[misc]


def test_a_spent_budget_still_runs_rules_without_regex_and_ignore_rules_and_names_the_skipped():
    slow = "".join(
        f"- {{name: slow{n}, when: {{subject: '(a+)+$'}}, set: {{category: x}}}}\n"
        for n in range(15)
    )
    rules = rules_with(
        slow
        + "- {name: Mail, when: {channel: email}, set: {tags: [mail]}, continue: true}\n"
        + "- {name: Late, when: {body: 'never'}, set: {category: y}, continue: true}\n"
        + "- {name: Spam, when: {body: '(?i)unsubscribe'}, set: {ignore: true}}\n"
    )
    decision = decide(rules, message(subject="a" * 50_000 + "b", body="To unsubscribe click"))
    assert decision.matched == ("Mail", "Spam")
    assert decision.ignore and decision.tags == ("mail",)
    assert decision.skipped == (*(f"slow{n}" for n in range(15)), "Late")
    assert decision.to_json()["skipped"] == list(decision.skipped)
    assert "skipped:   slow0, slow1" in decision.format_text()


class SlowMachine:
    """A clock on which every reading is half a second after the last: each
    search seems to take five times its 0.1 s timeout, as on a loaded host."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.5
        return self.now


def test_searches_that_overrun_their_timeout_leave_the_ignore_rules_their_reserve() -> None:
    rules = rules_with(
        "".join(
            f"- {{name: slow{n}, when: {{subject: '(a+)+$'}}, set: {{category: x}}}}\n"
            for n in range(3)
        )
        + "- {name: Spam, when: {body: '(?i)unsubscribe'}, set: {ignore: true}}\n"
        + "- {name: After, when: {body: 'click'}, set: {category: y}}\n"
    )
    decision = decide(
        rules, message(subject="a" * 5 + "b", body="To unsubscribe click"), monotonic=SlowMachine()
    )
    # Two slow searches spend the shared second (0.5 s each); the third is not
    # tried; the ignore rule still runs on its reserve, however late it is.
    assert decision.skipped == ("slow2",)
    assert decision.matched == ("Spam",) and decision.ignore


def test_the_reserve_is_for_ignore_rules_alone() -> None:
    rules = rules_with(
        "- {name: slow, when: {subject: 'a'}, set: {category: x}, continue: true}\n"
        "- {name: slow2, when: {subject: 'a'}, set: {category: x}, continue: true}\n"
        "- {name: Other, when: {body: 'click'}, set: {category: y}}\n"
    )
    decision = decide(rules, message(subject="a", body="click"), monotonic=SlowMachine())
    assert decision.matched == ("slow", "slow2")
    assert decision.skipped == ("Other",)
