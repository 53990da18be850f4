"""`spocd run`'s delivery helper: a spawned process writes the outgoing mail
into the Maildir while the daemon claims and records it. A helper that dies
or hangs costs nothing: its batch is released and written again (the same
files), the daemon sends meanwhile, and a fresh helper takes over later."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon.config import load_settings
from daemon.ports import SystemClock
from daemon.service.delivery import BackgroundDelivery, DeliveryProcess
from daemon.service.runner import Daemon
from daemon.service.wiring import App
from tests.conftest import write_config
from tests.integration.test_delivery import delivered_files, outbox_states, queue_mail
from tests.support.parser_jobs import hangs
from tests.support.proc import wait_until


def helper_pid(process: DeliveryProcess) -> int:
    pool = process.executor()
    pool.submit(os.getpid).result(timeout=60)
    [worker] = list(pool._processes.values())  # type: ignore[attr-defined]
    assert worker.pid is not None
    return worker.pid


def test_the_helper_process_writes_each_mail_once_and_the_daemon_records_it(app: Any) -> None:
    rows = queue_mail(app, 6)
    helper = DeliveryProcess(app.settings.outgoing.maildir, app.settings.helpdesk.address)
    try:
        delivery = BackgroundDelivery(app.sender, helper.executor(), helper.job, claim=4)
        assert helper_pid(helper) != os.getpid()
        while True:
            delivery.pump()
            if delivery.pending is None:
                break
            delivery.pending[1].result(timeout=60)
        assert delivery.executor is not None  # all of it went through the helper
        assert delivery.report.sent == rows and not delivery.report.errors
    finally:
        helper.close()
    assert outbox_states(app) == {"sent": rows}
    assert len(delivered_files(app)) == rows


@pytest.fixture
def daemon(tmp_path: Path, sqlite_url: str) -> Iterator[Daemon]:
    settings = load_settings(write_config(tmp_path, sqlite_url, smtp={"enabled": False}))
    runner = Daemon(App(settings, SystemClock()), None)
    runner.start()
    yield runner
    runner.shutdown()


def more_mail(daemon: Daemon, tickets: int) -> int:
    """`tickets` new tickets; every outbox row there is now (the daemon may
    already be sending the new ones)."""
    queue_mail(daemon.app, tickets)
    return sum(outbox_states(daemon.app).values())


def sent_everything(daemon: Daemon, rows: int) -> None:
    daemon.outbox_wake.set()
    wait_until(lambda: outbox_states(daemon.app) == {"sent": rows}, timeout=60)
    assert len(delivered_files(daemon.app)) == rows


def test_the_daemon_sends_through_its_helper_and_replaces_one_that_died(daemon: Daemon) -> None:
    helper = daemon.delivery_process
    assert helper is not None and daemon.delivery is not None
    rows = more_mail(daemon, 3)
    sent_everything(daemon, rows)
    first = helper_pid(helper)

    os.kill(first, signal.SIGKILL)  # the OOM killer, say
    rows = more_mail(daemon, 2)
    sent_everything(daemon, rows)  # its batch released and sent from the daemon
    assert daemon.delivery.executor is None

    daemon.delivery_retry_seconds = 0.0
    rows = more_mail(daemon, 5)
    sent_everything(daemon, rows)  # the round that notices the loss sends in line
    rows = more_mail(daemon, 7)
    sent_everything(daemon, rows)  # the next one has a fresh helper
    assert daemon.delivery.executor is not None
    assert helper_pid(helper) != first


def test_a_helper_that_hangs_is_killed_and_its_batch_written_again(
    tmp_path: Path, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # outgoing.timeout_seconds 1: a lease of 2 s, 1.6 s of it for the writing
    settings = load_settings(
        write_config(tmp_path, sqlite_url, smtp={"enabled": False}, outgoing={"timeout_seconds": 1})
    )
    runner = Daemon(App(settings, SystemClock()), None)
    runner.start()
    try:
        assert runner.delivery is not None and runner.delivery_process is not None
        runner.delivery.job = hangs
        sent_everything(runner, more_mail(runner, 2))  # by the daemon, after the kill
        assert "delivery helper hung; killed" in caplog.text
    finally:
        runner.shutdown()


def test_without_the_helper_the_daemon_sends_itself(tmp_path: Path, sqlite_url: str) -> None:
    settings = load_settings(
        write_config(
            tmp_path, sqlite_url, smtp={"enabled": False}, limits={"delivery_process": False}
        )
    )
    runner = Daemon(App(settings, SystemClock()), None)
    runner.start()
    try:
        assert runner.delivery is None
        sent_everything(runner, more_mail(runner, 2))
    finally:
        runner.shutdown()
