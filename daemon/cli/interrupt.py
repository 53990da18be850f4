"""Ctrl-C (or SIGTERM) asks a batch command to stop at the next safe point.

A KeyboardInterrupt raised wherever the interpreter happens to be can land
inside a database transaction or a driver call and leave the connection
holding its lock, so the command's own clean-up then fails; a SIGTERM (from
systemd stopping `spocd-tick.service`, or `timeout`) ended the process
there, leaving mail it had claimed to wait out its lease. Once the command
has begun writing, the first signal only sets a flag it reads between
batches; a second one stops at once, as the signal usually does.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopAsked:
    """`with StopAsked() as stop:`, `stop.arm()` before the first write, then
    `if stop.asked: break` between batches (or `stop.event` handed to code
    that takes a stop event), and `stop.exit_code` as the command's. Until
    armed, the signals keep their usual meaning: a command still waiting for
    its input (a terminal on stdin) has nothing to finish."""

    def __init__(self) -> None:
        # Set from the handler, in the main thread: nothing here ever waits
        # on it there, so its lock is free whenever the handler runs.
        self.event = threading.Event()
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def asked(self) -> bool:
        return self.event.is_set()

    @property
    def exit_code(self) -> int:
        """128 + the signal, as a shell reports a tool the signal ended (130
        after Ctrl-C, 143 after SIGTERM)."""
        return 128 + (self.signal or signal.SIGINT)

    @property
    def said(self) -> str:
        """How the command names its stop on stderr."""
        return "stopped by SIGTERM" if self.signal == signal.SIGTERM else "interrupted"

    def __enter__(self) -> StopAsked:
        return self

    def arm(self) -> None:
        # Once only: after a second signal the usual meaning stays.
        # Signal handlers belong to the main thread; elsewhere (a test calling
        # the command in a thread) the signals keep their usual meaning.
        if self._previous or threading.current_thread() is not threading.main_thread():
            return
        self._previous = {s: signal.signal(s, self._ask) for s in STOP_SIGNALS}

    def _ask(self, signum: int, frame: FrameType | None) -> None:
        self.signal = signum
        self.event.set()
        self._restore()  # a second signal: at once

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._restore()
