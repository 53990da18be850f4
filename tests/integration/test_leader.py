"""Advisory locks pass to a survivor when their holder goes away."""

from __future__ import annotations

from daemon.adapters.storage.engine import make_engine
from daemon.adapters.storage.leader import Leadership, lock_key


def test_on_sqlite_the_lone_instance_holds_everything(sqlite_url: str) -> None:
    assert Leadership(make_engine(sqlite_url)).holds("sweeps")


def test_one_holder_at_a_time_and_a_survivor_takes_over(pg_database: str) -> None:
    first, second = Leadership(make_engine(pg_database)), Leadership(make_engine(pg_database))
    assert first.holds("sweeps")
    assert first.holds("sweeps")  # re-asking keeps it
    assert not second.holds("sweeps")
    assert second.holds("mailbox:support")  # another name is free
    first.release_all()  # as when the holder's process dies and its connection closes
    assert second.holds("sweeps")
    assert not first.holds("sweeps")
    first.release_all()
    second.release_all()


def test_lock_keys_are_stable_and_distinct() -> None:
    assert lock_key("sweeps") == lock_key("sweeps")
    assert lock_key("sweeps") != lock_key("mailbox:support")
