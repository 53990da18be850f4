"""The mailbox state repository and `spocd status`'s report, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest

from daemon.adapters.storage.store import SqlStore
from daemon.app.status import status_report, status_text
from daemon.config import ImapMailbox, Settings
from daemon.core.domain import Intake
from daemon.ports import ImapNote, QueuedRaw
from tests.conftest import T0
from tests.support.mail import make_mail


@pytest.fixture
def store(db_url: str) -> Iterator[SqlStore]:
    opened = SqlStore.open(db_url)
    yield opened
    opened.close()


def test_position_counts_and_health_are_recorded_per_mailbox_and_folder(store: SqlStore) -> None:
    with store.transaction() as tx:
        assert tx.mailboxes.get("desk", "INBOX") is None
        tx.mailboxes.connected("desk", "INBOX", poll_seconds=45, now=T0)
        tx.mailboxes.advance("desk", "INBOX", uidvalidity=7, last_uid=20, taken=20, now=T0)
        tx.mailboxes.advance("desk", "INBOX", uidvalidity=7, last_uid=25, taken=5, now=T0)
        tx.mailboxes.succeeded("desk", "INBOX", failed=2, now=T0 + timedelta(seconds=1))
        tx.mailboxes.errored("other", "INBOX", error="network: refused", now=T0)
    with store.reading() as tx:
        desk = tx.mailboxes.get("desk", "INBOX")
        other = tx.mailboxes.get("other", "INBOX")
        names = [(s.mailbox, s.folder) for s in tx.mailboxes.listing()]
    assert desk is not None and other is not None
    assert (desk.uidvalidity, desk.last_uid, desk.taken, desk.failed) == (7, 25, 25, 2)
    assert (desk.connected, desk.poll_seconds) == (True, 45)
    assert desk.last_success_at == T0 + timedelta(seconds=1)
    assert (other.connected, other.last_error, other.last_error_at) == (
        False,
        "network: refused",
        T0,
    )
    assert names == [("desk", "INBOX"), ("other", "INBOX")]
    with store.transaction() as tx:
        tx.mailboxes.disconnected("desk", "INBOX")
    with store.reading() as tx:
        state = tx.mailboxes.get("desk", "INBOX")
    assert state is not None and state.connected is False


def test_queued_items_are_found_by_source_key(store: SqlStore) -> None:
    with store.transaction() as tx:
        first = tx.inbound.add(
            QueuedRaw(raw=make_mail(), intake=Intake.IMAP, source_key="imap:a:INBOX:1:1"), T0
        )
        again = tx.inbound.add(
            QueuedRaw(raw=make_mail(), intake=Intake.IMAP, source_key="imap:a:INBOX:1:1"), T0
        )
        item = tx.inbound.get_item(first, for_update=True)
    assert again is None
    assert item is not None and item.id == first
    with store.reading() as tx:
        found = tx.inbound.ids_by_source(["imap:a:INBOX:1:1", "imap:a:INBOX:1:2"])
    assert found == {"imap:a:INBOX:1:1": first}


def _settings(*mailboxes: ImapMailbox) -> Settings:
    return replace(Settings(), imap=mailboxes)


def test_status_is_healthy_only_with_a_recent_success_of_every_enabled_mailbox(
    store: SqlStore,
) -> None:
    settings = _settings(
        ImapMailbox(name="desk", enabled=True, poll_seconds=30),
        ImapMailbox(name="old", enabled=False),
    )
    with store.reading() as tx:
        never = status_report(settings, tx, T0)
    assert never["healthy"] is False
    assert never["mailboxes"][0]["problem"] == "no successful poll yet"
    assert never["mailboxes"][1]["enabled"] is False  # listed, not judged
    assert never["mailboxes"][1]["healthy"] is True

    with store.transaction() as tx:
        tx.mailboxes.advance("desk", "INBOX", uidvalidity=1, last_uid=3, taken=3, now=T0)
        tx.mailboxes.succeeded("desk", "INBOX", failed=1, now=T0)
        tx.inbound.add(QueuedRaw(raw=make_mail(), intake=Intake.IMAP), T0)
    with store.reading() as tx:
        fresh = status_report(settings, tx, T0 + timedelta(seconds=90))
        stale = status_report(settings, tx, T0 + timedelta(seconds=91))
    assert fresh["healthy"] is True
    desk = fresh["mailboxes"][0]
    assert (desk["taken"], desk["failed"], desk["last_uid"]) == (3, 1, 3)
    assert fresh["inbound"] == {"queued": 1, "failed": 0, "quarantined": 0}
    assert fresh["outbox"] == {"pending": 0, "failed": 0}
    assert stale["healthy"] is False
    assert "no success for 91s" in stale["mailboxes"][0]["problem"]
    text = status_text(stale)
    assert "UNHEALTHY" in text and "inbound queue: 1 queued" in text


def test_notes_of_unfinished_messages_count_in_status_until_the_message_is_gone(
    store: SqlStore,
) -> None:
    settings = _settings(ImapMailbox(name="desk", enabled=True, poll_seconds=30))
    with store.transaction() as tx:
        tx.mailboxes.succeeded("desk", "INBOX", failed=0, now=T0)
        tx.mailboxes.note("desk", "INBOX", ImapNote("k1", misses=1), T0)
        tx.mailboxes.note("desk", "INBOX", ImapNote("k1", misses=3, kind="untaken"), T0)
        tx.mailboxes.note("desk", "INBOX", ImapNote("k2", copied_to="done", kind="unmoved"), T0)
        tx.mailboxes.note("desk", "INBOX", ImapNote("k3", copied_to="done"), T0)
        tx.mailboxes.remember("id-1", 7)
        tx.mailboxes.remember("id-1", 8)  # the first holder stays
    with store.reading() as tx:
        notes = tx.mailboxes.notes(["k1", "k2", "k9"])
        report = status_report(settings, tx, T0)
        assert tx.mailboxes.item_of("id-1") == 7
        assert tx.mailboxes.item_of("id-2") is None
    assert notes == {
        "k1": ImapNote("k1", misses=3, kind="untaken"),
        "k2": ImapNote("k2", copied_to="done", kind="unmoved"),
    }
    desk = report["mailboxes"][0]
    assert (desk["healthy"], desk["untaken"], desk["unmoved"]) == (False, 1, 1)
    assert "would not deliver" in desk["problem"] and "not moved" in desk["problem"]
    with store.transaction() as tx:
        tx.mailboxes.prune_notes("desk", "INBOX", keep=["k2", "k3"])  # k1 left the folder
        tx.mailboxes.drop_notes(["k2"])  # k2 was moved at last
    with store.reading() as tx:
        assert set(tx.mailboxes.notes(["k1", "k2", "k3"])) == {"k3"}
        assert status_report(settings, tx, T0)["healthy"] is True
