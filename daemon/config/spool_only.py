"""The two settings the MTA pipe needs, read without the rest of the config.

`spocd ingest --queue-only -` runs once per message, so it reads only the
spool folder and smtp.max_message_size from spocd.toml, by the full loader's
rules (found as `find_config` finds it; relative paths from the config's
folder), and builds none of the settings classes. It checks nothing else: a
mistake elsewhere in the file must not bounce mail (the daemon and every
other command report it). None when the file cannot be read or the two keys
are not what they must be: the full loader then says what is wrong. Paths
are taken with `os.path`: importing pathlib was 8 ms of the pipe's 51.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping

from daemon.config.files import read_config_file

CONFIG_ENV, DEFAULT_NAME = "SPOCD_CONFIG", "spocd.toml"
#: The embedded defaults of the two keys (a test holds them equal to `Settings()`).
DEFAULT_SPOOL = "var/spool"
DEFAULT_MAX_MESSAGE_SIZE = 26_214_400
#: The ceiling of every size in bytes (`schema`), here so the pipe takes no more
#: than the full loader does without importing it.
MAX_BYTES = 1024**3


def spool_settings(explicit: str | None, environ: Mapping[str, str]) -> tuple[str, int] | None:
    """(spool folder, smtp.max_message_size), or None for the full loader."""
    name = explicit or environ.get(CONFIG_ENV)
    if not name and not os.path.isfile(DEFAULT_NAME):
        return os.path.join(os.getcwd(), DEFAULT_SPOOL), DEFAULT_MAX_MESSAGE_SIZE  # embedded
    path = name or DEFAULT_NAME
    try:
        data = tomllib.loads(read_config_file(path))  # bounded: never a FIFO or a device
    except (OSError, ValueError, RecursionError):  # FileRefused, TOMLDecodeError, a value
        return None  # nested thousands deep: the full loader refuses it (78, never 1)
    paths, smtp = data.get("paths", {}), data.get("smtp", {})
    if not isinstance(paths, dict) or not isinstance(smtp, dict):
        return None
    spool = paths.get("spool", DEFAULT_SPOOL)
    limit = smtp.get("max_message_size", DEFAULT_MAX_MESSAGE_SIZE)
    if not isinstance(spool, str) or not spool or "\0" in spool:  # NUL: open raises ValueError
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= MAX_BYTES:
        return None
    if os.path.isabs(spool):
        return spool, limit
    return os.path.join(os.path.dirname(os.path.realpath(path)), spool), limit


__all__ = ["CONFIG_ENV", "DEFAULT_NAME", "spool_settings"]
