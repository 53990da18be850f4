"""The code `dataclasses` generates for each class, compiled once and kept.

Every process compiles the methods of every dataclass it loads from source
text (`__init__`, `__repr__`, `__eq__`, `__hash__`, a frozen class's
`__setattr__` and `__delattr__`): in a batch ingest 93 classes, 510 texts and
188 KB, 5.5 % of its main process's instructions, paid again by every
command. Python keeps compiled modules (`__pycache__`), but nothing of this.

Here the `dataclasses` module's `exec` (a name it looks up in its own module
before the builtins) is given the code an earlier process compiled for the
same text (`kept_code`); a text not kept yet is compiled exactly as `exec`
compiles it (the same text, `<string>`, no inherited flags) and kept for
the next one.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import marshal
from types import CodeType
from typing import Any

from daemon.cli.kept_code import KeptCode

_store = KeptCode("dataclasses")


def install() -> None:
    """Hand the kept code to `dataclasses` (once a process). The file is read
    when the first class is made: a command that makes none reads nothing."""
    if getattr(dataclasses, "exec", None) is _exec:
        return
    if _store.open():
        dataclasses.exec = _exec  # type: ignore[attr-defined]


def _exec(source: Any, globals: Any = None, locals: Any = None) -> None:
    """`exec` as `dataclasses` calls it, with a text's code kept between processes."""
    if type(source) is str:
        source = _code(source)
    builtins.exec(source, globals, locals)


def _code(text: str) -> CodeType:
    kept = _store.get(text)
    if kept is not None:
        with contextlib.suppress(ValueError, EOFError, TypeError):
            code = marshal.loads(kept)
            if type(code) is CodeType:
                return code
    code = compile(text, "<string>", "exec", dont_inherit=True)
    _store.add(text, marshal.dumps(code))
    return code
