"""Batch ingest's sender: a helper writes the files, the caller records them.

The helper never touches the database; the rows it writes were leased in the
caller's transaction and are marked sent in the next one, so a second sender
(a running daemon) skips them meanwhile and nothing is delivered twice. Here
the helper is a thread; `spocd ingest` runs it in a forked process (its
test is in tests/e2e/test_cli.py).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from daemon.service.delivery import BackgroundDelivery
from daemon.service.handoff import deliver_batch
from tests.support.flow import ingest
from tests.support.mail import make_mail


@pytest.fixture
def helper() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(1) as executor:
        yield executor


def background(app: Any, helper: ThreadPoolExecutor, claim: int = 1000) -> BackgroundDelivery:
    job = partial(deliver_batch, app.transport(), app.settings.helpdesk.address)
    return BackgroundDelivery(app.sender, helper, job, claim=claim)


def queue_mail(app: Any, count: int) -> int:
    """`count` new tickets, their mail queued and not sent; the number of rows."""
    for n in range(count):
        ingest(app, make_mail(sender=f"user{n}@example.org", subject=f"Problem {n}"), send=False)
    return outbox_states(app)["pending"]


def outbox_states(app: Any) -> dict[str, int]:
    with app.store.engine.connect() as conn:
        rows = conn.execute(text("SELECT state, count(*) FROM outbox GROUP BY state"))
        return {state: count for state, count in rows}


def delivered_files(app: Any) -> list[Path]:
    return sorted((app.settings.outgoing.maildir / "new").iterdir())


def test_every_claimed_mail_is_written_once_and_recorded_as_sent(
    app: Any, helper: ThreadPoolExecutor
) -> None:
    rows = queue_mail(app, 12)
    delivery = background(app, helper, claim=5)  # rounds: claim, write in the helper, record
    for _ in range(3):
        delivery.pump()
        assert delivery.pending is not None and len(delivery.pending[0]) <= 5
        delivery.pending[1].result()
    report = delivery.finish()
    assert report.sent == rows and not report.errors
    assert outbox_states(app) == {"sent": rows}
    files = delivered_files(app)
    assert len(files) == rows
    assert len({f.name.split(".")[1] for f in files}) == rows  # one file per Message-ID


def test_rows_being_written_are_leased_so_another_sender_skips_them(
    app: Any, helper: ThreadPoolExecutor
) -> None:
    rows = queue_mail(app, 4)
    delivery = background(app, helper)
    delivery.pump()
    assert app.sender.send_due().sent == 0  # the daemon's sender finds them leased
    report = delivery.finish()
    assert report.sent == rows
    assert len(delivered_files(app)) == rows


def test_a_failed_write_defers_the_rows_and_a_later_send_delivers_each_once(
    app: Any, clock: Any, helper: ThreadPoolExecutor
) -> None:
    rows = queue_mail(app, 3)
    new = app.settings.outgoing.maildir / "new"
    delivery = background(app, helper)
    shutil.rmtree(new)
    new.write_text("not a folder")  # every rename into new/ fails
    delivery.pump()
    report = delivery.finish()
    assert report.sent == 0 and report.deferred == rows
    assert all("maildir" in error for error in report.errors)
    assert outbox_states(app) == {"pending": rows}
    new.unlink()
    new.mkdir()
    clock.advance(timedelta(minutes=15))
    assert app.sender.send_due().sent == rows
    assert len(delivered_files(app)) == rows


def test_smtp_is_sent_in_line_each_mail_recorded_at_once(
    relay_app: Any, relay: Any, helper: ThreadPoolExecutor
) -> None:
    rows = queue_mail(relay_app, 3)
    delivery = background(relay_app, helper)
    assert delivery.executor is None  # no helper for a transport that is not idempotent
    delivery.pump()
    assert len(relay.caught) == rows
    assert outbox_states(relay_app) == {"sent": rows}
    assert delivery.finish().sent == rows


def test_a_helper_that_dies_hands_its_batch_and_the_rest_back_to_be_sent_here(
    app: Any, helper: ThreadPoolExecutor
) -> None:
    rows = queue_mail(app, 3)

    def dies(batch: list[Any]) -> Any:
        raise RuntimeError("killed")

    delivery = BackgroundDelivery(app.sender, helper, dies)
    delivery.pump()  # the batch goes to the helper, which dies with it
    assert delivery.executor is not None
    more = queue_mail(app, 2) - rows  # mail made while it was dying
    delivery.pump()  # learns of it: the batch is released, sending goes in line
    assert delivery.executor is None
    report = delivery.finish()
    assert report.sent == rows + more and not report.deferred
    assert outbox_states(app) == {"sent": rows + more}
    assert len(delivered_files(app)) == rows + more


def test_a_broken_pool_refusing_the_batch_sends_it_here(app: Any) -> None:
    rows = queue_mail(app, 3)
    pool = ThreadPoolExecutor(1)
    pool.shutdown()  # submit raises, as a broken process pool's does
    delivery = BackgroundDelivery(app.sender, pool, partial(deliver_batch, app.transport(), ""))
    delivery.pump()
    assert delivery.executor is None
    assert delivery.finish().sent == rows
    assert len(delivered_files(app)) == rows
