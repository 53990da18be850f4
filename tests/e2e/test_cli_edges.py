"""Command-line edges (issue 12.10): `bench -c`, a reader that goes away."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import write_config
from tests.support.mail import make_mail
from tests.support.proc import env, spocd


@pytest.fixture
def config(tmp_path: Path, sqlite_url: str) -> Path:
    return write_config(tmp_path, sqlite_url)


@pytest.mark.parametrize("where", ["after", "before"])
def test_bench_takes_the_config_option_like_every_command(config: Path, where: str) -> None:
    words = ["bench", "-c", str(config)] if where == "after" else ["-c", str(config), "bench"]
    result = spocd(*words, "--mode", "pipe", "--messages", "2", "--json")
    assert result.returncode == 0, result.stderr
    assert b'"pipe"' in result.stdout


def test_bench_refuses_a_bad_config_like_every_command(tmp_path: Path) -> None:
    result = spocd("bench", "-c", str(tmp_path / "absent.toml"), "--mode", "pipe")
    assert result.returncode == 78
    assert b"configuration refused" in result.stderr


@pytest.mark.parametrize("command", [("show", "HD-1"), ("tickets",)])
def test_a_reader_that_goes_away_ends_the_command_quietly(
    config: Path, command: tuple[str, ...]
) -> None:
    assert spocd("ingest", "-", config=config, input=make_mail()).returncode == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "daemon", *command, "-c", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env(),
    )
    assert proc.stdout is not None
    proc.stdout.close()  # like `| head` that has read enough before the output comes
    _, err = proc.communicate(timeout=60)
    assert b"Traceback" not in err and b"BrokenPipeError" not in err, err.decode()
    assert err == b""
    assert proc.returncode == 141
