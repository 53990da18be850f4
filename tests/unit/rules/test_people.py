"""Agents with names in rules.yaml (`Anna Nowak <anna@example.com>`), issue 14.6:
the name signs their replies; a malformed one is refused with line and column."""

from __future__ import annotations

import textwrap

import pytest

from daemon.rules.ruleset import load_rules
from tests.unit.rules.test_errors import issues_of, with_section

GROUPS = """
groups:
  second-line:
    lead: "Marta Wiśniewska <Lead@Example.com>"
    members: ["Anna Nowak <anna@example.com>", piotr@example.com, '"Nowak, Ewa" <ewa@example.com>']
  telephony: {lead: voip-lead@example.com}
"""


def test_agents_may_have_names_that_sign_their_mail() -> None:
    text, _ = with_section(GROUPS)
    rules = load_rules(text)
    group = rules.groups["second-line"]
    assert group.lead == "lead@example.com"
    assert group.members == ("anna@example.com", "piotr@example.com", "ewa@example.com")
    assert rules.agent_name("anna@example.com") == "Anna Nowak"
    assert rules.agent_name("LEAD@example.com") == "Marta Wiśniewska"
    assert rules.agent_name("ewa@example.com") == "Nowak, Ewa"
    assert rules.agent_name("piotr@example.com") is None  # a bare address: no name
    assert {"anna@example.com", "lead@example.com", "ewa@example.com"} <= rules.agents()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("Anna Nowak <anna-at-example.com>", "'anna-at-example.com' in 'Anna Nowak <anna-at"),
        ("Anna Nowak anna@example.com", "is not a mail address like anna@example.com or"),
        ("Anna Nowak <anna@example.com", "is not a mail address like anna@example.com or"),
        ("<anna@example.com>", "the name before <anna@example.com> is empty"),
        ("Anna <anna@example.com> <x@example.com>", "is not a mail address like"),
    ],
)
def test_a_malformed_agent_is_refused_with_line_and_column(entry: str, message: str) -> None:
    snippet = textwrap.dedent(f"""
        groups:
          second-line:
            lead: lead@example.com
            members: [piotr@example.com, "{entry}"]
          telephony: {{lead: voip-lead@example.com}}
        """)
    text, offset = with_section(snippet)
    [issue] = issues_of(text)
    line = snippet.lstrip("\n").splitlines()[3]
    assert (issue.line - offset, issue.column) == (4, line.index('"') + 1)
    assert issue.path == "groups.second-line.members[1]"
    assert message in issue.message
    assert str(issue).startswith(f"rules.yaml:{issue.line}:{issue.column}: ")


def test_the_same_agent_named_and_bare_is_listed_twice() -> None:
    text, _ = with_section("""
        groups:
          second-line:
            lead: lead@example.com
            members: ["Anna <anna@example.com>", anna@example.com]
          telephony: {lead: voip-lead@example.com}
        """)
    [issue] = issues_of(text)
    assert issue.path == "groups.second-line.members[1]"
    assert "'anna@example.com' is listed twice" in issue.message
