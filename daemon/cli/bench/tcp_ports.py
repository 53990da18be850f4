"""A TCP port on 127.0.0.1 for a server that another process starts later.

The bench's daemons and Dovecot (and the test suite's, which use these) are
given a port number, then bind it themselves a moment later. A port from
`bind(0)` comes from the kernel's ephemeral range, the range every outgoing
connection takes its local port from: in that moment a connection made by
anyone else on the machine (a client of another daemon, a test worker's
database connection) can take the same port, and the server's bind fails
with EADDRINUSE. Seen in CI: a daemon that retried its SMTP port for 10 s
and exited 75. Ports below that range are never handed out to connections,
so they are taken from there, each checked free by a bind.
"""

from __future__ import annotations

import itertools
import secrets
import socket
from collections.abc import Iterable

#: The lowest port handed out, well above the well-known and registered
#: services a development machine runs (PostgreSQL 5432, RabbitMQ 5672, ...);
#: one that listens in the range anyway is skipped by the bind check.
LOWEST = 10_000
#: Linux's default `ip_local_port_range` starts here.
EPHEMERAL_START = 32_768
_RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"

#: Ports this process has handed out: a server given one may not have bound
#: it yet, so the bind check alone would hand it out again.
_handed_out: set[int] = set()


def free_port() -> int:
    """A port nobody listens on now, outside the ephemeral range where the
    range leaves room below it (else the kernel's choice, as before)."""
    top = _ephemeral_start()
    if top - LOWEST < 1_000:
        return _kernel_port()
    # Drawn from the OS, not `random`: a test that seeds `random` would have
    # every worker start at the same port.
    start = LOWEST + secrets.randbelow(top - LOWEST)
    every = itertools.chain(range(start, top), range(LOWEST, start))
    candidates = (p for p in every if p not in _handed_out)
    port = first_free(candidates) or _kernel_port()
    _handed_out.add(port)
    return port


def first_free(ports: Iterable[int]) -> int | None:
    """The first of `ports` that 127.0.0.1 can bind now, or None."""
    for port in ports:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    return None


def _ephemeral_start() -> int:
    try:
        with open(_RANGE_FILE, encoding="ascii") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return EPHEMERAL_START


def _kernel_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
