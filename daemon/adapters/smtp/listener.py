"""SMTP intake (aiosmtpd): check the client, the recipients and the size,
commit the raw bytes to the inbound queue, and only then answer 250.

Commits are grouped: a writer thread takes every message that arrived while
the previous commit ran and commits them together, so many concurrent
clients cost one fsync per group, and each still hears 250 only after its
own bytes are on disk.

The listener is on the open network's edge, so every resource a client can
take is bounded (`[smtp]`): message size, recipients, line length,
concurrent connections per client address, idle time per command, AUTH
attempts per connection. STARTTLS and AUTH (users with salted hashes,
`daemon.core.passwords`) are optional; AUTH is offered only over TLS unless the
admin allows plain text for a loopback listener.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import queue
import resource
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import (
    MISSING,
    SMTP,
    AuthResult,
    Envelope,
    LoginPassword,
    Session,
    _DataState,
)

from daemon.config import Settings, SmtpSettings
from daemon.core import passwords
from daemon.core.domain import Intake
from daemon.core.errors import ConfigError
from daemon.ports import QueuedRaw, Store

log = logging.getLogger("spocd.smtp")

OK = "250 2.0.0 Ok: queued as {id}"
TEMPFAIL = "451 4.3.0 Temporary storage failure; please try again later"
NOT_PERMITTED = "554 5.7.1 Your address is not permitted to send mail here"
UNKNOWN_RCPT = "550 5.1.1 <{rcpt}>: not a help desk address (we relay nothing)"
TOO_MANY_RCPTS = "452 4.5.3 Too many recipients"
TOO_MANY_CONNECTIONS = "421 4.7.0 Too many connections from your address; try again later"
SERVER_BUSY = "421 4.3.2 Too many connections; try again later"
AUTH_REQUIRED = "530 5.7.0 Authentication required"
TIMED_OUT = "421 4.4.2 Timeout exceeded; closing connection"
MAX_GROUP = 128
#: AUTH attempts allowed on one connection before it is closed with 421.
AUTH_ATTEMPTS = 5
_NO_LIMIT = 1 << 30
#: File descriptors kept free for everything but SMTP connections.
FD_RESERVE = 64
#: Seconds between two log lines about running out of file descriptors.
ACCEPT_LOG_INTERVAL = 60.0


class QueueWriter:
    """One thread that commits submitted raw messages in groups.

    A waiter may be gone by the time its group is committed (the client
    reset the connection, or gave up while a lock was held): its message
    stays committed, and nothing that happens to one waiter stops the thread.
    """

    def __init__(
        self,
        store: Store,
        now: Callable[[], datetime],
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.now = now
        self.on_commit = on_commit
        self.last_commit = 0.0  # monotonic time of the last commit (intake pressure)
        # Each counted by one thread only: their difference is what is in flight.
        self._submitted = 0
        self._answered = 0
        self._closing = False
        self._queue: queue.Queue[tuple[QueuedRaw, Future[int | None]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="spocd-smtp-writer", daemon=True)
        self._thread.start()

    @property
    def in_flight(self) -> int:
        """Messages submitted and not yet answered."""
        return self._submitted - self._answered

    @property
    def alive(self) -> bool:
        """The thread runs, or was asked to stop."""
        return self._closing or self._thread.is_alive()

    def submit(self, item: QueuedRaw) -> Future[int | None]:
        future: Future[int | None] = Future()
        self._submitted += 1
        self._queue.put((item, future))
        return future

    def close(self) -> None:
        """Finish every submitted message, then stop."""
        self._closing = True
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            group = [first]
            while len(group) < MAX_GROUP:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                group.append(nxt)
            try:
                self._commit(group)
            except Exception as exc:  # a bug here must not stop intake for good
                log.exception("smtp writer error", extra={"error": str(exc)})
            finally:
                self._answered += len(group)

    def _commit(self, group: list[tuple[QueuedRaw, Future[int | None]]]) -> None:
        try:
            now = self.now()
            with self.store.transaction() as tx:
                ids = [tx.inbound.add(item, now) for item, _ in group]
        except Exception as exc:  # storage down, disk full, locked: the sender retries
            log.error(
                _storage_failure(exc) + "; answering 451",
                extra={"error": str(exc), "messages": len(group)},
            )
            for _, future in group:
                _answer(future, exc)
            return
        self.last_commit = time.monotonic()
        for (_, future), item_id in zip(group, ids, strict=True):
            if not _answer(future, item_id):
                log.info(
                    "accepted, but the client left before the reply", extra={"inbound": item_id}
                )
        self.on_commit()


def _answer(future: Future[int | None], outcome: int | BaseException) -> bool:
    """Give a waiter its outcome; False when it no longer waits (cancelled)."""
    try:
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
    except InvalidStateError:
        return False
    return True


def _storage_failure(exc: BaseException) -> str:
    """What an operator should read first in the log line: disk full, a lock
    held too long, or some other storage failure."""
    text = " ".join(str(e) for e in _chain(exc)).lower()
    codes = {getattr(e, "errno", None) for e in _chain(exc)}
    if codes & {errno.ENOSPC, errno.EDQUOT, errno.EFBIG} or any(
        s in text
        for s in ("database or disk is full", "no space left", "disk quota", "file too large")
    ):
        return "storage failure: disk full (free space where the database lives)"
    if "database is locked" in text or "lock timeout" in text or "locknotavailable" in text:
        return "storage failure: database locked by another process for longer than busy_timeout_ms"
    return "storage failure"


def _chain(exc: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(found) < 10:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def peer_host(peer: Any) -> str:
    """The client's address from aiosmtpd's `session.peer`."""
    return str(peer[0]) if isinstance(peer, tuple) else str(peer)


class ClientCounter:
    """Open connections, per client address and in all; touched only on the
    event loop. Past either limit a connection is refused (421) at once."""

    def __init__(self, limit: int, total: int = _NO_LIMIT) -> None:
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


@dataclass(frozen=True, slots=True)
class AuthUser:
    """What a successful AUTH leaves on the session: the login, no password."""

    login: str


class Authenticator:
    """aiosmtpd's authenticator for LOGIN and PLAIN against the users file.

    aiosmtpd calls it on its event loop, so a check (one key derivation,
    about 0.1 s with the default scrypt cost) holds up other sessions that
    long; AUTH is reachable only from `accept_from_networks` and five times
    per connection, which bounds what a client can make it cost.
    """

    def __init__(self, users: dict[str, str]) -> None:
        self.users = users

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not self.users or not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)  # nobody to log in as
        login = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        if passwords.verify_user(self.users, login, password):
            log.info("authenticated", extra={"peer": peer_host(session.peer), "user": login})
            return AuthResult(success=True, auth_data=AuthUser(login))
        log.warning("authentication failed", extra={"peer": peer_host(session.peer), "user": login})
        return AuthResult(success=False, handled=False)


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

    def factory(self) -> SMTP:
        return LimitedSMTP(
            self.handler,
            line_length_limit=self.line_length_limit,
            clients=self.clients,
            **self.SMTP_kwargs,
        )


def connection_cap(configured: int, nofile: int) -> int:
    """Connections the listener may hold: what is configured, but always
    FD_RESERVE descriptors below the open-file limit (the database, logs,
    the HTTP endpoint and IMAP need theirs), and at least one."""
    return max(1, min(configured, nofile - FD_RESERVE))


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


class IntakeHandler:
    """aiosmtpd hooks; each returns the SMTP reply."""

    def __init__(self, settings: Settings, writer: QueueWriter) -> None:
        self.settings = settings
        self.writer = writer
        self.accepted = {
            a.lower()
            for a in (
                settings.helpdesk.address,
                *settings.smtp.escalation_addresses,
                *settings.smtp.extra_addresses,
            )
        }
        self.escalation = {a.lower() for a in settings.smtp.escalation_addresses}

    def _permitted(self, session: Session) -> bool:
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
        return self.settings.smtp.accepts_peer(peer)

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        if not self._permitted(session):
            log.warning("client refused", extra={"peer": str(session.peer)})
            return [NOT_PERMITTED]
        session.host_name = hostname
        if not self.settings.smtp.auth_users:  # nothing to log in to: offer no AUTH
            responses = [r for r in responses if not r[4:].upper().startswith("AUTH")]
        return responses

    async def handle_HELO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str
    ) -> str:
        if not self._permitted(session):
            return NOT_PERMITTED
        session.host_name = hostname
        return f"250 {server.hostname}"

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if not self._permitted(session):
            return NOT_PERMITTED
        if self.settings.smtp.auth_required and not session.authenticated:
            return AUTH_REQUIRED
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if not self._permitted(session):
            return NOT_PERMITTED
        if address.lower() not in self.accepted:
            return UNKNOWN_RCPT.format(rcpt=address)
        if len(envelope.rcpt_tos) >= self.settings.smtp.max_recipients:
            return TOO_MANY_RCPTS
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        rcpts = tuple(r.lower() for r in envelope.rcpt_tos)
        item = QueuedRaw(
            raw=raw if isinstance(raw, bytes) else bytes(raw),
            intake=Intake.SMTP,
            escalation=any(r in self.escalation for r in rcpts),
            peer=str(session.peer[0]) if isinstance(session.peer, tuple) else None,
            envelope_from=envelope.mail_from,
            envelope_to=rcpts,
        )
        try:
            item_id = await asyncio.wrap_future(self.writer.submit(item))
        except Exception:
            return TEMPFAIL
        user = session.auth_data.login if isinstance(session.auth_data, AuthUser) else None
        log.info(
            "accepted",
            extra={
                "inbound": item_id,
                "size": len(item.raw),
                "peer": item.peer,
                "user": user,
                "escalation": item.escalation,
            },
        )
        return OK.format(id=item_id)


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
            command_call_limit={"AUTH": AUTH_ATTEMPTS, "*": _NO_LIMIT},
        )

    @property
    def port(self) -> int:
        server: Any = self.controller.server
        return server.sockets[0].getsockname()[1] if server else self.settings.smtp.port

    def start(self) -> None:
        self.controller.start()

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
