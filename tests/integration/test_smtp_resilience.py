"""The SMTP listener keeps serving whatever one client does: a connection
reset after DATA, a client that gives up while the database lock is held,
a message of millions of empty lines, more connections than it takes.

Real sockets against a real aiosmtpd listener on a SQLite file.
"""

from __future__ import annotations

import errno
import smtplib
import socket
import sqlite3
import struct
import time

import pytest

from daemon.adapters.storage.store import SqlStore
from tests.integration.conftest import queued
from tests.support.mail import make_mail
from tests.support.proc import wait_until

HELPDESK = "helpdesk@example.com"


class RawClient:
    """An SMTP client on a bare socket, to leave at any point of a session."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.reader = self.sock.makefile("rb")
        self.reply()

    def reply(self) -> bytes:
        while True:
            line = self.reader.readline()
            if line[3:4] != b"-":
                return line

    def cmd(self, line: bytes) -> bytes:
        self.sock.sendall(line + b"\r\n")
        return self.reply()

    def send_message(self, raw: bytes) -> None:
        """Everything up to the final dot, without reading the reply."""
        assert self.cmd(b"EHLO client.example.org").startswith(b"250")
        assert self.cmd(b"MAIL FROM:<jan@example.org>").startswith(b"250")
        assert self.cmd(b"RCPT TO:<" + HELPDESK.encode() + b">").startswith(b"250")
        assert self.cmd(b"DATA").startswith(b"354")
        self.sock.sendall(raw + b"\r\n.\r\n")

    def leave(self, *, reset: bool) -> None:
        """Close without reading the reply: with RST (SO_LINGER 0), or as an
        ordinary client whose timeout ran out."""
        if reset:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.reader.close()
        self.sock.close()


def crlf_mail(message_id: str) -> bytes:
    return make_mail(message_id=message_id).replace(b"\n", b"\r\n")


@pytest.mark.parametrize("reset", [True, False], ids=["reset", "gave-up"])
def test_a_client_that_leaves_after_data_does_not_stop_intake(
    listen,  # type: ignore[no-untyped-def]
    store: SqlStore,
    sqlite_url: str,
    reset: bool,
) -> None:
    intake = listen()
    # Another process holds the write lock: the commit waits, the client gives up.
    lock = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    try:
        client = RawClient(intake.port)
        client.send_message(crlf_mail("reset@example.org"))
        wait_until(lambda: intake.writer.in_flight == 1)
        client.leave(reset=reset)
        wait_until(lambda: not intake.controller.clients.open)
        time.sleep(0.2)  # the handler's cancellation reaches the writer's future
    finally:
        lock.rollback()
        lock.close()
    wait_until(lambda: intake.writer.in_flight == 0)
    assert intake.writer.alive
    started = time.monotonic()
    with smtplib.SMTP("127.0.0.1", intake.port, timeout=5) as client_ok:
        client_ok.sendmail("jan@example.org", [HELPDESK], make_mail(message_id="next@example.org"))
    assert time.monotonic() - started < 2.0
    # The reset message was committed before the reply was lost: it stays.
    assert queued(store) == 2


def test_connections_past_max_connections_get_421_from_any_address(listen) -> None:  # type: ignore[no-untyped-def]
    intake = listen(max_connections=3, max_connections_per_client=20)
    held = []
    for n in range(3):  # three addresses, one connection each
        sock = socket.socket()
        sock.bind((f"127.0.0.{n + 2}", 0))
        sock.settimeout(10)
        sock.connect(("127.0.0.1", intake.port))
        assert sock.recv(512).startswith(b"220")
        held.append(sock)
    with socket.create_connection(("127.0.0.1", intake.port), timeout=10) as refused:
        assert refused.recv(512).startswith(b"421 4.3.2 Too many connections")
    held.pop().close()
    wait_until(lambda: intake.controller.clients.open == 2)
    with smtplib.SMTP("127.0.0.1", intake.port, timeout=10) as client:
        client.sendmail("jan@example.org", [HELPDESK], make_mail(message_id="room@example.org"))
    for sock in held:
        sock.close()


def test_running_out_of_descriptors_on_accept_is_logged_once_a_minute(
    listen,  # type: ignore[no-untyped-def]
    caplog: pytest.LogCaptureFixture,
) -> None:
    intake = listen()
    controller = intake.controller
    # What asyncio reports when accept() fails with EMFILE (it then pauses accepting).
    context = {
        "message": "socket.accept() out of system resource",
        "exception": OSError(errno.EMFILE, "Too many open files"),
    }
    for _ in range(5):
        controller.loop.call_soon_threadsafe(controller.loop.call_exception_handler, context)
    wait_until(lambda: "out of file descriptors" in caplog.text)
    with smtplib.SMTP("127.0.0.1", intake.port, timeout=10) as client:  # still serving
        client.noop()
    assert caplog.text.count("out of file descriptors") == 1
