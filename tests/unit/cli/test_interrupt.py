"""Ctrl-C in a batch command: the first asks, the second stops at once."""

from __future__ import annotations

import os
import signal

import pytest

from daemon.cli.interrupt import StopAsked


def test_the_first_ctrl_c_only_asks_and_the_second_stops_at_once() -> None:
    runner = signal.signal(signal.SIGINT, signal.default_int_handler)  # as at a terminal
    try:
        with StopAsked() as stop:
            assert not stop.asked
            os.kill(os.getpid(), signal.SIGINT)
            assert stop.asked  # no KeyboardInterrupt: the command stops where it is safe
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, runner)
