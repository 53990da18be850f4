"""Regular expressions of rules.yaml, compiled once and searched within time.

Patterns use the `regex` module, are vetted for size (`pattern_size`) and
compiled at load; every search runs with a timeout and on capped text, and
one evaluation of all rules shares a time budget, so a catastrophic pattern
costs a bounded moment and shows up in the trace as `timeout` instead of
stalling the pipeline.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from yaml.nodes import Node

from daemon.rules import pattern_compiler
from daemon.rules.pattern_size import regex_refusal
from daemon.rules.schema import Reader

if TYPE_CHECKING:
    import regex

#: Longest a single regex search may run, in seconds.
REGEX_TIMEOUT = 0.1
#: Regex time all rules together may spend on one message, in seconds.
MATCH_BUDGET = 1.0
#: More regex time `ignore` rules may use once that is spent, in seconds.
IGNORE_RESERVE = 0.25
#: A regex sees at most this many characters of a subject, body or header.
MAX_TEXT = 64 * 1024


class Result(enum.StrEnum):
    MATCHED = "matched"
    NOT_MATCHED = "not matched"
    TIMEOUT = "timeout"


@dataclass(slots=True)
class Allowance:
    """Seconds of regex time not yet spent."""

    left: float


@dataclass(frozen=True, slots=True)
class Budget:
    """Regex time one message's searches may still spend, drawn in order.

    Counted as time spent searching, not as a deadline: a search that stops
    late (a loaded machine ends a timed-out search after its timeout) is
    charged what it took, and time between searches is not charged at all,
    so a reserve behind the shared allowance is still there when needed.
    """

    allowances: tuple[Allowance, ...]
    monotonic: Callable[[], float] = time.monotonic

    @classmethod
    def start(
        cls, seconds: float = MATCH_BUDGET, monotonic: Callable[[], float] = time.monotonic
    ) -> Budget:
        return cls((Allowance(seconds),), monotonic)

    def with_reserve(self, seconds: float) -> Budget:
        """The same allowances, then `seconds` more for these searches alone."""
        return Budget((*self.allowances, Allowance(seconds)), self.monotonic)

    def account(self) -> Allowance | None:
        """The allowance the next search is charged to; None once all is spent."""
        return next((a for a in self.allowances if a.left > 0), None)


@dataclass(frozen=True, slots=True)
class SafePattern:
    """A regex compiled at load and searched with a timeout."""

    source: str
    compiled: regex.Pattern[str]

    def search(self, text: str, budget: Budget) -> tuple[Result, str | None]:
        account = budget.account()
        if account is None:
            return Result.TIMEOUT, "not tried: this message's regex time budget is spent"
        timeout = min(REGEX_TIMEOUT, account.left)
        started = budget.monotonic()
        try:
            found = self.compiled.search(text[:MAX_TEXT], timeout=timeout, concurrent=True)
        except TimeoutError:
            return Result.TIMEOUT, f"search stopped after {timeout:.2f} s"
        finally:
            account.left -= budget.monotonic() - started
        if found is None:
            return Result.NOT_MATCHED, None
        return Result.MATCHED, _snippet(" ".join(found.group(0).split()))


def _snippet(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def compile_regex(reader: Reader, node: Node, path: str) -> SafePattern | None:
    """Compile a pattern once; a syntax error is a `bad regex` issue, and a
    pattern whose compiled size could exhaust memory, or whose nesting could
    exhaust the compiler's recursion, is refused unseen by the compiler.

    RecursionError is still caught, as a last guard should a pattern nest
    deeper than the scan of its text saw: a problem, never a traceback."""
    source = reader.string(node, path)
    if source is None:
        return None
    refusal = regex_refusal(source)
    if refusal is not None:
        reader.error(node, path, f"regex refused: {refusal}")
        return None
    try:
        compiled = pattern_compiler.compile_pattern(source)
    except RecursionError:
        reader.error(node, path, "regex refused: nested too deep for the regex compiler")
        return None
    except Exception as exc:
        if not pattern_compiler.refused(exc):
            raise
        reader.error(node, path, f"bad regex: {exc}")
        return None
    return SafePattern(source, compiled)
