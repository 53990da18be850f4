"""The SQLite engine's driver setup: what it changes must not change what is written."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from daemon.adapters.storage.engine import bind_as_is, make_engine

VALUES = [None, True, False, b"", b"raw \x00\xff bytes", 0, -1, 2**62, 1.5, "", "zażółć"]


def stored(path: Path, values: list[object]) -> list[tuple[object, str]]:
    """Each value written through a plain sqlite3 connection, read back with
    its SQLite storage class."""
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (n INTEGER PRIMARY KEY, v)")
        db.executemany("INSERT INTO t (v) VALUES (?)", [(v,) for v in values])
        db.executemany("INSERT INTO t (v) VALUES (?)", [(memoryview(b"mv"),), (bytearray(b"ba"),)])
        rows = db.execute("SELECT v, typeof(v) FROM t ORDER BY n").fetchall()
    db.close()
    return rows


def test_binding_as_is_writes_exactly_what_the_driver_wrote_without_it(tmp_path: Path) -> None:
    """None, bool and bytes skip the driver's adapter probe; every kind of
    value is stored with the same value and storage class as before."""
    keys = [(kind, sqlite3.PrepareProtocol) for kind in (type(None), bool, bytes)]
    with pytest.MonkeyPatch.context() as patch:
        for key in keys:  # the driver's own registry, as a process starts
            patch.delitem(sqlite3.adapters, key, raising=False)
        before = stored(tmp_path / "before.db", VALUES)
        bind_as_is()
        assert all(key in sqlite3.adapters for key in keys)
        after = stored(tmp_path / "after.db", VALUES)
    assert after == before
    assert [kind for _, kind in after] == [
        "null",
        "integer",
        "integer",
        "blob",
        "blob",
        "integer",
        "integer",
        "integer",
        "real",
        "text",
        "text",
        "blob",
        "blob",
    ]


def test_the_sqlite_engine_binds_as_is(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'desk.db'}")
    try:
        assert sqlite3.adapters[(type(None), sqlite3.PrepareProtocol)](None) is None
        assert sqlite3.adapters[(bool, sqlite3.PrepareProtocol)](True) == 1
        raw = b"\x00raw"
        assert sqlite3.adapters[(bytes, sqlite3.PrepareProtocol)](raw) is raw
    finally:
        engine.dispose()
