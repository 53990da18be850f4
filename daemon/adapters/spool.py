"""The spool: a Maildir-like folder for `spocd ingest --queue-only`.

An MTA pipe starts one process per message; writing the raw bytes to a file
(fsync, rename, fsync the folder) is durable and needs no database driver,
so that path stays fast. The daemon moves spooled files into the inbound
queue; a file's name is its source key, so a crash between the commit and
the unlink queues nothing twice.

This module is what the pipe process imports: it stays free of the domain,
the ports and the database (`spool_import` is the daemon's side), and of
pathlib (with urllib.parse and ipaddress: 8 ms of a 51 ms process).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, BinaryIO

from daemon.config.files import open_private, private_dirs

if TYPE_CHECKING:
    from pathlib import Path

StrPath = str | os.PathLike[str]

ESCALATION_SUFFIX = ".escalation"
#: Spooled files over the intake limit are set aside here, never loaded.
REFUSED_DIR = "refused"
_CHUNK = 1024 * 1024


class NotSpooled(Exception):
    """The input was refused (empty, or over the size limit); nothing was kept."""


def spool_message(spool: StrPath, raw: bytes, *, escalation: bool = False) -> str:
    """Store one raw message durably; return its final path."""
    return _spool(spool, lambda fh: fh.write(raw), escalation)


def spool_stream(spool: StrPath, source: BinaryIO, *, limit: int, escalation: bool = False) -> str:
    """Copy a message from `source` into the spool in chunks, so memory does not
    grow with it; over `limit` bytes or blank, the partial file is removed and
    NotSpooled says why."""

    def copy(fh: BinaryIO) -> None:
        size, blank = 0, True
        while chunk := source.read(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise NotSpooled(f"larger than smtp.max_message_size ({limit} bytes); not kept")
            blank = blank and not chunk.strip()
            fh.write(chunk)
        if blank:
            raise NotSpooled("empty input, nothing queued")

    return _spool(spool, copy, escalation)


def _spool(spool: StrPath, write: Callable[[BinaryIO], object], escalation: bool) -> str:
    tmp_dir, new_dir = os.path.join(spool, "tmp"), os.path.join(spool, "new")
    private_dirs(tmp_dir)
    private_dirs(new_dir)
    name = f"{time.time_ns()}.{os.getpid()}.{os.urandom(6).hex()}"
    if escalation:
        name += ESCALATION_SUFFIX
    tmp = os.path.join(tmp_dir, name)
    try:
        with open_private(tmp, exclusive=True) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    final = os.path.join(new_dir, name)
    os.rename(tmp, final)
    fd = os.open(new_dir, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return final


def spooled(spool: Path) -> list[Path]:
    """The spooled files in arrival order (the daemon's side: `spool` is the
    settings' Path, so pathlib is loaded there already)."""
    new_dir = spool / "new"
    if not new_dir.is_dir():
        return []
    return sorted(p for p in new_dir.iterdir() if p.is_file())
