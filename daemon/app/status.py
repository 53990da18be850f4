"""`spocd status`: is intake working, and how much work is waiting?

Reads what the running daemon recorded (mailbox state, queue and outbox
counts) from the database, so it answers for a daemon in another process,
or on another host sharing the database. A mailbox is healthy when it had a
success within 3 of its poll intervals (a poll is a success only when every
step of it succeeded) and no message stays in its folder untaken or unmoved;
the whole is healthy when every enabled mailbox is and no intake thread of the
daemon died (the daemon records that as it exits for a restart, and clears it
when it starts).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from daemon.config import Settings
from daemon.mail.imap_plan import HEALTHY_INTERVALS, healthy
from daemon.ports import MailboxState, Tx

#: The settings row where `spocd run` records why its intake stopped ("" when it works).
INTAKE_FAILURE = "intake_failure"


def status_report(settings: Settings, tx: Tx, now: datetime) -> dict[str, Any]:
    states = {(s.mailbox, s.folder): s for s in tx.mailboxes.listing()}
    mailboxes = [
        _mailbox(
            m.name, m.folder, m.host, m.enabled, m.poll_seconds, states.get((m.name, m.folder)), now
        )
        for m in settings.imap
    ]
    intake_failure = tx.settings.get(INTAKE_FAILURE) or None
    return {
        "healthy": intake_failure is None and all(m["healthy"] for m in mailboxes if m["enabled"]),
        "checked_at": now.isoformat(),
        "intake_failure": intake_failure,
        "mailboxes": mailboxes,
        "inbound": {s: tx.inbound.count(s) for s in ("queued", "failed", "quarantined")},
        "outbox": {s: tx.outbox.count(s) for s in ("pending", "failed")},
    }


def _mailbox(
    name: str,
    folder: str,
    host: str,
    enabled: bool,
    poll_seconds: int,
    state: MailboxState | None,
    now: datetime,
) -> dict[str, Any]:
    last_success = state.last_success_at if state else None
    ok = healthy(last_success, poll_seconds, now)
    if not enabled:
        problem = None
    elif last_success is None:
        problem = "no successful poll yet"
    elif not ok:
        age = int((now - last_success).total_seconds())
        problem = (
            f"no success for {age}s (limit {HEALTHY_INTERVALS} x {poll_seconds}s poll interval)"
        )
    else:
        problem = None
    stuck = _stuck(state)
    if enabled and stuck:
        problem = "; ".join([problem, stuck] if problem else [stuck])
        ok = False
    return {
        "name": name,
        "folder": folder,
        "host": host,
        "enabled": enabled,
        "healthy": ok if enabled else True,
        "problem": problem,
        "connected": bool(state and state.connected),
        "last_success_at": _iso(last_success),
        "last_error_at": _iso(state.last_error_at if state else None),
        "last_error": state.last_error if state else None,
        "taken": state.taken if state else 0,
        "failed": state.failed if state else 0,
        "uidvalidity": state.uidvalidity if state else None,
        "last_uid": state.last_uid if state else 0,
        "poll_seconds": poll_seconds,
        "untaken": state.untaken if state else 0,
        "unmoved": state.unmoved if state else 0,
    }


def _stuck(state: MailboxState | None) -> str | None:
    """Messages that stay in the folder: the server would not deliver them,
    or they could not be moved out (`spocd` will not copy them again)."""
    if state is None:
        return None
    parts = []
    if state.untaken:
        parts.append(f"{state.untaken} message(s) the server would not deliver")
    if state.unmoved:
        parts.append(f"{state.unmoved} message(s) taken but not moved out of the folder")
    return "; ".join(parts) or None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def status_text(report: dict[str, Any]) -> str:
    """The report for a person at a terminal."""
    lines = []
    if report["intake_failure"]:
        lines.append(f"intake: FAILED: {report['intake_failure']}")
    for m in report["mailboxes"]:
        if not m["enabled"]:
            lines.append(f"mailbox {m['name']}: disabled")
            continue
        verdict = "ok" if m["healthy"] else f"UNHEALTHY: {m['problem']}"
        lines.append(
            f"mailbox {m['name']} ({m['folder']} on {m['host']}): {verdict}; "
            f"{'connected' if m['connected'] else 'not connected'}, "
            f"last success {m['last_success_at'] or 'never'}, "
            f"taken {m['taken']}, failed {m['failed']}"
        )
        if m["last_error"]:
            lines.append(f"  last error {m['last_error_at']}: {m['last_error']}")
    if not report["mailboxes"]:
        lines.append("no IMAP mailboxes configured")
    inbound, outbox = report["inbound"], report["outbox"]
    lines.append(
        f"inbound queue: {inbound['queued']} queued, {inbound['failed']} failed, "
        f"{inbound['quarantined']} quarantined"
    )
    lines.append(f"outbox: {outbox['pending']} pending, {outbox['failed']} failed")
    lines.append("healthy" if report["healthy"] else "unhealthy")
    return "\n".join(lines)
