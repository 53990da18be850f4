"""Benchmark of the SLA board: 10,000 open tickets, the page timed over HTTP.

`spocd bench --board [--tickets N] [--rounds R]` builds a temporary SQLite
database of N open tickets (bulk inserts) with deadlines spread over the
last two weeks (every ticket its own creation minute, so the business-time
arithmetic is not shared), some breached, some paused, in several groups and
priorities; times the page built in-process (wall and CPU time), then starts
`spocd run` on it with the board on loopback and times R requests of
`/board` and of `/board.json` from the client's side (connect to last byte).
The figure to watch is the median page time.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from daemon.adapters import board_page
from daemon.adapters.board_http import PAGE_ROWS
from daemon.adapters.storage.store import SqlStore
from daemon.adapters.storage.tickets import ticket_values
from daemon.app import board, slaclock
from daemon.cli.bench.load import _spocd, _wait_port, write_config
from daemon.cli.bench.sla import CHUNK, TICKETS, _bound, _insert_sql, _runtime
from daemon.cli.bench.tcp_ports import free_port
from daemon.core.domain import Status, Ticket

GROUPS = ("second-line", "telephony", "third-line")
AGENTS = (None, "anna@example.com", "piotr@example.com", "jan@example.com", "ewa@example.com")
PRIORITIES = ("P1", "P2", "P3", "P3", "P4", "P4", "P5")


def _ticket(number: int, now: datetime) -> Ticket:
    created = now - timedelta(minutes=7 * number % (14 * 24 * 60))
    status = Status.PENDING if number % 10 == 0 else Status.ASSIGNED
    return Ticket(
        number=number,
        subject=f"Synthetic ticket {number} <b>&</b>",
        requester=f"user{number % 5000}@example.org",
        status=status,
        impact="medium",
        urgency="medium",
        priority=PRIORITIES[number % len(PRIORITIES)],
        language="en",
        created_at=created,
        updated_at=created,
        group=GROUPS[number % len(GROUPS)],
        assignee=AGENTS[number % len(AGENTS)],
        last_public_at=created,
        escalation_level=number % 3,
    )


def build(store: SqlStore, count: int, now: datetime) -> None:
    runtime = _runtime()
    dialect = store.engine.dialect
    rows = []
    for number in range(1, count + 1):
        ticket = _ticket(number, now)
        slaclock.set_deadlines(ticket, runtime.rules)
        slaclock.align_clock(ticket, runtime.rules, ticket.created_at)
        if ticket.status == Status.PENDING:
            ticket = replace(ticket, paused_at=ticket.created_at + timedelta(minutes=30))
        rows.append(_bound(TICKETS, ticket_values(ticket), dialect))
    columns = ["id", *rows[0]]
    sql = _insert_sql("tickets", columns)
    with store.engine.begin() as conn:
        for start in range(0, count, CHUNK):
            chunk = rows[start : start + CHUNK]
            conn.exec_driver_sql(
                sql, [(start + i + 1, *row.values()) for i, row in enumerate(chunk)]
            )
        conn.exec_driver_sql("ANALYZE")


def in_process(database: str, rounds: int) -> dict[str, float]:
    """The page built in this process, without HTTP: wall and CPU time (the
    CPU figure holds when other work shares the machine's cores)."""
    runtime = _runtime()
    zone = ZoneInfo(runtime.settings.helpdesk.timezone)
    store = SqlStore.open(database)
    walls, cpus = [], []
    gc.collect()
    gc.freeze()  # as `spocd run` does once it has started
    try:
        for _ in range(rounds + 1):
            wall, cpu = time.perf_counter(), time.process_time()
            now = datetime.now(UTC)
            with store.reading() as tx:
                data = board.snapshot(tx, runtime.settings, runtime.rules, now, {})
            board_page.render(data, "en", zone, PAGE_ROWS)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    finally:
        store.close()
    return {
        "inprocess_median_ms": round(statistics.median(walls[1:]) * 1000, 1),
        "inprocess_cpu_median_ms": round(statistics.median(cpus[1:]) * 1000, 1),
    }


def _time(url: str) -> tuple[float, int]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as reply:
        size = len(reply.read())
    return time.perf_counter() - started, size


def run(count: int, rounds: int) -> dict[str, float]:
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="spocd-bench-board-") as tmp:
        folder = Path(tmp)
        config = write_config(folder, None)
        port = free_port()
        text = config.read_text(encoding="utf-8").replace(
            "[smtp]\nport = 0\n", "[smtp]\nenabled = false\n"
        )
        config.write_text(text + f"\n[http]\nenabled = true\nport = {port}\n", encoding="utf-8")
        database = f"sqlite:///{folder / 'spocd.db'}"
        store = SqlStore.open(database)
        try:
            build(store, count, now)
        finally:
            store.close()
        local = in_process(database, rounds)
        proc = subprocess.Popen(
            _spocd("run", "-c", str(config)),
            stdout=subprocess.DEVNULL,
            stderr=(folder / "run.log").open("wb"),
        )
        try:
            _wait_port(port, proc)
            base = f"http://127.0.0.1:{port}"
            _time(base + "/board")  # warm-up: imports, template compile
            page = [_time(base + "/board") for _ in range(rounds)]
            data = [_time(base + "/board.json") for _ in range(rounds)]
            filtered = [_time(base + "/board?group=telephony") for _ in range(rounds)]
        except SystemExit:
            sys.stderr.write((folder / "run.log").read_text(errors="replace"))
            raise
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    return {
        "tickets": count,
        "page_median_ms": round(statistics.median(t for t, _ in page) * 1000, 1),
        "page_max_ms": round(max(t for t, _ in page) * 1000, 1),
        "page_kb": round(page[0][1] / 1024),
        "json_median_ms": round(statistics.median(t for t, _ in data) * 1000, 1),
        "filtered_median_ms": round(statistics.median(t for t, _ in filtered) * 1000, 1),
        **local,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spocd bench --board", description=__doc__)
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args(argv)
    result = run(args.tickets, args.rounds)
    for key, value in result.items():
        print(f"{key:<20} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
