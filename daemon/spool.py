"""The spool: a Maildir-like folder for `spocd ingest --queue-only`.

An MTA pipe starts one process per message; writing the raw bytes to a file
(fsync, rename, fsync the folder) is durable and needs no database driver,
so that path stays fast. The daemon moves spooled files into the inbound
queue; a file's name is its source key, so a crash between the commit and
the unlink queues nothing twice.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from daemon.domain import Intake
from daemon.ports import QueuedRaw, Store

ESCALATION_SUFFIX = ".escalation"


def spool_message(spool: Path, raw: bytes, *, escalation: bool = False) -> Path:
    """Store one raw message durably; return its final path."""
    tmp_dir, new_dir = spool / "tmp", spool / "new"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    new_dir.mkdir(parents=True, exist_ok=True)
    name = f"{time.time_ns()}.{os.getpid()}.{secrets.token_hex(6)}"
    if escalation:
        name += ESCALATION_SUFFIX
    tmp = tmp_dir / name
    with open(tmp, "wb") as fh:
        fh.write(raw)
        fh.flush()
        os.fsync(fh.fileno())
    final = new_dir / name
    os.rename(tmp, final)
    fd = os.open(new_dir, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return final


def spooled(spool: Path) -> list[Path]:
    new_dir = spool / "new"
    if not new_dir.is_dir():
        return []
    return sorted(p for p in new_dir.iterdir() if p.is_file())


def import_spool(spool: Path, store: Store, now: Callable[[], object], limit: int = 500) -> int:
    """Move spooled messages into the inbound queue; returns how many."""
    moved = 0
    for path in spooled(spool)[:limit]:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            continue  # another importer took it
        item = QueuedRaw(
            raw=raw,
            intake=Intake.SPOOL,
            escalation=path.name.endswith(ESCALATION_SUFFIX),
            source_key=f"spool:{path.name}",
        )
        with store.transaction() as tx:
            tx.inbound.add(item, now())  # type: ignore[arg-type]
        path.unlink(missing_ok=True)
        moved += 1
    return moved
