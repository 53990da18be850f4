"""`spocd run`, `spocd tick` and `spocd status` as real processes against Dovecot.

IDLE latency, a prompt SIGTERM, restarts, a SIGKILL in the middle of a large
batch, bounded memory over 1,000 messages, and the health command.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon.adapters.storage.store import SqlStore
from daemon.cli.bench.dovecot import Dovecot
from tests.integration.imap_support import (
    FAILED,
    PROCESSED,
    counts,
    imap_config,
    imap_section,
    toml_tables,
)
from tests.support.mail import make_mail
from tests.support.proc import env, spocd, start_daemon, wait_until

pytestmark = pytest.mark.dovecot


@pytest.fixture
def store(db_url: str) -> Iterator[SqlStore]:
    """The test's own view of spocd's database (schema made before spocd starts)."""
    opened = SqlStore.open(db_url)
    yield opened
    opened.close()


def mailbox_state(store: SqlStore, name: str = "default") -> Any:
    with store.reading() as tx:
        return tx.mailboxes.get(name, "INBOX")


def succeeded(store: SqlStore, name: str = "default") -> bool:
    state = mailbox_state(store, name)
    return state is not None and state.last_success_at is not None


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> float:
    """Signal spocd and wait for it to end; the seconds it took."""
    started = time.monotonic()
    proc.send_signal(sig)
    proc.wait(timeout=30)
    return time.monotonic() - started


def test_spocd_run_tickets_a_new_message_within_5_s_under_idle_and_stops_at_once(
    tmp_path: Path, db_url: str, store: SqlStore, dovecot: Dovecot, user: str
) -> None:
    # poll_seconds is long: only IDLE can bring the message in quickly.
    config = imap_config(tmp_path, db_url, dovecot, user, idle=True, poll_seconds=600)
    log = tmp_path / "spocd.log"
    proc = start_daemon(config, log=log)
    try:
        wait_until(lambda: succeeded(store), timeout=30)
        wait_until(lambda: bool(dovecot.sessions(user, "IDLE")), timeout=10)
        dovecot.append(user, [make_mail(subject="Mail server is down")])
        appended = time.monotonic()
        wait_until(lambda: counts(store)["tickets"] == 1, timeout=5)
        latency = time.monotonic() - appended
        took = stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert latency < 5
    assert proc.returncode == 0
    assert took < 3, f"SIGTERM took {took:.1f}s to stop spocd in IDLE"
    assert dovecot.count(user) == 0 and dovecot.count(user, PROCESSED) == 1
    text = log.read_text()
    assert "imap connected" in text and "imap stopped" in text


def test_restarting_spocd_tickets_nothing_twice(
    tmp_path: Path, db_url: str, store: SqlStore, dovecot: Dovecot, user: str
) -> None:
    first = [make_mail(subject=f"Before the restart {i}") for i in range(5)]
    dovecot.append(user, first)
    config = imap_config(tmp_path, db_url, dovecot, user, idle=True, poll_seconds=600)
    proc = start_daemon(config, log=tmp_path / "spocd.log")
    try:
        wait_until(lambda: counts(store)["tickets"] == 5, timeout=30)
        wait_until(lambda: dovecot.count(user) == 0, timeout=10)
        assert stop(proc) < 5
        # While spocd is down: new mail, and a copy of a message already taken.
        dovecot.append(user, [first[0], make_mail(subject="During the restart")])
        proc = start_daemon(config, log=tmp_path / "spocd.log")
        wait_until(lambda: dovecot.count(user) == 0, timeout=30)
        dovecot.append(user, [make_mail(subject="After the restart")])
        wait_until(lambda: counts(store)["tickets"] == 7, timeout=10)
        stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    seen = counts(store)
    # The copy has the Message-ID of one taken from this folder: not stored again.
    assert seen == {"tickets": 7, "inbound": 7, "messages_in": 7, "distinct_in": 7}
    with store.reading() as tx:
        outcomes = sorted(e.outcome or "" for e in tx.inbound.entries(["done"], 100))
    assert outcomes == ["created"] * 7
    assert dovecot.count(user, PROCESSED) == 8


def test_sigkill_in_the_middle_of_a_large_batch_loses_nothing_and_duplicates_nothing(
    tmp_path: Path, db_url: str, store: SqlStore, dovecot: Dovecot, user: str
) -> None:
    total = 600
    raws = [
        make_mail(subject=f"Bulk request {i}", sender=f"user{i}@example.org") for i in range(total)
    ]
    with dovecot.client(user) as client:
        for start in range(0, total, 100):
            client.multiappend("INBOX", raws[start : start + 100])
    config = imap_config(tmp_path, db_url, dovecot, user, batch_size=50, poll_seconds=1)
    proc = start_daemon(config, log=tmp_path / "spocd.log")
    try:
        wait_until(lambda: counts(store)["inbound"] >= 60, timeout=60, interval=0.01)
        stop(proc, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
    at_kill = counts(store)
    assert 0 < at_kill["tickets"] < total, "the kill did not land in the middle of the run"
    assert dovecot.count(user) > 0

    proc = start_daemon(config, log=tmp_path / "spocd.log")
    try:
        wait_until(lambda: dovecot.count(user) == 0, timeout=120)
        wait_until(lambda: counts(store)["tickets"] == total, timeout=60)
        stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    seen = counts(store)
    assert seen == {"tickets": total, "inbound": total, "messages_in": total, "distinct_in": total}
    assert dovecot.count(user, PROCESSED) == total
    assert dovecot.count(user, FAILED) == 0


def test_tick_polls_each_mailbox_once_and_status_reports_health(
    tmp_path: Path, db_url: str, store: SqlStore, dovecot: Dovecot, user: str
) -> None:
    escalations = f"{user}x"
    dovecot.append(user, [make_mail(subject="Scanner jams"), b"not mail at all\r\n"])
    dovecot.append(
        escalations,
        [make_mail(sender="agent@servicedesk.example.com", subject="FW: SD-4711 VPN down")],
    )
    # A 30 s poll interval: healthy for 90 s after the tick, however loaded the machine.
    config = imap_config(tmp_path, db_url, dovecot, user, name="requests", poll_seconds=30)
    with config.open("a") as out:
        out.write(
            toml_tables(
                "imap",
                [
                    imap_section(
                        dovecot, escalations, name="first-line", escalation=True, poll_seconds=30
                    ),
                    imap_section(dovecot, user, name="broken", port=1, timeout_seconds=2),
                ],
            )
        )
    # [imap] and [[imap]] cannot mix: make the first one an array entry too.
    config.write_text(config.read_text().replace("[imap]\n", "[[imap]]\n", 1))

    tick = spocd("tick", "--json", config=config)
    status = spocd("status", "--json", config=config)
    report = json.loads(status.stdout)

    assert tick.returncode == 75, tick.stderr  # a mailbox could not be polled
    summary = json.loads(tick.stdout)
    assert summary["imap"]["requests"] == {
        "taken": 2,
        "processed": 1,
        "failed": 1,
        "error": None,
    }
    assert summary["imap"]["first-line"]["taken"] == 1
    assert "ConnectionRefusedError" in summary["imap"]["broken"]["error"], summary["imap"]
    with store.reading() as tx:
        channels = sorted(str(t.channel) for t in tx.tickets.listing(None))
    assert channels == ["email", "escalation"]

    assert status.returncode == 1, status.stdout  # "broken" never succeeded
    by_name = {m["name"]: m for m in report["mailboxes"]}
    assert by_name["requests"]["healthy"] and by_name["first-line"]["healthy"], status.stdout
    assert (by_name["requests"]["taken"], by_name["requests"]["failed"]) == (2, 1)
    assert by_name["broken"]["problem"] == "no successful poll yet"
    assert by_name["broken"]["last_error"].startswith("network:")
    assert report["inbound"]["quarantined"] == 1
    assert report["outbox"] == {"pending": 0, "failed": 0}  # tick sent the acks

    healthy_only = tmp_path / "healthy.toml"
    healthy_only.write_text(config.read_text().rsplit("[[imap]]", 1)[0])
    last = spocd("status", config=healthy_only)
    assert last.returncode == 0, last.stdout.decode()


@pytest.mark.slow
def test_a_thousand_messages_are_taken_with_memory_bounded(
    tmp_path: Path, db_url: str, store: SqlStore, dovecot: Dovecot, user: str
) -> None:
    """`spocd tick` over 1,000 waiting messages of ~100 KB (100 MB in all):
    its peak memory grows far less than the mailbox, because it works batch
    by batch. Fetching everything at once would hold all 100 MB and more."""
    empty = f"{user}e"
    dovecot.append(empty, [])
    baseline = peak_rss_of_tick(imap_config(tmp_path, db_url, dovecot, empty, name="empty"))

    attachment = os.urandom(50 * 1024).hex()  # 100 KB of text per message
    raws = [
        make_mail(subject=f"Log files {i}", body=f"Log {i} follows.\n" + _folded(attachment))
        for i in range(1000)
    ]
    with dovecot.client(user) as client:
        for start in range(0, len(raws), 50):
            client.multiappend("INBOX", raws[start : start + 50])
    total_mb = sum(len(r) for r in raws) / 2**20
    del raws
    peak = peak_rss_of_tick(imap_config(tmp_path, db_url, dovecot, user, name="big"))

    assert counts(store)["tickets"] == 1000
    assert dovecot.count(user) == 0
    assert total_mb > 95
    growth = peak - baseline
    print(f"peak RSS {baseline:.0f} MB empty, {peak:.0f} MB over {total_mb:.0f} MB of mail")
    assert growth < 150, f"peak RSS grew {growth:.0f} MB over {total_mb:.0f} MB of mail"


def peak_rss_of_tick(config: Path) -> float:
    """Run `spocd tick`; its peak resident memory in MB.

    Read from the child's own VmHWM while it runs: getrusage/wait4 would
    report the test process's size too, inherited between fork and exec.
    """
    errors = config.with_suffix(".stderr")
    with errors.open("wb") as handle:
        proc = subprocess.Popen(
            [sys.executable, "-m", "daemon", "tick", "-c", str(config)],
            env=env(),
            stdout=subprocess.DEVNULL,
            stderr=handle,
        )
    peak_kb = 0
    status = Path(f"/proc/{proc.pid}/status")
    while proc.poll() is None:
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines())
            peak_kb = max(peak_kb, int(fields.get("VmHWM", "0 kB").split()[0]))
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    assert proc.returncode == 0, errors.read_text(errors="replace")
    return peak_kb / 1024


def _folded(text: str, width: int = 76) -> str:
    return "\n".join(text[i : i + width] for i in range(0, len(text), width)) + "\n"
