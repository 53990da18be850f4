"""Code a process compiles from text at run time, kept for the next process.

Python keeps compiled modules (`__pycache__`), but nothing a process compiles
from text while it runs: the methods `dataclasses` generates for each class
(`dataclass_code`), the regular expressions modules compile as they load
(`regex_code`). Both are the same in every process, and every command paid
for them again before doing any work.

A `KeptCode` is one file of such code: entries (a text, its compiled form
marshalled) read when first asked for, and written back at exit when the
process compiled new ones. The file is one per interpreter build and
optimisation level, in a folder of the temporary directory that belongs to
the user alone (mode 0700, owner checked, as Jinja's bytecode cache is
kept), with a checksum over it. Where that folder cannot be made safe, or
the file cannot be read or written, nothing is kept and everything compiles
as it would without it: the file is only a saving.
"""

from __future__ import annotations

import atexit
import contextlib
import marshal
import os
import stat
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from importlib.util import MAGIC_NUMBER

#: Bounds of one file: past them only the entries the last process used are kept.
MAX_ENTRIES = 4096
MAX_BYTES = 16 * 1024 * 1024
#: A file of the same kind for another build (an interpreter or package since
#: upgraded) not written for this long is removed when this build writes its own.
STALE_SECONDS = 30 * 24 * 3600


class KeptCode:
    """One kept file's entries: text -> marshalled code."""

    def __init__(
        self, name: str, min_new: int = 1, collect: Callable[[], None] | None = None
    ) -> None:
        self.name = name
        self.file: str | None = None
        #: New entries a process must have made for the file to be written again.
        self.min_new = min_new
        #: Called before a save, to `add` what the process only noted while it ran.
        self.collect = collect
        self.max_entries = MAX_ENTRIES
        self.max_bytes = MAX_BYTES
        self._kept: dict[str, bytes] = {}
        self._new: dict[str, bytes] = {}  # compiled in this process
        self._used: set[str] = set()
        self._read_yet = False

    def open(self, file: str | None = None) -> bool:
        """Take the user's file (read at the first `get`, written at exit);
        False where there is no safe folder for it."""
        self.file = file or cache_file(self.name)
        if self.file is None:
            return False
        atexit.register(self.save)
        return True

    def get(self, text: str) -> bytes | None:
        self._read()
        self._used.add(text)
        return self._kept.get(text) or self._new.get(text)

    def _read(self) -> None:
        if not self._read_yet and self.file is not None:
            self._read_yet = True
            self._kept.update(read(self.file, self.max_bytes))

    def add(self, text: str, code: bytes) -> None:
        self._new[text] = code

    def save(self) -> None:
        """Write the kept entries with this process's new ones, if it made
        at least `min_new` of them."""
        if self.file is None:
            return
        if self.collect is not None:
            self.collect()
        if not self._new or len(self._new) < self.min_new:
            return
        self._read()  # what other processes kept stays
        entries = {**self._kept, **self._new}
        if len(entries) > self.max_entries or sum(map(len, entries.values())) > self.max_bytes:
            entries = {text: code for text, code in entries.items() if text in self._used}
        if write(self.file, entries):
            self._kept.update(self._new)
            self._new.clear()
            prune(self.file)


def read(path: str, max_bytes: int = MAX_BYTES) -> dict[str, bytes]:
    """The kept entries; nothing when the file is missing, damaged or too large."""
    try:
        with open(path, "rb") as source:
            data = source.read(max_bytes + 1)
        # A file damaged on disk is not run: its checksum comes first. And
        # marshal.loads of the whole file: marshal.load from a file object
        # reads it a few bytes at a time, six times as slow.
        payload = data[4:]
        whole = len(data) <= max_bytes and zlib.crc32(payload).to_bytes(4, "big") == data[:4]
        found = marshal.loads(payload) if whole else None
    except (OSError, ValueError, EOFError, TypeError):
        return {}
    if type(found) is not dict:
        return {}
    return {k: v for k, v in found.items() if type(k) is str and type(v) is bytes}


def write(path: str, entries: dict[str, bytes]) -> bool:
    """Replace the file whole (a reader sees the old one or the new one)."""
    partial = f"{path}.{os.getpid()}"
    try:
        with open(partial, "wb") as out:
            payload = marshal.dumps(entries)
            out.write(zlib.crc32(payload).to_bytes(4, "big") + payload)
        os.replace(partial, path)
    except (OSError, ValueError):
        with contextlib.suppress(OSError):
            os.unlink(partial)
        return False
    return True


def prune(path: str, now: float | None = None) -> list[str]:
    """Remove the files of `path`'s kind (its name up to the first `-`) that
    other builds left and have not written for `STALE_SECONDS`, and pieces
    of writes that never finished: each upgrade of the interpreter or of a
    package names a new file. A build still in use that loses its file
    compiles it again once. What was removed."""
    folder, own = os.path.split(path)
    kind = own.split("-", 1)[0] + "-"
    cutoff = (time.time() if now is None else now) - STALE_SECONDS
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            if entry.name == own or not entry.name.startswith(kind):
                continue
            with contextlib.suppress(OSError):
                if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed.append(entry.name)
    return removed


def cache_file(name: str) -> str | None:
    """The file `name` for this interpreter, in the user's own folder; None
    where that folder is not safe to take code from."""
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
    return os.path.join(folder, f"{name}-{build}.marshal")
