"""The health endpoint bounds what a client can hold: a half-sent request is
dropped after the request timeout, and only so many are served at once."""

from __future__ import annotations

import socket
import threading
import urllib.request
from collections.abc import Iterator

import pytest

from daemon.adapters.http import HealthServer, Metrics
from tests.support.proc import wait_until


@pytest.fixture
def server() -> Iterator[HealthServer]:
    http = HealthServer(
        "127.0.0.1",
        0,
        Metrics(lambda: None),  # type: ignore[arg-type, return-value]
        lambda: (True, "ok"),
        lambda: (True, "ready"),
        request_timeout=2.0,
        max_connections=4,
    )
    http.start()
    yield http
    http.stop()


def test_half_sent_requests_hold_neither_threads_nor_the_endpoint(server: HealthServer) -> None:
    before = threading.active_count()
    held = []
    try:
        for _ in range(20):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            held.append(sock)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finished
        assert threading.active_count() - before <= 4  # one thread per slot, no more
        for sock in held:  # every one is closed: at once past the cap, or at the timeout
            assert sock.recv(100) == b""
    finally:
        for sock in held:
            sock.close()
    wait_until(lambda: threading.active_count() <= before)
    url = f"http://127.0.0.1:{server.port}/healthz"
    with urllib.request.urlopen(url, timeout=5) as reply:
        assert reply.status == 200
