"""The regular expressions modules compile as they load, compiled once and kept.

A batch ingest's process compiles 184 patterns while its modules load (the
email package's, mail-parser's, Jinja's, SQLAlchemy's and spocd's own):
34 ms, paid by every command before any work. `re` keeps what it compiles
only for the process (`re._cache`).

Here `re`'s compiler (`re._compiler.compile`, which `re` looks up at each
compile) is given, for a pattern compiled while a module loads, the program
an earlier process compiled for it (`kept_code`). The program is what the
compiler makes of the pattern and its flags, and `_sre.compile`, the call
that ends every compile, builds the pattern object from it, checking it as
it does for the compiler's own. A program is kept only when the object
built from it equals the one `re` compiled (same flags, same code, same
groups), so a Python whose compiler differs keeps nothing. Patterns
compiled later (from a message's MIME boundary, from a setting) differ
from process to process: they compile as before and are not kept, nor are
a few patterns a process compiled alone (`MIN_NEW`).
"""

from __future__ import annotations

import _sre  # type: ignore[import-not-found]
import contextlib
import marshal
import re
import sys
from re import _compiler, _parser  # type: ignore[attr-defined]
from typing import Any

from daemon.cli.kept_code import KeptCode

#: Some modules build patterns from sets, whose order differs in every process
#: (the email package's header parser makes eight such). A process with only
#: a few patterns not kept leaves the file as it is: rewritten by every
#: command for them, it would grow to its bounds.
MIN_NEW = 16

_store = KeptCode(f"regex-sre{_sre.MAGIC}", min_new=MIN_NEW)
_compile_here = _compiler.compile

#: A program as kept: final flags, code, groups, group names to numbers and back.
Program = tuple[int, list[int], int, dict[str, int], tuple[str | None, ...]]


def install() -> None:
    """Hand kept programs to `re` (once a process); the file is read at the
    first pattern compiled while a module loads."""
    if _compiler.compile is _compile:
        return
    if _store.open():
        _compiler.compile = _compile


def _compile(p: Any, flags: int = 0) -> Any:
    """`re._compiler.compile`, with the programs of patterns compiled while a
    module loads kept between processes."""
    if type(p) not in (str, bytes) or flags & re.DEBUG or not _loading():
        return _compile_here(p, flags)
    flags = int(flags)
    key = f"{'s' if type(p) is str else 'b'}{flags}:{p if type(p) is str else p.hex()}"
    kept = _store.get(key)
    if kept is not None:
        with contextlib.suppress(ValueError, EOFError, TypeError, RuntimeError, OverflowError):
            program = marshal.loads(kept)
            if _well_formed(program):
                return _sre.compile(p, *program)  # RuntimeError on code it would not run
    made = _compile_here(p, flags)  # its errors are re's own
    # Keeping is only a saving: whatever goes wrong in it, the pattern is re's.
    with contextlib.suppress(Exception):
        _keep(key, p, flags, made)
    return made


def _keep(key: str, pattern: str | bytes, flags: int, made: Any) -> None:
    program = _program(pattern, flags)
    rebuilt = _sre.compile(pattern, *program)
    if rebuilt == made and (rebuilt.groups, rebuilt.groupindex) == (made.groups, made.groupindex):
        _store.add(key, marshal.dumps(program))


def _program(pattern: str | bytes, flags: int) -> Program:
    """What `re._compiler.compile` hands `_sre.compile` for a pattern."""
    parsed = _parser.parse(pattern, flags)
    code = [int(word) for word in _compiler._code(parsed, flags)]  # opcodes are int subclasses
    groupindex = dict(parsed.state.groupdict)
    indexgroup: list[str | None] = [None] * parsed.state.groups
    for name, number in groupindex.items():
        indexgroup[number] = name
    groups = parsed.state.groups - 1
    return (flags | parsed.state.flags, code, groups, groupindex, tuple(indexgroup))


def _well_formed(program: Any) -> bool:
    return (
        type(program) is tuple
        and len(program) == 5
        and [type(part) for part in program] == [int, list, int, dict, tuple]
    )


def _loading() -> bool:
    """Whether a module is loading: the import system's frames are below."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename == "<frozen importlib._bootstrap>":
            return True
        frame = frame.f_back
    return False
