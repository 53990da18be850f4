"""Ctrl-C in a batch command: before it writes, Ctrl-C is Ctrl-C; once it
writes, the first asks for a stop at the end of the batch and the second
stops at once."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from daemon.cli.interrupt import StopAsked


@pytest.fixture(autouse=True)
def as_at_a_terminal() -> Iterator[None]:
    runner = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, runner)


def test_once_armed_the_first_ctrl_c_only_asks_and_the_second_stops_at_once() -> None:
    with StopAsked() as stop:
        stop.arm()
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.asked  # no KeyboardInterrupt: the command stops where it is safe
        stop.arm()  # the next batch's write does not take the second Ctrl-C's meaning away
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_before_it_is_armed_ctrl_c_stops_at_once() -> None:
    with StopAsked() as stop, pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
    assert not stop.asked
