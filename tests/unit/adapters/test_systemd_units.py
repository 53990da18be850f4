"""The unit files pass `systemd-analyze verify` (with ExecStart pointed at a
real executable, since verify checks that it exists)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[3] / "systemd"


@pytest.fixture
def analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("systemd-analyze is missing in CI: .ci/run must install systemd")
        pytest.skip("systemd-analyze is not installed")
    return found


def test_the_units_verify(analyze: str, tmp_path: Path) -> None:
    spocd = Path(sys.executable).with_name("python3")
    for name in ("spocd.service", "spocd-tick.service", "spocd-tick.timer"):
        text = (UNITS / name).read_text().replace("/opt/spocd/bin/spocd", str(spocd))
        (tmp_path / name).write_text(text)
    result = subprocess.run(
        [
            analyze,
            "verify",
            *(
                str(tmp_path / n)
                for n in ("spocd.service", "spocd-tick.service", "spocd-tick.timer")
            ),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    ours = [line for line in result.stderr.splitlines() if str(tmp_path) in line]
    assert result.returncode == 0, result.stderr
    assert ours == [], result.stderr


def test_the_service_is_hardened_and_notifies() -> None:
    text = (UNITS / "spocd.service").read_text()
    for line in (
        "Type=notify",
        "WatchdogSec=",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "User=spocd",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/spocd",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=\n",
        "LoadCredential=",
    ):
        assert line in text
    port25 = (UNITS / "spocd.service.d" / "port25.conf").read_text()
    assert "CapabilityBoundingSet=CAP_NET_BIND_SERVICE" in port25


def test_the_service_sets_an_open_file_limit_above_the_connection_cap() -> None:
    from daemon.adapters.smtp.limits import FD_RESERVE, connection_cap
    from daemon.config import SmtpSettings

    text = (UNITS / "spocd.service").read_text()
    [limit] = [line for line in text.splitlines() if line.startswith("LimitNOFILE=")]
    nofile = int(limit.removeprefix("LimitNOFILE="))
    configured = SmtpSettings().max_connections
    assert connection_cap(configured, nofile) == configured
    assert connection_cap(configured, 1024 + FD_RESERVE) == configured
    assert connection_cap(1000, 256) == 256 - FD_RESERVE  # lowered below the limit
    assert connection_cap(1000, 10) == 1


def test_a_tick_stopped_by_systemd_is_a_clean_stop() -> None:
    """SIGTERM makes `spocd tick` finish its batch and exit 143 (the e2e
    test); the unit must not count that as a failure."""
    from daemon.cli.interrupt import StopAsked

    stop = StopAsked()
    stop.signal = 15  # SIGTERM, as systemd sends it
    text = (UNITS / "spocd-tick.service").read_text()
    assert f"SuccessExitStatus={stop.exit_code}\n" in text


def test_both_units_keep_their_compiled_code_past_a_run() -> None:
    """PrivateTmp gives every run an empty /tmp: a tick every minute would
    compile every template and dataclass again and throw the cache away."""
    for unit in ("spocd.service", "spocd-tick.service"):
        text = (UNITS / unit).read_text()
        assert "CacheDirectory=spocd\n" in text
        assert "CacheDirectoryMode=0700\n" in text
        assert "Environment=TMPDIR=%C/spocd\n" in text
