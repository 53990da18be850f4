"""The outgoing SMTP relay: one connection per batch, opened lazily.

A module of its own so that a desk writing to a Maildir (the default, and
every batch ingest that uses it) never loads smtplib (ssl it loads anyway:
SQLAlchemy imports asyncio, and asyncio ssl).
"""

from __future__ import annotations

import contextlib
import smtplib
import socket
import ssl

from daemon.config import OutgoingSettings
from daemon.ports import OutboxItem, Refusal, TransportError


class SmtpTransport:
    """Delivers through a relay; one connection per batch, opened lazily."""

    idempotent = False  # each accepted row is recorded at once: none sent twice

    def __init__(self, settings: OutgoingSettings, local_hostname: str | None = None) -> None:
        self.settings = settings
        self.local_hostname = local_hostname
        self._conn: smtplib.SMTP | None = None
        self._live: smtplib.SMTP | None = None  # the connection being opened or used
        self._aborted = False

    def abort(self) -> None:
        """Shut the socket down under a send blocked on the relay (called from
        another thread): the send fails at once instead of waiting it out. A
        send after that opens a new connection."""
        self._aborted = True  # for a connection not yet open: it is not opened
        conn = self._live
        sock = getattr(conn, "sock", None) if conn is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if not self.settings.verify_certificate:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if s.tls == "implicit":
            conn: smtplib.SMTP = smtplib.SMTP_SSL(
                local_hostname=self.local_hostname,
                timeout=s.timeout_seconds,
                context=self._tls_context(),
            )
        else:
            conn = smtplib.SMTP(local_hostname=self.local_hostname, timeout=s.timeout_seconds)
        self._live = conn  # from here on `abort` can cut it off
        try:
            self._open(conn)
        except TransportError:
            with contextlib.suppress(OSError):
                conn.close()
            self._live = None
            raise
        return conn

    def _open(self, conn: smtplib.SMTP) -> None:
        s = self.settings
        try:
            if self._aborted:
                self._aborted = False
                raise TransportError(f"relay {s.host}:{s.port}: sending cut off")
            conn.connect(s.host, s.port)
            conn.ehlo()
            if s.tls == "starttls":
                # starttls() raises when the server does not offer it: never plain text.
                conn.starttls(context=self._tls_context())
                conn.ehlo()
            if s.username:
                conn.login(s.username, s.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise TransportError(
                f"relay refused login: {exc.smtp_code} {exc.smtp_error!r}"
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise TransportError(f"relay {s.host}:{s.port}: {exc}") from exc
        except (OSError, smtplib.SMTPException, ssl.SSLError) as exc:
            raise TransportError(f"relay {s.host}:{s.port}: {exc}") from exc

    def send(self, item: OutboxItem, envelope_from: str) -> list[Refusal]:
        """Refused for good without asking the relay: an address that is not
        plain ASCII (smtplib would raise on it; spocd does not use SMTPUTF8,
        its mail is 7-bit). The sender hands over addresses as they are
        written in mail, so this only guards against one slipping through."""
        if not _plain(envelope_from):
            raise TransportError(
                f"envelope sender {envelope_from!r} is not a plain ASCII address", permanent=True
            )
        unsendable = [
            Refusal(a, "553 5.6.7 not a plain ASCII address (no SMTPUTF8)", permanent=True)
            for a in item.recipients
            if not _plain(a)
        ]
        recipients = [a for a in item.recipients if _plain(a)]
        if not recipients:
            return unsendable
        if self._conn is None:
            self._conn = self._connect()
        try:
            refused = self._conn.sendmail(envelope_from, recipients, item.raw)
        except smtplib.SMTPRecipientsRefused as exc:  # every one of them
            refused = exc.recipients
        except smtplib.SMTPResponseException as exc:
            self._drop()
            raise TransportError(
                f"{exc.smtp_code} {exc.smtp_error!r}", permanent=exc.smtp_code >= 500
            ) from exc
        except (TimeoutError, OSError, smtplib.SMTPException) as exc:
            self._drop()
            raise TransportError(f"relay connection: {exc}") from exc
        return unsendable + [
            Refusal(address, f"{code} {_text(answer)}", permanent=code >= 500)
            for address, (code, answer) in refused.items()
        ]

    def flush(self) -> None:
        pass

    def _drop(self) -> None:
        self._aborted = False  # a cut-off connection is gone: the next send starts afresh
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.close()
            self._conn = self._live = None

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self._conn.quit()
            self._conn = self._live = None


def _plain(address: str) -> bool:
    """What an SMTP command can carry without SMTPUTF8 (and without a line
    break that would end the command)."""
    return address.isascii() and address.isprintable()


def _text(answer: bytes | str) -> str:
    return answer.decode("utf-8", "replace") if isinstance(answer, bytes) else answer
