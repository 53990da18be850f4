"""An intake thread that dies turns the daemon's health red: /healthz fails,
`spocd status` says so, and `spocd run` exits non-zero for a restart."""

from __future__ import annotations

import errno
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.adapters.storage.store import SqlStore
from daemon.app.status import status_report, status_text
from daemon.config import Settings, load_settings
from daemon.ports import SystemClock
from daemon.service.runner import EXIT_INTAKE_DIED, Daemon
from daemon.service.wiring import App
from tests.conftest import write_config
from tests.support.proc import wait_until
from tests.support.relay import free_port


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def daemon(tmp_path: Path, sqlite_url: str) -> Iterator[Daemon]:
    settings: Settings = load_settings(
        write_config(
            tmp_path,
            sqlite_url,
            smtp={"port": free_port()},
            http={"enabled": True, "port": free_port()},
        )
    )
    app = App(settings, SystemClock())
    runner = Daemon(app, None)
    runner.start()
    yield runner
    if not runner.stop_event.is_set():
        runner.shutdown()


def test_a_dead_smtp_writer_fails_healthz_status_and_the_exit_code(daemon: Daemon) -> None:
    assert daemon.http is not None and daemon.smtp is not None
    assert get(daemon.http.port, "/healthz") == (200, "ok\n")
    daemon.smtp.writer._queue.put(None)  # the writer thread ends, as if it had died
    daemon.smtp.writer._thread.join(timeout=5)
    assert get(daemon.http.port, "/healthz") == (503, "smtp writer thread died\n")

    assert daemon.serve() == EXIT_INTAKE_DIED  # returns at once, for systemd to restart it
    # `spocd status`, in another process, reads what the daemon recorded.
    settings = daemon.app.settings
    reader = SqlStore.open(settings.database.url)
    try:
        with reader.reading() as tx:
            report = status_report(settings, tx, SystemClock().now())
    finally:
        reader.close()
    assert not report["healthy"]
    assert "smtp writer thread died" in report["intake_failure"]
    assert "intake: FAILED: " in status_text(report)


def test_an_os_error_in_a_main_loop_step_does_not_end_the_daemon(
    daemon: Daemon, caplog: pytest.LogCaptureFixture
) -> None:
    def out_of_descriptors() -> list[Path]:  # what rglob raised at 1,200 connections
        raise OSError(errno.EMFILE, "Too many open files")

    daemon._watch_files = out_of_descriptors  # type: ignore[method-assign]
    codes: list[int] = []
    serving = threading.Thread(target=lambda: codes.append(daemon.serve()))
    serving.start()
    wait_until(lambda: "main loop step failed" in caplog.text, timeout=10)
    assert serving.is_alive()
    assert daemon.http is not None
    assert get(daemon.http.port, "/healthz") == (200, "ok\n")
    daemon.stop_event.set()
    serving.join(timeout=30)
    assert codes == [0]


def test_the_next_start_clears_the_recorded_failure(daemon: Daemon) -> None:
    assert daemon.smtp is not None
    daemon.smtp.writer._queue.put(None)
    assert daemon.serve() == EXIT_INTAKE_DIED
    settings = daemon.app.settings
    again = Daemon(App(settings, SystemClock()), None)
    again.start()
    try:
        with again.app.store.reading() as tx:
            report = status_report(settings, tx, SystemClock().now())
        assert report["healthy"] and report["intake_failure"] is None
    finally:
        again.shutdown()
