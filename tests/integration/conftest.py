"""Fixtures of the integration tests: Dovecot servers for the IMAP intake."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from daemon.cli.bench.dovecot import Dovecot
from tests.support.dovecot import new_user, start_dovecot


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
