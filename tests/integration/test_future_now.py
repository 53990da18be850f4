"""A moment far in the future cannot damage live tickets (issue 20.7).

`--now` far ahead is refused on a database with tickets unless forced; the
daemon skips a sweep when the wall clock jumps forward against the monotonic
clock; year 9999 is a clear usage error.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon.config import load_settings
from daemon.service.runner import Daemon
from daemon.service.wiring import App
from tests.conftest import write_config
from tests.support.clock import ManualClock
from tests.support.mail import make_mail
from tests.support.proc import spocd


@pytest.fixture
def config(tmp_path: Path, sqlite_url: str) -> Path:
    return write_config(tmp_path, sqlite_url)


def test_a_tick_far_ahead_is_refused_on_live_tickets_unless_forced(config: Path) -> None:
    assert spocd("tick", "--now", "2100-01-01T00:00:00+01:00", config=config).returncode == 0
    assert spocd("ingest", "-", config=config, input=make_mail()).returncode == 0
    before = json.loads(spocd("show", "HD-1", "--json", config=config).stdout)

    refused = spocd("tick", "--now", "2100-01-01T00:00:00+01:00", config=config)
    err = refused.stderr.decode()
    assert refused.returncode == 64, err
    assert "ahead of the wall clock" in err and "--force" in err
    assert "Traceback" not in err
    after = json.loads(spocd("show", "HD-1", "--json", config=config).stdout)
    assert after == before  # nothing fired, nothing moved

    soon = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    assert spocd("tick", "--now", soon, config=config).returncode == 0
    for command in (("ticket", "HD-1", "note", "x"), ("ingest", "-")):
        late = spocd(*command, "--now", "2100-01-01T00:00:00Z", config=config, input=make_mail())
        assert late.returncode == 64, late.stderr
    forced = spocd("tick", "--now", "2100-01-01T00:00:00+01:00", "--force", config=config)
    assert forced.returncode == 0, forced.stderr


@pytest.mark.parametrize("command", ["tick", "ingest", "tickets"])
def test_year_9999_is_a_clear_error_not_a_traceback(config: Path, command: str) -> None:
    result = spocd(command, "--now", "9999-12-31T00:00:00Z", config=config, input=make_mail())
    err = result.stderr.decode()
    assert result.returncode == 64, err
    assert "too far in the future" in err
    assert "Traceback" not in err and "OverflowError" not in err


def test_the_daemon_skips_a_sweep_when_the_wall_clock_jumps_forward(
    config: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock(datetime(2026, 12, 4, 9, 0, tzinfo=UTC))
    app = App(load_settings(config), clock)
    swept: list[datetime] = []

    def jobs(now: datetime) -> dict[str, int]:
        swept.append(now)
        return {}

    daemon = Daemon(app, None, jobs=jobs)
    monotonic = [1000.0]
    daemon.monotonic = lambda: monotonic[0]

    def sweep_after(wall: timedelta, elapsed: float) -> None:
        clock.advance(wall)
        monotonic[0] += elapsed
        daemon._run_jobs()

    try:
        daemon._run_jobs()
        sweep_after(timedelta(seconds=30), 30)
        assert len(swept) == 2
        with caplog.at_level(logging.WARNING, logger="spocd"):
            sweep_after(timedelta(days=365 * 74), 30)  # someone set the clock to 2100
        assert len(swept) == 2
        assert "the wall clock jumped forward" in caplog.text
        sweep_after(-timedelta(days=365 * 74), 30)  # and set it back: nothing was done
        assert swept[-1] - swept[0] < timedelta(minutes=5)
        sweep_after(timedelta(minutes=90), 30)  # a jump that stays ...
        sweep_after(timedelta(seconds=30), 30)  # ... is acted on one sweep later
        assert swept[-1] - swept[0] > timedelta(hours=1)
    finally:
        app.close()
