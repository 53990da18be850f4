"""Held row writes (`storage.behind`): the group commit writes exactly the
rows the row-by-row path writes, and savepoints undo what they held."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from daemon.adapters.storage.models import EVENTS, METADATA
from daemon.adapters.storage.store import SIGNING_KEY, SqlStore
from daemon.app import notify
from daemon.cli.bench.load import synthetic_mail
from daemon.config import load_settings
from daemon.core.domain import Event, Intake
from daemon.ports import QueuedRaw
from daemon.service.wiring import App
from tests.conftest import T0, write_config
from tests.integration.test_storage import new_ticket
from tests.support.clock import ManualClock
from tests.support.db import truncate_all
from tests.support.mail import make_mail


def mail_of_a_busy_morning() -> list[bytes]:
    """New requests, requesters' replies, attachments and HTML (the bench's
    synthetic mail), agents working tickets with commands, a duplicate, an
    auto-reply and bytes that are not mail: every kind of group member."""
    rng = random.Random(7)
    opened: list[tuple[str, str, str]] = []
    raws = [synthetic_mail(n, rng, opened) for n in range(60)]
    raws += [
        make_mail(sender="anna@example.com", subject="[HD-1] Re: x", body="#assign anna\nOn it.\n"),
        make_mail(sender="piotr@example.com", subject="[HD-2] Re: x", body="#priority P2\n"),
        make_mail(sender="anna@example.com", subject="[HD-3] Re: x", body="#resolve fixed\nOK\n"),
        make_mail(sender="anna@example.com", subject="[HD-4] Re: x", body="#internal\nNote.\n"),
        make_mail(
            sender="out-of-office@client3.example.pl",
            subject="Automatic reply: [HD-5]",
            headers={"Auto-Submitted": "auto-replied"},
        ),
        b"\x00\x01 not mail at all",
    ]
    raws.insert(30, raws[10])  # the same message again, mid-group
    return raws


def rows_after(
    url: str, tmp_path: Path, raws: list[bytes], write_behind: bool, monkeypatch: Any
) -> dict[str, Any]:
    """Every row of every table after processing the morning's mail."""
    nonces = (f"{n:016x}" for n in itertools.count())
    monkeypatch.setattr(notify.secrets, "token_hex", lambda size=8: next(nonces)[: 2 * size])
    store = SqlStore.open(url)
    store.write_behind = write_behind
    with store.transaction() as tx:
        tx.settings.put(SIGNING_KEY, "ab" * 32)
    app = App(load_settings(write_config(tmp_path, url)), ManualClock(T0), store=store)
    try:
        with store.transaction() as tx:
            ids = [tx.inbound.add(QueuedRaw(raw=raw, intake=Intake.INGEST), T0) for raw in raws]
        outcomes = app.inbound.process_items([i for i in ids if i is not None])
        assert {o.outcome for o in outcomes} >= {"created", "appended", "duplicate", "quarantined"}
        with store.reading() as tx:
            return {
                table.name: [
                    tuple(row)
                    for row in tx.conn.execute(
                        select(table).order_by(*(c for c in table.primary_key.columns))
                    )
                ]
                for table in METADATA.sorted_tables
            }
    finally:
        app.close()
        store.close()


def test_the_group_commit_writes_the_same_rows_held_or_row_by_row(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    raws = mail_of_a_busy_morning()
    one_by_one = rows_after(db_url, tmp_path / "a", raws, False, monkeypatch)
    if db_url.startswith("sqlite"):
        db_url = f"sqlite:///{tmp_path / 'b' / 'spocd.db'}"
    else:
        truncate_all(db_url)
    held = rows_after(db_url, tmp_path / "b", raws, True, monkeypatch)
    assert len(one_by_one["events"]) > 60 and len(one_by_one["inbound"]) == 67
    for name, rows in one_by_one.items():
        assert held[name] == rows, name


@pytest.fixture
def store(db_url: str) -> Iterator[SqlStore]:
    s = SqlStore.open(db_url)
    yield s
    s.close()


def event(ticket: int, type_: str) -> Event:
    return Event(at=T0, actor="test", type=type_, detail={"n": type_})


def opened_ticket(store: SqlStore) -> int:
    with store.transaction() as tx:
        return tx.tickets.create(new_ticket()).number


def types(store: SqlStore, number: int) -> list[str]:
    with store.reading() as tx:
        return [e.type for e in tx.events.of_ticket(number)]


def test_a_rolled_back_savepoint_drops_what_it_held(store: SqlStore) -> None:
    number = opened_ticket(store)
    with store.transaction() as tx:
        tx.events.add(number, event(number, "kept"))
        with pytest.raises(RuntimeError), tx.savepoint():
            tx.events.add(number, event(number, "undone"))
            raise RuntimeError
        tx.events.add(number, event(number, "after"))
        assert tx.conn.execute(select(EVENTS.c.id)).all() == []  # still held
    assert types(store, number) == ["kept", "after"]


def test_rows_written_inside_a_rolled_back_savepoint_are_held_again(store: SqlStore) -> None:
    """A read inside the savepoint writes the earlier message's rows there;
    the rollback undoes them in the database, so they must be written again."""
    number = opened_ticket(store)
    with store.transaction() as tx:
        tx.events.add(number, event(number, "earlier"))
        with pytest.raises(RuntimeError), tx.savepoint():
            tx.events.add(number, event(number, "undone"))
            assert [e.type for e in tx.events.of_ticket(number)] == ["earlier", "undone"]
            raise RuntimeError
        assert [e.type for e in tx.events.of_ticket(number)] == ["earlier"]
    assert types(store, number) == ["earlier"]


def test_a_failed_transaction_writes_nothing_it_held(store: SqlStore) -> None:
    number = opened_ticket(store)
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.events.add(number, event(number, "lost"))
        raise RuntimeError
    assert types(store, number) == []
