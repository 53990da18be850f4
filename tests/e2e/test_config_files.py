"""Config, rules and templates are read only from bounded regular files (issue 20.5).

Every run has a timeout: on the code before the fix these commands hang on a
FIFO or read /dev/zero until memory runs out.
"""

from __future__ import annotations

import os
import shutil
import signal
import smtplib
from pathlib import Path

import pytest

from tests.conftest import ROOT, write_config
from tests.support.mail import make_mail
from tests.support.proc import spocd, start_daemon, wait_for_port, wait_until
from tests.support.relay import free_port

ROUND = 30  # seconds: far above a refusal, far below "blocked for good"


@pytest.mark.parametrize("command", [("tickets",), ("tick",), ("rules", "check")])
def test_a_fifo_for_rules_is_refused_with_its_path(
    tmp_path: Path, sqlite_url: str, command: tuple[str, ...]
) -> None:
    fifo = tmp_path / "rules.yaml"
    os.mkfifo(fifo)
    config = write_config(tmp_path, sqlite_url, paths={"rules": str(fifo)})
    result = spocd(*command, config=config, timeout=ROUND)
    err = result.stderr.decode()
    assert result.returncode in (65, 78), err
    assert f"{fifo}: cannot read: not a regular file (a FIFO)" in err
    assert "Traceback" not in err


def test_rules_check_refuses_a_device_without_reading_it(tmp_path: Path, sqlite_url: str) -> None:
    config = write_config(tmp_path, sqlite_url)
    result = spocd("rules", "check", "/dev/zero", config=config, timeout=ROUND)
    assert result.returncode == 65
    assert "/dev/zero: cannot read: not a regular file (a character device)" in (
        result.stderr.decode()
    )


def test_a_rules_file_over_the_limit_is_refused(tmp_path: Path, sqlite_url: str) -> None:
    big = tmp_path / "rules.yaml"
    with open(big, "wb") as fh:
        fh.truncate(4 * 1024 * 1024 + 1)  # sparse: costs no disk
    config = write_config(tmp_path, sqlite_url)
    result = spocd("rules", "check", str(big), config=config, timeout=ROUND)
    assert result.returncode == 65
    assert f"{big}: cannot read: larger than 4194304 bytes" in result.stderr.decode()


def test_a_fifo_as_the_config_file_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "spocd.toml"
    os.mkfifo(fifo)
    result = spocd("tickets", config=fifo, timeout=ROUND)
    assert result.returncode == 78
    assert f"{fifo}: cannot read: not a regular file (a FIFO)" in result.stderr.decode()


def test_a_fifo_template_is_refused_with_its_path(tmp_path: Path, sqlite_url: str) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", templates)
    fifo = templates / "pl" / "ack.txt"
    fifo.unlink()
    os.mkfifo(fifo)
    config = write_config(tmp_path, sqlite_url, paths={"templates": str(templates)})
    result = spocd("tickets", config=config, timeout=ROUND)
    assert result.returncode == 78
    assert f"{fifo}: cannot read: not a regular file (a FIFO)" in result.stderr.decode()


def test_a_running_daemon_keeps_its_rules_when_rules_yaml_becomes_a_fifo(
    tmp_path: Path, sqlite_url: str
) -> None:
    rules = tmp_path / "rules.yaml"
    shutil.copy(ROOT / "rules.yaml", rules)
    smtp_port = free_port()
    config = write_config(
        tmp_path, sqlite_url, smtp={"port": smtp_port}, paths={"rules": str(rules)}
    )
    log = tmp_path / "run.log"
    proc = start_daemon(config, log=log)
    try:
        wait_for_port("127.0.0.1", smtp_port, proc=proc)
        rules.unlink()
        os.mkfifo(rules)
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: b"reload refused" in log.read_bytes(), timeout=ROUND)
        assert b"not a regular file (a FIFO)" in log.read_bytes()
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=ROUND) as client:
            client.sendmail(
                "jan@example.org",
                ["helpdesk@example.com"],
                make_mail(subject="Telefony nie działają w całym biurze"),
            )
        wait_until(lambda: b"outcome=created" in log.read_bytes(), timeout=ROUND)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=ROUND)
        except Exception:
            proc.kill()
            proc.wait()
            raise
    assert code == 0
