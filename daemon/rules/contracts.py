"""The `contracts:` section of rules.yaml: one desk serving several clients
(SPEC §7), each with its own SLA rows, hours, contacts and KPI report.

`ContractParser` builds `Contract` values from YAML nodes, recording problems
on the shared `Reader` like the other sections; `ContractIndex` answers
"which contract is this address under" with two dictionary look-ups per
domain label (no scan over contracts, so 20 or 200 contracts cost the same).

Choices where SPEC is silent:
- A contract's `sla` rows are parsed by the same parser as the top-level rows
  (so every field a top-level row knows, a contract row knows too). A row
  without `calendar` takes the contract's `calendar`; with neither, the
  calendar is missing (an error, as at the top level).
- `Contract.sla` is the contract's effective table: its own rows over the
  top-level ones, all five priorities; `Contract.own_sla` the rows it wrote.
- Overlaps: the same address, or the same domain, in two contracts is an
  error naming both. A domain in one contract and its subdomain in another
  (`acme.pl` and `serwis.acme.pl`) is allowed: the longest domain wins, as
  for `languages.by_domain`; an address listed in a contract wins over any
  domain (a client's manager writing from a private mailbox).
- A contract that matches nobody (no domains, no addresses) is allowed, and
  `spocd rules check` warns about it.
- `report.language` defaults to the contract's `language`, else to
  `languages.default`; `report.to` needs at least one address.
- A contract id follows the group-name alphabet; `none` is reserved (a rule's
  `when: {contract: none}` means "no contract").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from types import MappingProxyType

from yaml.nodes import MappingNode, Node, ScalarNode

from daemon.core.businesstime import Calendar
from daemon.rules.model import Group, SlaPolicy
from daemon.rules.schema import Reader, child_path
from daemon.rules.values import LANGUAGES, PRIORITIES
from daemon.rules.values import address as parse_address

#: The word a rule uses for "no contract"; no contract may be called so.
NO_CONTRACT = "none"
REPORT_PERIODS = ("month", "week")
RECORD_MODES = ("attach",)
_ID = re.compile(r"[\w.-]+")
_DOMAIN = re.compile(r"[a-z0-9-]+(?:\.[a-z0-9-]+)+")
_KEYS = (
    "name",
    "match",
    "language",
    "calendar",
    "sla",
    "group",
    "contacts",
    "cc_priorities",
    "report",
    "record",
)


@dataclass(frozen=True, slots=True)
class ReportPlan:
    """`report: {every: month|week, to: [...], language: pl|en}`."""

    every: str
    to: tuple[str, ...]
    language: str


@dataclass(frozen=True, slots=True)
class Contract:
    """One client's contract. `sla` is the effective table (all priorities)."""

    id: str
    name: str
    domains: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    language: str | None = None
    calendar: Calendar | None = None
    sla: Mapping[str, SlaPolicy] = field(default_factory=dict)
    group: str | None = None
    contacts: tuple[str, ...] = ()
    cc_priorities: tuple[str, ...] = ()
    report: ReportPlan | None = None
    record: str | None = None
    own_sla: Mapping[str, SlaPolicy] = field(default_factory=dict)
    line: int = 0  # where the contract starts in the file

    @property
    def matches_nobody(self) -> bool:
        return not self.domains and not self.addresses

    def copies(self, priority: str) -> tuple[str, ...]:
        """The contacts to Cc on a ticket of this priority (none if it is not
        one of `cc_priorities`)."""
        return self.contacts if priority in self.cc_priorities else ()


@dataclass(frozen=True, slots=True)
class Match:
    """Why an address is under a contract: `address` or `domain` and the key."""

    contract: Contract
    by: str  # "address" | "domain"
    key: str

    def reason(self) -> str:
        return f"matched by {self.by} {self.key}"


@dataclass(frozen=True, slots=True)
class ContractIndex:
    """Address and domain look-ups over every contract."""

    addresses: Mapping[str, Contract] = field(default_factory=dict)
    domains: Mapping[str, Contract] = field(default_factory=dict)

    @classmethod
    def of(cls, contracts: Mapping[str, Contract]) -> ContractIndex:
        addresses = {a: c for c in contracts.values() for a in c.addresses}
        domains = {d: c for c in contracts.values() for d in c.domains}
        return cls(MappingProxyType(addresses), MappingProxyType(domains))

    def match(self, address: str | None) -> Match | None:
        """The contract of an address: the address itself, else the longest
        listed domain that is the address's domain or a parent of it."""
        if not address or (not self.addresses and not self.domains):
            return None
        wanted = address.strip().lower()
        found = self.addresses.get(wanted)
        if found is not None:
            return Match(found, "address", wanted)
        domain = wanted.rpartition("@")[2]
        while domain:
            found = self.domains.get(domain)
            if found is not None:
                return Match(found, "domain", domain)
            domain = domain.partition(".")[2]
        return None


@dataclass(slots=True)
class ContractParser:
    """Parser of `contracts:`; `sla_row` is the top-level SLA row parser."""

    reader: Reader
    sla_row: object  # Callable[[Node, str, Mapping[str, Calendar] | None], SlaPolicy | None]
    group_ref: object  # Callable[[Node, str, Mapping[str, Group] | None], str | None]
    calendar_ref: object  # Callable[[Node, str, Mapping[str, Calendar] | None], Calendar | None]
    default_language: str = "en"

    def contracts(
        self,
        node: Node | None,
        *,
        calendars: Mapping[str, Calendar] | None,
        groups: Mapping[str, Group] | None,
        sla: Mapping[str, SlaPolicy] | None,
    ) -> dict[str, Contract] | None:
        if node is None:
            return {}
        entries = self.reader.entries(node, "contracts")
        if entries is None:
            return None
        built: dict[str, Contract] = {}
        ok = True
        owners: dict[tuple[str, str], tuple[str, Node]] = {}
        for name, key_node, value in entries:
            path = child_path("contracts", name)
            if not _ID.fullmatch(name) or name == NO_CONTRACT:
                message = (
                    f"'{NO_CONTRACT}' is reserved (a rule's `contract: none`)"
                    if name == NO_CONTRACT
                    else "a contract id may use only letters, digits, '.', '_' and '-'"
                )
                self.reader.error(key_node, path, message)
                ok = False
                continue
            contract = self._contract(name, value, path, calendars, groups, sla, owners)
            if contract is None:
                ok = False
            else:
                built[name] = contract
        return built if ok else None

    def _contract(
        self,
        cid: str,
        node: Node,
        path: str,
        calendars: Mapping[str, Calendar] | None,
        groups: Mapping[str, Group] | None,
        sla: Mapping[str, SlaPolicy] | None,
        owners: dict[tuple[str, str], tuple[str, Node]],
    ) -> Contract | None:
        fields = self.reader.mapping(node, path, required=("name",), optional=_KEYS)
        if fields is None:
            return None
        before = len(self.reader.issues)
        read = partial(self.reader.optional, fields, path=path)
        name = read("name", parse=self.reader.string)
        domains, addresses = self._match(
            fields.get("match"), child_path(path, "match"), cid, owners
        )
        language = read("language", parse=partial(self.reader.choice, allowed=LANGUAGES))
        calendar = read("calendar", parse=partial(self.calendar_ref, calendars=calendars))  # type: ignore[operator]
        own = self._sla(
            fields.get("sla"), child_path(path, "sla"), fields.get("calendar"), calendars
        )
        group = read("group", parse=partial(self.group_ref, groups=groups))  # type: ignore[operator]
        contacts = read("contacts", parse=self._addresses, default=[])
        cc = read("cc_priorities", parse=self._priorities, default=[])
        report = read("report", parse=partial(self._report, language=language))
        record = read("record", parse=partial(self.reader.choice, allowed=RECORD_MODES))
        if len(self.reader.issues) > before or name is None or own is None:
            return None
        effective = {**(sla or {}), **own}
        return Contract(
            id=cid,
            name=name,
            domains=tuple(domains),
            addresses=tuple(addresses),
            language=language,
            calendar=calendar,
            sla=MappingProxyType({p: effective[p] for p in PRIORITIES if p in effective}),
            group=group,
            contacts=tuple(contacts or ()),
            cc_priorities=tuple(cc or ()),
            report=report,
            record=record,
            own_sla=MappingProxyType(own),
            line=node.start_mark.line + 1,
        )

    def _match(
        self,
        node: Node | None,
        path: str,
        cid: str,
        owners: dict[tuple[str, str], tuple[str, Node]],
    ) -> tuple[list[str], list[str]]:
        """`match: {domains: [...], addresses: [...]}`; both optional."""
        if node is None:
            return [], []
        fields = self.reader.mapping(node, path, optional=("domains", "addresses")) or {}
        domains = self.reader.optional(fields, "domains", path, self._domains, []) or []
        addresses = self.reader.optional(fields, "addresses", path, self._addresses, []) or []
        for kind, key, values in (
            ("domain", "domains", domains),
            ("address", "addresses", addresses),
        ):
            items = fields[key].value if values else []  # parsed, so a list of as many
            for index, value in enumerate(values):
                first = owners.setdefault((kind, value), (cid, items[index]))
                if first[0] == cid:
                    continue
                line = first[1].start_mark.line + 1
                self.reader.error(
                    items[index],
                    child_path(child_path(path, key), index),
                    f"{kind} '{value}' is in contract '{first[0]}' (line {line}) and in "
                    f"contract '{cid}': one {kind} may be under one contract only",
                )
        return domains, addresses

    def _domains(self, node: Node, path: str) -> list[str] | None:
        items = self.reader.sequence(node, path)
        if items is None:
            return None
        found: list[str] = []
        for index, item in enumerate(items):
            item_path = child_path(path, index)
            text = self.reader.string(item, item_path)
            if text is None:
                return None
            domain = text.strip().lower().removeprefix("*").removeprefix(".").removeprefix("@")
            if not _DOMAIN.fullmatch(domain):
                self.reader.error(item, item_path, f"'{text}' is not a domain like acme.pl")
                return None
            if domain in found:
                self.reader.error(item, item_path, f"'{domain}' is listed twice")
                return None
            found.append(domain)
        return found

    def _addresses(self, node: Node, path: str) -> list[str] | None:
        found = self.reader.each(node, path, partial(parse_address, self.reader))
        if found is None:
            return None
        items = self.reader.sequence(node, path) or []
        for index, value in enumerate(found):
            if value in found[:index]:
                self.reader.error(
                    items[index], child_path(path, index), f"'{value}' is listed twice"
                )
                return None
        return found

    def _priorities(self, node: Node, path: str) -> list[str] | None:
        found = self.reader.each(node, path, partial(self.reader.choice, allowed=PRIORITIES))
        return list(dict.fromkeys(found)) if found is not None else None

    def _sla(
        self,
        node: Node | None,
        path: str,
        calendar_node: Node | None,
        calendars: Mapping[str, Calendar] | None,
    ) -> dict[str, SlaPolicy] | None:
        """Rows for any subset of priorities, by the top-level row parser; a
        row without `calendar` gets the contract's."""
        if node is None:
            return {}
        rows = self.reader.mapping(node, path, optional=PRIORITIES)
        if rows is None:
            return None
        own: dict[str, SlaPolicy] = {}
        ok = True
        for priority, row in rows.items():
            row_path = child_path(path, priority)
            policy = self.sla_row(_with_calendar(row, calendar_node), row_path, calendars)  # type: ignore[operator]
            if policy is None:
                ok = False
            else:
                own[priority] = policy
        return own if ok else None

    def _report(self, node: Node, path: str, language: str | None) -> ReportPlan | None:
        fields = self.reader.mapping(node, path, required=("every", "to"), optional=("language",))
        if fields is None:
            return None
        read = partial(self.reader.optional, fields, path=path)
        every = read("every", parse=partial(self.reader.choice, allowed=REPORT_PERIODS))
        to = read("to", parse=self._addresses)
        chosen = read("language", parse=partial(self.reader.choice, allowed=LANGUAGES))
        if every is None or to is None or ("language" in fields and chosen is None):
            return None
        if not to:
            self.reader.error(fields["to"], child_path(path, "to"), "name at least one address")
            return None
        return ReportPlan(every, tuple(to), chosen or language or self.default_language)


def _with_calendar(row: Node, calendar: Node | None) -> Node:
    """The row as written, plus the contract's `calendar` when it has none."""
    if calendar is None or not isinstance(row, MappingNode):
        return row
    if any(isinstance(k, ScalarNode) and k.value == "calendar" for k, _ in row.value):
        return row
    key = ScalarNode("tag:yaml.org,2002:str", "calendar", calendar.start_mark, calendar.end_mark)
    return MappingNode(row.tag, [*row.value, (key, calendar)], row.start_mark, row.end_mark)
