"""The code `dataclasses` generates for each class, compiled once and kept.

Every process compiles the methods of every dataclass it loads from source
text (`__init__`, `__repr__`, `__eq__`, `__hash__`, a frozen class's
`__setattr__` and `__delattr__`): in a batch ingest 93 classes, 510 texts and
188 KB, 5.5 % of its main process's instructions, paid again by every
command. Python keeps compiled modules (`__pycache__`), but nothing of this.

Here the `dataclasses` module's `exec` (a name it looks up in its own module
before the builtins) is given the code an earlier process compiled for the
same text; a text not kept yet is compiled exactly as `exec` compiles it
(the same text, `<string>`, no inherited flags) and kept for the next one.
The file is one per interpreter build and optimisation level, in a folder of
the temporary directory that belongs to the user alone (mode 0700, owner
checked, as Jinja's bytecode cache is kept). Where that folder cannot be made
safe, or the file cannot be read or written, classes compile as they would
without it: the cache is only a saving.
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import dataclasses
import marshal
import os
import stat
import sys
import tempfile
import zlib
from importlib.util import MAGIC_NUMBER
from types import CodeType
from typing import Any

#: Bounds of the kept file: past them only the texts the last process used are kept.
MAX_ENTRIES = 4096
MAX_BYTES = 16 * 1024 * 1024

_kept: dict[str, bytes] = {}  # text -> marshalled code, read at the first class
_new: dict[str, bytes] = {}  # compiled in this process
_used: set[str] = set()
_file: str | None = None
_read_yet = False


def install() -> None:
    """Hand the kept code to `dataclasses` (once a process). The file is read
    when the first class is made: a command that makes none reads nothing."""
    global _file
    if getattr(dataclasses, "exec", None) is _exec:
        return
    _file = _cache_file()
    if _file is None:
        return
    dataclasses.exec = _exec  # type: ignore[attr-defined]
    atexit.register(save)


def _exec(source: Any, globals: Any = None, locals: Any = None) -> None:
    """`exec` as `dataclasses` calls it, with a text's code kept between processes."""
    if type(source) is str:
        source = _code(source)
    builtins.exec(source, globals, locals)


def _code(text: str) -> CodeType:
    global _read_yet
    if not _read_yet and _file is not None:
        _read_yet = True
        _kept.update(_read(_file))
    _used.add(text)
    kept = _kept.get(text) or _new.get(text)
    if kept is not None:
        with contextlib.suppress(ValueError, EOFError, TypeError):
            code = marshal.loads(kept)
            if type(code) is CodeType:
                return code
    code = compile(text, "<string>", "exec", dont_inherit=True)
    _new[text] = marshal.dumps(code)
    return code


def save() -> None:
    """Write the kept code with what this process compiled, if it compiled any."""
    if _file is None or not _new:
        return
    entries = {**_kept, **_new}
    if len(entries) > MAX_ENTRIES or sum(map(len, entries.values())) > MAX_BYTES:
        entries = {text: code for text, code in entries.items() if text in _used}
    partial = f"{_file}.{os.getpid()}"
    try:
        with open(partial, "wb") as out:
            payload = marshal.dumps(entries)
            out.write(zlib.crc32(payload).to_bytes(4, "big") + payload)
        os.replace(partial, _file)
    except (OSError, ValueError):
        with contextlib.suppress(OSError):
            os.unlink(partial)
        return
    _kept.update(_new)
    _new.clear()


def _read(path: str) -> dict[str, bytes]:
    """The kept entries; nothing when the file is missing, too large or not ours."""
    try:
        with open(path, "rb") as source:
            data = source.read(MAX_BYTES + 1)
        # A file damaged on disk is not run: its checksum comes first. And
        # marshal.loads of the whole file: marshal.load from a file object
        # reads it a few bytes at a time, six times as slow.
        payload = data[4:]
        whole = len(data) <= MAX_BYTES and zlib.crc32(payload).to_bytes(4, "big") == data[:4]
        found = marshal.loads(payload) if whole else None
    except (OSError, ValueError, EOFError, TypeError):
        return {}
    if type(found) is not dict:
        return {}
    return {k: v for k, v in found.items() if type(k) is str and type(v) is bytes}


def _cache_file() -> str | None:
    """The file for this interpreter, in the user's own folder; None where
    that folder is not safe to take code from."""
    getuid = getattr(os, "getuid", None)
    if getuid is None:
        return None
    uid = getuid()
    folder = os.path.join(tempfile.gettempdir(), f"spocd-code-{uid}")
    try:
        with contextlib.suppress(FileExistsError):
            os.mkdir(folder, 0o700)
        found = os.lstat(folder)
    except OSError:
        return None
    if not stat.S_ISDIR(found.st_mode) or found.st_uid != uid or found.st_mode & 0o077:
        return None
    build = f"{sys.implementation.cache_tag}-{MAGIC_NUMBER.hex()}-O{sys.flags.optimize}"
    return os.path.join(folder, f"dataclasses-{build}.marshal")
