"""Rule conditions: the compiled `when` of a rule, evaluated with a trace.

Each `when` is a tree of small condition objects (no `eval`, no code in
YAML; `when` builds them from rules.yaml). Evaluation records every
condition it tries, so the trace answers "which parts matched".

Results use three-valued logic: a timed-out search is neither a match nor a
miss, so `not` over a timeout stays a timeout and a rule whose condition ends
as a timeout does not match. A timeout therefore never makes a rule fire.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from daemon.core.domain import ParsedMessage
from daemon.rules.patterns import MAX_TEXT, Budget, Result, SafePattern


@dataclass(frozen=True, slots=True)
class TraceEntry:
    """How one condition of one rule came out for one message."""

    rule: str
    path: str  # where the condition is in the rule: "when.any[0].subject"
    condition: str  # what it tests, from describe()
    result: Result
    detail: str | None = None  # the matched text, or why there was nothing to match
    depth: int = 0  # 0 for the rule itself, 1 for its `when`, 2 below an all/any/not ...

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "path": self.path,
            "depth": self.depth,
            "condition": self.condition,
            "result": str(self.result),
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class MessageView:
    """The parts of a message conditions look at, capped to `MAX_TEXT`."""

    subject: str
    body: str
    sender: str | None
    sender_domain: str | None
    recipients: tuple[str, ...]
    channel: str
    has_attachment: bool
    message: ParsedMessage
    contract: str | None = None  # the contract decided so far (rules may set it)

    @classmethod
    def of(cls, msg: ParsedMessage, channel: str) -> MessageView:
        sender = msg.sender.addr.lower() if msg.sender else None
        return cls(
            subject=msg.subject[:MAX_TEXT],
            body=msg.text[:MAX_TEXT],
            sender=sender,
            sender_domain=sender.rpartition("@")[2] if sender else None,
            recipients=tuple(a.addr.lower() for a in (*msg.to, *msg.cc)),
            channel=channel,
            has_attachment=bool(msg.attachments),
            message=msg,
        )

    def values(self, source: str) -> tuple[str, ...]:
        """The texts a pattern on `source` is tried against (any may match)."""
        match source.partition(":"):
            case ("header", ":", name):
                return tuple(value[:MAX_TEXT] for value in self.message.header_all(name))
            case ("to", _, _):
                return self.recipients
            case ("subject", _, _):
                return (self.subject,)
            case ("body", _, _):
                return (self.body,)
            case ("from", _, _):
                return (self.sender,) if self.sender else ()
            case ("from_domain", _, _):
                return (self.sender_domain,) if self.sender_domain else ()
        raise ValueError(f"unknown message part {source!r}")


@dataclass(slots=True)
class Evaluation:
    """One rule being evaluated: the message, the budget and the trace so far."""

    rule: str
    view: MessageView
    budget: Budget
    trace: list[TraceEntry] = field(default_factory=list)
    depth: int = 1

    def record(self, cond: Condition, result: Result, detail: str | None = None) -> None:
        entry = TraceEntry(self.rule, cond.path, cond.describe(), result, detail, self.depth)
        self.trace.append(entry)


class Condition(Protocol):
    """A compiled condition: where it is in the file, what it tests, and its test."""

    @property
    def path(self) -> str: ...

    def describe(self) -> str: ...

    def evaluate(self, ev: Evaluation) -> Result: ...


@dataclass(frozen=True, slots=True)
class PatternCondition:
    """`subject`, `body`, `from`, `from_domain`, `to` or one `header` against a regex."""

    path: str
    source: str  # a TEXT_FIELDS name or "header:Name"
    pattern: SafePattern

    def describe(self) -> str:
        label = self.source.replace("header:", "header ")
        return f"{label} ~ /{self.pattern.source}/"

    def evaluate(self, ev: Evaluation) -> Result:
        values = ev.view.values(self.source)
        if not values:
            ev.record(self, Result.NOT_MATCHED, f"message has no {self.source.split(':')[-1]}")
            return Result.NOT_MATCHED
        outcome, detail = Result.NOT_MATCHED, None
        for value in values:
            result, found = self.pattern.search(value, ev.budget)
            if result is Result.MATCHED:
                outcome, detail = result, found
                break
            if result is Result.TIMEOUT:
                outcome, detail = result, found
        ev.record(self, outcome, detail)
        return outcome


@dataclass(frozen=True, slots=True)
class ChannelCondition:
    """The message came in on one of these channels (exact names)."""

    path: str
    channels: tuple[str, ...]

    def describe(self) -> str:
        return f"channel in [{', '.join(self.channels)}]"

    def evaluate(self, ev: Evaluation) -> Result:
        result = Result.MATCHED if ev.view.channel in self.channels else Result.NOT_MATCHED
        ev.record(self, result, f"channel is {ev.view.channel}")
        return result


@dataclass(frozen=True, slots=True)
class ContractCondition:
    """`contract: ID`, `contract: none` or a list: the contract decided so far
    (the requester's, or the one an earlier `continue: true` rule set)."""

    path: str
    ids: tuple[str, ...]  # "none" stands for no contract

    def describe(self) -> str:
        return f"contract in [{', '.join(self.ids)}]"

    def evaluate(self, ev: Evaluation) -> Result:
        current = ev.view.contract or "none"
        result = Result.MATCHED if current in self.ids else Result.NOT_MATCHED
        ev.record(self, result, f"contract is {current}")
        return result


@dataclass(frozen=True, slots=True)
class AttachmentCondition:
    path: str
    expected: bool

    def describe(self) -> str:
        return f"has_attachment is {str(self.expected).lower()}"

    def evaluate(self, ev: Evaluation) -> Result:
        result = Result.MATCHED if ev.view.has_attachment == self.expected else Result.NOT_MATCHED
        ev.record(self, result)
        return result


@dataclass(frozen=True, slots=True)
class Always:
    """The condition of a rule without `when`: a catch-all."""

    path: str = "when"

    def describe(self) -> str:
        return "always (no when)"

    def evaluate(self, ev: Evaluation) -> Result:
        ev.record(self, Result.MATCHED)
        return Result.MATCHED


@dataclass(frozen=True, slots=True)
class AllOf:
    """`all: [...]`, or a mapping with several keys: every part must match."""

    path: str
    parts: tuple[Condition, ...]

    def describe(self) -> str:
        return f"all of {len(self.parts)}"

    def evaluate(self, ev: Evaluation) -> Result:
        return _combine(self, ev, _all)


@dataclass(frozen=True, slots=True)
class AnyOf:
    """`any: [...]`: at least one part must match."""

    path: str
    parts: tuple[Condition, ...]

    def describe(self) -> str:
        return f"any of {len(self.parts)}"

    def evaluate(self, ev: Evaluation) -> Result:
        return _combine(self, ev, _any)


@dataclass(frozen=True, slots=True)
class Not:
    path: str
    part: Condition

    def describe(self) -> str:
        return "not"

    def evaluate(self, ev: Evaluation) -> Result:
        flipped = {Result.MATCHED: Result.NOT_MATCHED, Result.NOT_MATCHED: Result.MATCHED}
        return _combine(self, ev, lambda results: flipped.get(results[0], Result.TIMEOUT))


def _combine(
    cond: AllOf | AnyOf | Not, ev: Evaluation, verdict: Callable[[list[Result]], Result]
) -> Result:
    """Evaluate every part (a complete trace), then record the verdict before them."""
    slot = len(ev.trace)
    ev.record(cond, Result.NOT_MATCHED)  # placeholder, replaced below
    parts = cond.parts if isinstance(cond, AllOf | AnyOf) else (cond.part,)
    ev.depth += 1
    result: Result = verdict([part.evaluate(ev) for part in parts])
    ev.depth -= 1
    ev.trace[slot] = replace(ev.trace[slot], result=result)
    return result


def _all(results: list[Result]) -> Result:
    if Result.NOT_MATCHED in results:
        return Result.NOT_MATCHED
    return Result.TIMEOUT if Result.TIMEOUT in results else Result.MATCHED


def _any(results: list[Result]) -> Result:
    if Result.MATCHED in results:
        return Result.MATCHED
    return Result.TIMEOUT if Result.TIMEOUT in results else Result.NOT_MATCHED


def evaluate_rule(
    name: str, condition: Condition, view: MessageView, budget: Budget
) -> tuple[Result, tuple[TraceEntry, ...]]:
    """Evaluate one rule's whole condition tree and return its verdict and trace."""
    ev = Evaluation(name, view, budget)
    result = condition.evaluate(ev)
    return result, tuple(ev.trace)
