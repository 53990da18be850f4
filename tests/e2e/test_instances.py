"""Several `spocd run` instances on one PostgreSQL database (issue 8).

Mail arrives over SMTP at all of them; every message is processed exactly
once and acknowledged once, and when the instance holding the sweeps dies,
another takes them over within seconds.
"""

from __future__ import annotations

import os
import signal
import smtplib
import threading
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import text

from daemon.storage.engine import make_engine
from daemon.storage.migrate import ensure_head
from daemon.storage.store import SqlStore
from tests.conftest import write_config
from tests.support.db import truncate_all
from tests.support.mail import make_mail
from tests.support.proc import start_daemon, wait_for_port, wait_until
from tests.support.relay import Relay, free_port

pytestmark = pytest.mark.slow
MESSAGES = 2000
INSTANCES = 3


def test_three_instances_process_each_message_once(
    tmp_path: Path, pg_database: str, relay: Relay
) -> None:
    engine = make_engine(pg_database)
    ensure_head(engine)
    engine.dispose()
    truncate_all(pg_database)
    instances = []
    for n in range(INSTANCES):
        folder = tmp_path / f"i{n}"
        folder.mkdir()
        port = free_port()
        config = write_config(
            folder,
            pg_database,
            smtp={"port": port},
            outgoing={
                "transport": "smtp",
                "host": "127.0.0.1",
                "port": relay.port,
                "timeout_seconds": 5,
            },
        )
        log = folder / "run.log"
        proc = start_daemon(config, log=log)
        instances.append((proc, port, log))
    for proc, port, _ in instances:
        wait_for_port("127.0.0.1", port, proc=proc)

    errors: list[BaseException] = []

    def client(index: int) -> None:
        port = instances[index % INSTANCES][1]
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
                for i in range(index, MESSAGES, 16):
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

    store = SqlStore.open(pg_database)
    try:

        def settled() -> bool:
            with store.reading() as tx:
                return tx.inbound.count("done") == MESSAGES and tx.outbox.count("pending") == 0

        wait_until(settled, timeout=180)
        with store.engine.connect() as conn:
            per_message = Counter(
                mid
                for (mid,) in conn.execute(
                    text("SELECT message_id FROM messages WHERE direction = 'in'")
                )
            )
            tickets = conn.execute(text("SELECT count(*) FROM tickets")).scalar_one()
    finally:
        store.close()
    acks = Counter(
        str(c.message["In-Reply-To"]).strip("<>")
        for c in relay.caught
        if c.rcpt_tos[0].startswith("user")
    )
    print(
        f"\nmessages={MESSAGES} stored={len(per_message)} tickets={tickets} "
        f"acks={sum(acks.values())}"
    )
    assert len(per_message) == MESSAGES and set(per_message.values()) == {1}
    assert tickets == MESSAGES
    assert len(acks) == MESSAGES and set(acks.values()) == {1}

    # The sweeps belong to one instance; kill it, and another takes them within 10 s.
    holders = [
        i
        for i, (_, _, log) in enumerate(instances)
        if b'took over" lock=sweeps' in log.read_bytes()
    ]
    assert len(holders) == 1
    dead = holders[0]
    os.kill(instances[dead][0].pid, signal.SIGKILL)
    instances[dead][0].wait()
    survivors = [inst for i, inst in enumerate(instances) if i != dead]
    wait_until(
        lambda: any(b'took over" lock=sweeps' in log.read_bytes() for _, _, log in survivors),
        timeout=10,
    )
    for proc, _, _ in survivors:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
