"""The contracts' KPI report by mail (SPEC §7, issue 15).

A contract with `report: {every: month|week, to: [...], language: pl|en}`
gets, at 08:00 on the first working day of each period in its calendar
(without one, that of the top-level P3 row), the report of the period just
ended (`kpiperiod`): a text and HTML summary in its language (the figures of
`spocd report --contract ID` for that period) and the period's tickets as a
CSV attachment.

Sent once per period and contract, like the digest (`digest.py`): the sweep
asks for the latest sending moment at or before now, and the settings row
`kpi_report_sent:<contract>` holds the first day of the last period sent.
The row is moved with a conditional write (`settings.advance`) in the same
transaction that queues the mail, so a late tick or a restart after downtime
sends the missed report once, and two instances (or two ticks) racing on
PostgreSQL send it once: the second waits on the row, then finds it moved.

The CSV (UTF-8 with a BOM, so spreadsheets read the Polish letters; comma
separated, RFC 4180) has one row per ticket of the contract that was opened,
resolved or closed in the period, or was open at its end. Moments are local
to the calendar, ISO 8601 with offset; a moment after the period's end is
left empty (the row says how the ticket stood when the period closed).
`response`/`resolution` are `met`, `breached`, or empty (not due by then,
paused, or cancelled).
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from daemon.app import kpiperiod, report
from daemon.app.kpiperiod import KpiPeriod
from daemon.app.tickets import Runtime
from daemon.core.businesstime import Calendar
from daemon.core.domain import Attachment, OutgoingMail, Status, Ticket
from daemon.mail import attachparts
from daemon.mail.attachparts import Item, Plan
from daemon.ports import Store, Tx
from daemon.rules.contracts import Contract
from daemon.rules.ruleset import Rules
from daemon.rules.values import PRIORITIES

log = logging.getLogger("spocd.kpimail")

SENT_KEY = "kpi_report_sent:"
TEMPLATE = "kpi_report"
CSV_FIELDS = (
    "tag",
    "subject",
    "requester",
    "priority",
    "status",
    "opened",
    "responded",
    "resolved",
    "closed",
    "response_due",
    "resolution_due",
    "response",
    "resolution",
    "closure",
)


def calendar_of(contract: Contract, rules: Rules) -> Calendar | None:
    """The contract's calendar, else that of the top-level P3 row."""
    if contract.calendar is not None:
        return contract.calendar
    p3 = rules.sla.get("P3")
    return p3.calendar if p3 is not None else None


def sent_key(contract_id: str) -> str:
    return SENT_KEY + contract_id


# --- the period's tickets ----------------------------------------------------


def period_tickets(tickets: Sequence[Ticket], contract_id: str, period: KpiPeriod) -> list[Ticket]:
    """The contract's tickets opened, resolved or closed in the period, or
    open at its end, by number."""

    def within(moment: datetime | None) -> bool:
        return moment is not None and period.since <= moment < period.until

    def open_at_end(t: Ticket) -> bool:
        if t.created_at >= period.until or t.status == Status.CANCELLED:
            return False
        return not any(m is not None and m < period.until for m in (t.resolved_at, t.closed_at))

    return sorted(
        (
            t
            for t in tickets
            if t.contract == contract_id
            and t.merged_into is None
            and (
                within(t.created_at)
                or within(t.resolved_at)
                or within(t.closed_at)
                or open_at_end(t)
            )
        ),
        key=lambda t: t.number,
    )


def _verdict(t: Ticket, due: datetime | None, met_at: datetime | None, end: datetime) -> str:
    if due is None or t.status == Status.CANCELLED:
        return ""
    if met_at is not None and met_at < end:
        return "met" if met_at <= due else "breached"
    if due >= end:
        return ""
    if t.paused_at is not None and t.paused_at < due:
        return ""  # the clock stopped before the deadline
    return "breached"


def ticket_rows(
    tickets: Sequence[Ticket], prefix: str, zone: str, end: datetime
) -> list[dict[str, str]]:
    """One CSV row per ticket, as the ticket stood at `end`."""
    tz = ZoneInfo(zone)

    def moment(value: datetime | None) -> str:
        if value is None or value >= end:
            return ""
        return value.astimezone(tz).isoformat(timespec="seconds")

    def target(value: datetime | None) -> str:
        return value.astimezone(tz).isoformat(timespec="seconds") if value else ""

    rows = []
    for t in tickets:
        responded = t.first_responded_at or t.resolved_at
        rows.append(
            {
                "tag": f"{prefix}-{t.number}",
                "subject": t.subject,
                "requester": t.requester,
                "priority": t.priority,
                "status": str(t.status),
                "opened": moment(t.created_at),
                "responded": moment(responded),
                "resolved": moment(t.resolved_at),
                "closed": moment(t.closed_at),
                "response_due": target(t.first_response_due),
                "resolution_due": target(t.resolution_due),
                "response": _verdict(t, t.first_response_due, responded, end),
                "resolution": _verdict(t, t.resolution_due, t.resolved_at, end),
                "closure": (t.closure or "") if t.closed_at and t.closed_at < end else "",
            }
        )
    return rows


def tickets_csv(rows: Sequence[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


# --- the mail ----------------------------------------------------------------

_WORDS = {
    "en": {"h": "h", "m": "m", "point": "."},
    "pl": {"h": " godz.", "m": " min", "point": ","},
}


def _duration(seconds: int | None, language: str) -> str:
    if seconds is None:
        return "–"
    w = _WORDS[language]
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes}{w['m']}"
    return f"{minutes // 60}{w['h']} {minutes % 60:02d}{w['m']}"


def _percent(value: float | None, language: str) -> str:
    if value is None:
        return "–"
    return f"{value * 100:.1f}".replace(".", _WORDS[language]["point"]) + "%"


def _kpi_row(name: str, k: dict[str, Any], language: str) -> dict[str, Any]:
    restoration = k.get("restoration_compliance")  # figures added with §8
    return {
        "name": name,
        "opened": k["opened"],
        "resolved": k["resolved"],
        "response": _percent(k["response_compliance"], language),
        "resolution": _percent(k["resolution_compliance"], language),
        "restoration": _percent(restoration, language) if "restoration_compliance" in k else None,
        "first_response_median": _duration(k["first_response_median_s"], language),
        "first_response_p90": _duration(k["first_response_p90_s"], language),
        "resolution_median": _duration(k["resolution_median_s"], language),
        "resolution_p90": _duration(k["resolution_p90_s"], language),
        "breaches": k["breaches"],
    }


def context(
    doc: dict[str, Any],
    contract: Contract,
    period: KpiPeriod,
    rows: Sequence[dict[str, str]],
    language: str,
    zone: str,
) -> dict[str, Any]:
    """What the `kpi_report` templates see."""
    tz = ZoneInfo(zone)
    priorities = [
        _kpi_row(p, k, language)
        for p, k in doc["by_priority"].items()
        if p in PRIORITIES
        and (k["opened"] or k["resolved"] or k["breaches"] or k["response_compliance"] is not None)
    ]
    return {
        "contract": {"id": contract.id, "name": contract.name},
        "period": {
            "every": period.every,
            "first": period.first,
            "last": period.last,
            "since": period.since,
            "until": period.until,
        },
        "counts": doc["counts"],
        "priorities": priorities,
        "overall": _kpi_row("", doc["overall"], language),
        "counted": any(
            doc["overall"].get(f"{target}_compliance") is not None
            for target in ("response", "resolution", "restoration")
        ),
        "restoration": any(p["restoration"] is not None for p in priorities),
        "breaches": [
            {
                **b,
                "due": datetime.fromisoformat(b["due"]).astimezone(tz),
                "met_at": datetime.fromisoformat(b["met_at"]).astimezone(tz)
                if b["met_at"]
                else None,
                "late": _duration(b["late_s"], language),
            }
            for b in doc["breaches"]
        ],
        "backlog": {
            "total": doc["backlog"]["total"],
            "by_priority": [(p, n) for p, n in doc["backlog"]["by_priority"].items() if n],
        },
        "tickets": len(rows),
        "empty": not rows,
        "attachment": "",
    }


def compose(
    tx: Tx, rt: Runtime, contract: Contract, period: KpiPeriod, now: datetime
) -> OutgoingMail:
    """The report mail of one contract and period, with the CSV attached."""
    plan = contract.report
    if plan is None:
        raise ValueError(f"contract {contract.id} has no report: section")
    cal = calendar_of(contract, rt.rules)
    zone = cal.timezone if cal is not None else rt.settings.helpdesk.timezone
    tickets = tx.tickets.all_between(period.since, period.until)
    events = tx.events.of_types(report.EVENT_TYPES, period.since, period.until)
    span = report.Period(period.since, period.until)
    doc = report.build(tickets, events, rt.rules, span, now, rt.prefix, contract=contract.id)
    end = min(period.until, now)
    rows = ticket_rows(period_tickets(tickets, contract.id, period), rt.prefix, zone, end)
    data = tickets_csv(rows)
    name = f"kpi-{contract.id}-{period.first.isoformat()}.csv"
    file = Attachment(name, "text/csv", len(data), hashlib.sha256(data).hexdigest(), data)
    ctx = context(doc, contract, period, rows, plan.language, zone)
    ctx["attachment"] = name
    mail = rt.composer.compose(
        template=TEMPLATE,
        kind=TEMPLATE,
        ticket=None,
        to=list(plan.to),
        context=ctx,
        now=now,
        language=plan.language,
        auto_submitted="auto-generated",
        attachments=Plan(attached=(Item(None, file),)),
    )
    # The CSV is no ticket's attachment: its bytes go into the stored mail.
    return replace(mail, raw=attachparts.expand(mail.raw, lambda sha: data))


# --- when ------------------------------------------------------------------------


def _already(recorded: str | None, period: KpiPeriod) -> bool:
    return recorded is not None and recorded >= period.key


def due_reports(rules: Rules, now: datetime) -> list[tuple[Contract, KpiPeriod]]:
    """Each contract with a report and the period its latest moment reports on."""
    found = []
    for contract in rules.contracts.values():
        cal = calendar_of(contract, rules)
        if contract.report is None or cal is None:
            continue
        due = kpiperiod.due(contract.report.every, cal, now)
        if due is not None:
            found.append((contract, due[1]))
    return found


def sweep(store: Store, runtime: Callable[[], Runtime], now: datetime) -> Counter[str]:
    """Queue the reports whose moment has come and that have not gone yet."""
    counts: Counter[str] = Counter()
    rt = runtime()
    due = due_reports(rt.rules, now)
    if not due:
        return counts
    with store.reading() as tx:  # the usual answer, without the write lock
        due = [(c, p) for c, p in due if not _already(tx.settings.get(sent_key(c.id)), p)]
    for contract, period in due:
        try:
            with store.transaction() as tx:
                if not tx.settings.advance(sent_key(contract.id), period.key):
                    continue  # another instance or tick sent it
                tx.outbox.add(compose(tx, rt, contract, period, now), now)
            counts["kpi_reports"] += 1
        except Exception:
            log.exception("kpi report failed", extra={"contract": contract.id})
            counts["kpi_reports_failed"] += 1
    return counts


def send_now(
    store: Store, rt: Runtime, contract: Contract, period: KpiPeriod, now: datetime
) -> OutgoingMail:
    """`spocd report --contract ID --mail`: queue one now (the schedule's
    record is left alone)."""
    with store.transaction() as tx:
        mail = compose(tx, rt, contract, period, now)
        tx.outbox.add(mail, now)
    return mail


def range_period(every: str, since: datetime, until: datetime, zone: str) -> KpiPeriod:
    """A period of given moments (`--since`/`--until`), named by local dates."""
    tz = ZoneInfo(zone)
    first = since.astimezone(tz).date()
    after = (until - timedelta(microseconds=1)).astimezone(tz).date() + timedelta(days=1)
    return KpiPeriod(every, first, after, since, until)
