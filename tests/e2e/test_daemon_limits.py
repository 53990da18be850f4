"""`spocd run` under load a client controls: a message of millions of empty
lines, more connections than file descriptors. The daemon's memory stays
bounded, and it keeps running and answering."""

from __future__ import annotations

import resource
import smtplib
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, write_config
from tests.support.mail import make_mail
from tests.support.proc import env, wait_for_port, wait_until
from tests.support.relay import free_port

HELPDESK = "helpdesk@example.com"


@pytest.fixture
def desk(tmp_path: Path, sqlite_url: str) -> tuple[Path, int, int]:
    smtp_port, http_port = free_port(), free_port()
    config = write_config(
        tmp_path,
        sqlite_url,
        smtp={"port": smtp_port},
        http={"enabled": True, "port": http_port},
        paths={"rules": str(ROOT / "rules.yaml"), "templates": str(tmp_path / "templates")},
    )
    (tmp_path / "templates").symlink_to(ROOT / "templates")
    return config, smtp_port, http_port


def run_daemon(config: Path, log: Path, nofile: int | None = None) -> subprocess.Popen[bytes]:
    def limit() -> None:
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    with open(log, "ab") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "daemon", "run", "-c", str(config)],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env(),
            preexec_fn=limit,
        )


@pytest.fixture
def stopper() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=60)


def peak_memory_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def reply(reader) -> bytes:  # type: ignore[no-untyped-def]
    while True:
        line = reader.readline()
        if line[3:4] != b"-":
            return line


def test_a_message_of_20_mb_of_empty_lines_keeps_the_daemon_under_300_mb(
    desk: tuple[Path, int, int], tmp_path: Path, stopper: list
) -> None:
    config, smtp_port, _ = desk
    proc = run_daemon(config, tmp_path / "run.log")
    stopper.append(proc)
    wait_for_port("127.0.0.1", smtp_port, proc=proc)
    head = make_mail(message_id="empty-lines@example.org").split(b"\n\n", 1)[0]
    body = head.replace(b"\n", b"\r\n") + b"\r\n" + b"\r\n" * (10 * 1024 * 1024)
    with socket.create_connection(("127.0.0.1", smtp_port), timeout=120) as sock:
        reader = sock.makefile("rb")
        reply(reader)
        for command in (
            b"EHLO client",
            b"MAIL FROM:<jan@example.org>",
            b"RCPT TO:<" + HELPDESK.encode() + b">",
            b"DATA",
        ):
            sock.sendall(command + b"\r\n")
            assert reply(reader)[:1] in (b"2", b"3")
        sock.sendall(body + b".\r\n")
        assert reply(reader).startswith(b"250")
    peak = peak_memory_mb(proc.pid)
    assert peak < 300, f"peak {peak:.0f} MB"
