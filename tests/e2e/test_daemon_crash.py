"""`spocd run` as a real process, killed with SIGKILL again and again while
a thousand messages arrive.

SPEC §6: every message that got 250 is stored once and acknowledged once; a
message whose 250 was lost in a kill is sent again by its sender (as an MTA
would) and is then a duplicate that changes nothing; an acknowledgement may
reach the relay a second time only with the same Message-ID, and only when
a kill fell between the relay's 250 and our record of it.

Mail arrives through *sources*. SMTP is here; an IMAP source (APPEND to a
mailbox the daemon polls, "accepted" once APPEND returns) plugs in beside
it with the same interface, and every check below holds for it unchanged.
"""

from __future__ import annotations

import os
import queue
import signal
import smtplib
import threading
from collections import Counter, defaultdict
from pathlib import Path
from typing import Protocol

import pytest
from sqlalchemy import text

from daemon.storage.store import SqlStore
from tests.conftest import write_config
from tests.support.mail import make_mail
from tests.support.proc import start_daemon, wait_for_port, wait_until
from tests.support.relay import Relay, free_port

pytestmark = pytest.mark.slow

MESSAGES = 1000
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


def test_repeated_sigkill_while_1000_messages_arrive_loses_nothing_and_does_nothing_twice(
    tmp_path: Path, db_url: str, relay: Relay
) -> None:
    port = free_port()
    config = write_config(
        tmp_path,
        db_url,
        smtp={"port": port},
        outgoing={
            "transport": "smtp",
            "host": "127.0.0.1",
            "port": relay.port,
            "timeout_seconds": 2,
        },
    )
    log = tmp_path / "run.log"
    proc = start_daemon(config, log=log)
    wait_for_port("127.0.0.1", port, proc=proc)
    sources: list[Source] = [SmtpSource(port, MESSAGES)]
    for source in sources:
        source.start()

    def accepted() -> int:
        return sum(s.accepted() for s in sources)

    kills = 0
    for threshold in range(1, KILLS + 1):
        wait_until(lambda t=threshold: accepted() >= t * MESSAGES // (KILLS + 1), timeout=120)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
        proc = start_daemon(config, log=log)
        wait_for_port("127.0.0.1", port, proc=proc)
    results = [source.finish() for source in sources]
    accepted_ids = [m for ids, _ in results for m in ids]
    refused = sum(r for _, r in results)

    store = SqlStore.open(db_url)
    try:

        def settled() -> bool:
            with store.reading() as tx:
                return tx.inbound.count("queued") == 0 and tx.outbox.count("pending") == 0

        wait_until(settled, timeout=120, interval=0.2)
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
        if "user" in caught.rcpt_tos[0]:
            acks[str(msg["In-Reply-To"]).strip("<>")].add(str(msg["Message-ID"]))
    lost = [m for m in accepted_ids if not stored.get(m)]
    duplicates = [m for m, n in stored.items() if n > 1]
    unexpected = [m for m in stored if m not in set(accepted_ids)]
    unacknowledged = [m for m in accepted_ids if not acks.get(m)]
    acked_twice = [m for m, ids in acks.items() if len(ids) > 1]
    resent = sum(n - 1 for n in on_the_wire.values())
    unsent = [m for m, state in outbox.items() if state != "sent" or not on_the_wire.get(m)]
    print(
        f"\nsources={','.join(s.name for s in sources)} kills={kills} "
        f"messages sent={MESSAGES} accepted={len(accepted_ids)} refused-and-retried={refused} "
        f"inbound rows={inbound_rows} stored={len(stored)} duplicates={len(duplicates)} "
        f"lost={len(lost)} | outbox={len(outbox)} relayed={sum(on_the_wire.values())} "
        f"acks={len(acks)} acknowledged-twice={len(acked_twice)} "
        f"resent-same-id={resent} unsent={len(unsent)}"
    )
    assert len(accepted_ids) == len(set(accepted_ids)) == MESSAGES
    assert not lost and not duplicates and not unexpected
    assert failed == 0  # every queued row, re-deliveries included, was processed
    assert not unacknowledged and not acked_twice
    assert not unsent
    assert resent <= kills  # only a kill between the relay's 250 and our record
