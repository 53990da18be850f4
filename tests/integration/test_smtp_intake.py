"""The SMTP listener over real sockets: 250 only after the commit, precise codes."""

from __future__ import annotations

import smtplib
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from daemon.adapters.smtp.listener import SmtpIntake
from daemon.adapters.storage.store import SqlStore
from daemon.config import Settings
from tests.support.mail import make_mail
from tests.support.relay import free_port


@pytest.fixture
def store(settings: Settings) -> Iterator[SqlStore]:
    s = SqlStore.open(settings.database.url)
    yield s
    s.close()


def start(settings: Settings, store: SqlStore, **smtp: object) -> SmtpIntake:
    settings = replace(settings, smtp=replace(settings.smtp, port=free_port(), **smtp))
    intake = SmtpIntake(settings, store, lambda: datetime.now(UTC))
    intake.start()
    return intake


@pytest.fixture
def intake(settings: Settings, store: SqlStore) -> Iterator[SmtpIntake]:
    server = start(settings, store)
    yield server
    server.stop()


def queued(store: SqlStore) -> int:
    with store.reading() as tx:
        return tx.inbound.count("queued")


def test_250_means_the_message_is_already_committed(intake: SmtpIntake, store: SqlStore) -> None:
    raw = make_mail(message_id="committed@example.org")
    with smtplib.SMTP("127.0.0.1", intake.port) as client:
        client.sendmail("jan@example.org", ["helpdesk@example.com"], raw)
        # No wait: the reply came after the commit, so the row is visible now.
        with store.reading() as tx:
            [item] = tx.inbound.claim(datetime.max.replace(tzinfo=UTC), 10)
    assert item.raw.replace(b"\r\n", b"\n").rstrip() == raw.rstrip()
    assert item.envelope_from == "jan@example.org"
    assert item.envelope_to == ("helpdesk@example.com",)
    assert not item.escalation


def test_mail_to_an_escalation_address_is_marked_as_an_escalation(
    intake: SmtpIntake, store: SqlStore
) -> None:
    with smtplib.SMTP("127.0.0.1", intake.port) as client:
        client.sendmail("sd@example.com", ["escalations@example.com"], make_mail())
    with store.reading() as tx:
        [entry] = tx.inbound.entries(["queued"], 10)
        assert tx.inbound.get_item(entry.id).escalation  # type: ignore[union-attr]


def test_recipients_that_are_not_the_help_desk_are_refused_with_550(intake: SmtpIntake) -> None:
    with smtplib.SMTP("127.0.0.1", intake.port) as client:
        client.ehlo()
        client.mail("spammer@example.net")
        code, reply = client.rcpt("victim@elsewhere.example")
    assert code == 550
    assert b"relay nothing" in reply


def test_a_message_over_the_size_limit_gets_552(settings: Settings, store: SqlStore) -> None:
    server = start(settings, store, max_message_size=10_000)
    big = make_mail(body=("x" * 70 + "\n") * 300)
    try:
        with smtplib.SMTP("127.0.0.1", server.port) as client:
            # A client that announces the size is refused at MAIL FROM ...
            with pytest.raises(smtplib.SMTPSenderRefused) as early:
                client.sendmail("jan@example.org", ["helpdesk@example.com"], big)
            assert early.value.smtp_code == 552
            # ... and one that does not is refused after DATA.
            client.ehlo()
            assert client.mail("jan@example.org")[0] == 250
            assert client.rcpt("helpdesk@example.com")[0] == 250
            code, _ = client.data(big.replace(b"\n", b"\r\n"))
            assert code == 552
    finally:
        server.stop()
    assert queued(store) == 0


def test_clients_outside_the_accepted_networks_are_refused(
    settings: Settings, store: SqlStore
) -> None:
    server = start(settings, store, accept_from_networks=("10.0.0.0/8",))
    try:
        with smtplib.SMTP("127.0.0.1", server.port) as client:
            assert client.ehlo()[0] == 554
            assert client.helo()[0] == 554
            with pytest.raises(smtplib.SMTPException):
                client.sendmail("jan@example.org", ["helpdesk@example.com"], make_mail())
    finally:
        server.stop()
    assert queued(store) == 0


def test_a_storage_failure_answers_451_and_the_sender_can_retry(
    intake: SmtpIntake, store: SqlStore
) -> None:
    with store.engine.begin() as conn:
        conn.execute(text("ALTER TABLE inbound RENAME TO inbound_away"))
    raw = make_mail(message_id="retry-me@example.org")
    try:
        with (
            smtplib.SMTP("127.0.0.1", intake.port) as client,
            pytest.raises(smtplib.SMTPDataError) as refused,
        ):
            client.sendmail("jan@example.org", ["helpdesk@example.com"], raw)
        assert refused.value.smtp_code == 451
    finally:
        with store.engine.begin() as conn:
            conn.execute(text("ALTER TABLE inbound_away RENAME TO inbound"))
    with smtplib.SMTP("127.0.0.1", intake.port) as client:
        client.sendmail("jan@example.org", ["helpdesk@example.com"], raw)
    assert queued(store) == 1


def test_sixteen_concurrent_clients_each_get_250_and_each_message_is_stored_once(
    intake: SmtpIntake, store: SqlStore
) -> None:
    per_client = 10
    errors: list[BaseException] = []

    def client(n: int) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", intake.port) as smtp:
                for i in range(per_client):
                    smtp.sendmail(
                        "jan@example.org",
                        ["helpdesk@example.com"],
                        make_mail(message_id=f"c{n}-{i}@example.org"),
                    )
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert queued(store) == 16 * per_client
