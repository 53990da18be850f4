"""The IMAP intake against a server that lies (`tests.support.fake_imap`).

Sizes under-reported, a huge literal trickled, an endless flood of untagged
responses, UIDs not delivered, STORE or MOVE refused, UIDVALIDITY changing
at every SELECT, a hang-up right after every good poll. Honest behaviour is
tested against Dovecot in test_imap_intake.py. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from daemon.adapters.imap.intake import MailboxIntake
from daemon.adapters.imap.session import PollReport
from daemon.app.status import status_report
from daemon.config import load_settings
from daemon.mail.imap_plan import Backoff
from tests.conftest import write_config
from tests.integration.imap_support import counts
from tests.support.fake_imap import FakeImap, Script, fake_imap
from tests.support.mail import make_mail
from tests.support.proc import wait_until

#: daemon.mail.imap_plan.MAX_MISSES (spelled out so the test runs on older code too).
MAX_MISSES = 3
PROCESSED = "spocd/processed"
FAILED = "spocd/failed"


def app_for(tmp_path: Path, db_url: str, server: FakeImap, **overrides: Any) -> Any:
    from daemon.service.wiring import App

    section: dict[str, Any] = {
        "enabled": True,
        "host": "127.0.0.1",
        "port": server.port,
        "tls": "none",
        "username": "desk",
        "password": "secret",
        "idle": False,
        "poll_seconds": 1,
        "timeout_seconds": 5,
    }
    section.update(overrides)
    config = write_config(tmp_path, db_url, imap=section, smtp={"enabled": False})
    return App(load_settings(config))


@contextmanager
def intake_of(tmp_path: Path, db_url: str, server: FakeImap, **overrides: Any) -> Iterator[Any]:
    app = app_for(tmp_path, db_url, server, **overrides)
    try:
        yield app
    finally:
        app.close()


def poll_within(intake: MailboxIntake, seconds: float) -> PollReport:
    """`poll_once` in a thread: it must end within `seconds`."""
    result: list[PollReport] = []
    thread = threading.Thread(target=lambda: result.append(intake.poll_once()), daemon=True)
    thread.start()
    thread.join(timeout=seconds)
    assert not thread.is_alive(), f"the poll still runs after {seconds} s"
    return result[0]


def status_of(app: Any) -> dict[str, Any]:
    with app.store.reading() as tx:
        report = status_report(app.settings, tx, app.clock.now())
    [mailbox] = report["mailboxes"]
    return mailbox


def fetched_uids(server: FakeImap) -> list[list[int]]:
    """The UIDs of each body FETCH, and a [] marker at each MOVE."""
    out: list[list[int]] = []
    for line in server.log:
        words = line.split(" ")
        if words[:2] == ["UID", "FETCH"] and "BODY" in line:
            out.append([int(u) for u in re.findall(r"\d+", words[2])])
        elif words[:2] == ["UID", "MOVE"]:
            out.append([])
    return out


# --- 20.3: limits a server cannot lie around ----------------------------------------


def test_under_reported_sizes_cannot_fill_a_batch(tmp_path: Path, db_url: str) -> None:
    """Sizes said to be 10 bytes: the batch is closed by the bytes received."""
    raws = [make_mail(subject=f"Big {i}", body="x" * 600_000 + "\n") for i in range(6)]
    with fake_imap(Script(reported_size=10)) as server:
        server.add(raws)
        with intake_of(tmp_path, db_url, server) as app:
            [intake] = app.mailbox_intakes()
            intake.batch_bytes = 1_000_000
            report = intake.poll_once()
            seen = counts(app.store)
        log = fetched_uids(server)
        assert server.count(PROCESSED) == 6
    assert (report.error, report.taken) == (None, 6)
    assert seen["tickets"] == 6
    per_batch = []
    fetched = 0
    for entry in log:
        if entry:
            fetched += len(entry)
        elif fetched:
            per_batch.append(fetched)
            fetched = 0
    assert per_batch == [2, 2, 2]  # 1.2 MB received closes each batch


def test_a_message_over_the_size_cap_goes_to_the_failed_folder(
    tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="spocd.imap")
    small = make_mail(subject="Small one")
    big = make_mail(subject="Big one", body="y" * 300_000 + "\n")
    with fake_imap() as server:
        server.add([big, small])
        with intake_of(tmp_path, db_url, server, max_message_size=100_000) as app:
            [intake] = app.mailbox_intakes()
            report = intake.poll_once()
            seen = counts(app.store)
            mailbox = status_of(app)
        assert [m.raw for m in server.folders[FAILED]] == [big]
        assert server.count(PROCESSED) == 1
        assert not [c for c in server.log if "BODY" in c and re.search(r"FETCH 1 ", c)]
    assert (report.error, report.taken, report.failed) == (None, 1, 1)
    assert (seen["inbound"], seen["tickets"]) == (1, 1)
    [warning] = [r for r in caplog.records if r.getMessage().startswith("imap message too large")]
    assert (warning.uid, warning.max_message_size) == (1, 100_000)  # type: ignore[attr-defined]
    assert mailbox["healthy"] and mailbox["failed"] == 1


def test_a_literal_larger_than_said_is_read_into_nowhere_and_failed(
    tmp_path: Path, db_url: str
) -> None:
    """RFC822.SIZE says 10; the literal is 20 MB: not kept, failed folder."""
    with fake_imap(Script(reported_size=10, declared_literal=20_000_000)) as server:
        server.add([make_mail(subject="Liar")])
        with intake_of(tmp_path, db_url, server, max_message_size=1_000_000) as app:
            [intake] = app.mailbox_intakes()
            tracemalloc.start()
            try:
                report = poll_within(intake, 60)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            seen = counts(app.store)
        assert server.count(FAILED) == 1 and server.count() == 0
    assert (report.error, report.taken, report.failed) == (None, 0, 1)
    assert seen["inbound"] == 0
    assert peak < 8_000_000, f"{peak / 1e6:.0f} MB held for a 20 MB literal"


def test_a_trickled_literal_ends_at_the_command_deadline(tmp_path: Path, db_url: str) -> None:
    script = Script(declared_literal=999_999_999, trickle_bytes_per_second=1000)
    with fake_imap(script) as server:
        server.add([make_mail(subject="Slow")])
        with intake_of(tmp_path, db_url, server, timeout_seconds=2) as app:
            [intake] = app.mailbox_intakes()
            started = time.monotonic()
            report = poll_within(intake, 30)
            took = time.monotonic() - started
    assert report.error is not None and report.error.startswith("TimeoutError")
    assert took < 10


def test_a_login_answer_trickled_byte_by_byte_ends_at_the_deadline(
    tmp_path: Path, db_url: str
) -> None:
    with (
        fake_imap(Script(trickle_login=True)) as server,
        intake_of(tmp_path, db_url, server, timeout_seconds=2) as app,
    ):
        [intake] = app.mailbox_intakes()
        report = poll_within(intake, 20)
    assert report.error is not None and report.error.startswith("TimeoutError")


def test_a_poll_has_a_deadline_of_its_own(
    tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Each command in time, but many: the poll leaves the rest for the next."""
    caplog.set_level(logging.INFO, logger="spocd.imap")
    with fake_imap() as server:
        server.add([make_mail(subject=f"Many {i}") for i in range(40)])
        with intake_of(tmp_path, db_url, server, batch_size=5) as app:
            [intake] = app.mailbox_intakes()
            intake.poll_seconds_limit = 0.0
            first = intake.poll_once()
            intake.poll_seconds_limit = 600.0
            second = intake.poll_once()
    assert first.error is None and first.taken < 40
    assert second.taken == 40 - first.taken
    assert [r for r in caplog.records if "took its time limit" in r.getMessage()]


@pytest.mark.parametrize("where", ["SELECT", "IDLE"])
def test_an_endless_flood_of_untagged_responses_is_cut_off(
    tmp_path: Path, db_url: str, where: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The line limit, not the command's deadline, must end it: the deadline is
    set far beyond what reading the limit's lines takes on a loaded host
    (with tracemalloc tracing every allocation, 5 s were not always enough)."""
    caplog.set_level(logging.INFO, logger="spocd.imap")
    with fake_imap(Script(flood_exists_on=where)) as server:
        server.add([make_mail(subject="Flooded")])
        with intake_of(
            tmp_path, db_url, server, idle=True, poll_seconds=30, timeout_seconds=120
        ) as app:
            [intake] = app.mailbox_intakes()
            intake.backoff = Backoff(initial=5, cap=5)
            stop = threading.Event()
            thread = threading.Thread(target=intake.run, args=(stop,), daemon=True)
            tracemalloc.start()
            try:
                thread.start()
                wait_until(  # the fault, or memory growing out of bounds
                    lambda: (
                        any(r.getMessage() == "imap mailbox unavailable" for r in caplog.records)
                        or tracemalloc.get_traced_memory()[0] > 100_000_000
                    ),
                    timeout=30,
                )
                _, peak = tracemalloc.get_traced_memory()
            finally:
                stop.set()
                thread.join(timeout=15)
                tracemalloc.stop()
    assert not thread.is_alive()
    [fault] = [r for r in caplog.records if r.getMessage() == "imap mailbox unavailable"]
    assert fault.fault == "protocol"  # type: ignore[attr-defined]
    assert peak < 30_000_000, f"{peak / 1e6:.0f} MB held by the flood"


@pytest.mark.parametrize(
    ("greeting", "idles"),
    [
        (b"* OK Still here\r\n", "one"),  # nothing new: IDLE goes on
        (b"* 1 EXISTS\r\n", "several"),  # announced mail: searched at once, each time
    ],
)
def test_what_comes_with_plus_idling_ends_the_idle_only_when_it_is_mail(
    tmp_path: Path, db_url: str, greeting: bytes, idles: str
) -> None:
    """Responses that come in the packet that starts IDLE are read at once
    (imaplib's buffer hides them from IDLE's poll). New mail ends the IDLE;
    anything else must not, or every IDLE would end as it began and the
    intake would search the folder in a loop."""
    with (
        fake_imap(Script(idle_greeting=greeting)) as server,
        intake_of(tmp_path, db_url, server, idle=True, poll_seconds=30) as app,
    ):
        [intake] = app.mailbox_intakes()
        stop = threading.Event()
        thread = threading.Thread(target=intake.run, args=(stop,), daemon=True)
        thread.start()
        try:
            wait_until(lambda: len(server.commands("IDLE")) >= 1, timeout=10)
            time.sleep(1.5)
        finally:
            stop.set()
            thread.join(timeout=15)
    assert not thread.is_alive()
    seen = len(server.commands("IDLE"))
    assert seen == 1 if idles == "one" else seen > 1, seen


# --- 20.4: faults that copied or skipped mail --------------------------------------------


def test_without_move_a_refused_store_never_copies_again(tmp_path: Path, db_url: str) -> None:
    script = Script(capabilities=("IMAP4rev1", "UIDPLUS"), store_answer="NO")
    with fake_imap(script) as server:
        server.add([make_mail(subject=f"Copy me once {i}") for i in range(2)])
        with intake_of(tmp_path, db_url, server) as app:
            [intake] = app.mailbox_intakes()
            reports = [intake.poll_once() for _ in range(5)]
            mailbox = status_of(app)
            seen = counts(app.store)
        assert server.count(PROCESSED) == 2  # not 2 per poll
        assert len(server.commands("COPY")) == 1
    assert [r.error for r in reports] == [None] * 5
    assert (seen["inbound"], seen["tickets"]) == (2, 2)
    assert mailbox["healthy"] is False and mailbox["unmoved"] == 2
    assert mailbox["last_success_at"] is None  # no poll succeeded in every step
    assert "not moved out of the folder" in mailbox["problem"]


def test_a_uid_not_delivered_is_asked_again_then_given_up_and_shown(
    tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="spocd.imap")
    script = Script(withhold=frozenset({1}), swap={2: 4})
    with fake_imap(script) as server:
        server.add([make_mail(subject=f"Deliver me {i}") for i in range(4)])
        with intake_of(tmp_path, db_url, server) as app:
            [intake] = app.mailbox_intakes()
            for _ in range(MAX_MISSES + 2):
                intake.poll_once()
            mailbox = status_of(app)
            seen = counts(app.store)
        asked = [uids for uids in fetched_uids(server) if uids]
        assert server.count() == 2 and server.count(PROCESSED) == 2
    assert seen["tickets"] == 2  # UIDs 3 and 4
    assert asked.count([1]) == MAX_MISSES and asked.count([2]) == MAX_MISSES
    given_up = [r for r in caplog.records if r.getMessage().endswith("given up")]
    assert sorted(r.uid for r in given_up) == [1, 2]  # type: ignore[attr-defined]
    assert mailbox["healthy"] is False and mailbox["untaken"] == 2
    assert "would not deliver" in mailbox["problem"]


def test_uidvalidity_changing_at_every_select_stores_each_message_once(
    tmp_path: Path, db_url: str
) -> None:
    script = Script(new_uidvalidity_every_select=True, move_answer="NO")
    with fake_imap(script) as server:
        server.add([make_mail(subject=f"Unmovable {i}") for i in range(2)])
        with intake_of(tmp_path, db_url, server) as app:
            [intake] = app.mailbox_intakes()
            for _ in range(6):
                intake.poll_once()
            mailbox = status_of(app)
            seen = counts(app.store)
    assert (seen["inbound"], seen["tickets"]) == (2, 2)
    assert mailbox["healthy"] is False and mailbox["unmoved"] == 2
    assert mailbox["last_success_at"] is None


# --- 20.8: a fault right after a good poll stays in its streak -----------------------------


def test_a_hang_up_right_after_every_good_poll_is_one_streak(
    tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="spocd.imap")
    with fake_imap(Script(drop_on_idle=True)) as server:
        with intake_of(tmp_path, db_url, server, idle=True, poll_seconds=30) as app:
            [intake] = app.mailbox_intakes()
            # The connection must hold 30 s to end the streak: with the cap's
            # 0.8 s, one slow poll on a loaded host (CI) counted as holding.
            intake.backoff = Backoff(initial=0.05, cap=0.8, settle=30)
            stop = threading.Event()
            thread = threading.Thread(target=intake.run, args=(stop,), daemon=True)
            thread.start()
            time.sleep(4)
            stop.set()
            thread.join(timeout=10)
        logins = len(server.commands("LOGIN"))
    errors = [r for r in caplog.records if r.getMessage() == "imap mailbox unavailable"]
    assert len(errors) == 1
    assert logins <= 10, f"{logins} reconnects in 4 s"
