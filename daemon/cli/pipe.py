"""`spocd ingest --queue-only -`, the MTA pipe, before the rest of spocd loads.

An MTA starts one process per message, so this path is timed per process:
it reads only what the spool writer needs from spocd.toml (the spool folder
and smtp.max_message_size, relative paths from the config's folder, as the
full loader reads them) and writes the message durably. It does not build or
check the rest of the settings: a mistake elsewhere in spocd.toml must not
bounce mail (`spocd run` and `spocd rules check` report it). Anything else,
other arguments, or a config it cannot read or whose two keys are not what
they must be, goes to the full command line (`fast` returns None), which
says what is wrong in its usual words.
"""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path
from typing import BinaryIO

#: The embedded defaults of the two keys (a test holds them equal to `Settings()`).
DEFAULT_SPOOL = "var/spool"
DEFAULT_MAX_MESSAGE_SIZE = 26_214_400
CONFIG_ENV, DEFAULT_NAME = "SPOCD_CONFIG", "spocd.toml"
EX_OK, EX_DATAERR, EX_TEMPFAIL = 0, 65, 75


def fast(argv: list[str]) -> int | None:
    """The exit code of the pipe, or None when this is not (only) the pipe."""
    parsed = _pipe_arguments(argv)
    if parsed is None:
        return None
    config, escalation = parsed
    where = _spool_settings(config)
    if where is None:
        return None
    spool, limit = where
    return spool_one("-", sys.stdin.buffer, spool, limit, escalation)


def spool_one(
    label: str, source: BinaryIO, spool: os.PathLike[str], limit: int, escalation: bool
) -> int:
    """One message durably into the spool, and the line and exit code that
    say so (over the limit: 65, the MTA bounces it; no disk: 75, it retries)."""
    from daemon.adapters.spool import NotSpooled, spool_stream

    try:
        final = spool_stream(Path(spool), source, limit=limit, escalation=escalation)
    except NotSpooled as exc:
        print(f"{label}: {exc}", file=sys.stderr)
        return EX_DATAERR
    except OSError as exc:
        print(f"{label}: cannot spool: {exc.strerror or exc}", file=sys.stderr)
        return EX_TEMPFAIL
    print(f"{label}: queued {final.name}")
    return EX_OK


def _pipe_arguments(argv: list[str]) -> tuple[str | None, bool] | None:
    """(config path given with -c, --escalation) for exactly `ingest
    --queue-only -` with those options, wherever -c stands; else None."""
    words = list(argv)
    config = None
    for flag in ("-c", "--config"):
        while flag in words:
            at = words.index(flag)
            if at + 1 >= len(words) or config is not None:
                return None
            config = words[at + 1]
            del words[at : at + 2]
    escalation = "--escalation" in words
    if escalation:
        words.remove("--escalation")
    if words[:1] != ["ingest"] or sorted(words[1:]) != ["-", "--queue-only"]:
        return None
    return config, escalation


def _spool_settings(explicit: str | None) -> tuple[os.PathLike[str], int] | None:
    name = explicit or os.environ.get(CONFIG_ENV)
    if not name and not Path(DEFAULT_NAME).is_file():
        return Path.cwd() / DEFAULT_SPOOL, DEFAULT_MAX_MESSAGE_SIZE  # the embedded default
    path = Path(name or DEFAULT_NAME)
    from daemon.config.files import read_config_file  # bounded: never a FIFO or a device

    try:
        data = tomllib.loads(read_config_file(path))
    except (OSError, ValueError):  # FileRefused, TOMLDecodeError: the full path says so
        return None
    paths, smtp = data.get("paths", {}), data.get("smtp", {})
    if not isinstance(paths, dict) or not isinstance(smtp, dict):
        return None
    spool = paths.get("spool", DEFAULT_SPOOL)
    limit = smtp.get("max_message_size", DEFAULT_MAX_MESSAGE_SIZE)
    if not isinstance(spool, str) or not spool:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
        return None
    folder = Path(spool)
    return (folder if folder.is_absolute() else path.resolve().parent / folder), limit


def main() -> int:
    """The console script: the pipe here, everything else in `main`."""
    code = fast(sys.argv[1:])
    if code is not None:
        return code
    from daemon.cli.main import main as full

    return full()
