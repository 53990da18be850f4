"""Connection accounting: how many connections one client address, and the
listener in all, may hold; the total kept below the open-file limit."""

from __future__ import annotations

from collections import Counter
from typing import Any

TOO_MANY_CONNECTIONS = "421 4.7.0 Too many connections from your address; try again later"
SERVER_BUSY = "421 4.3.2 Too many connections; try again later"
#: A limit no client reaches, where aiosmtpd and the counter want a number.
NO_LIMIT = 1 << 30
#: File descriptors kept free for everything but SMTP connections.
FD_RESERVE = 64


def peer_host(peer: Any) -> str:
    """The client's address from aiosmtpd's `session.peer`."""
    return str(peer[0]) if isinstance(peer, tuple) else str(peer)


class ClientCounter:
    """Open connections, per client address and in all; touched only on the
    event loop. Past either limit a connection is refused (421) at once."""

    def __init__(self, limit: int, total: int = NO_LIMIT) -> None:
        self.limit = limit
        self.total = total
        self._open: Counter[str] = Counter()
        self._count = 0

    @property
    def open(self) -> int:
        return self._count

    def enter(self, host: str) -> str | None:
        """None when admitted, else the reply that refuses the connection."""
        if self._count >= self.total:
            return SERVER_BUSY
        if self._open[host] >= self.limit:
            return TOO_MANY_CONNECTIONS
        self._open[host] += 1
        self._count += 1
        return None

    def leave(self, host: str) -> None:
        self._count -= 1
        self._open[host] -= 1
        if self._open[host] <= 0:
            del self._open[host]


def connection_cap(configured: int, nofile: int) -> int:
    """Connections the listener may hold: what is configured, but always
    FD_RESERVE descriptors below the open-file limit (the database, logs,
    the HTTP endpoint and IMAP need theirs), and at least one."""
    return max(1, min(configured, nofile - FD_RESERVE))
