"""The private Dovecot of the IMAP tests (see `daemon.cli.bench.dovecot`).

Without Dovecot installed the tests that need it skip, saying why; in CI
(`CI=true`) a missing Dovecot fails them instead, so a broken CI image cannot
pass by skipping.
"""

from __future__ import annotations

import os

import pytest

from daemon.cli.bench.dovecot import MISSING, NOT_ROOT, PASSWORD, Dovecot, find_dovecot, new_user

__all__ = ["PASSWORD", "Dovecot", "dovecot_binary", "new_user", "start_dovecot"]


def dovecot_binary() -> str:
    """The dovecot binary; skips the test without one (or without root), fails it in CI."""
    found = find_dovecot()
    reason = MISSING if found is None else NOT_ROOT if os.geteuid() != 0 else None
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}: CI must provide it (.ci/run installs it)")
        pytest.skip(reason)
    assert found is not None
    return found


def start_dovecot(*, tls: bool = False) -> Dovecot:
    return Dovecot(tls=tls, binary=dovecot_binary()).start()
