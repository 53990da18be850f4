"""One storage contract, run on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, inspect, text

from daemon.adapters.storage import migrate
from daemon.adapters.storage.models import METADATA, TIMERS
from daemon.adapters.storage.store import SqlStore
from daemon.core.domain import (
    Attachment,
    Channel,
    Event,
    Intake,
    OutgoingMail,
    Status,
    StoredMessage,
    Ticket,
)
from daemon.ports import QueuedRaw
from tests.support.db import truncate_all
from tests.support.proc import wait_until

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(db_url: str) -> Iterator[SqlStore]:
    s = SqlStore.open(db_url)
    yield s
    s.close()


def new_ticket(**overrides: object) -> Ticket:
    values: dict[str, object] = dict(
        number=0,
        subject="Printer jams",
        requester="jan@example.org",
        status=Status.NEW,
        impact="medium",
        urgency="medium",
        priority="P3",
        language="en",
        created_at=NOW,
        channel=Channel.EMAIL,
        cc=["ewa@example.org"],
        tags=["printer"],
    )
    values.update(overrides)
    return Ticket(**values)  # type: ignore[arg-type]


def test_ticket_numbers_are_sequential_and_a_ticket_reads_back_whole(store: SqlStore) -> None:
    with store.transaction() as tx:
        first = tx.tickets.create(new_ticket())
        second = tx.tickets.create(new_ticket(subject="VPN", first_response_due=NOW))
    assert (first.number, second.number) == (1, 2)
    with store.reading() as tx:
        back = tx.tickets.get(2)
    assert back is not None
    assert back.subject == "VPN"
    assert back.first_response_due == NOW and back.first_response_due.tzinfo is not None
    assert back.cc == ["ewa@example.org"] and back.tags == ["printer"]
    assert back.status is Status.NEW and back.channel is Channel.EMAIL


@pytest.mark.parametrize("locked", [False, True])
def test_many_tickets_read_at_once_are_each_as_read_alone(store: SqlStore, locked: bool) -> None:
    """`get_many` pads its numbers to a few prepared sizes and takes at most
    256 a statement: any set of numbers, repeated, missing or past that,
    reads every ticket that exists exactly as `get` reads it, and no other."""
    with store.transaction() as tx:
        for n in range(300):
            tx.tickets.create(new_ticket(subject=f"Ticket {n}", first_response_due=NOW))
        tx.events.add(7, Event(at=NOW, actor="a@example.org", type="note", detail={}))
    for numbers in ([], [5], [3, 1, 2], [9, 9, 9], list(range(1, 38)), [*range(1, 301), 999]):
        with store.transaction() as tx:
            many = tx.tickets.get_many(numbers, for_update=locked)
            alone = {n: tx.tickets.get(n) for n in sorted(set(numbers)) if n <= 300}
        assert list(many) == sorted(alone)
        assert many == alone


def test_a_saved_ticket_is_current_until_a_savepoint_undoes_its_save(store: SqlStore) -> None:
    """`saved` names the copy written last (the SLA sweep goes on with it
    instead of reading again); a savepoint rolled back leaves the row as it
    was before, so no copy in hand is current any more, inner saves included."""
    with store.transaction() as tx:
        tx.tickets.create(new_ticket())
        tx.tickets.create(new_ticket())
    with store.transaction() as tx:
        first, second = tx.tickets.get(1), tx.tickets.get(2)
        assert first is not None and second is not None
        tx.tickets.save(first)
        assert tx.tickets.saved == {1: first}
        with pytest.raises(RuntimeError), tx.savepoint():
            first.subject = "changed, then undone"
            tx.tickets.save(first)
            with tx.savepoint():
                tx.tickets.save(second)
            raise RuntimeError("the step failed")
        assert tx.tickets.saved[1] is not first and tx.tickets.saved[2] is not second
        again = tx.tickets.get(1)
        assert again is not None and again.subject == "Printer jams"
        tx.tickets.save(again)
        assert tx.tickets.saved[1] is again


def test_a_rolled_back_transaction_leaves_nothing(store: SqlStore) -> None:
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.tickets.create(new_ticket())
        raise RuntimeError("boom")
    with store.reading() as tx:
        assert tx.tickets.listing(None) == []


def test_the_inbound_queue_keeps_raw_bytes_and_refuses_a_repeated_source(store: SqlStore) -> None:
    raw = b"From: a@example.org\r\n\r\n\xff\x00 binary-safe"
    with store.transaction() as tx:
        first = tx.inbound.add(QueuedRaw(raw, Intake.IMAP, source_key="imap:box:1:7"), NOW)
        again = tx.inbound.add(QueuedRaw(raw, Intake.IMAP, source_key="imap:box:1:7"), NOW)
    assert first is not None and again is None
    with store.transaction() as tx:
        [item] = tx.inbound.claim(NOW, 10)
        assert item.raw == raw
        tx.inbound.fail(
            item.id, stage="act", reason="boom", now=NOW, retry_at=NOW + timedelta(minutes=1)
        )
    with store.transaction() as tx:
        assert tx.inbound.claim(NOW, 10) == []  # not due yet
        [item] = tx.inbound.claim(NOW + timedelta(minutes=1), 10)
        assert item.attempts == 1
        tx.inbound.quarantine(item.id, reason="not mail", now=NOW)
        assert tx.inbound.raw(item.id) == raw
        assert tx.inbound.requeue(item.id, NOW)


def test_a_claim_holds_a_bounded_amount_of_raw_mail(store: SqlStore) -> None:
    with store.transaction() as tx:
        for n in range(3):
            tx.inbound.add(QueuedRaw(b"x" * 1000 + str(n).encode(), Intake.SMTP), NOW)
    with store.reading() as tx:
        assert len(tx.inbound.claim(NOW, 10)) == 3
        assert [i.raw[-1:] for i in tx.inbound.claim(NOW, 10, max_bytes=2500)] == [b"0", b"1"]
        assert len(tx.inbound.claim(NOW, 10, max_bytes=10)) == 1  # one, however large


def test_messages_attachments_events_and_threading_lookups(store: SqlStore) -> None:
    with store.transaction() as tx:
        ticket = tx.tickets.create(new_ticket())
        tx.messages.add(
            StoredMessage(
                ticket_number=1,
                direction="in",
                kind="request",
                sender="jan@example.org",
                recipients=("helpdesk@example.com",),
                subject="Printer jams",
                message_id="m1@example.org",
                at=NOW,
                body="text",
                attachments=(Attachment("a.pdf", "application/pdf", 3, "ab", b"pdf"),),
            )
        )
        tx.events.add(
            ticket.number,
            Event(at=NOW, actor="jan@example.org", type="created", detail={"priority": "P3"}),
        )
    with store.reading() as tx:
        assert tx.messages.ticket_of("m1@example.org") == 1
        assert tx.messages.ticket_of("unknown@x") is None
        [message] = tx.messages.of_ticket(1)
        assert message.body == "text"
        # Threading reads the same message without what it does not need.
        [head] = tx.messages.thread_of(1)
        assert head == replace(message, body="", recipients=(), attachments=(), row_id=None)
        [event] = tx.events.of_ticket(1)
        assert event.detail == {"priority": "P3"}
        assert tx.tickets.get(1).message_count == 1  # type: ignore[union-attr]


def ack(message_id: str) -> OutgoingMail:
    """A queued acknowledgement to jan@example.org."""
    return OutgoingMail(
        message_id=message_id,
        recipients=("jan@example.org",),
        raw=b"x",
        kind="ack",
        ticket_number=None,
    )


def test_outbox_due_lease_and_results(store: SqlStore) -> None:
    with store.transaction() as tx:
        item_id = tx.outbox.add(ack("o1@example.com"), NOW)
    with store.transaction() as tx:
        [due] = tx.outbox.due(NOW, 10)
        tx.outbox.lease([due.id], NOW + timedelta(seconds=60))
    with store.transaction() as tx:
        assert tx.outbox.due(NOW, 10) == []  # leased: another sender keeps off
        assert tx.outbox.release_leases() == 1
        assert [d.id for d in tx.outbox.due(NOW, 10)] == [item_id]
        tx.outbox.mark_retry(item_id, "451 later", NOW + timedelta(minutes=2))
    with store.transaction() as tx:
        assert tx.outbox.due(NOW + timedelta(minutes=1), 10) == []
        tx.outbox.mark_sent([item_id], NOW)
        assert tx.outbox.count("sent") == 1
        assert tx.outbox.automatic_budget("JAN@example.org", NOW - timedelta(hours=1)) == (False, 1)


@pytest.mark.postgres
def test_rows_one_sender_claims_are_skipped_by_another_until_its_commit(
    pg_database: str,
) -> None:
    """`due` locks what it reads (SKIP LOCKED), so a second instance claiming
    at the same moment takes the other rows, never these. (SQLite serialises
    writers instead: BEGIN IMMEDIATE.)"""
    store, other = SqlStore.open(pg_database), SqlStore.open(pg_database)
    migrate.ensure_head(store.engine)
    truncate_all(pg_database)
    with store.transaction() as tx:
        for n in range(4):
            tx.outbox.add(ack(f"o{n}@example.com"), NOW)
    try:
        with store.transaction() as first:
            claimed = [item.id for item in first.outbox.due(NOW, 2)]
            with other.transaction() as second:
                rest = [item.id for item in second.outbox.due(NOW, 10)]
        assert len(claimed) == 2 and len(rest) == 2
        assert not set(claimed) & set(rest)
    finally:
        store.close()
        other.close()


def test_timers_fire_once(store: SqlStore) -> None:
    with store.transaction() as tx:
        tx.tickets.create(new_ticket())
        tx.timers.set(1, "sla", "resolution:0", NOW)
        tx.timers.set(1, "sla", "resolution:0", NOW + timedelta(hours=1))  # moved, not doubled
    with store.transaction() as tx:
        assert tx.timers.due(NOW, 10) == []
        [timer] = tx.timers.due(NOW + timedelta(hours=1), 10)
        tx.timers.done(timer.id, NOW)
        tx.timers.set(1, "sla", "resolution:0", NOW)  # a fired timer stays fired
    with store.reading() as tx:
        assert tx.timers.due(NOW + timedelta(days=1), 10) == []


def test_the_signing_key_is_made_once_and_kept(store: SqlStore) -> None:
    key = store.signing_key()
    assert len(key) == 32
    assert store.signing_key() == key


def test_a_first_value_is_kept_whoever_offers_another(store: SqlStore) -> None:
    with store.transaction() as tx:
        assert tx.settings.first("message_id_key", "aa") == "aa"
    with store.transaction() as tx:
        assert tx.settings.first("message_id_key", "bb") == "aa"


def test_an_address_fails_again_after_it_was_cleared(store: SqlStore) -> None:
    with store.transaction() as tx:
        tx.addresses.mark_failing("Jan@Example.org", NOW, "550 no such user")
        tx.addresses.mark_failing("jan@example.org", NOW, "550 still no such user")
        assert tx.addresses.is_failing("jan@example.org")
        tx.addresses.clear("jan@example.org")
        assert not tx.addresses.is_failing("JAN@example.org")
        tx.addresses.mark_failing("jan@example.org", NOW + timedelta(days=1), "552 full")
        assert tx.addresses.is_failing("jan@example.org")


def test_clearing_an_address_that_is_not_failing_writes_nothing(store: SqlStore) -> None:
    """Every reply clears its sender: on PostgreSQL, setting NULL over NULL
    would write a new row version each time for anyone who ever bounced."""
    with store.transaction() as tx:
        tx.addresses.mark_failing("jan@example.org", NOW, "550 no such user")
        assert tx.addresses.clear("Jan@example.org") is True
        assert tx.addresses.clear("jan@example.org") is False
        assert tx.addresses.clear("never-failed@example.org") is False
        assert not tx.addresses.is_failing("jan@example.org")


@pytest.mark.postgres
def test_instances_starting_together_keep_one_signing_key(pg_database: str) -> None:
    """Two instances on a fresh database both find no key and offer one; the
    second waits for the first's commit and keeps its key, where a plain
    INSERT failed on the unique key (and that instance exited, 75, at start)."""
    first, second = SqlStore.open(pg_database), SqlStore.open(pg_database)
    migrate.ensure_head(first.engine)
    truncate_all(pg_database)
    offered = threading.Event()
    found: list[str] = []

    def offer_second() -> None:
        offered.wait(30)
        with second.transaction() as tx:
            found.append(tx.settings.first("message_id_key", "bb"))

    def waiting_on_a_lock() -> bool:
        with first.engine.connect() as conn:
            # This database only: other tests' servers wait on locks of their own.
            query = (
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            return conn.execute(text(query)).scalar_one() > 0

    other = threading.Thread(target=offer_second)
    other.start()
    try:
        with first.transaction() as tx:
            assert tx.settings.first("message_id_key", "aa") == "aa"
            offered.set()
            wait_until(waiting_on_a_lock, timeout=30)  # the second is in, behind this one
    finally:
        other.join(60)
        first.close()
        second.close()
    assert found == ["aa"]


def test_every_migration_walks_down_and_back_up(db_url: str) -> None:
    store = SqlStore.open(db_url)
    engine = store.engine
    try:
        head = migrate.head_revision(engine)
        assert head == migrate.HEAD  # what every start compares the database with
        migrate.downgrade(engine, "base")
        assert migrate.current_revision(engine) is None
        assert not set(inspect(engine).get_table_names()) & set(METADATA.tables)
        migrate.upgrade(engine)
        assert migrate.current_revision(engine) == head
        assert set(METADATA.tables) <= set(inspect(engine).get_table_names())
    finally:
        store.close()


def test_step_timers_keyed_by_position_are_keyed_by_share_after_the_upgrade(db_url: str) -> None:
    """Migration 0002; an older ladder may have left two timers at one share,
    and the one that fired is the one kept."""
    store = SqlStore.open(db_url)
    engine = store.engine
    try:
        with store.transaction() as tx:
            number = tx.tickets.create(new_ticket()).number
        migrate.downgrade(engine, "0001")
        old = [
            ("resolution:0", {"share": 0.75, "step": 0}, NOW),
            ("resolution:1", {"share": 1.0, "step": 1}, None),
            ("response:0", {"share": 0.75, "step": 0}, None),
            ("response:1", {"share": 0.75, "step": 1}, NOW),
            ("response:warning", {"share": 0.75, "event": "warning"}, NOW),
        ]
        with store.transaction() as tx:
            for key, detail, done_at in old:
                tx.conn.execute(
                    insert(TIMERS),
                    {"ticket_id": number, "kind": "sla", "key": key, "due_at": NOW}
                    | {"detail": detail, "done_at": done_at},
                )

        def keys() -> set[tuple[str, bool]]:
            with store.reading() as tx:
                return {(t.key, t.done_at is not None) for t in tx.timers.of_ticket(number)}

        migrate.upgrade(engine)
        assert keys() == {
            ("resolution:75%", True),
            ("resolution:100%", False),
            ("response:75%", True),
            ("response:warning", True),
        }
        migrate.downgrade(engine, "0001")
        assert keys() == {
            ("resolution:0", True),
            ("resolution:1", False),
            ("response:1", True),
            ("response:warning", True),
        }
    finally:
        store.close()


def test_the_migrations_create_exactly_the_models(db_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    store = SqlStore.open(db_url)
    try:
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), METADATA)
    finally:
        store.close()
    assert diff == []


def test_instances_starting_together_migrate_a_fresh_postgresql_database_once() -> None:
    import subprocess
    import sys

    from tests.support.db import create_database, drop_database, require_postgres
    from tests.support.proc import env

    server = require_postgres()
    url = create_database(server)
    code = f"from daemon.adapters.storage.store import SqlStore; SqlStore.open({url!r}).close()"
    try:
        procs = [
            subprocess.Popen([sys.executable, "-c", code], env=env(), stderr=subprocess.PIPE)
            for _ in range(4)
        ]
        results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
        for proc in procs:
            proc.stderr.close()  # type: ignore[union-attr]
        assert all(code == 0 for code, _ in results), results
    finally:
        drop_database(server, url)


def test_every_field_of_a_ticket_is_stored_and_read_back(store: SqlStore) -> None:
    """A save writes the whole row: each field, set away from its default,
    comes back as it was (its type included) after a create and a save."""
    at = datetime(2026, 12, 7, 9, 30, 15, 123456, tzinfo=UTC)
    ticket = new_ticket(
        status=Status.IN_PROGRESS,
        impact="high",
        urgency="low",
        priority="P2",
        language="pl",
        created_at=at,
        channel=Channel.CLI,
        escalated_by="sd@example.org",
        external_ref="SD-7",
        category="printing",
        group="second-line",
        assignee="agent@example.com",
        priority_explicit=True,
        rules_version="abc123",
        updated_at=at + timedelta(minutes=1),
        first_response_due=at + timedelta(hours=1),
        resolution_due=at + timedelta(hours=8),
        first_responded_at=at + timedelta(minutes=30),
        resolved_at=at + timedelta(hours=2),
        closed_at=at + timedelta(hours=3),
        restoration_due=at + timedelta(hours=4),
        restored_at=at + timedelta(hours=1, minutes=30),
        paused_at=at + timedelta(hours=5),
        paused_seconds=90.5,
        escalation_level=2,
        closure="confirmed",
        resolution_code="fixed",
        resolution_note="toner",
        last_public_at=at + timedelta(minutes=45),
        extra={"held": {"at": "2026-12-07"}},
        contract="ACME",
    )
    with store.transaction() as tx:
        number = tx.tickets.create(ticket).number
        other = tx.tickets.create(replace(ticket, number=0, subject="other")).number
        stored = tx.tickets.get(number)
    assert stored == replace(ticket, number=number)
    changed = replace(
        stored,
        subject="Drukarka znowu",
        merged_into=other,
        linked_to=other,
        parent=other,
        status=Status.RESOLVED,
        tags=[],
        extra={},
    )
    with store.transaction() as tx:
        tx.tickets.save(changed)
    with store.reading() as tx:
        again = tx.tickets.get(number)
    assert again == changed
    assert isinstance(again.status, Status) and isinstance(again.channel, Channel)
