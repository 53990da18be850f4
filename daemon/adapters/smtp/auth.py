"""SMTP AUTH: LOGIN and PLAIN checked against the users file's salted
hashes, and how many attempts one connection gets."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from daemon.adapters.smtp.limits import peer_host
from daemon.core import passwords

log = logging.getLogger("spocd.smtp")

#: AUTH attempts allowed on one connection before it is closed with 421.
AUTH_ATTEMPTS = 5


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
