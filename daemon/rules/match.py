"""Rule conditions: compiled once from rules.yaml, evaluated with a trace.

Each `when` becomes a tree of small condition objects (no `eval`, no code in
YAML). Regular expressions use the `regex` module, compiled at load; every
search runs with a timeout and on capped text, and one evaluation of all rules
shares a time budget, so a catastrophic pattern costs a bounded moment and
shows up in the trace as `timeout` instead of stalling the pipeline.

Results use three-valued logic: a timed-out search is neither a match nor a
miss, so `not` over a timeout stays a timeout and a rule whose condition ends
as a timeout does not match. A timeout therefore never makes a rule fire.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import regex
from yaml.nodes import Node, SequenceNode

from daemon.core.domain import ParsedMessage
from daemon.rules.schema import Reader, child_path
from daemon.rules.values import CHANNELS

#: Longest a single regex search may run, in seconds.
REGEX_TIMEOUT = 0.1
#: Regex time all rules together may spend on one message, in seconds.
MATCH_BUDGET = 1.0
#: More regex time `ignore` rules may use once that is spent, in seconds.
IGNORE_RESERVE = 0.25
#: A regex sees at most this many characters of a subject, body or header.
MAX_TEXT = 64 * 1024
#: Deepest nesting of all/any/not accepted in a `when`.
MAX_DEPTH = 16
#: Longest pattern accepted, in characters.
MAX_PATTERN = 4096
#: Largest compiled size accepted, estimated as the atoms a pattern expands
#: to: counted repeats are copied when compiled, so nested ones multiply
#: (`(((a{1000}){1000}){1000}){1000}` would be 10^12 copies: memory, not time).
MAX_EXPANSION = 100_000

_HEADER_NAME = regex.compile(r"[!-9;-~]+")  # RFC 5322 field name: printable ASCII, no colon
TEXT_FIELDS = ("subject", "body", "from", "from_domain", "to")
CONDITION_KEYS = (*TEXT_FIELDS, "header", "channel", "has_attachment", "all", "any", "not")


class Result(enum.StrEnum):
    MATCHED = "matched"
    NOT_MATCHED = "not matched"
    TIMEOUT = "timeout"


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
class Budget:
    """Regex time left for one message; shared by every search in decide()."""

    deadline: float

    @classmethod
    def start(cls, seconds: float = MATCH_BUDGET) -> Budget:
        return cls(time.monotonic() + seconds)

    def next_timeout(self) -> float:
        return min(REGEX_TIMEOUT, self.deadline - time.monotonic())


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
class SafePattern:
    """A regex compiled at load and searched with a timeout."""

    source: str
    compiled: regex.Pattern[str]

    def search(self, text: str, budget: Budget) -> tuple[Result, str | None]:
        timeout = budget.next_timeout()
        if timeout <= 0:
            return Result.TIMEOUT, "not tried: this message's regex time budget is spent"
        try:
            found = self.compiled.search(text[:MAX_TEXT], timeout=timeout, concurrent=True)
        except TimeoutError:
            return Result.TIMEOUT, f"search stopped after {timeout:.2f} s"
        if found is None:
            return Result.NOT_MATCHED, None
        return Result.MATCHED, _snippet(" ".join(found.group(0).split()))


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


def _snippet(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- compiling `when` from YAML nodes -----------------------------------------


def regex_refusal(source: str) -> str | None:
    """Why a pattern must not be compiled (its compiled size could exhaust
    memory), or None. Checked before `regex.compile`, which cannot be stopped."""
    if len(source) > MAX_PATTERN:
        return f"pattern is {len(source)} characters long (limit {MAX_PATTERN})"
    size = expansion(source)
    if size > MAX_EXPANSION:
        return (
            f"counted repeats expand it to about {size:,} atoms when compiled "
            f"(limit {MAX_EXPANSION:,}); use + or * instead of large nested {{n}}"
        )
    return None


_COUNT = regex.compile(r"\{(\d*)(,(\d*))?\}")
_VERBOSE = regex.compile(r"\(\?[a-zA-Z^-]*x")


def expansion(source: str) -> int:
    """How many atoms `source` compiles to, counted repeats multiplied out.

    A one-pass scan that errs upwards: blanks never separate a quantifier
    from its atom, a character set ends at its first `]`, and a quantifier
    on a quantifier multiplies again; an estimate too high only refuses a
    strange pattern, one too low would let memory be exhausted."""
    verbose = _VERBOSE.search(source) is not None
    stack: list[list[int]] = [[0, 0]]  # per open group: [atoms so far, atoms of the last item]
    i, end = 0, len(source)
    while i < end:
        ch, frame = source[i], stack[-1]
        atom = 1
        if ch == "\\":
            i += 2
            if source[i - 1 : i] in ("p", "P", "N", "x") and source[i : i + 1] == "{":
                close = source.find("}", i)
                i = end if close < 0 else close + 1
        elif ch == "[":
            i += 1
            i += source[i : i + 1] == "^"
            i += source[i : i + 1] == "]"
            while i < end and source[i] != "]":
                i += 2 if source[i] == "\\" else 1
            i += 1
        elif ch == "(" and source.startswith("(?#", i):
            close = source.find(")", i)
            i = end if close < 0 else close + 1
            continue
        elif ch == "(":
            stack.append([0, 0])
            i += 1
            continue
        elif ch == ")":
            i += 1
            if len(stack) == 1:
                continue
            atom = max(stack.pop()[0], 1)
            frame = stack[-1]
        elif ch == "{" and (count := _COUNT.match(source, i)) and (count[1] or count[3]):
            low, high = int(count[1] or 0), count[3]
            times = int(high) if high else low + 1 if count[2] else low
            frame[0] += frame[1] * (max(times, 1) - 1)
            frame[1] *= max(times, 1)
            i = count.end()
            continue
        elif ch in "*+?|" or ch.isspace():
            i += 1
            if ch == "|":
                frame[1] = 0
            continue
        elif ch == "#" and verbose:
            newline = source.find("\n", i)
            i = end if newline < 0 else newline + 1
            continue
        else:
            i += 1
        frame[0] += atom
        frame[1] = atom
    while len(stack) > 1:
        inner = stack.pop()[0]
        stack[-1][0] += inner
    return stack[0][0]


def compile_regex(reader: Reader, node: Node, path: str) -> SafePattern | None:
    """Compile a pattern once; a syntax error is a `bad regex` issue, and a
    pattern whose compiled size could exhaust memory is refused unseen by
    the compiler."""
    source = reader.string(node, path)
    if source is None:
        return None
    refusal = regex_refusal(source)
    if refusal is not None:
        reader.error(node, path, f"regex refused: {refusal}")
        return None
    try:
        compiled = regex.compile(source)
    except (regex.error, ValueError, OverflowError) as exc:
        reader.error(node, path, f"bad regex: {exc}")
        return None
    return SafePattern(source, compiled)


def compile_when(reader: Reader, node: Node, path: str, depth: int = 0) -> Condition | None:
    """A condition mapping; several keys mean all of them must match."""
    if depth > MAX_DEPTH:
        reader.error(node, path, f"conditions nested deeper than {MAX_DEPTH} levels")
        return None
    entries = reader.entries(node, path)
    if entries is None:
        return None
    if not entries:
        reader.error(node, path, "empty condition (leave out `when` to match every message)")
        return None
    parts: list[Condition | None] = []
    for key, key_node, value in entries:
        key_path = child_path(path, key)
        if key not in CONDITION_KEYS:
            expected = ", ".join(CONDITION_KEYS)
            reader.error(key_node, key_path, f"unknown condition '{key}' (expected {expected})")
            parts.append(None)
        else:
            parts.append(_compile_key(reader, key, value, key_path, depth))
    done = [part for part in parts if part is not None]
    if len(done) != len(parts):
        return None
    return done[0] if len(done) == 1 else AllOf(path, tuple(done))


def _compile_key(reader: Reader, key: str, node: Node, path: str, depth: int) -> Condition | None:
    if key in TEXT_FIELDS:
        pattern = compile_regex(reader, node, path)
        return PatternCondition(path, key, pattern) if pattern else None
    if key == "header":
        return _compile_headers(reader, node, path)
    if key == "channel":
        return _compile_channel(reader, node, path)
    if key == "has_attachment":
        expected = reader.boolean(node, path)
        return AttachmentCondition(path, expected) if expected is not None else None
    if key == "not":
        part = compile_when(reader, node, path, depth + 1)
        return Not(path, part) if part else None
    return _compile_list(reader, key, node, path, depth)


def _compile_list(reader: Reader, key: str, node: Node, path: str, depth: int) -> Condition | None:
    """`all: [...]` / `any: [...]` of condition mappings."""
    parts = reader.each(
        node, path, lambda item, item_path: compile_when(reader, item, item_path, depth + 1)
    )
    if parts is None:
        return None
    if not parts:
        reader.error(node, path, f"`{key}` needs at least one condition")
        return None
    return (AllOf if key == "all" else AnyOf)(path, tuple(parts))


def _compile_headers(reader: Reader, node: Node, path: str) -> Condition | None:
    """`header: {Name: regex, ...}`; several headers must all match."""
    entries = reader.entries(node, path)
    if entries is None:
        return None
    if not entries:
        reader.error(node, path, "name at least one header")
        return None
    parts: list[Condition | None] = []
    for name, key_node, value in entries:
        name_path = child_path(path, name)
        if not _HEADER_NAME.fullmatch(name):
            reader.error(key_node, name_path, f"'{name}' is not a header name")
            parts.append(None)
            continue
        pattern = compile_regex(reader, value, name_path)
        parts.append(PatternCondition(name_path, f"header:{name}", pattern) if pattern else None)
    done = [part for part in parts if part is not None]
    if len(done) != len(parts):
        return None
    return done[0] if len(done) == 1 else AllOf(path, tuple(done))


def _compile_channel(reader: Reader, node: Node, path: str) -> Condition | None:
    """`channel: escalation` or `channel: [email, cli]`: exact names, checked at load."""
    if isinstance(node, SequenceNode):
        names = reader.each(node, path, lambda item, p: reader.choice(item, p, CHANNELS))
    else:
        name = reader.choice(node, path, CHANNELS)
        names = [name] if name else None
    if names is None:
        return None
    if not names:
        reader.error(node, path, "name at least one channel")
        return None
    return ChannelCondition(path, tuple(names))


def evaluate_rule(
    name: str, condition: Condition, view: MessageView, budget: Budget
) -> tuple[Result, tuple[TraceEntry, ...]]:
    """Evaluate one rule's whole condition tree and return its verdict and trace."""
    ev = Evaluation(name, view, budget)
    result = condition.evaluate(ev)
    return result, tuple(ev.trace)
