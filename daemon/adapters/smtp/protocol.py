"""aiosmtpd's SMTP protocol, per connection, as the edge of the open network
needs it: admission by the connection limits, a line length set per listener,
a 421 on idle timeout, and DATA gathered in one buffer, not one per line."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, _DataState

from daemon.adapters.smtp.limits import TOO_MANY_CONNECTIONS, ClientCounter, peer_host

log = logging.getLogger("spocd.smtp")

TIMED_OUT = "421 4.4.2 Timeout exceeded; closing connection"


class LimitedSMTP(SMTP):
    """aiosmtpd's SMTP protocol with a per-instance line length, a per-client
    connection limit and a 421 on idle timeout.

    aiosmtpd reads `line_length_limit` (a class attribute) when it builds its
    stream reader, and offers no hook at connection start nor at timeout, so
    this overrides `_handle_client` and `_timeout_cb` (tests pin both).
    """

    def __init__(
        self, handler: Any, *, line_length_limit: int, clients: ClientCounter, **kwargs: Any
    ) -> None:
        self.line_length_limit = line_length_limit
        self._clients = clients
        self._client: str | None = None
        self._admitted = False
        self._refusal: str | None = None
        super().__init__(handler, **kwargs)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self._original_transport is None  # not the TLS layer after STARTTLS
        super().connection_made(transport)
        if first and self._client is None:
            self._client = peer_host(self.session.peer if self.session else None)
            self._refusal = self._clients.enter(self._client)
            self._admitted = self._refusal is None

    def connection_lost(self, error: Exception | None) -> None:
        if self._admitted and self._client is not None:
            self._clients.leave(self._client)
            self._admitted = False
        super().connection_lost(error)

    async def _handle_client(self) -> None:
        if not self._admitted:
            log.warning("too many connections; refused", extra={"peer": self._client})
            await self.push(self._refusal or TOO_MANY_CONNECTIONS)
            if self.transport is not None:
                self.transport.close()
            return
        await super()._handle_client()

    async def smtp_DATA(self, arg: str) -> None:
        """aiosmtpd's DATA (1.4.6) with the message gathered in one bytearray.

        aiosmtpd keeps a list of one bytearray per line, so a message of
        empty lines costs dozens of times its size; here the lines are
        unstuffed into one buffer as they come. Replies, the size limit (552),
        the line-length limit (500) and dot-unstuffing are aiosmtpd's.
        """
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        content = bytearray()
        size = 0
        limit = self.data_size_limit
        partial = False  # inside a line longer than the reader's limit
        state = _DataState.NOMINAL
        while self.transport is not None:
            try:
                line = await self._reader.readuntil(b"\r\n")
            except asyncio.CancelledError:
                self._writer.close()  # the connection was reset during DATA
                raise
            except asyncio.LimitOverrunError as overrun:
                # Refused at the end (RFC 5321 4.2.5); drop what came so far.
                if state == _DataState.NOMINAL:
                    state = _DataState.TOO_LONG
                content.clear()
                line = await self._reader.read(overrun.consumed)
            if not partial and line == b".\r\n":
                break
            size += len(line)
            if state == _DataState.NOMINAL and limit and size > limit:
                state = _DataState.TOO_MUCH
                content.clear()
            partial = not line.endswith(b"\r\n")
            if state == _DataState.NOMINAL and not partial:
                if len(line) > self.line_length_limit:
                    state = _DataState.TOO_LONG
                    content.clear()
                else:
                    content += line[1:] if line.startswith(b".") else line
        if state != _DataState.NOMINAL:
            if state == _DataState.TOO_LONG:
                await self.push("500 Line too long (see RFC5321 4.5.3.1.6)")
            else:
                await self.push("552 Error: Too much mail data")
            self._set_post_data_state()
            return
        raw = bytes(content)
        del content
        self.envelope.content = raw
        self.envelope.original_content = raw
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)

    def _timeout_cb(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(TIMED_OUT.encode("ascii") + b"\r\n")
        super()._timeout_cb()
