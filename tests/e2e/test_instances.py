"""Several `spocd run` instances on one PostgreSQL database (issue 8).

Mail arrives over SMTP at all of them and in one IMAP mailbox that all of
them are configured for; every message is processed exactly once and
acknowledged once. When the instance holding the mailbox (and the sweeps)
dies, another takes them over within seconds, and nothing is lost or repeated.
"""

from __future__ import annotations

import os
import re
import signal
import smtplib
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from daemon.adapters.storage.engine import make_engine
from daemon.adapters.storage.migrate import ensure_head
from daemon.adapters.storage.store import SqlStore
from daemon.cli.bench.dovecot import PASSWORD
from daemon.config import load_settings
from daemon.service.wiring import App
from tests.conftest import write_config
from tests.support.db import truncate_all
from tests.support.dovecot import new_user, start_dovecot
from tests.support.flow import ingest
from tests.support.mail import make_mail
from tests.support.proc import spocd, start_daemon, wait_for_port, wait_until
from tests.support.relay import Relay, free_port

pytestmark = pytest.mark.slow
SMTP_MESSAGES = 2000
IMAP_MESSAGES = 200
INSTANCES = 3


def holders(instances: list[Any], lock: str) -> list[int]:
    pattern = re.compile(rf'took over" lock={re.escape(lock)}\b'.encode())
    return [
        i
        for i, (proc, _, log) in enumerate(instances)
        if proc.poll() is None and pattern.search(log.read_bytes())
    ]


def imap_mail(n: int, tag: str) -> bytes:
    return make_mail(
        sender=f"imap{tag}{n}@example.org",
        message_id=f"imap-{tag}-{n}@example.org",
        subject=f"From the mailbox {tag} {n}",
    ).replace(b"\n", b"\r\n")


def test_three_instances_share_the_work_and_survive_the_loss_of_one(
    tmp_path: Path, pg_database: str, relay: Relay
) -> None:
    engine = make_engine(pg_database)
    ensure_head(engine)
    engine.dispose()
    truncate_all(pg_database)
    dovecot = start_dovecot()
    user = new_user()
    dovecot.append(user, [imap_mail(n, "a") for n in range(IMAP_MESSAGES)])
    imap = {
        "name": "support",
        "enabled": True,
        "host": "127.0.0.1",
        "port": dovecot.port,
        "tls": "none",
        "username": user,
        "password": PASSWORD,
        "idle": True,
        "poll_seconds": 5,
        "timeout_seconds": 10,
    }
    instances = []
    try:
        for n in range(INSTANCES):
            folder = tmp_path / f"i{n}"
            folder.mkdir()
            port = free_port()
            config = write_config(
                folder,
                pg_database,
                smtp={"port": port},
                imap=imap,
                outgoing={
                    "transport": "smtp",
                    "host": "127.0.0.1",
                    "port": relay.port,
                    "timeout_seconds": 5,
                },
            )
            log = folder / "run.log"
            instances.append((start_daemon(config, log=log), port, log))
        for proc, port, _ in instances:
            wait_for_port("127.0.0.1", port, proc=proc)
        _send_over_smtp(instances)

        # The mailbox and the sweeps are each held by exactly one instance.
        wait_until(lambda: len(holders(instances, "mailbox:support")) == 1, timeout=20)
        wait_until(lambda: len(holders(instances, "sweeps")) == 1, timeout=20)
        _settled(pg_database, SMTP_MESSAGES + IMAP_MESSAGES)

        dead = holders(instances, "mailbox:support")[0]
        held_sweeps = dead in holders(instances, "sweeps")
        os.kill(instances[dead][0].pid, signal.SIGKILL)
        instances[dead][0].wait()
        wait_until(lambda: len(holders(instances, "mailbox:support")) == 1, timeout=10)
        if held_sweeps:
            wait_until(lambda: len(holders(instances, "sweeps")) == 1, timeout=10)
        dovecot.append(user, [imap_mail(n, "b") for n in range(50)])
        _settled(pg_database, SMTP_MESSAGES + IMAP_MESSAGES + 50)

        per_message, tickets = _stored(pg_database)
        acks = Counter(
            str(c.message["In-Reply-To"]).strip("<>")
            for c in relay.caught
            if c.rcpt_tos[0].startswith(("user", "imap"))
        )
        total = SMTP_MESSAGES + IMAP_MESSAGES + 50
        print(
            f"\nmessages={total} stored={len(per_message)} tickets={tickets} "
            f"acks={sum(acks.values())} killed=instance {dead}"
        )
        assert len(per_message) == total and set(per_message.values()) == {1}
        assert tickets == total
        assert len(acks) == total and set(acks.values()) == {1}
        assert dovecot.count(user) == 0  # every message moved out of the INBOX
    finally:
        for proc, _, _ in instances:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, _, _ in instances:
            if proc.poll() is None:
                assert proc.wait(timeout=60) == 0
        dovecot.close()


def _send_over_smtp(instances: list[Any]) -> None:
    errors: list[BaseException] = []

    def client(index: int) -> None:
        port = instances[index % INSTANCES][1]
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
                for i in range(index, SMTP_MESSAGES, 16):
                    smtp.sendmail(
                        f"user{i}@example.org",
                        ["helpdesk@example.com"],
                        make_mail(
                            sender=f"user{i}@example.org", message_id=f"multi-{i}@example.org"
                        ),
                    )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def _settled(url: str, count: int) -> None:
    store = SqlStore.open(url)
    try:

        def done() -> bool:
            with store.reading() as tx:
                return tx.inbound.count("done") == count and tx.outbox.count("pending") == 0

        wait_until(done, timeout=240)
    finally:
        store.close()


def _stored(url: str) -> tuple[Counter[str], int]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            per_message = Counter(
                mid
                for (mid,) in conn.execute(
                    text("SELECT message_id FROM messages WHERE direction = 'in'")
                )
            )
            tickets = conn.execute(text("SELECT count(*) FROM tickets")).scalar_one()
    finally:
        engine.dispose()
    return per_message, tickets


SLOW_MAILS = 12  # tickets: an ack and a notice to the group each


def test_run_and_tick_beside_it_send_each_mail_once_through_a_slow_relay(
    tmp_path: Path, db_url: str
) -> None:
    """A relay taking 0.3 s a mail, a lease of 2 s (twice `timeout_seconds`):
    a batch leased at once would outlast its lease, and `spocd tick` (or a
    second instance, on PostgreSQL) would send it again."""
    relay = Relay().start()
    relay.slow(0.3)
    outgoing = {
        "transport": "smtp",
        "host": "127.0.0.1",
        "port": relay.port,
        "timeout_seconds": 1,
    }
    configs = []
    for n in range(2 if db_url.startswith("postgresql") else 1):  # SQLite: one instance
        folder = tmp_path / f"i{n}"
        folder.mkdir()
        configs.append(write_config(folder, db_url, smtp={"port": free_port()}, outgoing=outgoing))
    app = App(load_settings(configs[0]))
    try:
        for n in range(SLOW_MAILS):
            ingest(app, make_mail(sender=f"user{n}@example.org"), send=False)
        with app.store.reading() as tx:
            rows = tx.outbox.count("pending")
    finally:
        app.close()
    assert rows == 2 * SLOW_MAILS
    instances = []
    try:
        for config in configs:
            log = config.parent / "run.log"
            instances.append(start_daemon(config, log=log))
        ticks = 0
        while ticks < 10 and not _all_sent(db_url):
            ticked = spocd("tick", config=configs[0], timeout=120)
            assert ticked.returncode == 0, ticked.stderr.decode()
            ticks += 1
        wait_until(lambda: _all_sent(db_url), timeout=60)
        ids = Counter(str(c.message["Message-ID"]).strip("<>") for c in relay.caught)
        assert len(ids) == rows
        assert sum(ids.values()) == rows, [mid for mid, n in ids.items() if n > 1]
    finally:
        for proc in instances:
            proc.send_signal(signal.SIGTERM)
        for proc in instances:
            assert proc.wait(timeout=60) == 0
        relay.stop()


def _all_sent(url: str) -> bool:
    store = SqlStore.open(url)
    try:
        with store.reading() as tx:
            return tx.outbox.count("pending") == 0
    finally:
        store.close()
