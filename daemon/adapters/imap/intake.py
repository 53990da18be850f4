"""IMAP intake of one mailbox folder, for as long as the daemon runs:
connect, drain the folder (a `Session` poll), wait for mail (`idle.wait`),
drain again; `poll_once` connects and drains once, for `spocd tick`.

Any fault ends the connection; `run` reconnects with exponential backoff and
logs the first failure of each streak (a streak ends when a connection has
stayed up for a while after a good poll), and records the mailbox's health
for `spocd status`. This adapter reaches the pipeline only through the
callback that `service/wiring.py` passes in.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from daemon.adapters.imap.connect import Connector, TlsRequired, TokenError
from daemon.adapters.imap.guard import ServerMisbehaves
from daemon.adapters.imap.idle import ConnectionLost, wait
from daemon.adapters.imap.session import PollReport, Session
from daemon.config import ImapMailbox
from daemon.mail.imap_plan import MAX_BATCH_BYTES, POLL_TIMEOUTS, Backoff, FaultLog
from daemon.ports import Store

log = logging.getLogger("spocd.imap")

Process = Callable[[int], str]  # queued item id -> the pipeline's outcome


def fault_kind(exc: BaseException) -> str:
    """A short name for a failure, so streaks of the same fault log once."""
    if isinstance(exc, TlsRequired | ssl.SSLError):
        return "tls"
    if isinstance(exc, LoginError):
        return "login"
    if isinstance(exc, TokenError):
        return "token"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ServerMisbehaves):
        return "protocol"
    if isinstance(exc, ConnectionLost | IMAPClient.AbortError):
        return "connection"
    if isinstance(exc, IMAPClient.Error):
        return "server"
    if isinstance(exc, OSError):
        return "network"
    if type(exc).__module__.startswith(("sqlalchemy", "psycopg", "sqlite3")):
        return "storage"
    return "internal"


class MailboxIntake:
    """Keeps one mailbox folder drained into the inbound queue."""

    def __init__(
        self,
        mailbox: ImapMailbox,
        store: Store,
        now: Callable[[], datetime],
        process: Process,
        *,
        connector: Connector | None = None,
        on_processed: Callable[[], None] = lambda: None,
        backoff: Backoff | None = None,
    ) -> None:
        self.mailbox = mailbox
        self.store = store
        self.now = now
        self.process = process
        self.connector = connector or Connector(mailbox)
        self.on_processed = on_processed
        self.backoff = backoff or Backoff()
        self.faults = FaultLog()
        #: How long one poll takes new messages before leaving the rest.
        self.poll_seconds_limit = float(POLL_TIMEOUTS * mailbox.timeout_seconds)
        #: Bytes of mail fetched before they are stored and moved.
        self.batch_bytes = MAX_BATCH_BYTES
        self._fields = {"mailbox": mailbox.name, "folder": mailbox.folder, "host": mailbox.host}

    # --- entry points --------------------------------------------------------------

    def poll_once(self, stop: threading.Event | None = None) -> PollReport:
        """Connect, take everything waiting, disconnect (`spocd tick`)."""
        stop = stop or threading.Event()
        client = None
        try:
            client = self.connector.open()
            session = Session(self, client)
            report = session.cycle(stop)
        except Exception as exc:
            self._fault(exc, retrying=False)
            return PollReport(error=f"{type(exc).__name__}: {exc}")
        finally:
            if client is not None:
                _logout(client)
            self._record(lambda tx: tx.mailboxes.disconnected(self.mailbox.name, self.folder))
        return report

    def run(self, stop: threading.Event) -> None:
        """Until `stop` is set: connect, drain, wait for mail (IDLE or poll),
        drain again; on any fault back off and reconnect."""
        self._warn_plain_text()
        while not stop.is_set():
            client = None
            try:
                client = self.connector.open()
                session = Session(self, client)
                while not stop.is_set():
                    session.cycle(stop)
                    self._settle(session)
                    wait(session, stop)
            except Exception as exc:
                self._fault(exc)
                if client is not None:
                    _shutdown(client)
                    client = None
                stop.wait(self.backoff.next_delay())
            finally:
                if client is not None:
                    _logout(client)
        self._record(lambda tx: tx.mailboxes.disconnected(self.mailbox.name, self.folder))
        log.info("imap stopped", extra=self._fields)

    @property
    def folder(self) -> str:
        return self.mailbox.folder

    # --- health --------------------------------------------------------------------

    def _settle(self, session: Session) -> None:
        """End the fault streak once the connection has held for a while
        after a good poll; a drop a moment after a poll stays in the streak."""
        if session.good and time.monotonic() - session.opened >= self.backoff.settle_seconds:
            self._recovered()

    def _recovered(self) -> None:
        self.backoff.reset()
        failures = self.faults.recovered()
        if failures:
            log.info("imap recovered", extra={**self._fields, "failures": failures})

    def _fault(self, exc: BaseException, *, retrying: bool = True) -> None:
        kind = fault_kind(exc)
        text = f"{kind}: {type(exc).__name__}: {exc}"
        self._record(
            lambda tx: tx.mailboxes.errored(
                self.mailbox.name, self.folder, error=text, now=self.now()
            )
        )
        if self.faults.failed(kind):
            fields = {**self._fields, "fault": kind, "error": f"{type(exc).__name__}: {exc}"}
            if retrying:
                fields["retry"] = "with backoff; not logged again until it recovers"
            log.error(
                "imap login refused" if kind == "login" else "imap mailbox unavailable",
                extra=fields,
                exc_info=exc if kind == "internal" else None,
            )
        else:
            log.debug("imap still failing", extra={**self._fields, "fault": kind})

    def _record(self, action: Callable[[Any], None]) -> None:
        """Write health state; a database fault is logged, never raised here."""
        try:
            with self.store.transaction() as tx:
                action(tx)
        except Exception as exc:
            log.debug("imap state not recorded", extra={**self._fields, "error": str(exc)})

    def _warn_plain_text(self) -> None:
        m = self.mailbox
        if m.tls == "none" and m.host not in ("127.0.0.1", "::1", "localhost"):
            log.warning(
                "imap without TLS: credentials cross the network in clear", extra=self._fields
            )
        if m.tls != "none" and not m.verify_certificate:
            log.warning("imap certificate checking is off", extra=self._fields)


def _logout(client: Any) -> None:
    try:
        client.logout()
    except Exception:
        _shutdown(client)


def _shutdown(client: Any) -> None:
    try:
        client.shutdown()
    except Exception:
        log.debug("closing an imap connection failed", exc_info=True)
