"""`spocd report` (KPIs, per contract, or mailed to a contract now) and
`spocd contracts` (contracts with their open tickets and SLA states)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from daemon.cli.main import EX_OK, UsageError, open_app, parse_moment

REPORT_DAYS = 30


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def report_bound(text: str, zone: str, *, end: bool) -> datetime:
    """A report bound: an ISO date is a day of the desk's time zone (the start
    of it for --since, the end of it for --until, so both days count); an ISO
    moment is that moment (UTC when it names no offset, like --now)."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        day = None
    if day is not None and len(text) <= 10:
        start = datetime.combine(day + timedelta(days=1) if end else day, time(), ZoneInfo(zone))
        return start.astimezone(UTC)
    try:
        return parse_moment(text)
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"{exc}; use a date such as 2026-11-01 or a moment") from exc


def _bounds(args: argparse.Namespace, zone: str, now: datetime) -> tuple[datetime, datetime]:
    until = report_bound(args.until, zone, end=True) if args.until else now
    since = (
        report_bound(args.since, zone, end=False)
        if args.since
        else until - timedelta(days=REPORT_DAYS)
    )
    if since >= until:
        raise UsageError(f"--since ({since.isoformat()}) must come before --until")
    return since, until


def _known_contract(app: Any, contract: str) -> None:
    """An id of rules.yaml, or one some ticket carries (a removed contract)."""
    if contract in app.runtime.rules.contracts:
        return
    with app.store.reading() as tx:
        if contract in tx.tickets.contract_ids():
            return
    known = ", ".join(sorted(app.runtime.rules.contracts)) or "none in rules.yaml"
    raise UsageError(f"no contract {contract!r} (known: {known})")


def cmd_report(args: argparse.Namespace) -> int:
    from daemon.app import report

    if args.json and args.csv:
        raise UsageError("choose one of --json and --csv")
    if args.mail and not args.contract:
        raise UsageError("--mail needs --contract ID")
    app = open_app(args)
    try:
        rt = app.runtime
        now = app.clock.now()
        if args.contract:
            _known_contract(app, args.contract)
        if args.mail:
            return _mail(app, args, now)
        since, until = _bounds(args, rt.settings.helpdesk.timezone, now)
        with app.store.reading() as tx:
            tickets = tx.tickets.all_between(since, until)
            events = tx.events.of_types(report.EVENT_TYPES, since, until)
        data = report.build(
            tickets,
            events,
            rt.rules,
            report.Period(since, until),
            now,
            rt.prefix,
            contract=args.contract,
        )
    finally:
        app.close()
    if args.json:
        _print_json(data)
    elif args.csv:
        sys.stdout.write(report.format_csv(data))
    else:
        sys.stdout.write(report.format_text(data))
    return EX_OK


def _mail(app: Any, args: argparse.Namespace, now: datetime) -> int:
    """`report --contract ID --mail`: the contract's KPI mail, queued and
    sent now; without --since/--until, of the last period that has ended."""
    from daemon.app import kpimail, kpiperiod

    rt = app.runtime
    contract = rt.rules.contracts.get(args.contract)
    if contract is None or contract.report is None:
        raise UsageError(
            f"contract {args.contract!r} has no report: section in rules.yaml (no recipients)"
        )
    cal = kpimail.calendar_of(contract, rt.rules)
    zone = cal.timezone if cal is not None else rt.settings.helpdesk.timezone
    every = contract.report.every
    if args.since or args.until:
        since, until = _bounds(args, rt.settings.helpdesk.timezone, now)
        period = kpimail.range_period("range", since, until, zone)
        whole = kpiperiod.period_of(every, period.first, zone)
        if (whole.since, whole.until) == (since, until):
            period = whole  # exactly a month (week): named so
    else:
        today = now.astimezone(ZoneInfo(zone)).date()
        period = kpiperiod.previous(kpiperiod.period_of(every, today, zone), zone)
    mail = kpimail.send_now(app.store, rt, contract, period, now)
    sent = app.sender.send_due()
    result = {
        "contract": contract.id,
        "period": {"since": period.since.isoformat(), "until": period.until.isoformat()},
        "to": list(contract.report.to),
        "message_id": mail.message_id,
        "subject": mail.subject,
        "sent": sent.sent,
    }
    if args.json:
        _print_json(result)
    else:
        print(
            f"KPI report of {contract.id} for {period.first}..{period.last} queued to "
            f"{', '.join(result['to'])}: {mail.subject}"
        )
    return EX_OK


def cmd_contracts(args: argparse.Namespace) -> int:
    from daemon.app import board, contracts_view

    app = open_app(args)
    try:
        rt = app.runtime
        now = app.clock.now()
        with app.store.reading() as tx:
            rows = board.rows(tx.tickets.clocks(board.OPEN), rt.prefix, rt.rules, now)
        entries = contracts_view.listing(rows, rt.rules)
    finally:
        app.close()
    if args.json:
        _print_json(entries)
    else:
        sys.stdout.write(contracts_view.format_text(entries))
    return EX_OK
