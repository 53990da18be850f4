"""`spocd run` as a real process, killed with SIGKILL while mail arrives.

Every message that got 250 must be stored once and acknowledged once after a
restart (SPEC §6): the ack may reach the relay a second time only with the
same Message-ID, if the kill fell between the relay's 250 and our record.
"""

from __future__ import annotations

import os
import signal
import smtplib
import threading
from collections import defaultdict
from pathlib import Path

import pytest

from daemon.storage.store import SqlStore
from tests.conftest import write_config
from tests.support.mail import make_mail
from tests.support.proc import start_daemon, wait_for_port, wait_until
from tests.support.relay import Relay, free_port

pytestmark = pytest.mark.slow


class Sender:
    """Clients that keep sending, recording which messages got a 250."""

    def __init__(self, port: int, threads: int = 3) -> None:
        self.port = port
        self.accepted: list[str] = []
        self.refused = 0
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.counter = 0
        self.threads = [threading.Thread(target=self._run, args=(n,)) for n in range(threads)]

    def _next(self) -> str:
        with self.lock:
            self.counter += 1
            return f"crash-{self.counter}@client.example.org"

    def _run(self, n: int) -> None:
        while not self.stop.is_set():
            message_id = self._next()
            try:
                with smtplib.SMTP("127.0.0.1", self.port, timeout=5) as client:
                    # One sender per message: the auto-reply rate limit is per address.
                    sender = f"user{message_id.split('@')[0]}@example.org"
                    client.sendmail(
                        sender,
                        ["helpdesk@example.com"],
                        make_mail(
                            sender=sender, message_id=message_id, subject=f"Crash test {message_id}"
                        ),
                    )
            except (OSError, smtplib.SMTPException):
                with self.lock:
                    self.refused += 1
                self.stop.wait(0.05)
                continue
            with self.lock:
                self.accepted.append(message_id)

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def count(self) -> int:
        with self.lock:
            return len(self.accepted)

    def finish(self) -> list[str]:
        self.stop.set()
        for t in self.threads:
            t.join()
        return list(self.accepted)


def test_sigkill_while_mail_arrives_loses_nothing_and_acknowledges_each_once(
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
            "timeout_seconds": 5,
        },
    )
    log = tmp_path / "run.log"
    proc = start_daemon(config, log=log)
    wait_for_port("127.0.0.1", port, proc=proc)
    sender = Sender(port)
    sender.start()
    wait_until(lambda: sender.count() >= 60, timeout=60)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before_restart = sender.count()
    proc = start_daemon(config, log=log)
    wait_for_port("127.0.0.1", port, proc=proc)
    wait_until(lambda: sender.count() >= before_restart + 40, timeout=60)
    accepted = sender.finish()

    store = SqlStore.open(db_url)
    try:

        def all_done() -> bool:
            with store.reading() as tx:
                return tx.inbound.count("queued") == 0 and tx.outbox.count("pending") == 0

        wait_until(all_done, timeout=60)
        with store.engine.connect() as conn:
            from sqlalchemy import text

            stored = defaultdict(int)
            for (mid,) in conn.execute(
                text("SELECT message_id FROM messages WHERE direction = 'in'")
            ):
                stored[mid] += 1
    finally:
        store.close()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0

    acks: dict[str, set[str]] = defaultdict(set)
    for caught in relay.caught:
        msg = caught.message
        acks[str(msg["In-Reply-To"]).strip("<>")].add(str(msg["Message-ID"]))
    lost = [m for m in accepted if stored.get(m, 0) == 0]
    duplicated = [m for m, n in stored.items() if n > 1]
    unacknowledged = [m for m in accepted if not acks.get(m)]
    acked_twice = [m for m, ids in acks.items() if len(ids) > 1]
    print(
        f"\nsent-and-accepted={len(accepted)} refused-or-dropped={sender.refused} "
        f"stored={len(stored)} lost={len(lost)} duplicated={len(duplicated)} "
        f"acks={sum(len(v) for v in acks.values())} unacknowledged={len(unacknowledged)} "
        f"acknowledged-twice={len(acked_twice)}"
    )
    assert not lost
    assert not duplicated
    assert not unacknowledged
    assert not acked_twice
