"""The `spocd` commands that need the whole application (imported lazily)."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from daemon.adapters import logs
from daemon.cli.interrupt import StopAsked
from daemon.cli.main import (
    EX_CONFIG,
    EX_DATAERR,
    EX_OK,
    EX_TEMPFAIL,
    UsageError,
    open_app,
    row_id,
    settings_of,
    ticket_number,
)
from daemon.config import find_config, listener_problems
from daemon.core.domain import OPEN_STATES, Status
from daemon.core.errors import ConfigError
from daemon.service.desk_files import starter_root


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def cmd_run(args: argparse.Namespace) -> int:
    import os

    from daemon.service.instance import InstanceLocked
    from daemon.service.runner import Daemon

    # The SMTP listener's event loop and the pipeline share the GIL: switching
    # more often keeps 250s flowing while the pipeline is busy.
    sys.setswitchinterval(0.0005)
    settings = settings_of(args)
    # What only a listener cannot use (other commands take the same file:
    # tests and bench write smtp.port = 0), refused before anything starts.
    problems = listener_problems(settings)
    if problems:
        raise ConfigError(problems)
    logs.setup(settings.logging.format, settings.logging.level)
    config_path = find_config(getattr(args, "config", None), os.environ)
    app = open_app(args)
    daemon = Daemon(app, config_path, jobs=_jobs(app))
    daemon.install_signals()
    try:
        daemon.start()
    except InstanceLocked as exc:
        print(f"spocd: {exc}", file=sys.stderr)
        app.close()
        return EX_TEMPFAIL
    except OSError as exc:  # the SMTP or HTTP port is taken, say
        print(f"spocd: cannot start: {exc}", file=sys.stderr)
        app.close()
        return EX_TEMPFAIL
    return daemon.serve()


def _jobs(app: Any, stop: Callable[[], bool] = lambda: False) -> Any:
    """The scheduled sweeps, if this build has them."""
    try:
        from daemon.app.jobs import run_due
    except ImportError:
        return None
    return lambda now: run_due(app.store, lambda: app.runtime, now, stop=stop)


def cmd_tick(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    logs.setup(settings.logging.format, "WARNING")
    app = open_app(args)
    # Ctrl-C or SIGTERM finishes the batch in progress (its commit, the mail
    # it leased) and starts nothing more; a second one stops at once.
    with StopAsked() as stop:
        stop.arm()
        try:
            report = app.tick(_jobs(app, stop.event.is_set), stop.event)
        finally:
            app.close()
    outcomes = _count(o.outcome for _, o in report.processed)
    for polled in report.imap.values():
        for outcome, count in polled.outcomes.items():
            outcomes[outcome] = outcomes.get(outcome, 0) + count
    summary = {
        "spooled": report.spooled,
        "imap": {
            name: {
                "taken": r.taken,
                "processed": r.processed,
                "failed": r.failed,
                "error": r.error,
            }
            for name, r in report.imap.items()
        },
        "processed": sum(outcomes.values()),
        "outcomes": outcomes,
        "jobs": report.jobs,
        "sent": report.sent.sent,
        "deferred": report.sent.deferred,
        "failed": report.sent.failed,
    }
    if args.json:
        _print_json(summary)
    else:
        jobs = ", ".join(f"{k} {v}" for k, v in report.jobs.items()) or "none due"
        for name, r in report.imap.items():
            print(
                f"imap {name}: "
                + (f"error: {r.error}" if r.error else f"taken {r.taken}, failed {r.failed}")
            )
        print(
            f"processed {summary['processed']} message(s); jobs: {jobs}; "
            f"mail sent {summary['sent']}, deferred {summary['deferred']}, "
            f"failed {summary['failed']}"
        )
    if report.stopped:
        print(
            f"spocd tick: {stop.said}: the batch in progress was finished (counted above), "
            "the rest is left for the next tick",
            file=sys.stderr,
        )
        return stop.exit_code
    # A mailbox that could not be polled is a temporary failure: retry later.
    return EX_TEMPFAIL if any(r.error for r in report.imap.values()) else EX_OK


def _count(values: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def _statuses(text: str) -> list[str] | None:
    if text == "all":
        return None
    if text == "open":
        return [str(s) for s in OPEN_STATES]
    names = [s.strip() for s in text.split(",") if s.strip()]
    valid = {str(s) for s in Status}
    bad = [n for n in names if n not in valid]
    if bad:
        raise UsageError(
            f"unknown status {bad[0]!r}; use one of {', '.join(sorted(valid))}, open or all"
        )
    return names


def cmd_tickets(args: argparse.Namespace) -> int:
    from daemon.app.views import ticket_header, ticket_json, ticket_line

    statuses = _statuses(args.status)
    app = open_app(args)
    try:
        rt = app.runtime
        zone = ZoneInfo(rt.settings.helpdesk.timezone)
        now = app.clock.now()
        with app.store.reading() as tx:
            tickets = tx.tickets.listing(statuses)
            counts = tx.tickets.child_counts()
        data = [ticket_json(t, rt.prefix, rt.rules, now) for t in tickets]
    finally:
        app.close()
    if args.json:
        _print_json(data)
    elif data:
        print(ticket_header())
        for item in data:
            print(ticket_line(item, zone, counts.get(item["number"], 0)))
    else:
        print("no tickets", file=sys.stderr)
    return EX_OK


def cmd_show(args: argparse.Namespace) -> int:
    from daemon.app.views import event_json, message_json, ticket_json, ticket_text

    app = open_app(args)
    try:
        rt = app.runtime
        zone = ZoneInfo(rt.settings.helpdesk.timezone)
        number = ticket_number(args.ticket, rt.prefix)
        with app.store.reading() as tx:
            ticket = tx.tickets.get(number)
            if ticket is None:
                print(f"spocd: no ticket {rt.ticket_id(number)}", file=sys.stderr)
                return EX_DATAERR
            files: dict[int, list[tuple[int, Any]]] = {}
            for attachment_id, row_id, attachment in tx.messages.attachment_rows(number):
                files.setdefault(row_id, []).append((attachment_id, attachment))
            messages = [
                message_json(m, files.get(m.row_id or 0, ())) for m in tx.messages.of_ticket(number)
            ]
            events = [event_json(e) for e in tx.events.of_ticket(number)]
            children = [rt.ticket_id(c.number) for c in tx.tickets.children(number)]
        data = ticket_json(ticket, rt.prefix, rt.rules, app.clock.now())
        data["children"] = children
    finally:
        app.close()
    if args.json:
        _print_json({**data, "messages": messages, "events": events})
    else:
        print(ticket_text(data, messages, events, zone))
    return EX_OK


EX_CANTCREAT = 73


def cmd_attachment(args: argparse.Namespace) -> int:
    """Write one attachment's bytes: the stored copy, or (over
    `max_attachment_bytes` when it came) the one in the raw message."""
    from daemon.mail.parsing import find_attachment

    app = open_app(args)
    try:
        rt = app.runtime
        number = ticket_number(args.ticket, rt.prefix)
        try:
            attachment_id = row_id(args.id)
        except argparse.ArgumentTypeError:
            attachment_id = -1  # names none: reported as no such attachment
        with app.store.reading() as tx:
            found = tx.messages.attachment(number, attachment_id)
            raw = None
            if found is not None and found[0].content is None and found[1] is not None:
                raw = tx.inbound.raw(found[1])
    finally:
        app.close()
    if found is None:
        print(f"spocd: {rt.ticket_id(number)} has no attachment {args.id}", file=sys.stderr)
        return EX_DATAERR
    attachment = found[0]
    data = attachment.content
    if data is None and raw is not None:
        data = find_attachment(raw, attachment.sha256)
    if data is None:
        print(f"spocd: the bytes of attachment {args.id} are not stored", file=sys.stderr)
        return EX_DATAERR
    if args.output:
        try:
            Path(args.output).write_bytes(data)
        except OSError as exc:
            print(f"spocd: cannot write {args.output}: {exc}", file=sys.stderr)
            return EX_CANTCREAT  # sysexits: cannot create the output file
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    return EX_OK


def cmd_db(args: argparse.Namespace) -> int:
    from daemon.adapters.storage import migrate
    from daemon.adapters.storage.engine import make_engine

    if args.db_command == "copy":
        return _db_copy(args.source, args.target)
    settings = settings_of(args)
    try:
        engine = make_engine(
            settings.database.url, busy_timeout_ms=settings.database.busy_timeout_ms
        )
        try:
            before = migrate.current_revision(engine)
            migrate.upgrade(engine)
            after = migrate.current_revision(engine)
        finally:
            engine.dispose()
    except Exception as exc:
        # One line and 75, as `open_app` gives every other command (this was
        # a traceback and exit 1): a server down, a SQLite file that cannot be made.
        if not (type(exc).__module__.startswith("sqlalchemy") or isinstance(exc, OSError)):
            raise
        print(f"spocd: database unavailable: {exc}", file=sys.stderr)
        return EX_TEMPFAIL
    print(
        f"database at {after}"
        + (
            " (was empty)"
            if before is None
            else f" (was {before})"
            if before != after
            else " (up to date)"
        )
    )
    return EX_OK


def _db_copy(source_url: str, target_url: str) -> int:
    from daemon.adapters.storage.copy import CopyError, copy_database
    from daemon.adapters.storage.engine import make_engine

    source, target = make_engine(source_url), make_engine(target_url)
    try:
        counts = copy_database(source, target)
    except CopyError as exc:
        print(f"spocd: db copy refused: {exc}", file=sys.stderr)
        return EX_DATAERR
    finally:
        source.dispose()
        target.dispose()
    for table, count in counts.items():
        print(f"{table:<14} {count:>9} rows copied and verified")
    return EX_OK


def cmd_queue(args: argparse.Namespace) -> int:
    app = open_app(args)
    try:
        if args.action == "list":
            states = [s.strip() for s in args.state.split(",") if s.strip()]
            with app.store.reading() as tx:
                entries = tx.inbound.entries(states, 200)
            rows = [
                {
                    "id": e.id,
                    "state": e.state,
                    "intake": e.intake,
                    "received_at": e.received_at.isoformat(),
                    "size": e.size,
                    "stage": e.stage,
                    "reason": e.reason,
                    "attempts": e.attempts,
                }
                for e in entries
            ]
            if args.json:
                _print_json(rows)
            elif not rows:
                print("queue empty", file=sys.stderr)
            else:
                for r in rows:
                    print(
                        f"{r['id']:>7} {r['state']:<11} {r['received_at']} {r['size']:>9}B "
                        f"{r['stage'] or '-'}: {r['reason'] or ''}"
                    )
            return EX_OK
        if not args.ids:
            raise UsageError(f"queue {args.action} needs at least one id")
        if args.action == "raw":
            with app.store.reading() as tx:
                raw = tx.inbound.raw(args.ids[0])
            if raw is None:
                print(f"spocd: no inbound item {args.ids[0]}", file=sys.stderr)
                return EX_DATAERR
            sys.stdout.buffer.write(raw)
            return EX_OK
        now = app.clock.now()
        for item_id in args.ids:
            with app.store.transaction() as tx:
                requeued = tx.inbound.requeue(item_id, now)
            if not requeued:
                print(f"{item_id}: not failed or quarantined; left alone")
                continue
            outcome = app.inbound.process_item(item_id)
            print(
                f"{item_id}: {outcome.outcome}"
                + (f" {app.runtime.ticket_id(outcome.ticket)}" if outcome.ticket else "")
                + (f": {outcome.detail}" if outcome.detail else "")
            )
        app.sender.send_due()
        return EX_OK
    finally:
        app.close()


def cmd_status(args: argparse.Namespace) -> int:
    """Health for monitoring: exit 0 healthy, 1 unhealthy (like `systemctl is-active`)."""
    from daemon.adapters.storage.store import SqlStore
    from daemon.app.status import status_report, status_text
    from daemon.ports import SystemClock
    from daemon.service.wiring import load_runtime

    settings = settings_of(args)
    # A rules file or templates every other command refuses (78) is refused
    # here too: status said "healthy" while the daemon could not start.
    load_runtime(settings, key=b"")  # the key signs nothing here
    try:
        store = SqlStore.open(settings.database.url)
    except Exception as exc:
        if type(exc).__module__.startswith("sqlalchemy"):
            print(f"spocd: database unavailable: {exc}", file=sys.stderr)
            return EX_TEMPFAIL
        raise
    try:
        with store.reading() as tx:
            report = status_report(settings, tx, SystemClock().now())
    finally:
        store.close()
    if args.json:
        _print_json(report)
    else:
        print(status_text(report))
    return EX_OK if report["healthy"] else 1


STARTER_CONFIG = "spocd.example.toml"


def cmd_init(args: argparse.Namespace) -> int:
    target = Path(args.dir)
    target.mkdir(parents=True, exist_ok=True)
    root = starter_root()
    plan = [
        (root / STARTER_CONFIG, target / "spocd.toml"),
        (root / "rules.yaml", target / "rules.yaml"),
    ]
    templates = root / "templates"
    for src in sorted(templates.rglob("*")):
        if src.is_file():
            plan.append((src, target / "templates" / src.relative_to(templates)))
    kept, written = [], []
    for src, dst in plan:
        if not src.is_file():
            print(f"spocd: starter file missing from this installation: {src}", file=sys.stderr)
            return EX_CONFIG
        if dst.exists() and not args.force:
            kept.append(dst)
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        written.append(dst)
    for dst in written:
        print(f"wrote {dst}")
    for dst in kept:
        print(f"kept  {dst} (exists; --force overwrites)")
    return EX_OK
