"""A 20 MB message over SMTP into a ticket, with the daemon's memory measured.

`spocd run` is a real process; its peak resident memory (VmHWM) is read from
/proc before and after the message. Large MIME bodies are cut out before the
email parser runs, attachments over `max_attachment_bytes` are kept as
metadata (the raw message keeps every byte), and a worker group loads a
bounded amount of raw mail: without these the growth is well over ten times
the message's size.
"""

from __future__ import annotations

import hashlib
import os
import signal
import smtplib
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import text

from daemon.adapters.storage.store import SqlStore
from tests.conftest import write_config
from tests.support.mail import make_mail
from tests.support.proc import start_daemon, wait_for_port, wait_until
from tests.support.relay import free_port

#: Peak growth allowed, as a multiple of the message's size (measured: about
#: 6-7x on SQLite, 8x on PostgreSQL, most of it aiosmtpd's line buffering and
#: the database driver's copies).
GROWTH_BOUND = 10


def peak_rss(pid: int) -> int:
    """The process's peak resident set size in bytes (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc")


def big_mail(payload: bytes) -> bytes:
    msg = EmailMessage()
    msg["From"] = "dba@example.org"
    msg["To"] = "helpdesk@example.com"
    msg["Subject"] = "Database dump for the crash on Monday"
    msg["Message-ID"] = "<huge-1@example.org>"
    msg.set_content("The dump is attached.\n")
    msg.add_attachment(payload, "application", "octet-stream", filename="dump.bin")
    return msg.as_bytes().replace(b"\n", b"\r\n")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_a_20_mb_message_becomes_a_ticket_in_bounded_memory(tmp_path: Path, db_url: str) -> None:
    port = free_port()
    config = write_config(tmp_path, db_url, smtp={"port": port, "max_message_size": 32_000_000})
    proc = start_daemon(config, log=tmp_path / "run.log")
    store = SqlStore.open(db_url)
    try:
        wait_for_port("127.0.0.1", port, proc=proc)

        def tickets() -> int:
            with store.reading() as tx:
                return len(tx.tickets.listing(None))

        def settled() -> bool:
            with store.reading() as tx:
                return tx.inbound.count("queued") == 0 and tx.outbox.count("pending") == 0

        # Warm up: every import and cache a message needs is loaded now.
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.sendmail("dba@example.org", ["helpdesk@example.com"], make_mail())
        wait_until(lambda: tickets() == 1 and settled(), timeout=60)
        before = peak_rss(proc.pid)

        payload = os.urandom(15_000_000)
        raw = big_mail(payload)
        with smtplib.SMTP("127.0.0.1", port, timeout=120) as client:
            client.sendmail("dba@example.org", ["helpdesk@example.com"], raw)
        wait_until(lambda: tickets() == 2 and settled(), timeout=120)
        growth = peak_rss(proc.pid) - before
        print(
            f"\nmessage={len(raw) / 1e6:.1f} MB peak growth={growth / 1e6:.1f} MB "
            f"({growth / len(raw):.1f}x)"
        )
        assert growth < GROWTH_BOUND * len(raw)

        with store.engine.connect() as conn:
            size, sha256, content = conn.execute(
                text("SELECT size, sha256, content FROM attachments WHERE filename = 'dump.bin'")
            ).one()
            raw_size = conn.execute(
                text("SELECT size FROM inbound WHERE id = (SELECT max(id) FROM inbound)")
            ).scalar_one()
        assert (size, sha256) == (len(payload), hashlib.sha256(payload).hexdigest())
        assert content is None  # over max_attachment_bytes: metadata; the raw keeps it
        assert raw_size >= len(raw) - 64  # every byte kept (line ends may differ)
    finally:
        store.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
