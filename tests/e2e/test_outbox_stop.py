"""`spocd run` and its relay: a stop does not wait on a relay that tarpits,
and a relay login in clear text is warned of at start (issue 20.8)."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import text

from daemon.adapters.storage.engine import make_engine
from daemon.config import load_settings
from daemon.service.wiring import App
from tests.conftest import write_config
from tests.support.flow import ingest
from tests.support.mail import make_mail
from tests.support.proc import start_daemon, wait_until
from tests.support.relay import Relay, free_port


def _rows(url: str) -> list[tuple[str, str, bool]]:
    """(Message-ID, state, leased) of each outbox row."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT message_id, state, leased_until FROM outbox"))
            return [(mid, state, leased is not None) for mid, state, leased in rows]
    finally:
        engine.dispose()


def test_a_stop_cuts_off_a_send_to_a_tarpitting_relay_and_the_next_start_sends_it(
    tmp_path: Path, sqlite_url: str
) -> None:
    relay = Relay().start()
    relay.slow(120)  # takes the mail's DATA and never answers it in time
    outgoing = {"transport": "smtp", "host": "127.0.0.1", "port": relay.port}
    config = write_config(tmp_path, sqlite_url, smtp={"port": free_port()}, outgoing=outgoing)
    app = App(load_settings(config))  # timeout_seconds = 30: a lease of a minute
    try:
        ingest(app, make_mail(sender="jan@example.org"), send=False)
    finally:
        app.close()
    log = tmp_path / "run.log"
    proc = start_daemon(config, log=log)
    try:
        assert relay.wait_for_data(timeout=30)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=20) == 0
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        assert time.monotonic() - started < 10  # not the relay's 30 s timeout
        rows = _rows(sqlite_url)
        assert [state for _, state, _ in rows] == ["pending", "pending"]
        assert sum(leased for _, _, leased in rows) == 1  # the one cut off, as after a crash
        assert b"send interrupted by stop" in log.read_bytes()

        relay.slow(0)
        proc = start_daemon(config, log=log)
        wait_until(lambda: all(state == "sent" for _, state, _ in _rows(sqlite_url)), 30)
        caught = Counter(str(c.message["Message-ID"]).strip("<>") for c in relay.caught)
        assert caught == Counter(mid for mid, _, _ in rows)
    finally:
        _stop(proc)
        relay.stop()


def test_a_relay_login_in_clear_text_is_warned_of_at_start(tmp_path: Path, sqlite_url: str) -> None:
    outgoing = {
        "transport": "smtp",
        "host": "127.0.0.1",
        "port": free_port(),
        "username": "desk",
        "password": "s3cret",
    }
    config = write_config(tmp_path, sqlite_url, smtp={"port": free_port()}, outgoing=outgoing)
    log = tmp_path / "run.log"
    proc = start_daemon(config, log=log)
    try:
        wait_until(lambda: b"relay login goes in clear text" in log.read_bytes(), 20)
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM; a daemon that does not stop in time is killed (and fails the test)."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        assert proc.wait(timeout=20) == 0
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
