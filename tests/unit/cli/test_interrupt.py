"""Ctrl-C or SIGTERM in a batch command: before it writes, the signal has its
usual meaning; once it writes, the first asks for a stop at the end of the
batch and the second stops at once."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from daemon.cli.interrupt import StopAsked


class Terminated(Exception):
    """What SIGTERM's usual meaning (the process ends) stands for here."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


@pytest.fixture(autouse=True)
def as_at_a_terminal() -> Iterator[None]:
    runner = signal.signal(signal.SIGINT, signal.default_int_handler)
    term = signal.signal(signal.SIGTERM, _terminate)
    yield
    signal.signal(signal.SIGINT, runner)
    signal.signal(signal.SIGTERM, term)


def test_once_armed_the_first_ctrl_c_only_asks_and_the_second_stops_at_once() -> None:
    with StopAsked() as stop:
        stop.arm()
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.asked  # no KeyboardInterrupt: the command stops where it is safe
        stop.arm()  # the next batch's write does not take the second Ctrl-C's meaning away
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert (stop.exit_code, stop.said) == (130, "interrupted")


def test_sigterm_asks_the_same_and_a_second_signal_of_either_kind_stops_at_once() -> None:
    """systemd stopping `spocd-tick.service` sends SIGTERM: the batch in hand
    is finished as after Ctrl-C, and the exit code names the signal."""
    with StopAsked() as stop:
        stop.arm()
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.asked
        assert (stop.exit_code, stop.said) == (143, "stopped by SIGTERM")
        with pytest.raises(Terminated):
            os.kill(os.getpid(), signal.SIGTERM)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) is _terminate


def test_before_it_is_armed_ctrl_c_stops_at_once() -> None:
    with StopAsked() as stop, pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
    assert not stop.asked
