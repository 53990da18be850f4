"""SMTP intake (aiosmtpd): check the client, the recipients and the size,
commit the raw bytes to the inbound queue, and only then answer 250.

Commits are grouped: a writer thread takes every message that arrived while
the previous commit ran and commits them together, so many concurrent
clients cost one fsync per group, and each still hears 250 only after its
own bytes are on disk.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from daemon.config import Settings
from daemon.domain import Intake
from daemon.ports import QueuedRaw, Store

log = logging.getLogger("spocd.smtp")

OK = "250 2.0.0 Ok: queued as {id}"
TEMPFAIL = "451 4.3.0 Temporary storage failure; please try again later"
NOT_PERMITTED = "554 5.7.1 Your address is not permitted to send mail here"
UNKNOWN_RCPT = "550 5.1.1 <{rcpt}>: not a help desk address (we relay nothing)"
TOO_MANY_RCPTS = "452 4.5.3 Too many recipients"
MAX_GROUP = 128


class QueueWriter:
    """One thread that commits submitted raw messages in groups."""

    def __init__(
        self,
        store: Store,
        now: Callable[[], datetime],
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.now = now
        self.on_commit = on_commit
        self._queue: queue.Queue[tuple[QueuedRaw, Future[int | None]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="spocd-smtp-writer", daemon=True)
        self._thread.start()

    def submit(self, item: QueuedRaw) -> Future[int | None]:
        future: Future[int | None] = Future()
        self._queue.put((item, future))
        return future

    def close(self) -> None:
        """Finish every submitted message, then stop."""
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
            self._commit(group)

    def _commit(self, group: list[tuple[QueuedRaw, Future[int | None]]]) -> None:
        try:
            now = self.now()
            with self.store.transaction() as tx:
                ids = [tx.inbound.add(item, now) for item, _ in group]
        except Exception as exc:  # storage down, disk full, locked: the sender retries
            log.error(
                "storage failure; answering 451", extra={"error": str(exc), "messages": len(group)}
            )
            for _, future in group:
                future.set_exception(exc)
            return
        for (_, future), item_id in zip(group, ids, strict=True):
            future.set_result(item_id)
        self.on_commit()


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
        log.info(
            "accepted",
            extra={
                "inbound": item_id,
                "size": len(item.raw),
                "peer": item.peer,
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
        self.writer = QueueWriter(store, now, on_commit)
        self.handler = IntakeHandler(settings, self.writer)
        smtp = settings.smtp
        self.controller = Controller(
            self.handler,
            hostname=smtp.host,
            port=smtp.port,
            data_size_limit=smtp.max_message_size,
            decode_data=False,
            server_hostname=settings.helpdesk.domain,
            ident="spocd",
            timeout=120,
            ready_timeout=10.0,
        )

    @property
    def port(self) -> int:
        server: Any = self.controller.server
        return server.sockets[0].getsockname()[1] if server else self.settings.smtp.port

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        """Stop listening, then let the writer finish what it was given."""
        try:
            self.controller.stop()
        finally:
            self.writer.close()
