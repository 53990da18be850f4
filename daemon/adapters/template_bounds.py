"""Bounds on one rendering of an admin's template: loop steps, characters,
wall time, and the operators that build huge values, so a template that
never ends or writes gigabytes stops with an error naming it, instead of
hanging the daemon (past SIGTERM) or filling its memory at every retry.

The bounds are compiled in: every `{% for %}` counts its steps and every
`~` is sized (`_Bounded`, an AST pass), `range` charges its length, and the
output is counted while it is made (`_BoundedTemplate`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Template, TemplateRuntimeError, nodes
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment, safe_range
from jinja2.visitor import NodeTransformer

#: What one rendering of one part may take. A lead's digest lists every
#: ticket of the group at risk or unassigned, a row each (after an outage on
#: a large desk, tens of thousands); `range(99999)` nested in itself is ten
#: billion steps (314 s and counting in the fuzzing report, SIGTERM unheard).
MAX_LOOP_STEPS = 1_000_000
#: Characters one part may have: a digest's HTML row is about 600, so this
#: holds 30,000 of them; unbounded, a loop of 100 KB chunks took 10 GB in 30 s.
MAX_PART_CHARS = 20_000_000
#: Wall time one part may take, whatever it spends it on.
MAX_RENDER_SECONDS = 10.0
#: Marks code compiled with the bounds below (counted loops, checked
#: operators): code from before them is never taken from the cache.
BOUNDED_CODE = "bounded-1"


class RenderLimitExceeded(TemplateRuntimeError):
    """A rendering went past a bound (`MAX_LOOP_STEPS`, `MAX_PART_CHARS`,
    `MAX_RENDER_SECONDS`); the message names the template."""


@dataclass(slots=True)
class _Budget:
    """What one rendering of one part has spent. Kept in a context variable
    for the rendering (includes, imported macros and loops share it)."""

    template: str
    steps: int = 0
    deadline: float = field(default_factory=lambda: time.monotonic() + MAX_RENDER_SECONDS)
    _clock_at: int = 1024

    def step(self, count: int = 1) -> None:
        self.steps += count
        if self.steps > MAX_LOOP_STEPS:
            raise RenderLimitExceeded(
                f"{self.template}: more than {MAX_LOOP_STEPS:,} loop steps in one rendering"
            )
        if self.steps >= self._clock_at:  # the clock read once per 1024 steps
            self._clock_at = self.steps + 1024
            self.in_time()

    def in_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise RenderLimitExceeded(
                f"{self.template}: rendering took more than {MAX_RENDER_SECONDS:g} s"
            )

    def counted(self, items: Iterable[Any]) -> Iterator[Any]:
        for item in items:
            self.step()
            yield item

    def sized(self, value: Any) -> Any:
        if isinstance(value, str | list | tuple) and len(value) > MAX_PART_CHARS:
            raise RenderLimitExceeded(
                f"{self.template}: a value of more than {MAX_PART_CHARS:,} characters or items"
            )
        return value

    def joined(self, chunks: Iterable[str]) -> str:
        """The rendered text, stopped as soon as it is too long, not after."""
        parts: list[str] = []
        size = 0
        for chunk in chunks:
            size += len(chunk)
            if size > MAX_PART_CHARS:
                raise RenderLimitExceeded(
                    f"{self.template}: more than {MAX_PART_CHARS:,} characters rendered"
                )
            parts.append(chunk)
        self.in_time()
        return "".join(parts)


_BUDGET: ContextVar[_Budget | None] = ContextVar("spocd_render_budget", default=None)


def _budget(template: str = "template") -> _Budget:
    """The rendering's budget (a fresh one outside a `_BoundedTemplate.render`,
    as for `generate`: bounded per loop then, never unbounded)."""
    return _BUDGET.get() or _Budget(template)


def _counted_loop(items: Iterable[Any]) -> Iterator[Any]:
    """Wrapped around every `{% for %}`'s iterable at compile time."""
    return _budget().counted(items)


def _sized_text(value: Any) -> Any:
    """Wrapped around every `~` concatenation: doubling a text in a loop
    reaches gigabytes in thirty-odd steps, far below any loop bound."""
    return _budget().sized(value)


def _counted_range(*args: int) -> range:
    """`range()` with what it yields charged at once: `range(n) | sum` loops
    in Python, not in a `{% for %}`."""
    numbers = safe_range(*args)
    _budget().step(len(numbers))
    return numbers


class _Bounded(NodeTransformer):
    """Every loop counted and every concatenation sized, at compile time."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = nodes.Filter(
            node.iter, "_spocd_counted", [], [], None, None, lineno=node.lineno
        )
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Filter(node, "_spocd_sized", [], [], None, None, lineno=node.lineno)


#: A width or precision in a `%` format: "%099999999d" is 100 MB of zeros.
_FORMAT_WIDTH = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _too_large(operator: str, left: Any, right: Any) -> str | None:
    """Why an operation's result would be too large, found before Python
    allocates it (`'x' * 10**13` is a MemoryError after a long swap)."""
    if operator == "*":
        for seq, times in ((left, right), (right, left)):
            repeated = isinstance(seq, str | list | tuple) and isinstance(times, int)
            if repeated and len(seq) * times > MAX_PART_CHARS:
                return f"repeating a value {times:,} times"
    elif operator == "**" and isinstance(left, int) and isinstance(right, int):
        if abs(left) > 1 and right > 0 and abs(left).bit_length() * right > 1_000_000:
            return f"{left} ** {right}"
    elif operator == "%" and isinstance(left, str):
        for width, precision in _FORMAT_WIDTH.findall(left):
            for number in (width, precision):
                if number == "*" or (number and int(number) > MAX_PART_CHARS):
                    return f"the width in format {left[:40]!r}"
    return None


class _BoundedTemplate(Template):
    """A template whose `render` runs under a fresh budget and stops the
    output at `MAX_PART_CHARS` while it is being made."""

    def render(self, *args: Any, **kwargs: Any) -> str:
        token = _BUDGET.set(_Budget(_shown_name(self.filename, self.name)))
        try:
            ctx = self.new_context(dict(*args, **kwargs))
            budget = _BUDGET.get()
            assert budget is not None
            return budget.joined(self.root_render_func(ctx))
        except Exception:
            self.environment.handle_exception()
        finally:
            _BUDGET.reset(token)


@lru_cache(maxsize=1024)
def _shown_name(filename: str | None, name: str | None) -> str:
    """The language folder and the name ("pl/ack.txt"), as an admin finds
    it; memoised, or the three parts of every mail would build a Path each."""
    if filename and name:
        return f"{Path(filename).parent.name}/{name}"
    return name or "template"


class BoundedSandbox(SandboxedEnvironment):
    """The sandbox with every rendering bounded (see the module)."""

    template_class = _BoundedTemplate
    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals["range"] = _counted_range
        self.filters["_spocd_counted"] = _counted_loop
        self.filters["_spocd_sized"] = _sized_text

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        """The template with its loops counted and concatenations sized."""
        tree = super()._parse(source, name, filename)
        _Bounded().visit(tree)
        return tree

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        budget = _budget(context.name or "template")
        why = _too_large(operator, left, right)
        if why:
            raise RenderLimitExceeded(f"{budget.template}: {why} is too large")
        return budget.sized(super().call_binop(context, operator, left, right))
