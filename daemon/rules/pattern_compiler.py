"""How a rule's pattern is compiled: by the `regex` package, unless a command's
start put here a way that often spares loading it (`daemon.cli.regex_code`
rebuilds the patterns an earlier process compiled from the package's compiled
half alone; loading the package, its compiler in Python and its Unicode
tables, is 4 % of a one-message ingest). A module of its own, importing
nothing, so that a command can set it before the rules and YAML load.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import regex


def compile_here(source: str) -> regex.Pattern[str]:
    """`regex.compile`, the package loaded at the first pattern."""
    import regex

    return regex.compile(source)


#: What `patterns.compile_regex` compiles with.
compile_pattern: Callable[[str], regex.Pattern[str]] = compile_here


def refused(exc: Exception) -> bool:
    """Whether `exc` is the compiler's word on a bad pattern. (The package is
    loaded by then: a pattern kept by an earlier process compiled without
    error, so only the package's compiler raises.)"""
    import regex

    return isinstance(exc, regex.error | ValueError | OverflowError)
