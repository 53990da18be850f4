"""The compiled parts of rules.yaml as immutable values.

`rules_sections` builds them from YAML nodes; `rules` puts them together into
`Rules` and re-exports them, so callers import everything from `daemon.rules.ruleset`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time

from daemon.core.businesstime import Calendar, Duration
from daemon.rules.match import Condition, MessageView, TraceEntry, evaluate_rule
from daemon.rules.patterns import Budget, Result

ACTION_KEYS = (
    "category",
    "group",
    "assignee",
    "impact",
    "urgency",
    "priority",
    "language",
    "tags",
    "ignore",
    "contract",
)
_THREE_DAYS = Duration(days=3)
_ONE_DAY = Duration(days=1)


@dataclass(frozen=True, slots=True)
class Group:
    """An agent group: the lead gets escalations; lead and members are agents."""

    name: str
    lead: str
    members: tuple[str, ...] = ()
    #: (address, display name) of the agents written as "Anna Nowak <anna@...>".
    names: tuple[tuple[str, str], ...] = ()

    def __contains__(self, address: object) -> bool:
        return isinstance(address, str) and address.lower() in {self.lead, *self.members}


@dataclass(frozen=True, slots=True)
class Defaults:
    impact: str
    urgency: str
    group: str
    category: str | None = None


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    """Targets of one priority, counted in business time of `calendar`."""

    calendar: Calendar
    response: Duration
    resolution: Duration
    update_every: Duration
    #: Service restored (a workaround) by; None: restoration counts against `resolution`.
    restoration: Duration | None = None

    @property
    def restoration_target(self) -> Duration:
        return self.restoration if self.restoration is not None else self.resolution


@dataclass(frozen=True, slots=True)
class EscalationStep:
    """What happens when a ticket has used `share` (0.75 = 75%) of its target."""

    share: float
    notify: tuple[str, ...] = ()  # "assignee", "group_lead" or addresses
    raise_level: bool = False
    reassign: str | None = None
    raise_priority: bool = False


@dataclass(frozen=True, slots=True)
class ClosurePolicy:
    """Closure verification; yes/no words are stored lower-cased."""

    auto_close_after: Duration = _THREE_DAYS
    remind_every: Duration = _ONE_DAY
    reopen_days: int = 14
    yes_words: tuple[str, ...] = ("yes", "ok", "confirmed", "tak", "potwierdzam")
    no_words: tuple[str, ...] = ("no", "not fixed", "nie")


@dataclass(frozen=True, slots=True)
class DigestPolicy:
    """Morning digests: at `at` (local time of the calendar's zone) on each
    working day of `calendar`."""

    at: time
    calendar: Calendar


@dataclass(frozen=True, slots=True)
class Actions:
    """The `set` of a rule; None means "leave this field as it is"."""

    category: str | None = None
    group: str | None = None
    assignee: str | None = None
    impact: str | None = None
    urgency: str | None = None
    priority: str | None = None
    language: str | None = None
    tags: tuple[str, ...] = ()
    ignore: bool | None = None
    contract: str | None = None  # a contract id, or "none" for no contract


@dataclass(frozen=True, slots=True)
class Rule:
    """One named rule: a compiled condition tree and what to set when it matches."""

    name: str
    condition: Condition
    actions: Actions
    continues: bool = False  # `continue: true`: keep evaluating after a match
    path: str = ""  # where it is in the file, "rules[3]"

    def evaluate(self, view: MessageView, budget: Budget) -> tuple[Result, tuple[TraceEntry, ...]]:
        result, trace = evaluate_rule(self.name, self.condition, view, budget)
        if result is not Result.MATCHED:
            note = None
        elif self.continues:
            note = "continue: true, evaluation goes on"
        else:
            note = "first match wins: evaluation stops here"
        header = TraceEntry(self.name, self.path, f"rule {self.name!r}", result, note, depth=0)
        return result, (header, *trace)
