"""Benchmark of the SLA sweep: 100,000 open tickets, about 1% of them due.

`python -m daemon.cli.bench.sla [--tickets N] [--due-share F] [--contracts N] [--keep DIR]` builds
a temporary SQLite database with N open tickets and the timers `slaclock`
stores for them (bulk inserts), then times one `jobs.run_due` at a moment when
a share F of the tickets have their response warning and first escalation
step due, and one more sweep when nothing is due. The figure to watch is the
sweep time: the due timers come from an indexed query, never a scan.

Tickets come in cohorts that share a creation moment and priority, so the
business-time arithmetic runs once per cohort rather than once per ticket.

`--contracts N` adds N client contracts to the starter rules (each with its
own P2 and P3 rows and a contact) and spreads the cohorts over them, every
ticket keeping its contract's SLA table as a real one does (SPEC §7), so the
sweep reads and applies per-ticket tables.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from daemon.adapters.storage.models import TICKETS, TIMERS
from daemon.adapters.storage.store import SqlStore
from daemon.adapters.storage.tickets import ticket_values
from daemon.app import jobs, slaclock
from daemon.app.notify import Composer
from daemon.app.tickets import Runtime
from daemon.config import Settings
from daemon.core.domain import OutgoingMail, Status, Ticket
from daemon.service.desk_files import starter_root
from daemon.service.wiring import load_runtime

#: Wednesday 13:00 in Warsaw: office hours, so office-calendar steps can be due.
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
CHUNK = 20_000


@dataclass(frozen=True, slots=True)
class Result:
    tickets: int
    timers: int
    due: int
    build_s: float
    query_s: float
    sweep_s: float
    empty_sweep_s: float
    compose_s: float
    mails: int
    done: dict[str, int]
    plan: str


class TimedComposer(Composer):
    """The real composer, keeping count of the time spent composing mail."""

    def __init__(self, inner: Composer) -> None:
        super().__init__(inner.identity, inner.renderer)
        self.seconds = 0.0
        self.mails = 0

    def compose(self, **kwargs: Any) -> OutgoingMail:
        started = time.perf_counter()
        try:
            return super().compose(**kwargs)
        finally:
            self.seconds += time.perf_counter() - started
            self.mails += 1


def contracts_yaml(count: int) -> str:
    """`count` synthetic contracts: client<i>.example.pl, office P2/P3 rows
    of their own, a contact copied on P1."""
    lines = ["contracts:"] if count else []
    for i in range(count):
        lines += [
            f"  client{i}:",
            f'    name: "Client {i} Sp. z o.o."',
            f"    match: {{domains: [client{i}.example.pl], addresses: [boss{i}@gmail.com]}}",
            "    calendar: office",
            "    sla:",
            f"      P2: {{response: {30 + i}m, resolution: 6h, update_every: 2h}}",
            f"      P3: {{response: 4h, resolution: {2 + i % 3}d, update_every: 1d}}",
            f"    contacts: [it{i}@client{i}.example.pl]",
            "    cc_priorities: [P1]",
        ]
    return "\n".join(lines) + "\n"


def _runtime(contracts: int = 0, folder: Path | None = None) -> Runtime:
    root = starter_root()
    rules = root / "rules.yaml"
    if contracts:
        assert folder is not None
        text = rules.read_text("utf-8")
        rules = folder / "rules.yaml"
        rules.write_text(
            text.replace("\nrules:\n", "\n" + contracts_yaml(contracts) + "rules:\n", 1)
        )
    settings = Settings()
    settings = replace(
        settings,
        paths=replace(settings.paths, rules=rules, templates=root / "templates"),
    )
    runtime = load_runtime(settings, b"\x00" * 32)
    return replace(runtime, composer=TimedComposer(runtime.composer))


def _ticket(number: int, created: datetime, priority: str) -> Ticket:
    return Ticket(
        number=number,
        subject=f"Synthetic ticket {number}",
        requester=f"user{number % 5000}@example.org",
        status=Status.ASSIGNED,
        impact="medium",
        urgency="medium",
        priority=priority,
        language="en",
        created_at=created,
        updated_at=created,
        group="second-line",
        assignee="anna@example.com",
        last_public_at=created,
    )


def _cohorts(runtime: Runtime, count: int, due_share: float) -> list[tuple[Ticket, int]]:
    """(template ticket, how many tickets) pairs: `due_share` of them created
    so that their response is at 80% of its target at NOW, the rest minutes
    before NOW with every timer in the future."""
    late = round(count * due_share)
    cohorts: list[tuple[Ticket, int]] = []
    # Late ones: P3 (office, response 4 h): created 3 h 12 min of business time ago.
    cohorts.append((_ticket(0, NOW - timedelta(hours=3, minutes=12), "P3"), late))
    fresh = count - late
    priorities = ("P2", "P3", "P4", "P5")
    per = fresh // (len(priorities) * 10)
    for i, priority in enumerate(priorities):
        for minute in range(10):
            n = per if (i, minute) != (len(priorities) - 1, 9) else fresh - per * 39
            cohorts.append((_ticket(0, NOW - timedelta(minutes=1 + minute), priority), n))
    contracts = list(runtime.rules.contracts)
    for index, (template, _) in enumerate(cohorts):
        if contracts:  # the cohorts spread over the contracts, as requesters would be
            contract = contracts[index % len(contracts)]
            template.contract = contract
            template.requester = f"user{index}@{runtime.rules.contracts[contract].domains[0]}"
            template.extra[slaclock.SLA_TABLE_KEY] = runtime.rules.sla_snapshot(contract)
        slaclock.set_deadlines(template, runtime.rules)
        slaclock.align_clock(template, runtime.rules, template.created_at)
    return cohorts


def build(store: SqlStore, runtime: Runtime, count: int, due_share: float) -> int:
    """Bulk-insert `count` tickets and their timers; returns the number of timers.

    The tickets of a cohort differ only in id and subject, so each column's
    value goes through SQLAlchemy's bind processing once per cohort, and rows
    go to the driver's executemany as plain tuples.
    """
    dialect = store.engine.dialect
    timers = 0
    number = 0
    with store.engine.begin() as conn:
        for template, n in _cohorts(runtime, count, due_share):
            ticket_row = _bound(TICKETS, ticket_values(template), dialect)
            ticket_cols = ["subject", *(c for c in ticket_row if c != "subject")]
            planned = [
                _bound(
                    TIMERS,
                    {"kind": p.kind, "key": p.key, "due_at": p.due_at, "detail": p.detail},
                    dialect,
                )
                for p in slaclock.plan_timers(template, runtime.rules)
            ]
            ticket_sql = _insert_sql("tickets", ["id", *ticket_cols])
            timer_sql = _insert_sql("timers", ["ticket_id", "kind", "key", "due_at", "detail"])
            first = number + 1
            for chunk in range(first, first + n, CHUNK):
                ids = range(chunk, min(chunk + CHUNK, first + n))
                fixed = [ticket_row[c] for c in ticket_cols[1:]]
                conn.exec_driver_sql(
                    ticket_sql, [(i, f"Synthetic ticket {i}", *fixed) for i in ids]
                )
                conn.exec_driver_sql(
                    timer_sql,
                    [
                        (i, t["kind"], t["key"], t["due_at"], t["detail"])
                        for i in ids
                        for t in planned
                    ],
                )
            number += n
            timers += n * len(planned)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    return timers


def _bound(table: Any, row: dict[str, Any], dialect: Any) -> dict[str, Any]:
    """Column values as the driver receives them (UTC text times, JSON text)."""
    out = {}
    for name, value in row.items():
        process = table.c[name].type.bind_processor(dialect)
        out[name] = process(value) if process is not None and value is not None else value
    return out


def _insert_sql(table: str, columns: list[str]) -> str:
    names = ", ".join(f'"{c}"' for c in columns)
    return f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})"


def run(
    count: int = 100_000, due_share: float = 0.01, keep: Path | None = None, contracts: int = 0
) -> Result:
    with tempfile.TemporaryDirectory(prefix="spocd-bench-sla-") as tmp:
        folder = keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        runtime = _runtime(contracts, folder)
        store = SqlStore.open(f"sqlite:///{folder / 'bench.db'}")
        try:
            started = time.perf_counter()
            timers = build(store, runtime, count, due_share)
            build_s = time.perf_counter() - started

            with store.reading() as tx:
                started = time.perf_counter()
                due = tx.timers.due(NOW, 10 * count, jobs.HANDLERS)
                query_s = time.perf_counter() - started
                plan = _query_plan(tx)

            started = time.perf_counter()
            done = jobs.run_due(store, lambda: runtime, NOW)
            sweep_s = time.perf_counter() - started

            started = time.perf_counter()
            jobs.run_due(store, lambda: runtime, NOW)
            empty_s = time.perf_counter() - started
        finally:
            store.close()
    composer = runtime.composer
    assert isinstance(composer, TimedComposer)
    return Result(
        count,
        timers,
        len(due),
        build_s,
        query_s,
        sweep_s,
        empty_s,
        composer.seconds,
        composer.mails,
        done,
        plan,
    )


def _query_plan(tx: Any) -> str:
    """How SQLite answers the due query (it should name ix_timers_due)."""
    rows = tx.conn.execute(
        text(
            "EXPLAIN QUERY PLAN SELECT * FROM timers WHERE done_at IS NULL AND due_at <= :now "
            "AND kind IN ('sla', 'update') ORDER BY due_at, id LIMIT 100"
        ),
        {"now": NOW.replace(tzinfo=None).isoformat(sep=" ")},
    ).fetchall()
    return "; ".join(str(r[-1]) for r in rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m daemon.cli.bench.sla", description=__doc__)
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--due-share", type=float, default=0.01)
    parser.add_argument("--keep", type=Path, help="build the database in DIR and keep it")
    parser.add_argument(
        "--contracts",
        type=int,
        default=0,
        help="add N client contracts and spread tickets over them",
    )
    args = parser.parse_args(argv)
    result = run(args.tickets, args.due_share, args.keep, args.contracts)
    done = ", ".join(f"{k} {v}" for k, v in sorted(result.done.items())) or "nothing"
    if args.contracts:
        print(f"contracts         {args.contracts:>10,}")
    print(f"tickets           {result.tickets:>10,}")
    print(f"timers            {result.timers:>10,}")
    print(f"due at {NOW:%Y-%m-%d %H:%M}Z {result.due:>10,}")
    print(f"build             {result.build_s:>10.2f} s (bulk inserts)")
    print(f"due query         {result.query_s * 1000:>10.1f} ms ({result.plan})")
    print(f"sweep             {result.sweep_s:>10.3f} s ({done})")
    per_mail = result.compose_s / result.mails * 1000 if result.mails else 0.0
    rest = result.sweep_s - result.compose_s
    per_timer = rest / max(result.due, 1) * 1000
    mails = f"{result.mails} mails, {per_mail:.2f} ms each"
    print(f"  composing mail  {result.compose_s:>10.3f} s ({mails})")
    print(f"  everything else {rest:>10.3f} s ({per_timer:.2f} ms per due timer)")
    print(f"sweep, none due   {result.empty_sweep_s * 1000:>10.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
