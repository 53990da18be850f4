"""Regular expressions every process compiles alike, compiled once and kept.

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
groups), so a Python whose compiler differs keeps nothing; it is made and
checked at exit, by a process that writes the file, so no other process
compiles a pattern twice. Patterns
compiled later (from a message's MIME boundary, from a setting) differ
from process to process: they compile as before and are not kept, nor are
a few patterns a process compiled alone (`MIN_NEW`).

The rules' patterns are the `regex` package's, compiled by its own compiler
(written in Python, 0.4 ms a pattern: the starter rules' 37 took 15 ms of
every command). A `regex` pattern pickles as the arguments of the
`_regex.compile` call that built it; those are kept, per pattern, and the
pattern rebuilt from them as unpickling rebuilds it. That needs only the
package's compiled half, `regex._regex`, which is loaded alone: the package
itself (its compiler and Unicode tables, 55 million instructions, 4 % of a
one-message ingest) loads only when a pattern is not kept, or when a
search needs it (a replacement template).
"""

from __future__ import annotations

import _sre  # type: ignore[import-not-found]
import contextlib
import importlib.util
import marshal
import os
import re
import sys
import zlib
from importlib.machinery import ModuleSpec, PathFinder
from re import _compiler, _parser  # type: ignore[attr-defined]
from typing import Any

from daemon.cli.kept_code import KeptCode
from daemon.rules import pattern_compiler

#: Some modules build patterns from sets, whose order differs in every process
#: (the email package's header parser makes eight such). A process with only
#: a few patterns not kept leaves the file as it is: rewritten by every
#: command for them, it would grow to its bounds.
MIN_NEW = 16

#: The file names carry the exact interpreter and package versions: `_sre`'s
#: code is checked as it is read, but not its meaning, and a patch release
#: keeps the bytecode's magic number.
_PYTHON = "py" + ".".join(map(str, sys.version_info[:3]))
_compile_here = _compiler.compile
#: Patterns compiled here while a module loaded and not found kept, with
#: what `re` made of them: their programs are made and checked at exit, and
#: only when enough are new for the file to be written (`_collect`).
_new: dict[str, tuple[str | bytes, int, Any]] = {}


def _regex_parts() -> tuple[ModuleSpec | None, str]:
    """Where the `regex` package's compiled half is, found without loading
    the package, and a stamp of the installed package: the size and time of
    that half and of its compiler, which made what is kept."""
    with contextlib.suppress(Exception):
        package = importlib.util.find_spec("regex")
        where = package.submodule_search_locations if package else None
        extension = PathFinder.find_spec("regex._regex", where) if where else None
        if extension is not None and extension.origin and extension.loader:
            stamp = 0
            for path in (extension.origin, os.path.join(next(iter(where)), "_regex_core.py")):
                found = os.stat(path)
                stamp = zlib.crc32(f"{found.st_size}:{found.st_mtime_ns}".encode(), stamp)
            return extension, f"{stamp:08x}"
    return None, "unknown"


_extension, _stamp = _regex_parts()
_rules_store = KeptCode(f"regex-{_stamp}-{_PYTHON}")

#: A program as kept: final flags, code, groups, group names to numbers and back.
Program = tuple[int, list[int], int, dict[str, int], tuple[str | None, ...]]


def _collect() -> None:
    """The programs of this process's new patterns, each kept only if the
    object built from it equals `re`'s own. Keeping is only a saving:
    whatever goes wrong in it, nothing is kept."""
    if len(_new) < MIN_NEW:
        return  # the file would not be written: no compiling twice
    for key, (pattern, flags, made) in _new.items():
        with contextlib.suppress(Exception):
            program = _program(pattern, flags)
            rebuilt = _sre.compile(pattern, *program)
            same = (rebuilt.groups, rebuilt.groupindex) == (made.groups, made.groupindex)
            if rebuilt == made and same:
                _store.add(key, marshal.dumps(program))
    _new.clear()


_store = KeptCode(f"re-sre{_sre.MAGIC}-{_PYTHON}", min_new=MIN_NEW, collect=_collect)


def install() -> None:
    """Hand kept programs to `re` and to the rules (once a process); each file
    is read at the first pattern it may hold."""
    if _compiler.compile is not _compile and _store.open():
        _compiler.compile = _compile
    hooked = pattern_compiler.compile_pattern is not pattern_compiler.compile_here
    if _extension is not None and not hooked and _rules_store.open():
        pattern_compiler.compile_pattern = _rules_compile


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
    _new[key] = (p, flags, made)
    return made


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


def _rules_compile(pattern: str) -> Any:
    """A rule's pattern rebuilt from what an earlier process kept of it, or
    compiled by the `regex` package (loaded then) and kept."""
    key = f"0:{pattern}"  # the pattern and its flags, none
    kept = _rules_store.get(key)
    if kept is not None:
        # Only a saving: whatever fails here (the data, the compiled half
        # refusing it or failing to load), the package compiles the pattern.
        with contextlib.suppress(Exception):
            data = marshal.loads(kept)
            if type(data) is tuple and data[:1] == (pattern,):
                return _compiled_half().compile(*data)
    made = pattern_compiler.compile_here(pattern)  # its errors are the compiler's own
    with contextlib.suppress(Exception):  # only a saving, as for `re`
        _rules_store.add(key, marshal.dumps(made._pickled_data))
    return made


def _compiled_half() -> Any:
    """`regex._regex`, loaded alone if the package has not loaded it. The
    package, when it loads, takes this one from `sys.modules`, so patterns
    rebuilt here and those it compiles are of one type."""
    loaded = sys.modules.get("regex._regex")
    if loaded is None:
        assert _extension is not None and _extension.loader is not None
        loaded = importlib.util.module_from_spec(_extension)
        _extension.loader.exec_module(loaded)
        sys.modules["regex._regex"] = loaded
    return loaded
