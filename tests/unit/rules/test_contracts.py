"""rules.yaml `contracts:` (SPEC §7): parsing, validation, matching, and the
rules' `contract` condition and action."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from daemon.core.businesstime import Duration
from daemon.rules import slatable
from daemon.rules.ruleset import Rules, RulesError, decide, load_rules
from tests.unit.rules.test_decide import message

MINIMAL = (Path(__file__).parents[2] / "data" / "rules" / "minimal.yaml").read_text("utf-8")

CONTRACTS = """\
contracts:
  acme:
    name: "ACME Sp. z o.o."
    match: {domains: [acme.pl], addresses: [prezes.acme@gmail.com]}
    language: pl
    calendar: office
    sla:
      P1: {calendar: always, response: 10m, resolution: 2h, update_every: 30m}
      P2: {response: 30m, resolution: 6h, update_every: 2h}
    group: telephony
    contacts: [it-manager@acme.pl]
    cc_priorities: [P1, P2]
    report: {every: month, to: [it-manager@acme.pl], language: pl}
    record: attach
  serwis:
    name: "ACME Serwis"
    match: {domains: [serwis.acme.pl]}
  globex:
    name: Globex
    match: {addresses: [Boss@Globex.com]}
    report: {every: week, to: [cto@globex.com]}
"""


def contracts_rules(contracts: str = CONTRACTS, rules: str = "") -> Rules:
    text = MINIMAL + contracts
    if rules:
        text += "rules:\n" + textwrap.indent(textwrap.dedent(rules), "  ")
    return load_rules(text)


def problems(contracts: str, rules: str = "") -> list[str]:
    with pytest.raises(RulesError) as caught:
        contracts_rules(contracts, rules)
    return [str(issue) for issue in caught.value.issues]


# -- parsing ---------------------------------------------------------------------


def test_a_contract_is_parsed_with_every_field() -> None:
    rules = contracts_rules()
    acme = rules.contracts["acme"]
    assert (acme.id, acme.name, acme.domains, acme.addresses) == (
        "acme",
        "ACME Sp. z o.o.",
        ("acme.pl",),
        ("prezes.acme@gmail.com",),
    )
    assert (acme.language, acme.calendar.name if acme.calendar else None) == ("pl", "office")
    assert (acme.group, acme.contacts, acme.cc_priorities) == (
        "telephony",
        ("it-manager@acme.pl",),
        ("P1", "P2"),
    )
    assert acme.report is not None
    assert (acme.report.every, acme.report.to, acme.report.language) == (
        "month",
        ("it-manager@acme.pl",),
        "pl",
    )
    assert acme.record == "attach"
    assert list(rules.contracts) == ["acme", "serwis", "globex"]


def test_contract_rows_override_the_top_level_and_take_the_contract_calendar() -> None:
    rules = contracts_rules()
    table = rules.contracts["acme"].sla
    assert list(table) == ["P1", "P2", "P3", "P4", "P5"]
    assert table["P1"].calendar.name == "always"  # the row's own calendar wins
    assert (table["P1"].response, table["P1"].resolution) == (
        Duration(seconds=600),
        Duration(seconds=7200),
    )
    assert table["P2"].calendar.name == "office"  # the contract's calendar
    assert table["P2"].response == Duration(seconds=1800)
    assert table["P3"] is rules.sla["P3"]  # a missing row is the top-level one
    assert set(rules.contracts["acme"].own_sla) == {"P1", "P2"}
    assert rules.contracts["serwis"].sla == dict(rules.sla)


def test_report_language_defaults_to_the_contracts_then_the_desks() -> None:
    rules = contracts_rules()
    globex = rules.contracts["globex"]
    assert globex.report is not None and globex.report.language == "en"
    assert (globex.language, globex.addresses) == (None, ("boss@globex.com",))


def test_a_rules_file_without_contracts_has_none() -> None:
    rules = load_rules(MINIMAL)
    assert dict(rules.contracts) == {}
    assert rules.contract_for("x@acme.pl") is None
    assert rules.warnings == ()


# -- matching ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("jan@acme.pl", "acme"),
        ("JAN@ACME.PL", "acme"),
        ("jan@biuro.acme.pl", "acme"),  # subdomains included
        ("jan@serwis.acme.pl", "serwis"),  # the longest domain wins
        ("jan@x.serwis.acme.pl", "serwis"),
        ("prezes.acme@gmail.com", "acme"),  # a listed address
        ("other@gmail.com", None),
        ("jan@notacme.pl", None),  # a suffix is not a domain
        ("boss@globex.com", "globex"),
        ("cto@globex.com", None),
        ("", None),
        (None, None),
    ],
)
def test_contract_for(address: str | None, expected: str | None) -> None:
    found = contracts_rules().contract_for(address)
    assert (found.id if found else None) == expected


def test_a_listed_address_wins_over_another_contracts_domain() -> None:
    extra = "  vip:\n    name: VIP\n    match: {addresses: [prezes@acme.pl]}\n"
    rules = contracts_rules(CONTRACTS + extra)
    found = rules.contract_for("prezes@acme.pl")
    assert found is not None and found.id == "vip"
    assert rules.contract_reason("prezes@acme.pl") == "matched by address prezes@acme.pl"
    assert rules.contract_reason("x@biuro.acme.pl") == "matched by domain acme.pl"


# -- validation -------------------------------------------------------------------


def test_one_domain_in_two_contracts_is_an_error_naming_both() -> None:
    extra = "  dup:\n    name: Dup\n    match: {domains: [Acme.pl]}\n"
    [issue] = problems(CONTRACTS + extra)
    line = (MINIMAL + CONTRACTS).count("\n") + 3
    assert issue.startswith(f"rules.yaml:{line}:")
    assert "contracts.dup.match.domains[0]" in issue
    assert "'acme.pl' is in contract 'acme'" in issue and "contract 'dup'" in issue


def test_one_address_in_two_contracts_is_an_error_naming_both() -> None:
    extra = "  dup:\n    name: Dup\n    match: {addresses: [boss@globex.com]}\n"
    [issue] = problems(CONTRACTS + extra)
    assert "contracts.dup.match.addresses[0]" in issue
    assert "'boss@globex.com' is in contract 'globex'" in issue and "'dup'" in issue


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("calendar: nine-to-five", "contracts.x.calendar: unknown calendar 'nine-to-five'"),
        ("group: sales", "contracts.x.group: unknown group 'sales'"),
        ("contacts: [not-an-address]", "contracts.x.contacts[0]: 'not-an-address' is not a mail"),
        (
            "report: {every: month, to: [boss]}",
            "contracts.x.report.to[0]: 'boss' is not a mail address",
        ),
        ("report: {every: year, to: [a@b.pl]}", "contracts.x.report.every: 'year' is not one of"),
        ("report: {every: month, to: []}", "contracts.x.report.to: name at least one address"),
        ("cc_priorities: [P1, P9]", "contracts.x.cc_priorities[1]: 'P9' is not one of"),
        ("sla: {P7: {calendar: office}}", "contracts.x.sla.P7: unknown key 'P7'"),
        ("sla: {P2: {response: 1h, resolution: 8h}}", "contracts.x.sla.P2: missing key"),
        ("sla: {P2: {response: 1h, resolution: 8h, update_every: 4h}}", "missing key 'calendar'"),
        ("match: {domains: [acme]}", "contracts.x.match.domains[0]: 'acme' is not a domain"),
        ("language: de", "contracts.x.language: 'de' is not one of en, pl"),
        ("record: print", "contracts.x.record: 'print' is not one of attach"),
        ("colour: red", "contracts.x.colour: unknown key 'colour'"),
    ],
)
def test_bad_contracts_are_refused_with_file_line_and_key(body: str, expected: str) -> None:
    text = f"contracts:\n  x:\n    name: X\n    {body}\n"
    found = problems(text)
    assert any(expected in issue for issue in found), found
    assert all(issue.startswith("rules.yaml:") for issue in found)


def test_none_is_no_contract_id() -> None:
    [issue] = problems("contracts:\n  none:\n    name: X\n")
    assert "'none' is reserved" in issue


def test_a_contract_that_matches_nobody_is_allowed_with_a_warning() -> None:
    rules = contracts_rules(CONTRACTS + "  later:\n    name: Signed next month\n")
    assert "later" in rules.contracts
    [warning] = rules.warnings
    assert warning.startswith("contracts.later (line ") and "matches nobody" in warning


# -- rules: when contract / set contract ---------------------------------------------


def test_the_decision_names_the_contract_and_why() -> None:
    rules = contracts_rules()
    decision = decide(rules, message(sender="jan@biuro.acme.pl"))
    assert (decision.contract, decision.contract_reason) == ("acme", "matched by domain acme.pl")
    assert decision.to_json()["decision"]["contract"] == "acme"
    assert decision.to_json()["decision"]["contract_reason"] == "matched by domain acme.pl"
    assert "contract:  acme (matched by domain acme.pl)" in decision.format_text()
    nobody = decide(rules, message(sender="x@gmail.com"))
    assert (nobody.contract, nobody.contract_reason) == (None, "no contract matches x@gmail.com")


def test_the_requester_decides_not_the_sender() -> None:
    rules = contracts_rules()
    decision = decide(rules, message(sender="sd@example.com"), requester="jan@acme.pl")
    assert (decision.contract, decision.language) == ("acme", "pl")


def test_contract_language_and_group_are_defaults_rules_override() -> None:
    rules = contracts_rules(
        rules="""
        - name: English please
          when: {subject: English}
          set: {language: en, group: second-line}
        """
    )
    plain = decide(rules, message(sender="jan@acme.pl"))
    assert (plain.language, plain.group) == ("pl", "telephony")
    # by_domain would say en for a gmail.com address; the contract says pl
    vip = decide(rules, message(sender="prezes.acme@gmail.com"))
    assert vip.language == "pl"
    chosen = decide(rules, message(subject="English", sender="jan@acme.pl"))
    assert (chosen.language, chosen.group) == ("en", "second-line")


def test_rules_test_and_set_the_contract() -> None:
    rules = contracts_rules(
        rules="""
        - name: ACME phones
          when: {contract: acme, subject: phone}
          set: {impact: high, urgency: high}
        - name: Walk-ins
          when: {contract: none, subject: walk-in}
          set: {contract: globex}
        """
    )
    phone = decide(rules, message(subject="phone", sender="jan@acme.pl"))
    assert (phone.priority, phone.matched) == ("P1", ("ACME phones",))
    other = decide(rules, message(subject="phone", sender="jan@gmail.com"))
    assert other.matched == ()
    walk_in = decide(rules, message(subject="walk-in", sender="jan@gmail.com"))
    assert (walk_in.contract, walk_in.contract_reason) == ("globex", "set by rule 'Walk-ins'")
    entry = [e for e in walk_in.trace if e.path.endswith(".contract")][-1]
    assert (entry.condition, entry.detail) == ("contract in [none]", "contract is none")


def test_a_continuing_rule_that_sets_the_contract_is_seen_by_later_rules() -> None:
    rules = contracts_rules(
        rules="""
        - name: Globex via partner
          when: {from_domain: '^partner\\.pl$'}
          set: {contract: globex}
          continue: true
        - name: Globex tickets
          when: {contract: [globex]}
          set: {category: globex}
        - name: Drop contract
          when: {subject: private}
          set: {contract: none}
        """
    )
    decision = decide(rules, message(sender="x@partner.pl"))
    assert (decision.contract, decision.category) == ("globex", "globex")
    dropped = decide(rules, message(subject="private", sender="jan@acme.pl"))
    assert (dropped.contract, dropped.contract_reason) == (None, "set by rule 'Drop contract'")
    assert dropped.group == "second-line"  # no contract, no contract group


def test_rules_may_name_only_known_contracts() -> None:
    found = problems(
        CONTRACTS,
        rules="""
        - name: A
          when: {contract: initech}
          set: {category: x}
        - name: B
          set: {contract: umbrella}
        """,
    )
    assert any("rules[0].when.contract: unknown contract 'initech'" in p for p in found)
    assert any("rules[1].set.contract: unknown contract 'umbrella'" in p for p in found)


# -- the SLA table a ticket keeps ------------------------------------------------------


def test_the_sla_snapshot_round_trips_every_policy_field() -> None:
    rules = contracts_rules()
    value = rules.sla_snapshot("acme")
    assert rules.sla_snapshot("acme") is value  # built once per load
    slatable._decoded.clear()
    table = slatable.decode(value)
    assert table == dict(rules.contracts["acme"].sla)
    assert slatable.decode(value) is table  # decoded once per key
    assert rules.sla_snapshot(None) != value
    assert slatable.decode(rules.sla_snapshot("gone")) == dict(rules.sla)
    assert slatable.decode('{"rows": 3}') is None
    assert slatable.decode("not json") is None
    assert slatable.decode({"rows": {}}) is None
