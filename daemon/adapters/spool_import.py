"""The daemon's side of the spool: spooled files into the inbound queue."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from daemon.adapters.spool import ESCALATION_SUFFIX, REFUSED_DIR, spooled
from daemon.config.files import private_dirs
from daemon.core.domain import Intake
from daemon.ports import QueuedRaw, Store


def import_spool(
    spool: Path,
    store: Store,
    now: Callable[[], object],
    limit: int = 500,
    *,
    max_bytes: int | None = None,
    on_refused: Callable[[Path, int], object] = lambda path, size: None,
    paths: Sequence[Path] | None = None,
) -> int:
    """Move spooled messages into the inbound queue; returns how many. A file
    over `max_bytes` (put there by hand or by an older spocd) is moved to
    `refused/` unread: one message cannot cost the daemon more than the limit.
    `paths`: these files of a listing taken earlier, not the spool as it is now."""
    moved = 0
    for path in (spooled(spool) if paths is None else paths)[:limit]:
        try:
            size = path.stat().st_size
            if max_bytes is not None and size > max_bytes:
                private_dirs(spool / REFUSED_DIR)
                os.rename(path, spool / REFUSED_DIR / path.name)
                on_refused(path, size)
                continue
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
