"""What a reload watches and what it may apply live.

Apart from the daemon because it is a decision on files and settings alone;
the daemon only asks it every few seconds and on SIGHUP.
"""

from __future__ import annotations

import logging
from pathlib import Path

from daemon.config import Settings
from daemon.service.desk_files import resolve_paths

log = logging.getLogger("spocd.run")


def watched_files(settings: Settings, config_path: Path | None) -> list[Path]:
    """The rules, the config file and every template file."""
    rules, templates = resolve_paths(settings)
    paths = [rules]
    if config_path:
        paths.append(config_path)
    paths.extend(p for p in templates.rglob("*") if p.is_file())
    return paths


def snapshot(paths: list[Path]) -> dict[Path, float]:
    """Each file's modification time (-1 when it cannot be read)."""
    out = {}
    for path in paths:
        try:
            out[path] = path.stat().st_mtime_ns
        except OSError:
            out[path] = -1
    return out


def reloadable(old: Settings, new: Settings) -> bool:
    """Only rules/templates/helpdesk text changes apply live; listeners and
    the database need a restart (logged)."""
    if (old.database, old.smtp, old.imap, old.http) != (
        new.database,
        new.smtp,
        new.imap,
        new.http,
    ):
        log.warning("database, smtp, imap or http settings changed: restart spocd to apply them")
        return False
    return True
