"""`spocd ingest --queue-only -`, the MTA pipe, before the rest of spocd loads.

An MTA starts one process per message, so this path is timed per process:
it takes the two settings the spool writer needs (`config.spool_only`) and
writes the message durably, loading neither the argument parser nor the
settings classes. Any other command line, or a config those two settings
cannot be read from, goes to the full command line (`fast` returns None),
which says what is wrong in its usual words.
"""

from __future__ import annotations

import os
import sys
from typing import BinaryIO

EX_OK, EX_DATAERR, EX_TEMPFAIL = 0, 65, 75


def fast(argv: list[str]) -> int | None:
    """The exit code of the pipe, or None when this is not (only) the pipe."""
    parsed = _pipe_arguments(argv)
    if parsed is None:
        return None
    config, escalation = parsed
    from daemon.config.spool_only import spool_settings

    where = spool_settings(config, os.environ)
    if where is None:
        return None
    spool, limit = where
    return spool_one("-", sys.stdin.buffer, spool, limit, escalation)


def spool_one(
    label: str, source: BinaryIO, spool: str | os.PathLike[str], limit: int, escalation: bool
) -> int:
    """One message durably into the spool, and the line and exit code that
    say so (over the limit: 65, the MTA bounces it; no disk: 75, it retries)."""
    from daemon.adapters.spool import NotSpooled, spool_stream

    try:
        final = spool_stream(spool, source, limit=limit, escalation=escalation)
    except NotSpooled as exc:
        print(f"{label}: {exc}", file=sys.stderr)
        return EX_DATAERR
    except OSError as exc:
        print(f"{label}: cannot spool: {exc.strerror or exc}", file=sys.stderr)
        return EX_TEMPFAIL
    print(f"{label}: queued {os.path.basename(final)}")
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


def main() -> int:
    """The console script: the pipe here, everything else in `main`."""
    code = fast(sys.argv[1:])
    if code is not None:
        return code
    from daemon.cli import dataclass_code, regex_code

    # Before the rest of spocd loads: its classes and its modules' patterns.
    dataclass_code.install()
    regex_code.install()
    from daemon.cli.main import main as full

    return full()
