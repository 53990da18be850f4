"""Jobs for the daemon's helper processes that misbehave (the parser's on a
marked message): imported by name in the spawned helper, as
`parsers._prepare` is."""

from __future__ import annotations

import os
import time
from typing import Any

from daemon.service.parsers import _prepare


def misbehaving(raws: list[bytes], *args: Any) -> Any:
    for raw in raws:
        if b"X-Test-Parser: exit" in raw:
            os._exit(3)  # as a crash in a C extension would end it
        if b"X-Test-Parser: hang" in raw:
            time.sleep(3600)
        if b"X-Test-Parser: raise" in raw:
            raise ValueError("a helper that answers nonsense")
    return _prepare(raws, *args)


def hangs(batch: list[Any]) -> Any:
    """A delivery helper stuck on its disk."""
    time.sleep(3600)
