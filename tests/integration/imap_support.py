"""Helpers of the IMAP tests: a spocd config for a Dovecot mailbox, counts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from daemon.adapters.storage.store import SqlStore
from daemon.cli.bench.dovecot import PASSWORD, Dovecot
from daemon.config import load_settings
from daemon.ports import Clock
from tests.conftest import write_config

#: Dovecot's Maildir hierarchy delimiter is ".": the configured
#: "spocd/processed" becomes this on the server.
PROCESSED = "spocd.processed"
FAILED = "spocd.failed"


def imap_section(server: Dovecot, user: str, **overrides: Any) -> dict[str, Any]:
    section: dict[str, Any] = {
        "enabled": True,
        "host": "127.0.0.1",
        "port": server.port,
        "tls": "none",
        "username": user,
        "password": PASSWORD,
        "idle": False,
        "poll_seconds": 1,
        "timeout_seconds": 10,
    }
    section.update(overrides)
    return section


def imap_config(directory: Path, db_url: str, server: Dovecot, user: str, **overrides: Any) -> Path:
    """A spocd.toml reading one Dovecot mailbox; the SMTP listener is off."""
    return write_config(
        directory, db_url, imap=imap_section(server, user, **overrides), smtp={"enabled": False}
    )


def make_app(config: Path, clock: Clock | None = None) -> Any:
    from daemon.service.wiring import App

    return App(load_settings(config), clock)


def counts(store: SqlStore) -> dict[str, int]:
    """Tickets, inbound items, and messages stored on tickets (in)."""
    with store.reading() as tx:
        tickets = tx.tickets.listing(None)
        inbound = sum(tx.inbound.count(s) for s in ("queued", "done", "failed", "quarantined"))
        messages = [m for t in tickets for m in tx.messages.of_ticket(t.number)]
    incoming = [m for m in messages if m.direction == "in"]
    return {
        "tickets": len(tickets),
        "inbound": int(inbound),
        "messages_in": len(incoming),
        "distinct_in": len({m.message_id for m in incoming}),
    }


def toml_tables(name: str, tables: list[dict[str, Any]]) -> str:
    """`[[name]]` tables as TOML text (write_config writes one table per section)."""
    lines = []
    for table in tables:
        lines.append(f"\n[[{name}]]")
        for key, value in table.items():
            lines.append(f"{key} = {_toml(value)}")
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
