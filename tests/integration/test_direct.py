"""Row writes on the driver's cursor behave as SQLAlchemy's own would."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import JSON, bindparam, insert, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError

from daemon.adapters.storage import direct
from daemon.adapters.storage.models import INBOUND, UTCDateTime
from daemon.adapters.storage.store import SqlStore

NOW = datetime(2026, 11, 25, 9, 30, 15, 123456, tzinfo=UTC)


def queued(raw: bytes, **more: object) -> dict[str, object]:
    """The columns an inbound row must have; the rest take their defaults."""
    return {
        "raw": raw,
        "intake": "smtp",
        "received_at": NOW,
        "size": len(raw),
        "sha256": "0" * 64,
        **more,
    }


@pytest.fixture
def store(db_url: str) -> Iterator[SqlStore]:
    s = SqlStore.open(db_url)
    yield s
    s.close()


def test_a_row_reads_back_as_sqlalchemy_writes_it_with_the_column_defaults(
    store: SqlStore,
) -> None:
    values = queued(b"\x00raw\xff", source_key="a")
    with store.transaction() as tx:
        ours = direct.insert_row(tx.conn, INBOUND, values)
        theirs = tx.conn.execute(
            insert(INBOUND), {**values, "source_key": "b"}
        ).inserted_primary_key[0]
    with store.reading() as tx:
        rows = {r.id: r for r in tx.conn.execute(select(INBOUND))}
    assert ours != theirs
    mine, reference = rows[ours]._asdict(), rows[theirs]._asdict()
    for row in (mine, reference):
        row.pop("id"), row.pop("source_key")
    assert mine == reference
    assert mine["received_at"] == NOW and mine["raw"] == b"\x00raw\xff"
    assert mine["state"] == "queued" and mine["envelope_to"] == [] and mine["attempts"] == 0


def test_an_update_changes_one_row_and_counts_it(store: SqlStore) -> None:
    with store.transaction() as tx:
        first = direct.insert_row(tx.conn, INBOUND, queued(b"1"))
        second = direct.insert_row(tx.conn, INBOUND, queued(b"2"))
        changes = {"state": "done", "envelope_to": ["x@y"]}
        assert direct.update_row(tx.conn, INBOUND, first, changes) == 1
        assert direct.update_row(tx.conn, INBOUND, 10_000, {"state": "done"}) == 0
    with store.reading() as tx:
        states = {r.id: (r.state, r.envelope_to) for r in tx.conn.execute(select(INBOUND))}
    assert states == {first: ("done", ["x@y"]), second: ("queued", [])}


def test_a_broken_constraint_is_sqlalchemys_integrity_error_and_a_savepoint_undoes_it(
    store: SqlStore,
) -> None:
    values = queued(b"1", source_key="same")
    with store.transaction() as tx:
        direct.insert_row(tx.conn, INBOUND, values)
        with pytest.raises(IntegrityError), tx.savepoint():
            direct.insert_row(tx.conn, INBOUND, values)
        direct.insert_row(tx.conn, INBOUND, {**values, "source_key": "other"})
    with store.reading() as tx:
        keys = sorted(r.source_key for r in tx.conn.execute(select(INBOUND)))
    assert keys == ["other", "same"]


def test_prepared_statements_take_their_literal_values_and_count_what_they_change(
    store: SqlStore,
) -> None:
    stmt = (
        select(INBOUND.c.id)
        .where(INBOUND.c.state == "queued", INBOUND.c.intake == bindparam("intake"))
        .order_by(INBOUND.c.id)
    )
    finish = update(INBOUND).where(INBOUND.c.id == bindparam("item")).values(state="done")
    with store.transaction() as tx:
        direct.insert_rows(
            tx.conn, INBOUND, [queued(b"1"), queued(b"2"), queued(b"3", intake="imap")]
        )
        smtp = [row[0] for row in direct.fetch(tx.conn, stmt, {"intake": "smtp"})]
        assert len(smtp) == 2
        assert direct.execute(tx.conn, finish, {"item": smtp[0]}) == 1
        assert direct.fetch(tx.conn, stmt, {"intake": "smtp"}) == [(smtp[1],)]
    with store.reading() as tx:
        rows = list(tx.conn.execute(select(INBOUND).order_by(INBOUND.c.id)))
    assert [(r.state, r.attempts, r.envelope_to) for r in rows] == [
        ("done", 0, []),
        ("queued", 0, []),
        ("queued", 0, []),
    ]


def test_a_parameter_used_twice_is_converted_in_both_places(store: SqlStore) -> None:
    """Positional drivers (SQLite) get the parameter once per place it is
    used; the datetime must be stored text in each, or the comparison with
    the stored column goes wrong."""
    later = NOW + timedelta(hours=1)
    within = select(INBOUND.c.source_key).where(
        INBOUND.c.received_at >= bindparam("moment"),
        INBOUND.c.received_at <= bindparam("moment"),
    )
    with store.transaction() as tx:
        direct.insert_rows(
            tx.conn,
            INBOUND,
            [queued(b"1", source_key="now"), queued(b"2", source_key="later", received_at=later)],
        )
        assert direct.fetch(tx.conn, within, {"moment": later}) == [("later",)]
        assert direct.fetch(tx.conn, within, {"moment": NOW}) == [("now",)]


def test_a_savepoint_undoes_only_its_own_block(store: SqlStore) -> None:
    with store.transaction() as tx:
        direct.insert_row(tx.conn, INBOUND, queued(b"kept", source_key="kept"))
        with pytest.raises(RuntimeError), tx.savepoint():
            direct.insert_row(tx.conn, INBOUND, queued(b"undone", source_key="undone"))
            with tx.savepoint():
                direct.insert_row(tx.conn, INBOUND, queued(b"inner", source_key="inner"))
            raise RuntimeError("the message failed")
        with tx.savepoint():
            direct.insert_row(tx.conn, INBOUND, queued(b"after", source_key="after"))
    with store.reading() as tx:
        keys = sorted(r.source_key for r in tx.conn.execute(select(INBOUND)))
    assert keys == ["after", "kept"]


def test_savepoints_of_one_depth_share_a_name_and_each_undoes_only_its_own(
    store: SqlStore,
) -> None:
    """Savepoints are named by depth (the driver then prepares two statements
    a level, not two a message): a name means the latest savepoint of it, so
    siblings and the levels around them still undo exactly their own rows."""

    def add(key: str) -> None:
        direct.insert_row(tx.conn, INBOUND, queued(key.encode(), source_key=key))

    with store.transaction() as tx:
        with tx.savepoint():
            add("a")
            with pytest.raises(RuntimeError), tx.savepoint():
                add("b")
                raise RuntimeError("b failed")
            with tx.savepoint():
                add("c")
            with pytest.raises(RuntimeError), tx.savepoint():
                add("d")
                raise RuntimeError("d failed")
        with pytest.raises(RuntimeError), tx.savepoint():
            add("e")
            with tx.savepoint():
                add("f")
            raise RuntimeError("e failed after f was kept in it")
        with tx.savepoint():
            add("g")
    with store.reading() as tx:
        keys = sorted(r.source_key for r in tx.conn.execute(select(INBOUND)))
    assert keys == ["a", "c", "g"]


def test_a_group_of_messages_prepares_the_same_two_savepoint_statements(
    tmp_path: Path,
) -> None:
    """sqlite3 keeps 128 prepared statements a connection: a new savepoint
    name per message put 400 new texts through it in a group of 200, pushing
    out the pipeline's own inserts. (Read with SQLite's trace callback.)"""
    store = SqlStore.open(f"sqlite:///{tmp_path / 'spocd.db'}")
    texts: set[str] = set()
    with store.transaction() as tx:
        raw = tx.conn.connection.dbapi_connection
        raw.set_trace_callback(texts.add)
        for _ in range(200):
            with tx.savepoint():
                pass
        raw.set_trace_callback(None)
    store.close()
    assert texts == {"SAVEPOINT spocd_sp_1", "RELEASE SAVEPOINT spocd_sp_1"}


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 11, 25, 9, 30, 15, 123456, tzinfo=UTC),
        datetime(2026, 3, 29, 3, 0, tzinfo=timezone(timedelta(hours=2))),
        datetime(999, 1, 1, tzinfo=UTC),
        None,
    ],
)
def test_datetimes_are_stored_as_sqlalchemys_own_sqlite_text(moment: datetime | None) -> None:
    dialect = sqlite.dialect()
    theirs = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert theirs is not None
    assert direct._processor(UTCDateTime(), dialect)(moment) == theirs(moment)


_ZONES = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))])


@settings(max_examples=200, deadline=None)
@given(
    moments=st.lists(st.datetimes(timezones=_ZONES), min_size=1, max_size=8),
    picks=st.lists(st.integers(0, 7), max_size=30),
)
def test_each_datetime_is_stored_as_its_own_text_whatever_was_written_before(
    moments: list[datetime], picks: list[int]
) -> None:
    """The last text written is kept for the same moment written again (a
    group's one `now`): any order of repeats and other moments, in any zone,
    gives each its own SQLAlchemy text, and a naive one is refused after any."""
    dialect = sqlite.dialect()
    theirs = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    ours = direct._processor(UTCDateTime(), dialect)
    assert theirs is not None and ours is not None
    for pick in [*range(len(moments)), *picks]:
        moment = moments[pick % len(moments)]
        assert ours(moment) == theirs(moment)
        with pytest.raises(ValueError, match="naive"):
            ours(moment.replace(tzinfo=None))


@settings(max_examples=500, deadline=None)
@given(moment=st.datetimes(timezones=st.just(UTC)) | st.none())
def test_stored_datetimes_are_read_back_as_sqlalchemy_reads_them(moment: datetime | None) -> None:
    """What is written is read as SQLAlchemy's own result processor reads it:
    the same aware UTC datetime, year 1 to 9999, to the microsecond."""
    dialect = sqlite.dialect()
    stored = direct._processor(UTCDateTime(), dialect)(moment)
    theirs = UTCDateTime()._cached_result_processor(dialect, None)
    ours = direct._result_processor(UTCDateTime(), dialect, None)
    assert theirs is not None and ours is not None
    assert ours(stored) == theirs(stored) == moment
    assert ours(stored) is None or ours(stored).tzinfo is UTC


@pytest.mark.parametrize(
    "stored", ["2026-11-25 09:30:15", "2026-11-25 09:30", "2026-11-25", "2026-11-25T09:30:15.5"]
)
def test_stored_datetimes_of_other_shapes_are_read_as_sqlalchemy_reads_them(stored: str) -> None:
    dialect = sqlite.dialect()
    theirs = UTCDateTime()._cached_result_processor(dialect, None)
    ours = direct._result_processor(UTCDateTime(), dialect, None)
    assert theirs is not None and ours is not None
    assert ours(stored) == theirs(stored)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=500, deadline=None)
@given(value=JSON_VALUES)
def test_json_values_are_stored_as_sqlalchemys_own_sqlite_text(value: object) -> None:
    """Every JSON column's value written as SQLAlchemy writes it on SQLite,
    empty containers, NaN, non-ASCII and None included."""
    dialect = sqlite.dialect()
    theirs = JSON().dialect_impl(dialect).bind_processor(dialect)
    ours = direct._processor(JSON(), dialect)
    assert theirs is not None and ours is not None
    assert ours(value) == theirs(value)
    assert ours(JSON.NULL) == theirs(JSON.NULL)


@settings(max_examples=200, deadline=None)
@given(value=JSON_VALUES)
def test_json_text_is_the_standard_librarys_with_or_without_its_c_encoder(value: object) -> None:
    """The reused C encoder writes what `json.dumps` writes; where there is
    no C encoder, `JSONEncoder.encode` is used, with the same text."""
    expected = json.dumps(value)
    assert direct._JSON_TEXT(value) == expected
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(json.encoder, "c_make_encoder", None)
        assert direct._json_text()(value) == expected


@settings(max_examples=500, deadline=None)
@given(value=JSON_VALUES)
def test_stored_json_is_read_back_as_sqlalchemy_reads_it(value: object) -> None:
    """What a JSON column holds is read by the C scanner as `json.loads`
    reads it (NaN and infinities included, compared as JSON text)."""
    dialect = sqlite.dialect()
    stored = direct._processor(JSON(), dialect)(value)
    theirs = JSON()._cached_result_processor(dialect, None)
    ours = direct._result_processor(JSON(), dialect, None)
    assert theirs is not None and ours is not None and ours is not theirs
    assert json.dumps(ours(stored)) == json.dumps(theirs(stored)) == json.dumps(value)


@pytest.mark.parametrize("stored", [" [1] ", "[1]\n", '\n{"a": 2}', "1", "NaN", '"x"', None])
def test_json_text_the_scanner_does_not_take_whole_is_read_by_sqlalchemy(stored: object) -> None:
    dialect = sqlite.dialect()
    theirs = JSON()._cached_result_processor(dialect, None)
    ours = direct._result_processor(JSON(), dialect, None)
    assert theirs is not None and ours is not None
    assert json.dumps(ours(stored)) == json.dumps(theirs(stored))


@pytest.mark.parametrize("stored", ["[1", "", "[1] x", '{"a": 1,}', '"\x01"'])
def test_broken_json_text_fails_as_sqlalchemy_fails(stored: str) -> None:
    dialect = sqlite.dialect()
    theirs = JSON()._cached_result_processor(dialect, None)
    ours = direct._result_processor(JSON(), dialect, None)
    assert theirs is not None and ours is not None
    with pytest.raises(json.JSONDecodeError) as expected:
        theirs(stored)
    with pytest.raises(json.JSONDecodeError) as raised:
        ours(stored)
    assert str(raised.value) == str(expected.value)


def test_a_cyclic_json_value_fails_its_write_with_an_error() -> None:
    cyclic: dict[str, object] = {}
    cyclic["self"] = cyclic
    with pytest.raises((RecursionError, ValueError)):
        direct._JSON_TEXT(cyclic)
