"""One `spocd run` per SQLite database, and how it names its database.

Apart from the daemon because the lock is a file-system matter the daemon
only takes at start and holds until it stops.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from sqlalchemy.engine import Engine

from daemon.core.errors import SpocdError


class InstanceLocked(SpocdError):
    """Another `spocd run` serves this SQLite database."""


def lock_instance(engine: Engine) -> IO[bytes] | None:
    """SQLite allows one writer process: a second `spocd run` on the same
    file refuses to start instead of fighting over it. The handle returned
    holds the lock until it is closed."""
    database = engine.url.database or ""
    if engine.dialect.name != "sqlite" or database in ("", ":memory:"):
        return None
    path = Path(database + ".lock")
    handle = open(path, "a+b")  # noqa: SIM115 - held for the life of the daemon
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().decode(errors="replace").strip() or "another process"
        handle.close()
        raise InstanceLocked(
            f"another spocd run ({holder}) already serves {database}; SQLite allows one "
            "instance per database (use PostgreSQL to run several)"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}".encode())
    handle.flush()
    return handle


def safe_url(url: str) -> str:
    """A database URL without its password, for the log."""
    head, at, tail = url.rpartition("@")
    if not at or ":" not in head.split("//", 1)[-1]:
        return url
    scheme, _, credentials = head.partition("//")
    return f"{scheme}//{credentials.split(':', 1)[0]}:***@{tail}"
