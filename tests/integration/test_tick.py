"""`spocd tick` as cron runs it, in process: everything due, once."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from daemon.adapters.spool import spool_message, spooled
from daemon.config import load_settings
from daemon.service.wiring import App
from tests.conftest import write_config
from tests.support.clock import ManualClock
from tests.support.mail import make_mail


def test_a_spool_larger_than_one_share_is_taken_whole(
    tmp_path: Path, db_url: str, clock: ManualClock
) -> None:
    """Mail piped in while nothing ran: one tick takes all of it, a share at
    a time (before, one share a tick: 500 of a spool of 1,200, the rest left
    for the next ticks with nothing said)."""
    settings = load_settings(write_config(tmp_path, db_url))
    for n in range(8):
        spool_message(
            settings.paths.spool, make_mail(sender=f"user{n}@example.org", subject=f"Problem {n}")
        )
    app = App(settings, clock)
    app.SPOOL_SHARE = 3
    try:
        report = app.tick()
        assert report.spooled == 8
        assert [o.outcome for _, o in report.processed] == ["created"] * 8
        assert spooled(settings.paths.spool) == []
        with app.store.reading() as tx:
            assert tx.inbound.count("queued") == 0
            assert sorted(t.subject for t in tx.tickets.listing(None)) == [
                f"Problem {n}" for n in range(8)
            ]
    finally:
        app.close()


@pytest.mark.timeout(60)
def test_mail_piped_in_while_a_tick_runs_waits_for_the_next_tick(
    tmp_path: Path, db_url: str, clock: ManualClock
) -> None:
    """A tick takes what was spooled when it began. Mail that keeps arriving
    (a flood through the MTA pipe) must not keep it in its intake loop for
    ever: the sweeps and the sending come after it."""
    settings = load_settings(write_config(tmp_path, db_url))
    for n in range(8):
        spool_message(settings.paths.spool, make_mail(sender=f"user{n}@example.org"))
    app = App(settings, clock)
    app.SPOOL_SHARE = 3
    imported = app.import_spool
    arrivals = iter(range(100, 10_000))

    def import_as_more_arrives(paths: Sequence[Path] | None = None) -> int:
        spool_message(settings.paths.spool, make_mail(sender=f"user{next(arrivals)}@example.org"))
        return imported(paths)

    app.import_spool = import_as_more_arrives  # type: ignore[method-assign]
    try:
        report = app.tick()
        assert report.spooled == 8  # the 8 spooled at the start, in three shares
        assert report.sent.sent > 0  # it went on to send
        assert len(spooled(settings.paths.spool)) == 3  # the 3 that came: the next tick's
    finally:
        app.close()
