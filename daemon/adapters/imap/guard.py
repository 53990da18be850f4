"""Limits on what an IMAP server can make the intake read, and for how long.

imaplib trusts the server: it reads a literal of whatever size is announced
in one call, keeps every untagged response of a command, and its socket
timeout only bounds each read, so a server that trickles a byte now and then
holds a command for ever. `ReadGuard` replaces the connection's `read` and
`readline` (the two calls imaplib reads through) with ones that

- stop at a total deadline per command (and one per poll, set by the caller),
  each socket read bounded by what is left of it;
- read a literal larger than the message size cap into nowhere, noting its
  size, so the caller sends that message to the failed folder;
- count the lines of one command and refuse an endless stream of them;
- count the literal bytes received, which batches are measured by.
"""

from __future__ import annotations

import contextlib
import time
import types
from collections.abc import Callable
from typing import Any

#: Bytes asked of the socket in one read of a literal.
CHUNK = 256 * 1024
#: imaplib's own limit on one response line.
MAX_LINE = 1_000_000
#: Response lines one command may bring (a FETCH of 1,000 sizes brings 1,000).
MAX_LINES = 20_000
#: Bytes of response lines (not literals) one command may bring.
MAX_LINE_BYTES = 32 * 1024 * 1024


class ServerMisbehaves(Exception):
    """The server sent more than any honest answer to the command holds."""


class Withheld(bytes):
    """Stands in for a literal read into nowhere: empty, but of the announced
    length, so imapclient's parser (which checks it) takes the response."""

    size: int

    def __new__(cls, size: int) -> Withheld:
        made = super().__new__(cls, b"")
        made.size = size
        return made

    def __len__(self) -> int:
        return self.size


def guard(client: Any, *, timeout: float, max_literal: int) -> ReadGuard:
    """The connection's guard, installed on first use (before LOGIN, by the
    connector, so a login answer trickled byte by byte ends in time too)."""
    installed = getattr(client._imap, "spocd_guard", None)
    if isinstance(installed, ReadGuard):
        return installed
    return ReadGuard(client, timeout=timeout, max_literal=max_literal)


class ReadGuard:
    """Installed on one imapclient connection; see the module docstring."""

    def __init__(
        self,
        client: Any,
        *,
        timeout: float,
        max_literal: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.imap = client._imap
        self.timeout = timeout
        self.max_literal = max_literal
        self.clock = clock
        self.poll_deadline: float | None = None
        self.received = 0  # literal bytes kept, over the connection's life
        self.oversized: list[int] = []  # sizes of literals read into nowhere
        self._start_command()
        original = self.imap._command

        def command(imap: Any, *args: Any, **kwargs: Any) -> Any:
            self._start_command()
            return original(*args, **kwargs)

        # A bound method, as imaplib's AUTHENTICATE compares its type with it.
        self.imap._command = types.MethodType(command, self.imap)
        self.imap.read = self.read
        self.imap.readline = self.readline
        self.imap.spocd_guard = self

    def _start_command(self) -> None:
        self.deadline = self.clock() + self.timeout
        self.lines = 0
        self.line_bytes = 0

    def extend(self, seconds: float) -> None:
        """The current command (IDLE) may last this long, plus the timeout."""
        self.deadline = self.clock() + seconds + self.timeout

    # --- the two reads imaplib does ---------------------------------------------------

    def readline(self) -> bytes:
        parts: list[bytes] = []
        size = 0
        while True:
            data = self._peek()
            if not data:
                break  # EOF, or nothing yet on a non-blocking socket (IDLE polling)
            end = data.find(b"\n")
            take = end + 1 if end >= 0 else len(data)
            take = min(take, MAX_LINE + 1 - size)
            parts.append(self.imap.file.read(take))
            size += take
            if end >= 0 or size > MAX_LINE:
                break
        line = b"".join(parts)
        if size > MAX_LINE:
            raise self.imap.error(f"got more than {MAX_LINE} bytes")
        self.lines += 1
        self.line_bytes += size
        if self.lines > MAX_LINES or self.line_bytes > MAX_LINE_BYTES:
            raise ServerMisbehaves(
                f"more than {MAX_LINES} lines or {MAX_LINE_BYTES} bytes in answer to one command"
            )
        return line

    def read(self, size: int) -> bytes:
        if size > self.max_literal:
            self._discard(size)
            self.oversized.append(size)
            return Withheld(size)
        buffer = bytearray(size)
        view = memoryview(buffer)
        done = 0
        while done < size:
            self._arm()
            got = self.imap.file.readinto1(view[done : done + CHUNK])
            if not got:
                raise self.imap.abort("socket error: EOF in a literal")
            done += got
        view.release()
        self.received += size
        return bytes(buffer)

    def buffered_lines(self) -> list[bytes]:
        """The response lines already read from the socket, which no poll of
        it will announce: Dovecot sends "+ idling" and the EXISTS of mail
        that came meanwhile in one packet, and reading the first line
        buffers the second, where IDLE's socket poll never looks. Counted
        and bounded as every line is."""
        lines = []
        while self.pending():
            lines.append(self.readline())
        return lines

    def pending(self) -> bool:
        """Whether bytes are buffered, or on the socket, right now."""
        sock = self.imap.sock
        timeout = sock.gettimeout()
        sock.setblocking(False)
        try:
            return bool(self.imap.file.peek(1))
        except OSError:  # nothing yet (a TLS socket says so with an error), or a fault
            return False  # the next read meets it
        finally:
            sock.settimeout(timeout)

    # --- helpers ---------------------------------------------------------------------

    def _discard(self, size: int) -> None:
        left = size
        while left > 0:
            self._arm()
            got = self.imap.file.read1(min(left, CHUNK))
            if not got:
                raise self.imap.abort("socket error: EOF in a literal")
            left -= len(got)

    def _peek(self) -> bytes:
        """What is buffered, after at most one socket read."""
        self._arm()
        try:
            return self.imap.file.peek(1)
        except BlockingIOError:
            return b""

    def _arm(self) -> None:
        """Bound the next socket read by what is left of the deadlines."""
        now = self.clock()
        deadline = self.deadline
        if self.poll_deadline is not None:
            deadline = min(deadline, self.poll_deadline)
        left = deadline - now
        if left <= 0:
            raise TimeoutError("the server did not finish its answer in time")
        sock = self.imap.sock
        current = sock.gettimeout()
        if current == 0.0:
            return  # imapclient's IDLE check polls a non-blocking socket
        with contextlib.suppress(OSError):
            sock.settimeout(min(self.timeout, left))
