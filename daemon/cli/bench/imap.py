"""IMAP intake benchmark: messages per second from a local Dovecot into tickets.

    python -m daemon.cli.bench.imap [--messages 1000] [--batch-size 100] [--database URL]

Starts a private Dovecot (daemon.cli.bench.dovecot), appends a synthetic load (four
in five new requests, one in five replies carrying an earlier ticket's tag),
then times one intake poll: fetch, queue, pipeline (tickets and
acknowledgements written to the outbox) and the move to the processed
folder. Appending is not timed. Reports messages/s and the peak memory of
this process. The database is a fresh SQLite file unless --database names
an empty one.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

from daemon.adapters.imap.intake import MailboxIntake
from daemon.cli.bench.dovecot import PASSWORD, Dovecot, new_user
from daemon.config import (
    DatabaseSettings,
    ImapMailbox,
    OutgoingSettings,
    PathsSettings,
    Settings,
    SmtpSettings,
)
from daemon.service.desk_files import starter_root
from daemon.service.wiring import App

EX_UNAVAILABLE = 69
SUBJECTS = (
    "VPN does not connect from the office",
    "Printer on floor 2 shows a paper jam",
    "Outlook crashes when I open the calendar",
    "Phone on my desk has no dial tone",
    "Cannot log in to the HR portal",
    "Excel file is locked for editing",
    "Laptop battery drains in an hour",
    "Shared drive S: is missing",
)
FILLER = (
    "Since this morning it has not worked. I restarted the computer twice and "
    "checked the cable; colleagues next to me have the same problem. "
)


def synthetic_load(count: int, body_bytes: int, seed: int = 7) -> list[bytes]:
    """Realistic enough mail: plain text, a few KB, some replies by tag."""
    rng = random.Random(seed)
    requesters: list[str] = []
    out = []
    for i in range(count):
        msg = EmailMessage()
        reply_to = rng.randrange(len(requesters)) if requesters and rng.random() < 0.2 else None
        if reply_to is None:
            sender = f"user{rng.randrange(300)}@example.org"
            requesters.append(sender)
            subject = f"{rng.choice(SUBJECTS)} ({i})"
        else:
            sender = requesters[reply_to]
            subject = f"RE: [HD-{reply_to + 1}] more details"
        msg["From"] = sender
        msg["To"] = "helpdesk@example.com"
        msg["Subject"] = subject
        msg["Date"] = format_datetime(datetime.now(UTC))
        msg["Message-ID"] = make_msgid(idstring=f"bench{i}", domain="client.example.org")
        body = (FILLER * (body_bytes // len(FILLER) + 1))[:body_bytes]
        msg.set_content(f"Hello,\n\n{body}\n\nRegards,\n{sender.split('@')[0]}\n")
        out.append(msg.as_bytes())
    return out


def bench_settings(work: Path, port: int, user: str, database: str | None, batch: int) -> Settings:
    root = starter_root()
    mailbox = ImapMailbox(
        name="bench",
        enabled=True,
        host="127.0.0.1",
        port=port,
        tls="none",
        username=user,
        password=PASSWORD,
        idle=False,
        batch_size=batch,
    )
    return replace(
        Settings(),
        database=DatabaseSettings(url=database or f"sqlite:///{work / 'spocd.db'}"),
        smtp=SmtpSettings(enabled=False),
        imap=(mailbox,),
        outgoing=OutgoingSettings(transport="maildir", maildir=work / "sent"),
        paths=PathsSettings(
            rules=root / "rules.yaml", templates=root / "templates", spool=work / "spool"
        ),
        base_dir=work,
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run(
    messages: int, batch: int, body_bytes: int, database: str | None, intake_only: bool = False
) -> dict[str, Any]:
    dovecot = Dovecot().start()
    work = Path(tempfile.mkdtemp(prefix="spocd-bench-"))
    app = None
    try:
        user = new_user()
        load = synthetic_load(messages, body_bytes)
        started = time.perf_counter()
        with dovecot.client(user) as client:
            for start in range(0, len(load), 200):
                client.multiappend("INBOX", load[start : start + 200])
        appended = time.perf_counter() - started
        app = App(bench_settings(work, dovecot.port, user, database, batch))
        [intake] = app.mailbox_intakes()
        if intake_only:  # the pipeline left out: what the IMAP side alone sustains
            intake = MailboxIntake(intake.mailbox, app.store, app.clock.now, lambda _id: "created")
        rss_before = peak_rss_mb()
        started = time.perf_counter()
        report = intake.poll_once()
        seconds = time.perf_counter() - started
        with app.store.reading() as tx:
            tickets = len(tx.tickets.listing(None))
            outbox = tx.outbox.count("pending")
        left = dovecot.count(user)
        return {
            "messages": messages,
            "measured": "dovecot to inbound queue (no pipeline)"
            if intake_only
            else "dovecot to tickets",
            "batch_size": batch,
            "message_bytes": sum(len(m) for m in load) // max(1, len(load)),
            "database": app.store.engine.dialect.name,
            "append_seconds": round(appended, 3),
            "intake_seconds": round(seconds, 3),
            "messages_per_second": round(messages / seconds, 1) if seconds else None,
            "taken": report.taken,
            "outcomes": report.outcomes,
            "error": report.error,
            "tickets": tickets,
            "acknowledgements_queued": outbox,
            "left_in_inbox": left,
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "peak_rss_growth_mb": round(peak_rss_mb() - rss_before, 1),
        }
    finally:
        if app is not None:
            app.close()
        dovecot.close()
        shutil.rmtree(work, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m daemon.cli.bench.imap", description=__doc__)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--body-bytes", type=int, default=2000, help="text per message")
    parser.add_argument("--database", help="an empty database URL (default: a temp SQLite)")
    parser.add_argument(
        "--intake-only",
        action="store_true",
        help="measure fetch, queue and move alone; messages are queued, not processed",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        result = run(
            args.messages, args.batch_size, args.body_bytes, args.database, args.intake_only
        )
    except (FileNotFoundError, PermissionError) as exc:
        print(f"bench_imap: {exc}", file=sys.stderr)
        return EX_UNAVAILABLE
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"{result['messages']} messages of ~{result['message_bytes']} bytes "
            f"({result['database']}, batch {result['batch_size']}): "
            f"{result['intake_seconds']} s, {result['messages_per_second']} messages/s "
            f"{result['measured']}; {result['tickets']} tickets, "
            f"{result['left_in_inbox']} left in INBOX; peak RSS {result['peak_rss_mb']} MB "
            f"(+{result['peak_rss_growth_mb']} MB during the intake)"
        )
    return 0 if not result["error"] and result["left_in_inbox"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
