"""The SLA board over HTTP: `/`, `/board`, `/board.json`, `/board.css`.

Who may look: on a loopback listener anyone on this machine (no login was
configured); otherwise a user of `http.users_file` (HTTP Basic, checked with
`daemon.core.passwords`), or whoever `http.trusted_proxy_header` names when the
request comes from one of `http.trusted_proxies`. `spocd.toml` refuses any
other combination (`config._check_http`), so the board is never open to
everybody. Failed logins are counted per client: past a few, the client waits
(429), and one warning is logged per streak, not per try.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from daemon.adapters import board_page
from daemon.config import HttpSettings
from daemon.core import passwords

log = logging.getLogger("spocd.http")

PATHS = ("/", "/board", "/board.json", "/board.css")
#: Failed logins a client may make in a row before it has to wait.
MAX_FAILURES = 5
#: How long a client that failed too often waits; a quiet spell this long
#: also ends a streak.
LOCKOUT_SECONDS = 60.0
#: A good login is remembered this long (scrypt per 30 s reload is waste).
GOOD_LOGIN_SECONDS = 300.0
#: Rows on the HTML page: the most urgent ones; the counts cover all, the
#: filters narrow the list, and `/board.json` has every row. (A page of
#: 10,000 rows is 4 MB reloaded every 30 s, and nobody reads its end.)
PAGE_ROWS = 500
#: Longest filter value read from the query string.
MAX_FILTER = 200
#: Security headers on every board reply.
HEADERS = {
    "Content-Security-Policy": "default-src 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}

Snapshot = Callable[[Mapping[str, str]], Mapping[str, Any]]


@dataclass
class _Streak:
    failures: int
    last: float
    logged: bool


class LoginThrottle:
    """Failed logins per client: how many in a row, and whether said in the log."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.monotonic = monotonic
        self._streaks: dict[str, _Streak] = {}
        self._lock = threading.Lock()

    def blocked(self, client: str) -> bool:
        with self._lock:
            streak = self._live(client)
            return streak is not None and streak.failures >= MAX_FAILURES

    def failed(self, client: str, user: str | None) -> None:
        with self._lock:
            streak = self._live(client)
            if streak is None:
                streak = self._streaks[client] = _Streak(0, 0.0, False)
            streak.failures += 1
            streak.last = self.monotonic()
            if not streak.logged:
                streak.logged = True
                log.warning("board login failed", extra={"client": client, "user": user or ""})

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._streaks.pop(client, None)

    def _live(self, client: str) -> _Streak | None:
        streak = self._streaks.get(client)
        if streak is not None and self.monotonic() - streak.last >= LOCKOUT_SECONDS:
            del self._streaks[client]  # the streak is over
            return None
        return streak


class Gate:
    """Decides whether a request may see the board."""

    def __init__(self, http: HttpSettings, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.users = dict(http.users)
        self.header = http.trusted_proxy_header
        self.proxies = [ipaddress.ip_network(p, strict=False) for p in http.trusted_proxies]
        self.open = not self.users and self.header is None  # loopback only (config says so)
        self.throttle = LoginThrottle(monotonic)
        self.monotonic = monotonic
        self._good: dict[str, float] = {}

    def check(self, client: str, headers: Mapping[str, str]) -> int:
        """200 (come in), 401 (log in) or 429 (too many failed logins)."""
        if self.open:
            return 200
        if self.header is not None and self._from_proxy(client):
            return 200 if headers.get(self.header) else 401
        if not self.users:
            return 401  # only the proxy may let people in, and this is not it
        if self.throttle.blocked(client):
            return 429
        given = headers.get("Authorization") or ""
        user = self._basic(client, given)
        return 200 if user else 401

    def _from_proxy(self, client: str) -> bool:
        try:
            address = ipaddress.ip_address(client)
        except ValueError:
            return False
        return any(address in network for network in self.proxies)

    def _basic(self, client: str, given: str) -> str | None:
        scheme, _, encoded = given.partition(" ")
        if scheme.lower() != "basic" or not encoded:
            return None  # no attempt yet: the browser asks after the 401
        key = hashlib.sha256(given.encode("utf-8", "replace")).hexdigest()
        now = self.monotonic()
        if self._good.get(key, 0.0) > now:
            return "cached"
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            self.throttle.failed(client, None)
            return None
        if passwords.verify_user(self.users, user, password):
            self.throttle.succeeded(client)
            self._good[key] = now + GOOD_LOGIN_SECONDS
            return user
        self.throttle.failed(client, user)
        return None


class BoardEndpoint:
    """Answers the board's paths for the HTTP listener."""

    def __init__(
        self,
        http: HttpSettings,
        snapshot: Snapshot,
        default_language: Callable[[], str],
        zone: Callable[[], ZoneInfo],
        *,
        limit: int | None = PAGE_ROWS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.gate = Gate(http, monotonic)
        self.snapshot = snapshot
        self.default_language = default_language
        self.zone = zone
        self.limit = limit

    def handle(self, request: BaseHTTPRequestHandler) -> bool:
        """Answer `request` if it is for the board; False leaves it to others."""
        url = urlsplit(request.path)
        if url.path not in PATHS:
            return False
        if url.path == "/board.css":  # no ticket data: the login page may use it
            _reply(request, 200, board_page.stylesheet(), "text/css; charset=utf-8")
            return True
        verdict = self.gate.check(str(request.client_address[0]), request.headers)
        if verdict == 401:
            _reply(
                request,
                401,
                b"login required\n",
                extra={"WWW-Authenticate": 'Basic realm="spocd board", charset="UTF-8"'},
            )
            return True
        if verdict == 429:
            _reply(
                request,
                429,
                b"too many failed logins; try again later\n",
                extra={"Retry-After": str(int(LOCKOUT_SECONDS))},
            )
            return True
        query = {k: v[-1][:MAX_FILTER] for k, v in parse_qs(url.query).items() if v}
        filters = {k: query[k] for k in board_page.FILTER_KEYS if query.get(k)}
        data = self.snapshot(filters)
        if url.path == "/board.json":
            body = json.dumps(
                {
                    "generated_at": data["now"].isoformat(),
                    "counts": data["counts"],
                    "filters": filters,
                    "health": data["health"],
                    "tickets": [r.json() for r in data["rows"]],
                },
                ensure_ascii=False,
            ).encode()
            _reply(request, 200, body, "application/json")
            return True
        lang = board_page.language(query.get("lang"), self.default_language())
        page = board_page.render(data, lang, self.zone(), self.limit)
        _reply(request, 200, page.encode(), "text/html; charset=utf-8")
        return True


def _reply(
    request: BaseHTTPRequestHandler,
    code: int,
    body: bytes,
    content_type: str = "text/plain; charset=utf-8",
    extra: Mapping[str, str] | None = None,
) -> None:
    request.send_response(code)
    request.send_header("Content-Type", content_type)
    request.send_header("Content-Length", str(len(body)))
    for name, value in {**HEADERS, **(extra or {})}.items():
        request.send_header(name, value)
    request.end_headers()
    request.wfile.write(body)
