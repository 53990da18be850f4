"""sd_notify over a real datagram socket, as systemd receives it."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from daemon.adapters.systemd import Notifier


def test_outside_systemd_it_does_nothing() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert notifier.ready() is False
    assert notifier.watchdog_interval is None


def test_messages_reach_the_notify_socket(tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        notifier = Notifier(
            {
                "NOTIFY_SOCKET": str(path),
                "WATCHDOG_USEC": "20000000",
                "WATCHDOG_PID": str(os.getpid()),
            }
        )
        assert notifier.ready("queue 0") and notifier.watchdog() and notifier.stopping()
        assert server.recv(1024) == b"READY=1\nSTATUS=queue 0"
        assert server.recv(1024) == b"WATCHDOG=1"
        assert server.recv(1024) == b"STOPPING=1"
    assert notifier.watchdog_interval == 10.0


def test_an_abstract_socket_name_is_used_as_such() -> None:
    name = f"spocd-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind("\0" + name)
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).status("ok")
        assert server.recv(1024) == b"STATUS=ok"


def test_the_watchdog_of_another_process_is_not_ours() -> None:
    notifier = Notifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"})
    assert notifier.watchdog_interval is None
