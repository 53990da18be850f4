"""SPEC §6 under real faults: a locked database, a full disk, a pipeline stage
that fails, a relay that is down for an hour or refuses for good.

Nothing here is mocked: the lock is held by another connection, the disk is
a small tmpfs that really fills up, the failure is a template an admin broke,
the relay is a real SMTP server that refuses or is gone. Time is a ManualClock.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import smtplib
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from daemon.adapters.smtp.listener import SmtpIntake
from daemon.adapters.storage.store import SqlStore
from daemon.config import Settings, load_settings
from daemon.core.domain import Intake, OutgoingMail
from daemon.ports import QueuedRaw
from daemon.service.wiring import App
from tests.conftest import ROOT, write_config
from tests.support.clock import ManualClock
from tests.support.flow import events, ingest
from tests.support.mail import make_mail
from tests.support.proc import env as proc_env
from tests.support.proc import spocd
from tests.support.relay import Relay, free_port

HELPDESK = "helpdesk@example.com"


def queued(store: SqlStore) -> int:
    with store.reading() as tx:
        return tx.inbound.count("queued")


@contextmanager
def listening(settings: Settings, store: SqlStore) -> Iterator[SmtpIntake]:
    settings = replace(settings, smtp=replace(settings.smtp, port=free_port()))
    intake = SmtpIntake(settings, store, lambda: datetime.now(UTC))
    intake.start()
    try:
        yield intake
    finally:
        intake.stop()


# --- a locked database --------------------------------------------------------------------


@contextmanager
def lock_held(db_url: str) -> Iterator[None]:
    """Another process's write lock: SQLite's exclusive transaction, or a
    PostgreSQL table lock that blocks every INSERT into the inbound queue."""
    if db_url.startswith("sqlite"):
        conn = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            conn.rollback()
            conn.close()
        return
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("LOCK TABLE inbound IN EXCLUSIVE MODE"))
            yield
    finally:
        engine.dispose()


def test_a_locked_database_gets_451_within_the_busy_timeout_and_the_retry_is_kept(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    store = SqlStore.open(settings.database.url, busy_timeout_ms=300)
    raw = make_mail(message_id="while-locked@example.org")
    try:
        with listening(settings, store) as intake, smtplib.SMTP("127.0.0.1", intake.port) as client:
            with lock_held(settings.database.url):
                started = time.monotonic()
                with pytest.raises(smtplib.SMTPDataError) as refused:
                    client.sendmail("jan@example.org", [HELPDESK], raw)
                waited = time.monotonic() - started
            assert refused.value.smtp_code == 451
            assert 0.25 <= waited < 5, waited  # the busy timeout, not the client's patience
            assert "database locked" in caplog.text
            # The sender retries once the lock is gone: stored, once.
            client.sendmail("jan@example.org", [HELPDESK], raw)
        assert queued(store) == 1
    finally:
        store.close()


def test_a_writer_of_this_process_holding_the_lock_gets_451_within_the_busy_timeout(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A slow message in the worker holds the in-process writer turn (SQLite):
    SMTP waits for it no longer than busy_timeout_ms, then answers 451."""
    store = SqlStore.open(f"sqlite:///{tmp_path / 'turns.db'}", busy_timeout_ms=300)
    holding, release = threading.Event(), threading.Event()

    def slow_writer() -> None:
        with store.transaction():
            holding.set()
            release.wait(30)

    writer = threading.Thread(target=slow_writer)
    writer.start()
    raw = make_mail(message_id="while-busy@example.org")
    try:
        assert holding.wait(10)
        with listening(settings, store) as intake, smtplib.SMTP("127.0.0.1", intake.port) as client:
            started = time.monotonic()
            with pytest.raises(smtplib.SMTPDataError) as refused:
                client.sendmail("jan@example.org", [HELPDESK], raw)
            waited = time.monotonic() - started
            release.set()
            writer.join()
            assert refused.value.smtp_code == 451
            assert 0.25 <= waited < 5, waited
            assert "database locked" in caplog.text
            client.sendmail("jan@example.org", [HELPDESK], raw)  # the retry, after the turn
            with store.transaction() as tx:  # turns given up never stall the next writer
                tx.settings.put("probe", "1")
        assert queued(store) == 1
    finally:
        release.set()
        writer.join()
        store.close()


def test_a_slow_message_is_parsed_before_the_write_lock_so_smtp_gets_its_250(
    settings: Settings, clock: ManualClock
) -> None:
    """A second or more of parsing and sanitising (HTML, no text part) happens
    outside the write transaction: a commit meanwhile is not kept waiting."""
    settings = replace(settings, database=replace(settings.database, busy_timeout_ms=300))
    app = App(settings, clock)
    html = ("<div>" * 50 + "word " + "</div>" * 50) * 3600  # within the guard: sanitised
    slow = (
        "From: ola@example.org\r\nTo: helpdesk@example.com\r\nSubject: slow\r\n"
        "Message-ID: <slow@example.org>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/html; charset=utf-8\r\n\r\n" + html
    ).encode()
    with app.store.transaction() as tx:
        item_id = tx.inbound.add(QueuedRaw(raw=slow, intake=Intake.INGEST), clock.now())
    outcomes: list[str] = []
    worker = threading.Thread(
        target=lambda: outcomes.append(app.inbound.process_item(item_id).outcome)
    )
    try:
        with (
            listening(settings, app.store) as intake,
            smtplib.SMTP("127.0.0.1", intake.port) as client,
        ):
            worker.start()
            time.sleep(0.3)  # the worker is well into parsing the slow message
            client.sendmail("jan@example.org", [HELPDESK], make_mail(message_id="meanwhile@x.org"))
        worker.join()
        assert outcomes == ["created"]
        assert queued(app.store) == 1  # the one SMTP took meanwhile
    finally:
        if worker.is_alive():
            worker.join()
        app.close()


# --- a full disk --------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 4 MB filesystem (tmpfs) that fills up; needs root (CAP_SYS_ADMIN).

    Where mounting is not allowed (an unprivileged container) the test is
    skipped, saying why: no fake ENOSPC stands in for a real one.
    """
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(path: Path) -> None:
    with open(path, "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError:
            pass


def test_a_full_disk_while_storing_answers_451_with_a_clear_log_line(
    small_disk: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{small_disk / 'spocd.db'}"
    settings = load_settings(write_config(tmp_path, url))
    store = SqlStore.open(url)
    raw = make_mail(message_id="disk-full@example.org", body=("x" * 70 + "\n") * 25_000)
    raw = raw.replace(b"\n", b"\r\n")  # smtplib sends bytes as they are
    try:
        with listening(settings, store) as intake:
            fill(small_disk / "filler")
            with (
                smtplib.SMTP("127.0.0.1", intake.port) as client,
                pytest.raises(smtplib.SMTPDataError) as refused,
            ):
                client.sendmail("jan@example.org", [HELPDESK], raw)
            assert refused.value.smtp_code == 451
            [line] = [
                r for r in caplog.records if r.name == "spocd.smtp" and r.levelname == "ERROR"
            ]
            assert "disk full" in line.getMessage() and "451" in line.getMessage()
            assert "full" in line.__dict__["error"]
            (small_disk / "filler").unlink()  # the admin frees space; the sender retries
            with smtplib.SMTP("127.0.0.1", intake.port) as client:
                client.sendmail("jan@example.org", [HELPDESK], raw)
        assert queued(store) == 1
    finally:
        store.close()


# --- the pipeline retries ---------------------------------------------------------------


def broken_templates(tmp_path: Path) -> Path:
    """The shipped templates with an admin's mistake that only rendering finds."""
    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", templates)
    ack = templates / "en" / "ack.txt"
    ack.write_text(ack.read_text() + "{{ ticket.no_such_field }}\n")
    return templates


def test_a_message_that_fails_is_retried_with_backoff_then_kept_for_replay(
    tmp_path: Path, db_url: str, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    templates = broken_templates(tmp_path)
    config = write_config(tmp_path, db_url, paths={"templates": str(templates)})
    app = App(load_settings(config), clock)
    try:
        outcome = ingest(app, make_mail(message_id="fails@example.org"))
        assert outcome.outcome == "failed"
        # the admin's template: its file and fault are the message, no traceback
        [failed] = [r for r in caplog.records if r.getMessage() == "processing failed"]
        assert "no_such_field" in failed.__dict__["error"] and failed.exc_info is None
        for delay in (timedelta(seconds=30), timedelta(minutes=5), timedelta(minutes=30)):
            clock.advance(delay - timedelta(seconds=1))
            assert app.inbound.drain() == []  # not before its time
            clock.advance(timedelta(seconds=1))
            [(item_id, again)] = app.inbound.drain()
            assert again.outcome == "failed"
        with app.store.reading() as tx:
            entry = tx.inbound.entry(item_id)
            assert tx.tickets.listing(None) == []  # each attempt was rolled back whole
            assert tx.outbox.count("pending") == 0
        assert entry is not None
        assert (entry.state, entry.stage, entry.attempts) == ("failed", "act", 4)
        assert "UndefinedError" in (entry.reason or "")
        clock.advance(timedelta(days=1))
        assert app.inbound.drain() == []  # failed for good: left for a person
    finally:
        app.close()

    listed = spocd("queue", "list", "--json", config=config)
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert (row["id"], row["state"], row["stage"]) == (item_id, "failed", "act")
    assert "no_such_field" in row["reason"]

    (templates / "en" / "ack.txt").write_text((ROOT / "templates/en/ack.txt").read_text())
    retried = spocd("queue", "retry", str(item_id), config=config)
    assert retried.returncode == 0, retried.stderr
    # (PostgreSQL's sequence may have skipped the numbers the failed attempts took.)
    assert re.fullmatch(rf"{item_id}: created HD-\d+", retried.stdout.decode().strip())


# --- the relay ------------------------------------------------------------------------------


def smtp_app(settings: Settings, clock: ManualClock, port: int) -> App:
    out = replace(settings.outgoing, transport="smtp", host="127.0.0.1", port=port)
    return App(replace(settings, outgoing=out), clock)


def outbox_ids(app: App) -> list[str]:
    with app.store.engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT message_id FROM outbox"))]


@pytest.mark.parametrize("outage", ["refuses-451", "stopped"])
def test_a_relay_down_for_an_hour_loses_nothing_and_then_sends_each_mail_once(
    settings: Settings, clock: ManualClock, outage: str
) -> None:
    port = free_port()
    relay = Relay(port).start()
    if outage == "refuses-451":
        relay.refuse("451 4.3.2 System not accepting network messages")
    else:
        relay.stop()
    app = smtp_app(settings, clock, port)
    try:
        for n in range(4):
            ingest(app, make_mail(sender=f"user{n}@example.org", subject=f"Problem {n}"))
        expected = outbox_ids(app)
        assert len(expected) == 8  # an ack and a notice to the group for each
        tries = 0
        for _ in range(60):  # an hour, a minute at a time
            clock.advance(timedelta(minutes=1))
            report = app.sender.send_due()
            tries += report.deferred
            assert report.sent == report.failed == 0
        with app.store.reading() as tx:
            assert tx.outbox.count("pending") == len(expected)  # kept, all of it
        assert tries > len(expected) * 3  # retried with backoff all along
        if outage == "stopped":
            relay = Relay(port).start()
        relay.refuse(None)
        clock.advance(timedelta(minutes=10))  # the longest backoff
        app.sender.send_due()
        clock.advance(timedelta(minutes=10))
        assert app.sender.send_due().sent == 0  # nothing left to send twice
        with app.store.reading() as tx:
            assert tx.outbox.count("sent") == len(expected)
        caught = Counter(str(c.message["Message-ID"]).strip("<>") for c in relay.caught)
        assert caught == Counter(expected)  # each once
    finally:
        app.close()
        relay.stop()


def test_a_permanent_refusal_fails_the_row_and_is_recorded_on_the_ticket(
    relay_app: App, relay: Relay
) -> None:
    relay.refuse("554 5.7.1 Rejected by policy")
    outcome = ingest(relay_app, make_mail(sender="jan@example.org", subject="VPN"))
    with relay_app.store.reading() as tx:
        assert tx.outbox.count("failed") == 2 and tx.outbox.count("pending") == 0
    failed = [e for e in events(relay_app, outcome.ticket) if e.type == "mail_failed"]
    assert {e.detail["kind"] for e in failed} == {"ack", "agent_new"}
    assert all("554" in e.detail["error"] for e in failed)
    relay.refuse(None)
    relay_app.clock.advance(timedelta(hours=1))  # type: ignore[attr-defined]
    assert relay_app.sender.send_due().sent == 0  # a failed row is not retried
    assert relay.caught == []


def _reply_row(
    app: App, ticket: int, recipients: tuple[str, ...], mid: str = "reply-1@example.com"
) -> None:
    with app.store.transaction() as tx:
        tx.outbox.add(
            OutgoingMail(
                message_id=mid,
                recipients=recipients,
                raw=f"Message-ID: <{mid}>\r\nSubject: Re: VPN\r\n\r\nDone.\r\n".encode(),
                kind="agent_reply",
                ticket_number=ticket,
                automatic=False,
            ),
            app.clock.now(),
        )


def test_a_relay_refusing_some_recipients_reports_each_and_retries_the_deferred_alone(
    relay_app: App, relay: Relay, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="spocd.worker")
    outcome = ingest(relay_app, make_mail(sender="jan@example.org", subject="VPN"))
    before = len(relay.caught)
    relay.refuse_rcpt("jan@example.org", "550 5.1.1 <jan@example.org>: no such user")
    relay.refuse_rcpt("later@example.org", "450 4.2.1 mailbox busy")
    _reply_row(
        relay_app, outcome.ticket, ("jan@example.org", "ops@example.org", "later@example.org")
    )

    report = relay_app.sender.send_due()
    assert report.deferred == 1 and report.sent == report.failed == 0
    assert [c.rcpt_tos for c in relay.caught[before:]] == [["ops@example.org"]]
    failed = [e for e in events(relay_app, outcome.ticket) if e.type == "mail_failed"]
    assert [(e.detail["address"], e.detail["answer"]) for e in failed] == [
        ("jan@example.org", "550 5.1.1 <jan@example.org>: no such user")
    ]
    with relay_app.store.reading() as tx:
        assert tx.addresses.is_failing("jan@example.org")  # the requester, as a bounce would
        assert tx.outbox.count("pending") == 1

    relay.refuse_rcpt("later@example.org", None)
    clock.advance(timedelta(minutes=2))
    report = relay_app.sender.send_due()
    assert report.sent == 1 and not report.errors
    assert [c.rcpt_tos for c in relay.caught[before:]] == [
        ["ops@example.org"],
        ["later@example.org"],
    ]
    clock.advance(timedelta(minutes=20))
    assert relay_app.sender.send_due().sent == 0
    with relay_app.store.reading() as tx:
        assert tx.outbox.count("pending") == 0 and tx.outbox.count("failed") == 0
    failed = [e for e in events(relay_app, outcome.ticket) if e.type == "mail_failed"]
    assert len(failed) == 1  # reported once
    logged = [r for r in caplog.records if r.getMessage() == "recipient refused"]
    assert [r.address for r in logged] == ["jan@example.org"]  # type: ignore[attr-defined]
    with relay_app.store.engine.connect() as conn:
        answers = conn.execute(
            text("SELECT rcpt_results FROM outbox WHERE message_id = 'reply-1@example.com'")
        ).scalar_one()
    answers = json.loads(answers) if isinstance(answers, str) else answers
    assert {a: r["state"] for a, r in answers.items()} == {
        "jan@example.org": "refused",
        "ops@example.org": "sent",
        "later@example.org": "sent",
    }


def test_a_relay_refusing_every_recipient_for_good_fails_the_row(
    relay_app: App, relay: Relay
) -> None:
    outcome = ingest(relay_app, make_mail(sender="jan@example.org", subject="VPN"))
    before = len(relay.caught)
    for address in ("jan@example.org", "ops@example.org"):
        relay.refuse_rcpt(address, f"550 5.1.1 <{address}>: no such user")
    _reply_row(relay_app, outcome.ticket, ("jan@example.org", "ops@example.org"))
    report = relay_app.sender.send_due()
    assert report.failed == 1 and report.sent == 0
    assert relay.caught[before:] == []
    failed = [e for e in events(relay_app, outcome.ticket) if e.type == "mail_failed"]
    assert sorted(e.detail["address"] for e in failed) == ["jan@example.org", "ops@example.org"]
    with relay_app.store.reading() as tx:
        assert tx.addresses.is_failing("jan@example.org")
        assert not tx.addresses.is_failing("ops@example.org")  # not the requester


def test_a_send_outlasting_its_lease_is_cut_off_and_retried_and_the_next_mail_goes(
    settings: Settings, clock: ManualClock
) -> None:
    """timeout_seconds = 1: a lease of 2 s, a send cut off after 1.6 s. Each
    RCPT is answered in 0.7 s (never late), but three of them outlast the lease."""
    relay = Relay().start()
    out = replace(
        settings.outgoing, transport="smtp", host="127.0.0.1", port=relay.port, timeout_seconds=1
    )
    app = App(replace(settings, outgoing=out), clock)
    try:
        outcome = ingest(app, make_mail(sender="jan@example.org", subject="VPN"))
        before = len(relay.caught)
        _reply_row(app, outcome.ticket, ("a@example.org", "b@example.org", "c@example.org"))
        _reply_row(app, outcome.ticket, ("d@example.org",), mid="reply-2@example.com")
        relay.slow_rcpt(0.7)
        report = app.sender.send_due()
        assert (report.sent, report.deferred) == (1, 1)
        assert "cut off" in report.errors[0]
        assert [c.rcpt_tos for c in relay.caught[before:]] == [["d@example.org"]]
        relay.slow_rcpt(0)
        clock.advance(timedelta(minutes=2))
        assert app.sender.send_due().sent == 1
        caught = Counter(str(c.message["Message-ID"]).strip("<>") for c in relay.caught)
        assert caught == Counter(outbox_ids(app))  # each once
    finally:
        app.close()
        relay.stop()


# --- a rules file that would exhaust memory -------------------------------------------------

_RELOAD = """
import resource, sys
from pathlib import Path
limit = 1536 * 1024 * 1024  # a pattern that slips through fails here, not on the machine
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from daemon.config import load_settings
from daemon.core.errors import ConfigError
from daemon.service.wiring import App
app = App(load_settings(Path(sys.argv[1])))
before = app.runtime.rules.version
rules = Path(sys.argv[2])
rules.write_text(rules.read_text().replace("(?i)^\\\\s*yes", sys.argv[3], 1))
try:
    app.reload()
except ConfigError as exc:
    print("refused:", exc)
print("kept" if app.runtime.rules.version == before else "replaced")
app.close()
"""


def test_a_reload_refuses_a_pattern_that_would_exhaust_memory_and_keeps_the_old_rules(
    tmp_path: Path, sqlite_url: str
) -> None:
    rules = tmp_path / "rules.yaml"
    shutil.copy(ROOT / "rules.yaml", rules)
    assert "(?i)^\\s*yes" in rules.read_text()
    config = write_config(tmp_path, sqlite_url, paths={"rules": str(rules)})
    bomb = "(((a{1000}){1000}){1000}){1000}"
    done = subprocess.run(
        [sys.executable, "-c", _RELOAD, str(config), str(rules), bomb],
        capture_output=True,
        timeout=120,
        env=proc_env(),
        check=False,
    )
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert (
        "refused:" in out and "regex refused" in out and "rule 'Newsletters and bulk mail'" in out
    ), out
    assert out.rstrip().endswith("kept")
