"""Parsers of the sections of rules.yaml, from YAML nodes to `rules_model` values.

`Sections` parses one top-level section per method, records problems on the
shared `Reader` and returns None for a section it could not build, so the
loader still parses the rest and reports every issue. Cross references (a
group, a calendar, an assignee) are checked only against sections that parsed,
so one broken section does not drown the report in follow-up errors. The
`rules:` list has its own parser, `rule_list`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time
from functools import partial
from typing import TYPE_CHECKING

from yaml.nodes import Node

from daemon.core.businesstime import Calendar
from daemon.rules.model import (
    ClosurePolicy,
    Defaults,
    DigestPolicy,
    EscalationStep,
    Group,
    SlaPolicy,
)
from daemon.rules.patterns import compile_regex
from daemon.rules.schema import Reader, child_path
from daemon.rules.values import LANGUAGES, LEVELS, MAX_DURATION_DAYS, PRIORITIES
from daemon.rules.values import address as parse_address
from daemon.rules.values import calendar as parse_calendar
from daemon.rules.values import duration as parse_duration
from daemon.rules.values import person as parse_person
from daemon.rules.values import share as parse_share

if TYPE_CHECKING:
    import regex

SUPPORTED_VERSION = 1
STRANGER_POLICIES = ("new_ticket", "quarantine")
NOTIFY_ROLES = ("assignee", "group_lead")
#: Ceiling of a `version:` number: far above any version there will be; above
#: it the number is refused as a number, not as a version.
MAX_VERSION = 1_000_000
#: Ceiling of `auto_replies.max_per_hour`: a million automatic mails to one
#: correspondent an hour is no limit at all (the load bench uses it).
MAX_AUTO_REPLIES_PER_HOUR = 1_000_000
#: Ceiling of `closure.reopen_days`: the cap of durations; a date further
#: away overflows `datetime` when a reply to a closed ticket is read.
MAX_REOPEN_DAYS = MAX_DURATION_DAYS
_CLOCK_TIME = re.compile(r"(\d{1,2}):(\d{2})")
_GROUP_NAME = re.compile(r"[\w.-]+")
_DOMAIN = re.compile(r"[a-z0-9-]+(?:\.[a-z0-9-]+)*")


@dataclass(slots=True)
class Sections:
    """Parsers of the top-level sections; each records its issues on `reader`."""

    reader: Reader

    # -- scalars and small sections -------------------------------------------

    def version(self, node: Node | None) -> int | None:
        if node is None:
            return None
        value = self.reader.integer(node, "version", maximum=MAX_VERSION)
        if value is not None and value != SUPPORTED_VERSION:
            message = f"unsupported version {value} (this spocd reads version {SUPPORTED_VERSION})"
            self.reader.error(node, "version", message)
            return None
        return value

    def languages(self, node: Node | None) -> tuple[str, dict[str, str]]:
        """`languages: {default: en|pl, by_domain: {domain: en|pl}}`; default en."""
        if node is None:
            return "en", {}
        fields = self.reader.mapping(node, "languages", optional=("default", "by_domain"))
        if fields is None:
            return "en", {}
        language = partial(self.reader.choice, allowed=LANGUAGES)
        default = self.reader.optional(fields, "default", "languages", language, "en")
        by_domain = self._by_domain(fields.get("by_domain"), "languages.by_domain")
        return default or "en", by_domain

    def _by_domain(self, node: Node | None, path: str) -> dict[str, str]:
        """Domain keys are lower-cased; a leading `.` or `*.` is dropped."""
        entries = self.reader.entries(node, path) if node is not None else []
        by_domain: dict[str, str] = {}
        for key, key_node, value in entries or []:
            key_path = child_path(path, key)
            domain = key.lower().strip().removeprefix("*").removeprefix(".")
            language = self.reader.choice(value, key_path, LANGUAGES)
            if not _DOMAIN.fullmatch(domain):
                self.reader.error(key_node, key_path, f"'{key}' is not a domain like example.pl")
            elif domain in by_domain:
                self.reader.error(key_node, key_path, f"domain '{domain}' is listed twice")
            elif language:
                by_domain[domain] = language
        return by_domain

    def priority_matrix(self, node: Node | None) -> dict[str, dict[str, str]] | None:
        """impact -> urgency -> priority; all nine cells are required."""
        if node is None:
            return None
        rows = self.reader.mapping(node, "priority_matrix", required=LEVELS)
        if rows is None:
            return None
        matrix: dict[str, dict[str, str]] = {}
        for impact, row_node in rows.items():
            path = child_path("priority_matrix", impact)
            cells = self.reader.mapping(row_node, path, required=LEVELS) or {}
            row = {
                urgency: self.reader.choice(cell, child_path(path, urgency), PRIORITIES)
                for urgency, cell in cells.items()
            }
            matrix[impact] = {urgency: p for urgency, p in row.items() if p}
        complete = len(matrix) == len(LEVELS) and all(
            len(r) == len(LEVELS) for r in matrix.values()
        )
        return matrix if complete else None

    def strangers(self, node: Node | None) -> str:
        if node is None:
            return STRANGER_POLICIES[0]
        return self.reader.choice(node, "strangers", STRANGER_POLICIES) or STRANGER_POLICIES[0]

    def auto_replies(self, node: Node | None) -> int:
        """`auto_replies: {max_per_hour: N}`: automatic answers to one sender an hour."""
        if node is None:
            return 10
        fields = self.reader.mapping(node, "auto_replies", optional=("max_per_hour",)) or {}
        count = partial(self.reader.integer, minimum=1, maximum=MAX_AUTO_REPLIES_PER_HOUR)
        return self.reader.optional(fields, "max_per_hour", "auto_replies", count, 10) or 10

    def external_ref(self, node: Node | None) -> regex.Pattern[str] | None:
        if node is None:
            return None
        pattern = compile_regex(self.reader, node, "external_ref_pattern")
        return pattern.compiled if pattern else None

    # -- groups and defaults --------------------------------------------------

    def groups(self, node: Node | None) -> dict[str, Group] | None:
        if node is None:
            return None
        entries = self.reader.entries(node, "groups")
        if entries is None:
            return None
        if not entries:
            self.reader.error(node, "groups", "define at least one group")
            return None
        groups: dict[str, Group] = {}
        ok = True
        for name, key_node, value in entries:
            path = child_path("groups", name)
            if not _GROUP_NAME.fullmatch(name):
                message = "a group name may use only letters, digits, '.', '_' and '-'"
                self.reader.error(key_node, path, message)
                ok = False
            group = self._group(name, value, path)
            if group is None:
                ok = False
            else:
                groups[name] = group
        return groups if ok else None

    def _group(self, name: str, node: Node, path: str) -> Group | None:
        """`lead` and `members` are agents: `anna@example.com` or, to sign their
        replies with a name, `Anna Nowak <anna@example.com>`."""
        fields = self.reader.mapping(node, path, required=("lead",), optional=("members",))
        if fields is None:
            return None
        lead = self.reader.optional(fields, "lead", path, partial(parse_person, self.reader))
        no_members: list[tuple[str, str | None]] = []
        members = self.reader.optional(fields, "members", path, self._people, no_members)
        if lead is None or members is None:
            return None
        names = tuple((a, n) for a, n in (lead, *members) if n)
        return Group(name=name, lead=lead[0], members=tuple(a for a, _ in members), names=names)

    def _people(self, node: Node, path: str) -> list[tuple[str, str | None]] | None:
        """A list of distinct agents (address, optional name)."""
        items = self.reader.sequence(node, path)
        if items is None:
            return None
        found: list[tuple[str, str | None]] = []
        ok = True
        for index, item in enumerate(items):
            item_path = child_path(path, index)
            value = parse_person(self.reader, item, item_path)
            if value is not None and any(value[0] == seen for seen, _ in found):
                self.reader.error(item, item_path, f"'{value[0]}' is listed twice")
                value = None
            if value is None:
                ok = False
            else:
                found.append(value)
        return found if ok else None

    def group_ref(self, node: Node, path: str, groups: Mapping[str, Group] | None) -> str | None:
        """A group name that must exist (unchecked when `groups` itself is broken)."""
        name = self.reader.string(node, path)
        if name is not None and groups is not None and name not in groups:
            known = ", ".join(groups)
            self.reader.error(node, path, f"unknown group '{name}' (groups: {known})")
            return None
        return name

    def defaults(self, node: Node | None, groups: Mapping[str, Group] | None) -> Defaults | None:
        if node is None:
            return None
        fields = self.reader.mapping(
            node, "defaults", required=("impact", "urgency", "group"), optional=("category",)
        )
        if fields is None:
            return None
        level = partial(self.reader.choice, allowed=LEVELS)
        impact = self.reader.optional(fields, "impact", "defaults", level)
        urgency = self.reader.optional(fields, "urgency", "defaults", level)
        group = self.reader.optional(
            fields, "group", "defaults", partial(self.group_ref, groups=groups)
        )
        category = self.reader.optional(fields, "category", "defaults", self.reader.string)
        if impact is None or urgency is None or group is None:
            return None
        return Defaults(impact=impact, urgency=urgency, group=group, category=category)

    # -- time: calendars, SLA, escalation, closure ----------------------------

    def calendars(self, node: Node | None) -> dict[str, Calendar] | None:
        if node is None:
            return None
        entries = self.reader.entries(node, "calendars")
        if entries is None:
            return None
        if not entries:
            self.reader.error(node, "calendars", "define at least one calendar")
            return None
        built = {
            name: parse_calendar(self.reader, name, value, child_path("calendars", name))
            for name, _key_node, value in entries
        }
        calendars = {name: cal for name, cal in built.items() if cal is not None}
        return calendars if len(calendars) == len(built) else None

    def sla(
        self, node: Node | None, calendars: Mapping[str, Calendar] | None
    ) -> dict[str, SlaPolicy] | None:
        """One policy per priority P1..P5, all required."""
        if node is None:
            return None
        fields = self.reader.mapping(node, "sla", required=PRIORITIES)
        if fields is None:
            return None
        policies = {
            priority: self._sla_policy(value, child_path("sla", priority), calendars)
            for priority, value in fields.items()
        }
        done = {priority: policy for priority, policy in policies.items() if policy is not None}
        return done if len(done) == len(PRIORITIES) else None

    def _sla_policy(
        self, node: Node, path: str, calendars: Mapping[str, Calendar] | None
    ) -> SlaPolicy | None:
        keys = ("calendar", "response", "resolution", "update_every")
        fields = self.reader.mapping(node, path, required=keys, optional=("restoration",))
        if fields is None:
            return None
        calendar = self.reader.optional(
            fields, "calendar", path, partial(self._calendar_ref, calendars=calendars)
        )
        duration = partial(parse_duration, self.reader)
        response, resolution, update_every = (
            self.reader.optional(fields, key, path, duration) for key in keys[1:]
        )
        if calendar is None or response is None or resolution is None or update_every is None:
            return None
        restoration = self.reader.optional(fields, "restoration", path, duration)
        if "restoration" in fields and restoration is None:
            return None
        return SlaPolicy(calendar, response, resolution, update_every, restoration)

    def _calendar_ref(
        self, node: Node, path: str, calendars: Mapping[str, Calendar] | None
    ) -> Calendar | None:
        name = self.reader.string(node, path)
        if name is None or calendars is None:
            return None
        if name not in calendars:
            known = ", ".join(calendars)
            self.reader.error(node, path, f"unknown calendar '{name}' (calendars: {known})")
            return None
        return calendars[name]

    def escalation(
        self, node: Node | None, groups: Mapping[str, Group] | None
    ) -> tuple[EscalationStep, ...] | None:
        """The ladder, sorted by share; two steps at the same share are an error."""
        if node is None:
            return ()
        items = self.reader.sequence(node, "escalation")
        if items is None:
            return None
        steps: dict[float, EscalationStep] = {}
        ok = True
        for index, item in enumerate(items):
            path = child_path("escalation", index)
            step = self._step(item, path, groups)
            if step is not None and step.share in steps:
                self.reader.error(item, f"{path}.at", f"a step at {step.share:.0%} already exists")
                step = None
            if step is None:
                ok = False
            else:
                steps[step.share] = step
        return tuple(steps[share] for share in sorted(steps)) if ok else None

    def _step(
        self, node: Node, path: str, groups: Mapping[str, Group] | None
    ) -> EscalationStep | None:
        optional = ("notify", "raise_level", "reassign", "raise_priority")
        fields = self.reader.mapping(node, path, required=("at",), optional=optional)
        if fields is None:
            return None
        read = partial(self.reader.optional, fields, path=path)
        at = read("at", parse=partial(parse_share, self.reader))
        nobody: list[str] = []
        notify = read(
            "notify", parse=partial(self.reader.each, parse=self._recipient), default=nobody
        )
        raise_level = read("raise_level", parse=self.reader.boolean, default=False)
        raise_priority = read("raise_priority", parse=self.reader.boolean, default=False)
        reassign = read("reassign", parse=partial(self.group_ref, groups=groups))
        if at is None or notify is None or raise_level is None or raise_priority is None:
            return None
        if "reassign" in fields and reassign is None:
            return None
        if not (notify or reassign or raise_level or raise_priority):
            self.reader.error(node, path, "the step does nothing: add notify, reassign or raise_*")
            return None
        return EscalationStep(at, tuple(notify), raise_level, reassign, raise_priority)

    def _recipient(self, node: Node, path: str) -> str | None:
        """`assignee`, `group_lead`, or a mail address."""
        text = self.reader.string(node, path)
        if text is None:
            return None
        if "@" in text:
            return parse_address(self.reader, node, path)
        if text not in NOTIFY_ROLES:
            message = f"'{text}' is neither assignee, group_lead nor a mail address"
            self.reader.error(node, path, message)
            return None
        return text

    def closure(self, node: Node | None) -> ClosurePolicy | None:
        """Every key is optional; what is left out keeps the SPEC default."""
        if node is None:
            return ClosurePolicy()
        keys = ("auto_close_after", "remind_every", "reopen_days", "yes_words", "no_words")
        fields = self.reader.mapping(node, "closure", optional=keys)
        if fields is None:
            return None
        spec = ClosurePolicy()
        read = partial(self.reader.optional, fields, path="closure")
        duration = partial(parse_duration, self.reader)
        auto_close = read("auto_close_after", parse=duration, default=spec.auto_close_after)
        remind = read("remind_every", parse=duration, default=spec.remind_every)
        days = partial(self.reader.integer, maximum=MAX_REOPEN_DAYS)
        reopen = read("reopen_days", parse=days, default=spec.reopen_days)
        yes = read("yes_words", parse=self._words, default=spec.yes_words)
        no = read("no_words", parse=self._words, default=spec.no_words)
        if auto_close is None or remind is None or reopen is None or yes is None or no is None:
            return None
        policy = ClosurePolicy(auto_close, remind, reopen, yes, no)
        both = ", ".join(sorted(set(policy.yes_words) & set(policy.no_words)))
        if both:
            self.reader.error(node, "closure", f"words in both yes_words and no_words: {both}")
            return None
        return policy

    def digest(
        self, node: Node | None, calendars: Mapping[str, Calendar] | None
    ) -> DigestPolicy | None:
        """`digest: {at: "08:00", calendar: office}`; absent means no digests
        (None, with no issue recorded)."""
        if node is None:
            return None
        fields = self.reader.mapping(node, "digest", required=("at", "calendar"))
        if fields is None or "at" not in fields or "calendar" not in fields:
            return None
        at = self._clock_time(fields["at"], "digest.at")
        calendar = self._calendar_ref(fields["calendar"], "digest.calendar", calendars)
        if at is None or calendar is None:
            return None
        return DigestPolicy(at, calendar)

    def _clock_time(self, node: Node, path: str) -> time | None:
        text = self.reader.string(node, path)
        if text is None:
            return None
        found = _CLOCK_TIME.fullmatch(text.strip())
        if found is None or int(found[1]) > 23 or int(found[2]) > 59:
            self.reader.error(node, path, f"'{text}' is not a time of day like \"08:00\"")
            return None
        return time(int(found[1]), int(found[2]))

    def _words(self, node: Node, path: str) -> tuple[str, ...] | None:
        words = self.reader.strings(node, path)
        if words is None:
            return None
        if not words:
            self.reader.error(node, path, "needs at least one word")
            return None
        return tuple(word.strip().lower() for word in words)
