"""The listener: TLS, the controller that binds the socket and builds a
limited protocol per connection, and `SmtpIntake`, which starts and stops
it with its writer thread and tells the runner whether it still works."""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import ssl
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from daemon.adapters.smtp.auth import AUTH_ATTEMPTS, Authenticator
from daemon.adapters.smtp.handler import IntakeHandler
from daemon.adapters.smtp.limits import NO_LIMIT, ClientCounter, connection_cap
from daemon.adapters.smtp.protocol import LimitedSMTP
from daemon.adapters.smtp.writer import QueueWriter
from daemon.config import Settings, SmtpSettings
from daemon.core.errors import ConfigError
from daemon.ports import Store

log = logging.getLogger("spocd.smtp")

#: Seconds between two log lines about running out of file descriptors.
ACCEPT_LOG_INTERVAL = 60.0


class IntakeController(Controller):
    """aiosmtpd's threaded controller, building `LimitedSMTP` protocols."""

    def __init__(self, handler: Any, *, smtp: SmtpSettings, **kwargs: Any) -> None:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        total = connection_cap(smtp.max_connections, soft)
        if total < smtp.max_connections:
            log.warning(
                "smtp.max_connections lowered to fit the open-file limit",
                extra={"configured": smtp.max_connections, "cap": total, "nofile": soft},
            )
        self.clients = ClientCounter(smtp.max_connections_per_client, total)
        # RFC 5321 counts a line without the dot SMTP adds to lines that begin
        # with one: allow that octet on the wire.
        self.line_length_limit = smtp.max_line_length + 1
        self._resource_logged = -ACCEPT_LOG_INTERVAL
        super().__init__(handler, **kwargs)
        self.loop.set_exception_handler(self._loop_error)

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """Out of file descriptors, asyncio stops accepting for a second and
        tries again (then the cap below the limit applies): say so once a
        minute, not once a second."""
        error = context.get("exception")
        if isinstance(error, OSError) and error.errno in (errno.EMFILE, errno.ENFILE):
            now = time.monotonic()
            if now - self._resource_logged >= ACCEPT_LOG_INTERVAL:
                self._resource_logged = now
                log.error(
                    "smtp: out of file descriptors; pausing accepts",
                    extra={"error": str(error)},
                )
            return
        loop.default_exception_handler(context)

    def _trigger_server(self) -> None:
        """aiosmtpd connects to the new listener once, to see its protocol
        factory run, and `start` then waits for that. Clients that came first
        may have taken every file descriptor by then (a flood as the daemon
        starts, under its open-file limit): this connection cannot be made,
        but theirs have run the factory already, and the start goes on."""
        try:
            super()._trigger_server()  # type: ignore[no-untyped-call]
        except OSError as exc:
            if exc.errno not in (errno.EMFILE, errno.ENFILE):
                raise

    def factory(self) -> SMTP:
        return LimitedSMTP(
            self.handler,
            line_length_limit=self.line_length_limit,
            clients=self.clients,
            **self.SMTP_kwargs,
        )


def tls_context(smtp: SmtpSettings) -> ssl.SSLContext | None:
    """The server's TLS context for STARTTLS, or None when not configured."""
    if smtp.tls_cert_file is None or smtp.tls_key_file is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(smtp.tls_cert_file, smtp.tls_key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            [f"smtp.tls_cert_file/tls_key_file: cannot load {smtp.tls_cert_file}: {exc}"]
        ) from exc
    return context


class SmtpIntake:
    """The listener; `start()` returns once the socket is bound."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        now: Callable[[], datetime],
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self.settings = settings
        smtp = settings.smtp
        tls = tls_context(smtp)  # first: a bad certificate leaves no thread behind
        self.writer = QueueWriter(store, now, on_commit)
        self.handler = IntakeHandler(settings, self.writer)
        if smtp.auth_users and smtp.auth_allow_plaintext:
            log.warning("smtp AUTH may carry passwords in clear text (auth_allow_plaintext)")
        self.controller = IntakeController(
            self.handler,
            smtp=smtp,
            hostname=smtp.host,
            port=smtp.port,
            data_size_limit=smtp.max_message_size,
            decode_data=False,
            server_hostname=settings.helpdesk.domain,
            ident="spocd",
            timeout=smtp.command_timeout_seconds,
            ready_timeout=10.0,
            tls_context=tls,
            require_starttls=smtp.require_starttls,
            # auth_required is enforced at MAIL by the handler: aiosmtpd's own
            # check warns at every connection when AUTH may go in clear text.
            auth_require_tls=not smtp.auth_allow_plaintext,
            authenticator=Authenticator(dict(smtp.auth_users)),
            command_call_limit={"AUTH": AUTH_ATTEMPTS, "*": NO_LIMIT},
        )

    @property
    def port(self) -> int:
        server: Any = self.controller.server
        return server.sockets[0].getsockname()[1] if server else self.settings.smtp.port

    def start(self) -> None:
        try:
            self.controller.start()
        except BaseException:  # nothing listens: the writer has nothing to wait for
            self.writer.close()
            raise

    def failure(self) -> str | None:
        """Why intake cannot work any more (a thread of its died), or None."""
        if not self.writer.alive:
            return "smtp writer thread died"
        thread = self.controller._thread  # aiosmtpd runs its event loop there
        if thread is not None and not thread.is_alive():
            return "smtp listener thread died"
        return None

    def busy(self, window: float = 0.2) -> bool:
        """Mail was accepted within the last `window` seconds."""
        return time.monotonic() - self.writer.last_commit < window

    def stop(self) -> None:
        """Stop listening, then let the writer finish what it was given."""
        try:
            self.controller.stop()
        finally:
            self.writer.close()
