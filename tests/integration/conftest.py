"""Fixtures of the integration tests: Dovecot servers for the IMAP intake,
SMTP listeners on a SQLite store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from daemon.adapters.smtp.listener import SmtpIntake
from daemon.adapters.storage.store import SqlStore
from daemon.cli.bench.dovecot import Dovecot
from daemon.config import load_settings
from tests.conftest import write_config
from tests.support.dovecot import new_user, start_dovecot
from tests.support.relay import free_port


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    """One Dovecot shared by the tests; each test takes a mailbox of its own."""
    server = start_dovecot()
    yield server
    server.close()


@pytest.fixture
def own_dovecot() -> Iterator[Callable[..., Dovecot]]:
    """Private Dovecot instances, for tests that stop them, turn on TLS or
    fail logins (Dovecot slows every login from an address after failures)."""
    started: list[Dovecot] = []

    def start(*, tls: bool = False) -> Dovecot:
        server = start_dovecot(tls=tls)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


@pytest.fixture
def user() -> str:
    """A fresh, empty mailbox on any of the test Dovecots."""
    return new_user()


@pytest.fixture
def store(sqlite_url: str) -> Iterator[SqlStore]:
    """The SQLite store an SMTP listener of `listen` writes to."""
    s = SqlStore.open(sqlite_url)
    yield s
    s.close()


@pytest.fixture
def listen(tmp_path: Path, sqlite_url: str, store: SqlStore) -> Iterator[Callable[..., SmtpIntake]]:
    """`listen(**smtp_keys)` starts a listener on the test's SQLite store, its
    settings read from a spocd.toml so the config keys are exercised too."""
    started: list[SmtpIntake] = []

    def start(**smtp: object) -> SmtpIntake:
        config = write_config(tmp_path, sqlite_url, smtp={"port": free_port(), **smtp})
        intake = SmtpIntake(load_settings(config), store, lambda: datetime.now(UTC))
        intake.start()
        started.append(intake)
        return intake

    yield start
    for intake in started:
        intake.stop()


def queued(store: SqlStore) -> int:
    """Messages waiting in the inbound queue."""
    with store.reading() as tx:
        return tx.inbound.count("queued")
