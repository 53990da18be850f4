"""`spocd run` as a real process, killed with SIGKILL again and again while
a thousand messages arrive over SMTP and in an IMAP mailbox.

SPEC §6: every message that got 250 (or was delivered to the mailbox) is
stored once and acknowledged once; a message whose 250 was lost in a kill is
sent again by its sender (as an MTA would) and is then a duplicate that
changes nothing; a mailbox message is moved only after its commit, so a kill
leaves it to be fetched again (and recognised); an acknowledgement may reach
the relay a second time only with the same Message-ID, and only when a kill
fell between the relay's 250 and our record of it.

Mail arrives through *sources* with one interface; the checks hold for all.
"""

from __future__ import annotations

import os
import queue
import signal
import smtplib
import subprocess
import threading
from collections import Counter, defaultdict
from pathlib import Path
from typing import Protocol

import pytest
from sqlalchemy import text

from daemon.adapters.storage.store import SqlStore
from daemon.cli.bench.dovecot import PASSWORD, Dovecot
from tests.conftest import write_config
from tests.support.dovecot import new_user, start_dovecot
from tests.support.mail import make_mail
from tests.support.proc import start_daemon, wait_for_port, wait_until
from tests.support.relay import Relay, free_port

pytestmark = pytest.mark.slow

SMTP_MESSAGES = 850
IMAP_MESSAGES = 150
KILLS = 4


class Source(Protocol):
    """Something that delivers mail to the daemon and knows what it accepted."""

    name: str

    def start(self) -> None: ...

    def accepted(self) -> int: ...

    def finish(self) -> tuple[list[str], int]:
        """Wait for every message to be accepted; (accepted ids, refusals seen)."""


class SmtpSource:
    """Clients that send `total` messages over SMTP, one connection each, and
    send a message again until it gets a 250 (as an MTA retries a 4xx or a
    dropped connection)."""

    name = "smtp"

    def __init__(self, port: int, total: int, threads: int = 4) -> None:
        self.port = port
        self.todo: queue.Queue[int] = queue.Queue()
        for n in range(total):
            self.todo.put(n)
        self.total = total
        self.done: list[str] = []
        self.refused = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    @staticmethod
    def message_id(n: int) -> str:
        return f"crash-{n}@client.example.org"

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                n = self.todo.get(timeout=0.1)
            except queue.Empty:
                continue
            message_id = self.message_id(n)
            sender = f"user{n}@example.org"  # the auto-reply limit is per address
            raw = make_mail(sender=sender, message_id=message_id, subject=f"Crash test {n}")
            try:
                with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as client:
                    client.sendmail(sender, ["helpdesk@example.com"], raw)
            except (OSError, smtplib.SMTPException):
                with self.lock:
                    self.refused += 1
                self.todo.put(n)  # try again, the same message
                self.stop.wait(0.05)
                continue
            with self.lock:
                self.done.append(message_id)

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def accepted(self) -> int:
        with self.lock:
            return len(self.done)

    def finish(self) -> tuple[list[str], int]:
        wait_until(lambda: self.accepted() >= self.total, timeout=240, interval=0.2)
        self.stop.set()
        for thread in self.threads:
            thread.join()
        return list(self.done), self.refused


class ImapSource:
    """Delivers `total` messages into an IMAP mailbox the daemon watches, a
    few at a time and spread over the run (so kills fall while it fetches);
    a message is accepted once the server's APPEND returned."""

    name = "imap"

    def __init__(
        self, dovecot: Dovecot, user: str, total: int, batch: int = 5, pause: float = 0.4
    ) -> None:
        self.dovecot = dovecot
        self.user = user
        self.total = total
        self.batch = batch
        self.pause = pause
        self.done: list[str] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def message_id(n: int) -> str:
        return f"crash-imap-{n}@client.example.org"

    def _run(self) -> None:
        for start in range(0, self.total, self.batch):
            numbers = range(start, min(start + self.batch, self.total))
            raws = [
                make_mail(
                    sender=f"imapuser{n}@example.org",
                    message_id=self.message_id(n),
                    subject=f"Crash test from the mailbox {n}",
                ).replace(b"\n", b"\r\n")
                for n in numbers
            ]
            self.dovecot.append(self.user, raws)
            with self.lock:
                self.done.extend(self.message_id(n) for n in numbers)
            threading.Event().wait(self.pause)

    def start(self) -> None:
        self.thread.start()

    def accepted(self) -> int:
        with self.lock:
            return len(self.done)

    def finish(self) -> tuple[list[str], int]:
        self.thread.join(timeout=240)
        return list(self.done), 0

    def drained(self) -> bool:
        """Every message moved out of the INBOX (which happens after its commit)."""
        return self.dovecot.count(self.user) == 0


def test_repeated_sigkill_while_1000_messages_arrive_loses_nothing_and_does_nothing_twice(
    tmp_path: Path, db_url: str, relay: Relay
) -> None:
    dovecot = start_dovecot()
    user = new_user()
    port = free_port()
    config = write_config(
        tmp_path,
        db_url,
        smtp={"port": port},
        imap={
            "enabled": True,
            "host": "127.0.0.1",
            "port": dovecot.port,
            "tls": "none",
            "username": user,
            "password": PASSWORD,
            "idle": True,
            "poll_seconds": 2,
            "timeout_seconds": 10,
        },
        outgoing={
            "transport": "smtp",
            "host": "127.0.0.1",
            "port": relay.port,
            "timeout_seconds": 2,
        },
    )
    log = tmp_path / "run.log"
    proc = start_daemon(config, log=log)
    try:
        wait_for_port("127.0.0.1", port, proc=proc)
        imap = ImapSource(dovecot, user, IMAP_MESSAGES)
        sources: list[Source] = [SmtpSource(port, SMTP_MESSAGES), imap]
        proc = _run_with_kills(sources, config, log, port, proc)
        _check(sources, imap, db_url, relay, proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        dovecot.close()


def _run_with_kills(
    sources: list[Source], config: Path, log: Path, port: int, proc: subprocess.Popen[bytes]
) -> subprocess.Popen[bytes]:
    """Start the sources; SIGKILL and restart the daemon at even steps of the
    mail accepted so far. Returns the daemon that runs at the end."""
    for source in sources:
        source.start()
    total = SMTP_MESSAGES + IMAP_MESSAGES

    def accepted() -> int:
        return sum(s.accepted() for s in sources)

    for threshold in range(1, KILLS + 1):
        wait_until(lambda t=threshold: accepted() >= t * total // (KILLS + 1), timeout=120)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc = start_daemon(config, log=log)
        wait_for_port("127.0.0.1", port, proc=proc)
    return proc


def _check(
    sources: list[Source],
    imap: ImapSource,
    db_url: str,
    relay: Relay,
    proc: subprocess.Popen[bytes],
) -> None:
    results = [source.finish() for source in sources]
    accepted_ids = [m for ids, _ in results for m in ids]
    refused = sum(r for _, r in results)
    total = SMTP_MESSAGES + IMAP_MESSAGES
    kills = KILLS

    store = SqlStore.open(db_url)
    try:

        def settled() -> bool:
            with store.reading() as tx:
                if tx.inbound.count("queued") or tx.outbox.count("pending"):
                    return False
            return imap.drained()

        wait_until(settled, timeout=120, interval=0.5)
        with store.engine.connect() as conn:
            stored = Counter(
                r[0]
                for r in conn.execute(
                    text("SELECT message_id FROM messages WHERE direction = 'in'")
                )
            )
            inbound_rows = conn.execute(text("SELECT count(*) FROM inbound")).scalar_one()
            failed = conn.execute(
                text("SELECT count(*) FROM inbound WHERE state <> 'done'")
            ).scalar_one()
            outbox = {
                r[0]: r[1] for r in conn.execute(text("SELECT message_id, state FROM outbox"))
            }
    finally:
        store.close()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0

    on_the_wire = Counter(str(c.message["Message-ID"]).strip("<>") for c in relay.caught)
    acks: dict[str, set[str]] = defaultdict(set)
    for caught in relay.caught:
        msg = caught.message
        if caught.rcpt_tos[0].startswith(("user", "imapuser")):
            acks[str(msg["In-Reply-To"]).strip("<>")].add(str(msg["Message-ID"]))
    lost = [m for m in accepted_ids if not stored.get(m)]
    duplicates = [m for m, n in stored.items() if n > 1]
    unexpected = [m for m in stored if m not in set(accepted_ids)]
    unacknowledged = [m for m in accepted_ids if not acks.get(m)]
    acked_twice = [m for m, ids in acks.items() if len(ids) > 1]
    resent = sum(n - 1 for n in on_the_wire.values())
    unsent = [m for m, state in outbox.items() if state != "sent" or not on_the_wire.get(m)]
    per_source = " ".join(
        f"{s.name}={len(ids)}" for s, (ids, _) in zip(sources, results, strict=True)
    )
    print(
        f"\nsources: {per_source} kills={kills} "
        f"messages sent={total} accepted={len(accepted_ids)} refused-and-retried={refused} "
        f"inbound rows={inbound_rows} stored={len(stored)} duplicates={len(duplicates)} "
        f"lost={len(lost)} | outbox={len(outbox)} relayed={sum(on_the_wire.values())} "
        f"acks={len(acks)} acknowledged-twice={len(acked_twice)} "
        f"resent-same-id={resent} unsent={len(unsent)}"
    )
    assert len(accepted_ids) == len(set(accepted_ids)) == total
    assert not lost and not duplicates and not unexpected
    assert failed == 0  # every queued row, re-deliveries included, was processed
    assert not unacknowledged and not acked_twice
    assert not unsent
    assert resent <= kills  # only a kill between the relay's 250 and our record
