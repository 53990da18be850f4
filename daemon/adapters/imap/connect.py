"""Opening a logged-in IMAP connection: TLS, STARTTLS, password or XOAUTH2.

The one I/O seam of the IMAP intake is `Connector.open()` and the client
factory it is given (imapclient's `IMAPClient` by default): a test hands in
a subclass that, say, hides MOVE from a real Dovecot; nothing here has a test
switch. A STARTTLS that is not offered or fails is an error, never a reason
to carry on in plain text; certificates are checked unless the admin says
`verify_certificate = false`.
"""

from __future__ import annotations

import logging
import shlex
import ssl
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from daemon.adapters.imap.guard import guard
from daemon.config import ImapMailbox
from daemon.mail.imap_plan import Token, parse_token

log = logging.getLogger("spocd.imap")

TOKEN_COMMAND_TIMEOUT = 60.0
#: The size cap when the mailbox settings give none ([smtp]'s default).
DEFAULT_MAX_MESSAGE_SIZE = 26_214_400


class TlsRequired(Exception):
    """The server does not offer STARTTLS, or it failed: we never fall back."""


class TokenError(Exception):
    """No OAuth2 access token could be had from the file or command."""


def tls_context(mailbox: ImapMailbox) -> ssl.SSLContext:
    """Verifying by default; `ca_file` replaces the system trust store (a
    private CA or a self-signed server certificate)."""
    context = ssl.create_default_context(cafile=str(mailbox.ca_file) if mailbox.ca_file else None)
    if not mailbox.verify_certificate:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class TokenSource:
    """An OAuth2 access token from a file or a command, fetched again when
    the server refused it or it is near its expiry.

    A file is read at every login (a refresher such as a systemd timer keeps
    it current); a command's token is kept until it nears expiry (when its
    output says) or the server refuses it. The command runs without a shell.
    """

    def __init__(
        self,
        file: Path | None,
        command: str | None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if (file is None) == (command is None):
            raise ValueError("a token source needs exactly one of a file or a command")
        self.file = file
        self.command = command
        self.now = now
        self._cached: Token | None = None

    def token(self, *, refresh: bool = False) -> str:
        cached = self._cached
        if not refresh and cached is not None and cached.fresh_at(self.now()):
            return cached.value
        token = self._read()
        if self.command is not None:
            self._cached = token
        return token.value

    def _read(self) -> Token:
        if self.file is not None:
            try:
                text = self.file.read_text(encoding="utf-8")
            except OSError as exc:
                raise TokenError(f"cannot read {self.file}: {exc.strerror or exc}") from exc
            source = str(self.file)
        else:
            assert self.command is not None
            text = self._run(self.command)
            source = "oauth2_token_command"
        try:
            return parse_token(text, self.now())
        except ValueError as exc:
            raise TokenError(f"{source}: {exc}") from exc

    @staticmethod
    def _run(command: str) -> str:
        try:
            done = subprocess.run(
                shlex.split(command),
                capture_output=True,
                timeout=TOKEN_COMMAND_TIMEOUT,
                check=False,
            )
        except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
            raise TokenError(f"oauth2_token_command failed: {exc}") from exc
        if done.returncode != 0:
            reason = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise TokenError(
                f"oauth2_token_command exited {done.returncode}"
                + (f": {reason[0][:200]}" if reason else "")
            )
        return done.stdout.decode("utf-8", "replace")


ClientFactory = Callable[..., Any]


class Connector:
    """Opens connections to one mailbox's server, logged in and ready."""

    def __init__(
        self,
        mailbox: ImapMailbox,
        tokens: TokenSource | None = None,
        client_factory: ClientFactory = IMAPClient,
    ) -> None:
        self.mailbox = mailbox
        if tokens is None and mailbox.auth == "oauth2":
            tokens = TokenSource(mailbox.oauth2_token_file, mailbox.oauth2_token_command)
        self.tokens = tokens
        self.client_factory = client_factory

    def open(self) -> Any:
        """A logged-in client; raises on any failure (the caller backs off)."""
        client = self._connect()
        try:
            m = self.mailbox
            guard(
                client,
                timeout=float(m.timeout_seconds),
                max_literal=m.max_message_size or DEFAULT_MAX_MESSAGE_SIZE,
            )
            self._login(client)
        except BaseException:
            _close(client)
            raise
        return client

    def _connect(self) -> Any:
        m = self.mailbox
        timeout = float(m.timeout_seconds)
        if m.tls == "implicit":
            return self.client_factory(
                m.host, m.port, ssl=True, ssl_context=tls_context(m), timeout=timeout
            )
        client = self.client_factory(m.host, m.port, ssl=False, timeout=timeout)
        if m.tls == "starttls":
            try:
                if not client.has_capability("STARTTLS"):
                    raise TlsRequired(
                        f"{m.host}:{m.port} does not offer STARTTLS; refusing to log in "
                        'in plain text (set tls = "none" to allow it)'
                    )
                client.starttls(tls_context(m))
            except TlsRequired:
                _close(client)
                raise
            except (ssl.SSLError, OSError, IMAPClient.Error) as exc:
                _close(client)
                raise TlsRequired(f"STARTTLS with {m.host}:{m.port} failed: {exc}") from exc
        return client

    def _login(self, client: Any) -> None:
        m = self.mailbox
        if m.auth != "oauth2":
            client.login(m.username, m.password or "")
            return
        assert self.tokens is not None
        token = self.tokens.token()
        try:
            client.oauth2_login(m.username, token)
        except LoginError:
            fresh = self.tokens.token(refresh=True)
            if fresh == token:
                raise
            log.info("imap token refused; trying a fresh one", extra={"mailbox": m.name})
            client.oauth2_login(m.username, fresh)


def _close(client: Any) -> None:
    """Drop a connection whatever its state; errors here change nothing."""
    try:
        client.shutdown()
    except Exception:
        log.debug("closing an imap connection failed", exc_info=True)
