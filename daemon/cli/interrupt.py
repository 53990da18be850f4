"""Ctrl-C asks a batch command to stop at the next safe point.

A KeyboardInterrupt raised wherever the interpreter happens to be can land
inside a database transaction or a driver call and leave the connection
holding its lock, so the command's own clean-up then fails. Once the command
has begun writing, the first Ctrl-C only sets a flag it reads between
batches; a second one stops at once, as Ctrl-C usually does.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any

#: What a shell reports for a tool ended by Ctrl-C (128 + SIGINT).
EX_INTERRUPTED = 128 + signal.SIGINT


class StopAsked:
    """`with StopAsked() as stop:`, `stop.arm()` before the first write, then
    `if stop.asked: break` between batches (or `stop.event` handed to code
    that takes a stop event). Until armed, Ctrl-C keeps its usual meaning: a
    command still waiting for its input (a terminal on stdin) has nothing to
    finish."""

    def __init__(self) -> None:
        # Set from the handler, in the main thread: nothing here ever waits
        # on it there, so its lock is free whenever the handler runs.
        self.event = threading.Event()
        self._previous: Any = None
        self._installed = False

    @property
    def asked(self) -> bool:
        return self.event.is_set()

    def __enter__(self) -> StopAsked:
        return self

    def arm(self) -> None:
        # Once only: after a second Ctrl-C the usual meaning stays.
        # Signal handlers belong to the main thread; elsewhere (a test calling
        # the command in a thread) Ctrl-C keeps its usual meaning.
        if self._installed or threading.current_thread() is not threading.main_thread():
            return
        self._previous = signal.signal(signal.SIGINT, self._ask)
        self._installed = True

    def _ask(self, signum: int, frame: FrameType | None) -> None:
        self.event.set()
        signal.signal(signal.SIGINT, self._previous)  # a second Ctrl-C: at once

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
