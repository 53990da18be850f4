"""`spocd run` as a service: readiness, watchdog, health endpoint, reloads,
one instance per SQLite file."""

from __future__ import annotations

import json
import os
import signal
import smtplib
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, write_config
from tests.support.mail import make_mail
from tests.support.proc import spocd, start_daemon, wait_for_port, wait_until
from tests.support.relay import free_port


@pytest.fixture
def desk(tmp_path: Path, sqlite_url: str) -> Iterator[tuple[Path, int, int]]:
    """A config with SMTP and HTTP ports, and its own copy of rules.yaml."""
    rules = tmp_path / "rules.yaml"
    rules.write_text((ROOT / "rules.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    smtp_port, http_port = free_port(), free_port()
    config = write_config(
        tmp_path,
        sqlite_url,
        smtp={"port": smtp_port},
        http={"enabled": True, "port": http_port},
        paths={"rules": str(rules)},
    )
    yield config, smtp_port, http_port


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def stop(proc) -> int:  # type: ignore[no-untyped-def]
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=30)


def test_ready_watchdog_and_status_reach_systemd(
    desk: tuple[Path, int, int], tmp_path: Path
) -> None:
    config, smtp_port, _ = desk
    sock_path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(sock_path))
        notify.settimeout(20)
        proc = start_daemon(
            config, log=tmp_path / "run.log", NOTIFY_SOCKET=str(sock_path), WATCHDOG_USEC="1000000"
        )
        try:
            first = notify.recv(4096).decode()
            assert first.startswith("READY=1") and "STATUS=queue 0" in first
            wait_for_port("127.0.0.1", smtp_port, proc=proc)  # listening when READY came
            assert notify.recv(4096) == b"WATCHDOG=1"
        finally:
            assert stop(proc) == 0
        messages = []
        notify.settimeout(2)
        try:
            while True:
                messages.append(notify.recv(4096))
        except TimeoutError:
            pass
        assert b"STOPPING=1" in messages


def test_health_readiness_and_metrics(desk: tuple[Path, int, int], tmp_path: Path) -> None:
    config, smtp_port, http_port = desk
    proc = start_daemon(config, log=tmp_path / "run.log")
    try:
        wait_for_port("127.0.0.1", http_port, proc=proc)
        assert get(http_port, "/healthz") == (200, "ok\n")
        assert get(http_port, "/readyz")[0] == 200
        wait_for_port("127.0.0.1", smtp_port, proc=proc)
        with smtplib.SMTP("127.0.0.1", smtp_port) as client:
            client.sendmail("jan@example.org", ["helpdesk@example.com"], make_mail())

        def counted() -> bool:
            text = get(http_port, "/metrics")[1]
            return 'spocd_messages_total{intake="smtp",outcome="created"} 1.0' in text

        wait_until(counted)
        text = get(http_port, "/metrics")[1]
        assert 'spocd_tickets_open{priority="P3"}' in text or "spocd_tickets_open" in text
        assert 'spocd_inbound_queue{state="queued"} 0.0' in text
        assert "spocd_pipeline_seconds_count 1.0" in text
        assert get(http_port, "/nothing")[0] == 404
    finally:
        assert stop(proc) == 0


def test_a_second_instance_on_the_same_sqlite_file_refuses_to_start(
    desk: tuple[Path, int, int], tmp_path: Path
) -> None:
    config, smtp_port, _ = desk
    proc = start_daemon(config, log=tmp_path / "run.log")
    try:
        wait_for_port("127.0.0.1", smtp_port, proc=proc)
        second = spocd("run", config=config, timeout=60)
        assert second.returncode == 75
        assert b"already serves" in second.stderr and f"pid {proc.pid}".encode() in second.stderr
    finally:
        assert stop(proc) == 0


def _rules_version(config: Path) -> str:
    result = spocd("rules", "check", config=config)
    return result.stdout.decode().split("version ")[1].split(",")[0]


@pytest.mark.parametrize("trigger", ["sighup", "file-change"])
def test_a_broken_rules_file_is_refused_and_the_old_rules_stay(
    desk: tuple[Path, int, int], tmp_path: Path, trigger: str
) -> None:
    config, smtp_port, _ = desk
    rules = tmp_path / "rules.yaml"
    good = rules.read_text(encoding="utf-8")
    log = tmp_path / "run.log"
    proc = start_daemon(config, log=log)
    try:
        wait_for_port("127.0.0.1", smtp_port, proc=proc)
        assert "'(?i)" in good
        rules.write_text(good.replace("'(?i)", "'((?i)", 1), encoding="utf-8")  # a bad regex
        if trigger == "sighup":
            proc.send_signal(signal.SIGHUP)
        wait_until(lambda: b"reload refused" in log.read_bytes(), timeout=30)
        assert b"bad regex" in log.read_bytes()
        assert proc.poll() is None  # still running, on the old rules
        with smtplib.SMTP("127.0.0.1", smtp_port) as client:
            client.sendmail(
                "jan@example.org",
                ["helpdesk@example.com"],
                make_mail(subject="Telefony nie działają w całym biurze"),
            )
        wait_until(lambda: b"outcome=created" in log.read_bytes())
        # A fixed file is taken: its version is what new tickets record.
        fixed = good.replace("VoIP outage", "VoIP outage (edited)")
        rules.write_text(fixed, encoding="utf-8")
        if trigger == "sighup":
            os.kill(proc.pid, signal.SIGHUP)
        wait_until(lambda: b"rules and templates reloaded" in log.read_bytes(), timeout=30)
    finally:
        assert stop(proc) == 0
    shown = json.loads(spocd("show", "HD-1", "--json", config=config).stdout)
    assert shown["category"] == "voip"  # decided by the old, valid rules
    assert shown["rules_version"] != _rules_version(config)
