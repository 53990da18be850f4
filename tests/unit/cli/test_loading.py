"""A command's start: the garbage collector paused while spocd loads, then
running again, whatever the load did."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from daemon.cli.main import _loading


@pytest.fixture
def collector() -> Iterator[None]:
    """The test process's collector as it was, and nothing left frozen."""
    enabled = gc.isenabled()
    yield
    gc.unfreeze()
    if enabled:
        gc.enable()
    else:
        gc.disable()


def test_the_collector_waits_while_loading_and_leaves_the_load_alone_after(
    collector: None,
) -> None:
    gc.enable()
    gc.unfreeze()
    with _loading():
        assert not gc.isenabled()
        loaded = [{"rule": n} for n in range(1000)]  # what a module builds as it loads
    assert gc.isenabled()
    # frozen: no collection walks it again (get_objects lists only what they walk)
    assert not any(o is loaded for o in gc.get_objects())


def test_a_load_that_fails_leaves_the_collector_running(collector: None) -> None:
    gc.enable()
    with pytest.raises(RuntimeError), _loading():
        raise RuntimeError("database unreachable")
    assert gc.isenabled()


def test_a_process_that_had_it_off_keeps_it_off(collector: None) -> None:
    gc.disable()
    with _loading():
        pass
    assert not gc.isenabled()
