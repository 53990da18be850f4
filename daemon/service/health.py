"""What the daemon says about its health: /readyz's answer, the status
line systemd shows, and the listener's TLS.

Apart from the daemon because these read the database and the settings only;
the daemon's own state (threads, heartbeat) stays with `Daemon._alive`.
"""

from __future__ import annotations

import ssl

from daemon.adapters.storage.stats import ping, read_stats
from daemon.app.status import status_report
from daemon.config import HttpSettings
from daemon.service.wiring import App


def ready(app: App) -> tuple[bool, str]:
    """Ready: the database answers and every enabled mailbox succeeded
    within 3 of its poll intervals (the rule of `spocd status`)."""
    try:
        ping(app.store.engine)
        with app.store.reading() as tx:
            report = status_report(app.settings, tx, app.clock.now())
    except Exception as exc:
        return False, f"database unreachable: {exc}"
    problems = [
        f"mailbox {m['name']}: {m['problem']}"
        for m in report["mailboxes"]
        if m["enabled"] and not m["healthy"]
    ]
    return (False, "; ".join(problems)) if problems else (True, "ready")


def status_line(app: App) -> str:
    """The one line `systemctl status` shows: queues, outbox, mailboxes."""
    try:
        stats = read_stats(app.store.engine)
    except Exception as exc:
        return f"database unavailable: {exc}"
    line = (
        f"queue {stats.inbound.get('queued', 0)}, failed {stats.inbound.get('failed', 0)}"
        f", outbox {stats.outbox.get('pending', 0)} pending "
        f"{stats.outbox.get('failed', 0)} failed"
    )
    boxes = [f"{b['mailbox']}:{'up' if b.get('connected') else 'down'}" for b in stats.mailboxes]
    return line + (f", imap {' '.join(boxes)}" if boxes else "")


def tls_context(http: HttpSettings) -> ssl.SSLContext | None:
    """HTTPS for the listener when a certificate is configured."""
    if http.tls_cert_file is None or http.tls_key_file is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(http.tls_cert_file, http.tls_key_file)
    return context
