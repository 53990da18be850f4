"""rules.yaml: load, validate and compile it, and decide what a new ticket gets.

Pure core: the caller reads the file and passes its text; `load_rules` reports
every problem at once as a `RulesError` whose issues carry file, line, column
and YAML path, or returns an immutable `Rules`. `decide` runs the compiled
rules over a parsed message: first match wins unless a rule says
`continue: true`; later matches override earlier ones field by field and tags
accumulate. Conditions live in `match` (built from `when` by `when`), the
regex safety net in `patterns` and `pattern_size`, the value formats
(durations, calendars) in `values`, the YAML node reader in `schema`, the
section parsers in `sections` and `rule_list`.

Choices where SPEC is silent:
- `channel` takes exact names (`escalation`, or a list `[email, cli]`),
  checked at load: three fixed values gain nothing from a regex.
- `from`, `from_domain` and `to` see lower-cased addresses; `to` is any of
  To and Cc; a `header` condition matches if any value of that header does.
- `languages.by_domain` keys match their domain and its subdomains label by
  label; the longest key wins (`pl` covers every .pl domain).
- A rule without `when` matches every message; `when: {}`, `all: []` and
  `any: []` are errors (more likely a mistake than a wish).
- The trace holds every condition of every evaluated rule (no
  short-circuit, so it answers "which parts matched"); rules after the one
  that stopped evaluation are not evaluated and not traced.
- An assignee must be a lead or member of some group, and of the group the
  same rule sets, if it sets one.
- Issue paths count list items from 0: `rules[0]` is the first rule.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from yaml.nodes import Node

from daemon.core.businesstime import Calendar
from daemon.core.domain import ParsedMessage
from daemon.rules import slatable
from daemon.rules.contracts import NO_CONTRACT, Contract, ContractIndex, ContractParser, ReportPlan
from daemon.rules.match import MessageView, TraceEntry
from daemon.rules.model import (
    ACTION_KEYS,
    Actions,
    ClosurePolicy,
    Defaults,
    DigestPolicy,
    EscalationStep,
    Group,
    Rule,
    SlaPolicy,
)
from daemon.rules.patterns import IGNORE_RESERVE, REGEX_TIMEOUT, Budget, Result
from daemon.rules.rule_list import RuleList
from daemon.rules.schema import Reader, RuleIssue, RulesError
from daemon.rules.sections import Sections
from daemon.rules.values import CHANNELS, PRIORITIES

if TYPE_CHECKING:
    import regex

__all__ = [
    "ClosurePolicy",
    "Contract",
    "Decision",
    "Defaults",
    "DigestPolicy",
    "EscalationStep",
    "Group",
    "ReportPlan",
    "Rule",
    "RuleIssue",
    "Rules",
    "RulesError",
    "SlaPolicy",
    "TraceEntry",
    "decide",
    "load_rules",
    "raise_priority",
]

_REQUIRED = ("version", "priority_matrix", "defaults", "groups", "calendars", "sla")
_OPTIONAL = (
    "languages",
    "escalation",
    "closure",
    "external_ref_pattern",
    "rules",
    "strangers",
    "auto_replies",
    "digest",
    "contracts",
)


# -- the compiled rules --------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Rules:
    """A validated, compiled rules.yaml; immutable, safe to share between threads.

    Compared and hashed by identity: two loads of one text are told apart by
    `version`, not by ==.
    """

    version: str  # first 12 hex digits of the sha256 of the text
    default_language: str
    languages_by_domain: Mapping[str, str]
    priority_matrix: Mapping[str, Mapping[str, str]]
    defaults: Defaults
    groups: Mapping[str, Group]
    calendars: Mapping[str, Calendar]
    sla: Mapping[str, SlaPolicy]
    escalation: tuple[EscalationStep, ...]
    closure: ClosurePolicy
    external_ref: regex.Pattern[str] | None
    strangers: str
    auto_reply_max_per_hour: int
    rules: tuple[Rule, ...]
    digest: DigestPolicy | None = None  # morning digests to agents and leads
    _agents: frozenset[str] = field(default=frozenset(), repr=False)
    #: Clients' contracts by id (SPEC §7), in file order.
    contracts: Mapping[str, Contract] = field(default_factory=lambda: MappingProxyType({}))
    #: Things `spocd rules check` mentions that do not refuse the file.
    warnings: tuple[str, ...] = ()
    _contract_index: ContractIndex = field(default_factory=ContractIndex, repr=False)
    _snapshots: dict[str | None, str] = field(default_factory=dict, repr=False)

    def contract_for(self, address: str | None) -> Contract | None:
        """The contract an address is under: the address itself if a contract
        lists it, else the longest listed domain of it (subdomains included)."""
        found = self._contract_index.match(address)
        return found.contract if found else None

    def contract_reason(self, address: str | None) -> str | None:
        """Why `contract_for` says so: "matched by domain acme.pl"."""
        found = self._contract_index.match(address)
        return found.reason() if found else None

    def sla_table(self, contract: str | None) -> Mapping[str, SlaPolicy]:
        """The SLA rows of a contract's tickets (the top-level ones for none)."""
        found = self.contracts.get(contract) if contract else None
        return found.sla if found is not None else self.sla

    def sla_snapshot(self, contract: str | None) -> str:
        """`sla_table(contract)` as the JSON a ticket keeps (see `slatable`);
        built once per rules load and contract."""
        key = contract if contract in self.contracts else None
        found = self._snapshots.get(key)
        if found is None:
            table = self.sla_table(key)
            found = self._snapshots[key] = slatable.encode(table)
            slatable.remember(found, table)
        return found

    def agents(self) -> frozenset[str]:
        """Every lead and member of every group, lower-cased."""
        return self._agents

    def agent_name(self, address: str) -> str | None:
        """The name an agent signs with (rules.yaml `Anna Nowak <anna@...>`)."""
        wanted = address.lower()
        for group in self.groups.values():
            for known, name in group.names:
                if known == wanted:
                    return name
        return None

    def group_of(self, address: str) -> Group | None:
        """The first group (in file order) whose lead or member `address` is."""
        return next((group for group in self.groups.values() if address in group), None)

    def priority_for(self, impact: str, urgency: str) -> str:
        """The matrix priority of an impact and urgency (high|medium|low)."""
        try:
            return self.priority_matrix[impact][urgency]
        except KeyError:
            message = f"impact and urgency must be high|medium|low: {impact!r}, {urgency!r}"
            raise ValueError(message) from None

    def language_for(self, address: str | None) -> str:
        """`by_domain` language of a sender, else the default.

        A key matches its domain and every subdomain, label by label, and the
        longest key wins: `pl` covers every .pl domain, `example.pl` also
        `mail.example.pl`.
        """
        labels = address.rpartition("@")[2].lower().split(".") if address else []
        for start in range(len(labels)):
            language = self.languages_by_domain.get(".".join(labels[start:]))
            if language:
                return language
        return self.default_language

    def find_external_ref(self, subject: str) -> str | None:
        """The first-line reference in a subject: group 1 if the pattern has one."""
        if self.external_ref is None:
            return None
        try:
            found = self.external_ref.search(subject[:4096], timeout=REGEX_TIMEOUT)
        except TimeoutError:
            return None
        if found is None:
            return None
        return found.group(1) if self.external_ref.groups and found.group(1) else found.group(0)


def raise_priority(priority: str) -> str:
    """One step more urgent (P3 -> P2); P1 stays P1."""
    index = PRIORITIES.index(priority)
    return PRIORITIES[max(index - 1, 0)]


# -- the decision --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    """What the rules decided for one message, and the trace of how."""

    category: str | None
    group: str
    assignee: str | None
    impact: str
    urgency: str
    priority: str
    priority_explicit: bool
    language: str
    tags: tuple[str, ...]
    ignore: bool
    matched: tuple[str, ...]
    trace: tuple[TraceEntry, ...]
    #: Rules not decided because their regex was not tried or was stopped
    #: (the message's regex budget spent): they did not match.
    skipped: tuple[str, ...] = ()
    contract: str | None = None  # a contract id (SPEC §7)
    #: Why: "matched by address x@y", "matched by domain acme.pl", "set by
    #: rule 'R'", or "no contract matches <sender>".
    contract_reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The `spocd rules test --json` document (SPEC §3)."""
        fields = ("category", "group", "assignee", "impact", "urgency", "priority", "language")
        decision: dict[str, Any] = {name: getattr(self, name) for name in fields}
        decision["tags"] = list(self.tags)
        decision["ignore"] = self.ignore
        decision["contract"] = self.contract
        decision["contract_reason"] = self.contract_reason
        return {
            "decision": decision,
            "matched": list(self.matched),
            "skipped": list(self.skipped),
            "trace": [entry.to_json() for entry in self.trace],
        }

    def format_text(self) -> str:
        """A human-readable decision and trace for `spocd rules test`."""
        source = "set by a rule" if self.priority_explicit else "from the matrix"
        lines = [
            f"category:  {self.category or '-'}",
            f"group:     {self.group}",
            f"assignee:  {self.assignee or '-'}",
            f"impact:    {self.impact}",
            f"urgency:   {self.urgency}",
            f"priority:  {self.priority} ({source})",
            f"language:  {self.language}",
            f"tags:      {', '.join(self.tags) or '-'}",
            f"ignore:    {'yes' if self.ignore else 'no'}",
            f"contract:  {self.contract or '-'} ({self.contract_reason or 'no contract'})",
            f"matched:   {', '.join(self.matched) or '-'}",
            f"skipped:   {', '.join(self.skipped) or '-'}",
            "trace:",
        ]
        lines.extend(_trace_line(entry) for entry in self.trace)
        return "\n".join(lines)


def _trace_line(entry: TraceEntry) -> str:
    detail = f"  ({entry.detail})" if entry.detail else ""
    if entry.depth == 0:
        return f"  {entry.condition} ({entry.path}): {entry.result}{detail}"
    return f"  {'  ' * entry.depth}{entry.path}: {entry.condition} -> {entry.result}{detail}"


@dataclass(slots=True)
class _Draft:
    """A decision under construction while rules match."""

    fields: dict[str, Any]
    tags: list[str]

    def apply(self, actions: Actions) -> None:
        for name in ACTION_KEYS:
            value = getattr(actions, name)
            if name == "tags":
                self.tags.extend(tag for tag in value if tag not in self.tags)
            elif value is not None:
                self.fields[name] = value


def decide(
    rules: Rules,
    msg: ParsedMessage,
    channel: str = "email",
    requester: str | None = None,
    *,
    monotonic: Callable[[], float] = time.monotonic,
) -> Decision:
    """Run the rules over a message: defaults, then every matching rule in order.

    `requester`: the original requester when it is not the message's sender
    (an escalation whose forward names them); it decides the contract and the
    language. A contract's `language` and `group` are defaults a rule's `set`
    overrides; a rule's `set: {contract: ...}` overrides the matched contract.
    `monotonic` measures the regex time the rules spend.
    """
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {', '.join(CHANNELS)}: {channel!r}")
    view = MessageView.of(msg, str(channel))
    who = (requester or view.sender or "").lower() or None
    contract = rules.contract_for(who)
    reason = rules.contract_reason(who) if contract else f"no contract matches {who or '-'}"
    if contract is not None:
        view = replace(view, contract=contract.id)
    budget = Budget.start(monotonic=monotonic)
    # `ignore` rules keep a reserve: slow rules before them cannot make
    # spam open tickets by spending the budget they would need.
    reserve = budget.with_reserve(IGNORE_RESERVE)
    defaults = rules.defaults
    draft = _Draft(
        fields={
            "category": defaults.category,
            "impact": defaults.impact,
            "urgency": defaults.urgency,
        },
        tags=[],
    )
    trace: list[TraceEntry] = []
    matched: list[str] = []
    skipped: list[str] = []
    for rule in rules.rules:
        result, entries = rule.evaluate(view, reserve if rule.actions.ignore else budget)
        trace.extend(entries)
        if result is Result.TIMEOUT:
            skipped.append(rule.name)
        if result is Result.MATCHED:
            matched.append(rule.name)
            draft.apply(rule.actions)
            if rule.actions.contract is not None:
                chosen = rule.actions.contract
                view = replace(view, contract=None if chosen == NO_CONTRACT else chosen)
                reason = f"set by rule {rule.name!r}"
            if not rule.continues:
                break
    found = rules.contracts.get(view.contract) if view.contract else None
    draft.fields.setdefault("group", (found.group if found else None) or defaults.group)
    draft.fields.setdefault(
        "language", (found.language if found else None) or rules.language_for(who)
    )
    decision = _finish(rules, draft, tuple(matched), tuple(trace), tuple(skipped))
    return replace(decision, contract=view.contract, contract_reason=reason)


def _finish(
    rules: Rules,
    draft: _Draft,
    matched: tuple[str, ...],
    trace: tuple[TraceEntry, ...],
    skipped: tuple[str, ...],
) -> Decision:
    found = draft.fields
    explicit = found.get("priority")
    return Decision(
        category=found.get("category"),
        group=found["group"],
        assignee=found.get("assignee"),
        impact=found["impact"],
        urgency=found["urgency"],
        priority=explicit or rules.priority_for(found["impact"], found["urgency"]),
        priority_explicit=explicit is not None,
        language=found["language"],
        tags=tuple(draft.tags),
        ignore=bool(found.get("ignore", False)),
        matched=matched,
        trace=trace,
        skipped=skipped,
    )


# -- loading -------------------------------------------------------------------


def load_rules(text: str, filename: str = "rules.yaml") -> Rules:
    """Parse, validate and compile rules.yaml text; RulesError lists every problem."""
    reader = Reader(filename)
    root = reader.compose(text)
    fields = reader.mapping(root, "", _REQUIRED, _OPTIONAL) if root is not None else None
    rules = _build(reader, fields, text) if fields is not None else None
    if reader.issues or rules is None:
        raise RulesError(sorted(reader.issues, key=lambda issue: (issue.line, issue.column)))
    return rules


def _build(reader: Reader, f: dict[str, Node], text: str) -> Rules | None:
    """Every section is parsed even after an error, so all issues come out at once."""
    s = Sections(reader)
    version = s.version(f.get("version"))
    default_language, by_domain = s.languages(f.get("languages"))
    matrix = s.priority_matrix(f.get("priority_matrix"))
    groups = s.groups(f.get("groups"))
    defaults = s.defaults(f.get("defaults"), groups)
    calendars = s.calendars(f.get("calendars"))
    sla = s.sla(f.get("sla"), calendars)
    escalation = s.escalation(f.get("escalation"), groups)
    closure = s.closure(f.get("closure"))
    external_ref = s.external_ref(f.get("external_ref_pattern"))
    strangers = s.strangers(f.get("strangers"))
    max_per_hour = s.auto_replies(f.get("auto_replies"))
    contracts = ContractParser(
        reader, s._sla_policy, s.group_ref, s._calendar_ref, default_language
    ).contracts(f.get("contracts"), calendars=calendars, groups=groups, sla=sla)
    rule_list = RuleList(s).rules(f.get("rules"), groups, contracts)
    digest = s.digest(f.get("digest"), calendars)
    if (
        reader.issues
        or version is None
        or matrix is None
        or groups is None
        or defaults is None
        or calendars is None
        or sla is None
        or escalation is None
        or closure is None
        or rule_list is None
        or contracts is None
    ):
        return None
    return Rules(
        version=hashlib.sha256(text.encode("utf-8")).hexdigest()[:12],
        default_language=default_language,
        languages_by_domain=MappingProxyType(by_domain),
        priority_matrix=MappingProxyType(
            {impact: MappingProxyType(row) for impact, row in matrix.items()}
        ),
        defaults=defaults,
        groups=MappingProxyType(groups),
        calendars=MappingProxyType(calendars),
        sla=MappingProxyType(sla),
        escalation=escalation,
        closure=closure,
        external_ref=external_ref,
        strangers=strangers,
        auto_reply_max_per_hour=max_per_hour,
        rules=rule_list,
        digest=digest,
        _agents=frozenset(a for g in groups.values() for a in (g.lead, *g.members)),
        contracts=MappingProxyType(contracts),
        warnings=tuple(
            f"contracts.{c.id} (line {c.line}): matches nobody (no match.domains or "
            "match.addresses): no ticket will be under it"
            for c in contracts.values()
            if c.matches_nobody
        ),
        _contract_index=ContractIndex.of(contracts),
    )
