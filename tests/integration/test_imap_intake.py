"""The IMAP intake in this process against a real Dovecot.

Each test takes a fresh mailbox (a new user) on a shared Dovecot, or starts
a private one when it stops the server, turns on TLS or fails logins. Runs
on SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient

from daemon.adapters.imap.connect import Connector
from daemon.adapters.imap.intake import MailboxIntake
from daemon.cli.bench.dovecot import PASSWORD, Dovecot
from daemon.core.domain import Intake
from daemon.mail.imap_plan import FAULT_FAMILIES, Backoff, source_key
from daemon.ports import QueuedRaw
from tests.integration.imap_support import FAILED, PROCESSED, counts, imap_config, make_app
from tests.support.dovecot import new_user
from tests.support.mail import make_mail
from tests.support.proc import wait_until

pytestmark = pytest.mark.dovecot


@contextmanager
def running(intake: MailboxIntake) -> Iterator[threading.Thread]:
    """The intake's `run` loop in a thread, as the daemon runs it."""
    stop = threading.Event()
    thread = threading.Thread(target=intake.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        stop.set()
        thread.join(timeout=10)
        assert not thread.is_alive(), "the intake did not stop"


def records(caplog: pytest.LogCaptureFixture, message: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith(message)]


def test_twenty_messages_some_of_them_replies_are_ticketed_and_moved(
    tmp_path: Path, db_url: str, dovecot: Dovecot, user: str
) -> None:
    requests = [
        make_mail(sender=f"user{i}@example.org", subject=f"Request number {i}") for i in range(14)
    ]
    tagged = [
        make_mail(
            sender=f"user{i}@example.org",
            subject=f"RE: [HD-{i + 1}] Request number {i}",
            body="More details.",
        )
        for i in range(3)
    ]
    dovecot.append(user, requests + tagged)
    app = make_app(imap_config(tmp_path, db_url, dovecot, user))
    try:
        [intake] = app.mailbox_intakes()
        first = intake.poll_once()
        with app.store.reading() as tx:
            acks = {
                n: next(m.message_id for m in tx.messages.of_ticket(n) if m.kind == "ack")
                for n in (4, 5, 6)
            }
        by_reference = [
            make_mail(sender=f"user{n - 1}@example.org", subject="my problem", in_reply_to=acks[n])
            for n in (4, 5, 6)
        ]
        dovecot.append(user, by_reference)
        second = intake.poll_once()
        with app.store.reading() as tx:
            replies = {
                t.number: sum(1 for m in tx.messages.of_ticket(t.number) if m.kind == "reply")
                for t in tx.tickets.listing(None)
            }
            state = tx.mailboxes.get("default", "INBOX")
        seen = counts(app.store)
    finally:
        app.close()
    assert (first.error, first.taken, first.outcomes) == (None, 17, {"created": 14, "appended": 3})
    assert (second.error, second.taken, second.outcomes) == (None, 3, {"appended": 3})
    assert seen["tickets"] == 14
    assert replies == {n: (1 if n <= 6 else 0) for n in range(1, 15)}
    assert dovecot.count(user) == 0
    assert dovecot.count(user, PROCESSED) == 20
    assert dovecot.count(user, FAILED) == 0
    assert state is not None and (state.taken, state.failed, state.last_uid) == (20, 0, 20)


def test_a_garbage_message_lands_in_the_failed_folder_and_the_next_is_taken(
    tmp_path: Path, db_url: str, dovecot: Dovecot, user: str
) -> None:
    garbage = b"this is not mail\r\njust some words from a broken scanner\r\n"
    dovecot.append(user, [garbage, make_mail(subject="Monitor flickers")])
    app = make_app(imap_config(tmp_path, db_url, dovecot, user))
    try:
        [intake] = app.mailbox_intakes()
        report = intake.poll_once()
        with app.store.reading() as tx:
            [quarantined] = tx.inbound.entries(["quarantined"], 10)
            state = tx.mailboxes.get("default", "INBOX")
            raw = tx.inbound.raw(quarantined.id)
    finally:
        app.close()
    assert report.outcomes == {"quarantined": 1, "created": 1}
    assert dovecot.messages(user, FAILED) == [garbage]
    assert dovecot.count(user, PROCESSED) == 1
    assert dovecot.count(user) == 0
    assert raw == garbage  # kept whole, with the reason
    assert quarantined.reason is not None and "not mail" in quarantined.reason
    assert state is not None and (state.taken, state.failed) == (2, 1)


def test_a_crash_between_commit_and_move_loses_nothing_and_duplicates_nothing(
    tmp_path: Path, db_url: str, dovecot: Dovecot, user: str
) -> None:
    """The test does what the intake does up to its commit, then 'crashes':
    the raw bytes are queued under the intake's source keys with the high-water
    mark moved, the first message even went through the pipeline, and all
    three are still in INBOX. A new intake must finish them, once each."""
    dovecot.append(user, [make_mail(subject=f"Crash test {i}") for i in range(3)])
    app = make_app(imap_config(tmp_path, db_url, dovecot, user))
    try:
        with dovecot.client(user) as client:
            uidvalidity = int(client.select_folder("INBOX")[b"UIDVALIDITY"])
            uids = client.search()
            fetched = client.fetch(uids, ["BODY.PEEK[]"])
        now = app.clock.now()
        with app.store.transaction() as tx:
            ids = [
                tx.inbound.add(
                    QueuedRaw(
                        raw=fetched[uid][b"BODY[]"],
                        intake=Intake.IMAP,
                        source_key=source_key(
                            "default",
                            f"{user}@127.0.0.1:{dovecot.port}",
                            "INBOX",
                            uidvalidity,
                            uid,
                        ),
                        mailbox="default",
                    ),
                    now,
                )
                for uid in uids
            ]
            tx.mailboxes.advance(
                "default", "INBOX", uidvalidity=uidvalidity, last_uid=max(uids), taken=3, now=now
            )
        assert app.inbound.process_item(ids[0]).outcome == "created"

        [intake] = app.mailbox_intakes()
        report = intake.poll_once()
        again = intake.poll_once()
        seen = counts(app.store)
    finally:
        app.close()
    assert (report.error, report.taken, report.outcomes) == (None, 0, {"created": 3})
    assert (again.taken, again.outcomes) == (0, {})
    assert seen == {"tickets": 3, "inbound": 3, "messages_in": 3, "distinct_in": 3}
    assert dovecot.count(user) == 0
    assert dovecot.count(user, PROCESSED) == 3


def test_a_uidvalidity_change_re_reads_the_folder_and_tickets_nothing_twice(
    tmp_path: Path,
    db_url: str,
    dovecot: Dovecot,
    user: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="spocd.imap")
    raws = [make_mail(subject=f"Shared folder {i}") for i in range(3)]
    dovecot.append(user, raws, folder="helpdesk")
    app = make_app(imap_config(tmp_path, db_url, dovecot, user, folder="helpdesk"))
    try:
        [intake] = app.mailbox_intakes()
        first = intake.poll_once()
        with app.store.reading() as tx:
            before = tx.mailboxes.get("default", "helpdesk")
        with dovecot.client(user) as client:  # an admin recreates the folder
            client.delete_folder("helpdesk")
            client.create_folder("helpdesk")
        # UID 1 is now a message never seen; the old ones follow as 2..4.
        dovecot.append(user, [make_mail(subject="A new one"), *raws], folder="helpdesk")
        second = intake.poll_once()
        with app.store.reading() as tx:
            after = tx.mailboxes.get("default", "helpdesk")
        seen = counts(app.store)
    finally:
        app.close()
    assert before is not None and after is not None
    assert after.uidvalidity != before.uidvalidity
    assert first.outcomes == {"created": 3}
    # The three known by Message-ID are not stored again: their items' outcome.
    assert second.outcomes == {"created": 4}
    assert (seen["tickets"], seen["inbound"]) == (4, 4)
    assert dovecot.count(user, "helpdesk") == 0
    assert dovecot.count(user, PROCESSED) == 7
    assert records(caplog, "imap UIDVALIDITY changed")


class WithoutMove(IMAPClient):  # type: ignore[misc]
    """A real connection that does not see the server's MOVE capability."""

    def capabilities(self) -> tuple[bytes, ...]:
        return tuple(c for c in super().capabilities() if c != b"MOVE")


def test_without_move_it_copies_flags_and_expunges_exactly_its_own_uids(
    tmp_path: Path, db_url: str, dovecot: Dovecot, user: str
) -> None:
    dovecot.append(user, [make_mail(subject=f"No MOVE here {i}") for i in range(3)])
    with dovecot.client(user) as client:  # someone else deleted this one; not ours to expunge
        client.append("INBOX", make_mail(subject="deleted by a person"), flags=[rb"\Deleted"])
    app = make_app(imap_config(tmp_path, db_url, dovecot, user))
    try:
        [default] = app.mailbox_intakes()
        intake = MailboxIntake(
            default.mailbox,
            app.store,
            app.clock.now,
            app.process_outcome,
            connector=Connector(default.mailbox, client_factory=WithoutMove),
        )
        report = intake.poll_once()
    finally:
        app.close()
    assert (report.error, report.taken, report.processed) == (None, 3, 3)
    assert dovecot.count(user, PROCESSED) == 3
    with dovecot.client(user) as client:
        client.select_folder("INBOX", readonly=True)
        left = client.search("ALL")
        flags = client.get_flags(left)
    assert len(left) == 1 and rb"\Deleted" in flags[left[0]]


@pytest.mark.slow
def test_stopping_and_restarting_dovecot_mid_session_is_survived(
    tmp_path: Path,
    db_url: str,
    own_dovecot: Callable[..., Dovecot],
    user: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="spocd.imap")
    server = own_dovecot()
    app = make_app(imap_config(tmp_path, db_url, server, user, idle=True, poll_seconds=30))
    try:
        [intake] = app.mailbox_intakes()
        intake.backoff = Backoff(initial=0.2, cap=1.0)
        with running(intake):
            server.append(user, [make_mail(subject="Before the restart")])
            wait_until(lambda: counts(app.store)["tickets"] == 1, timeout=15)
            server.stop()
            wait_until(lambda: _last_error(app) is not None, timeout=15)
            server.start()
            server.append(user, [make_mail(subject="After the restart")])
            wait_until(lambda: counts(app.store)["tickets"] == 2, timeout=30)
            # The streak ends once the new connection has held (the backoff's cap).
            wait_until(lambda: bool(records(caplog, "imap recovered")), timeout=15)
    finally:
        app.close()
    assert server.count(user) == 0
    assert_one_line_per_streak(caplog)
    [recovered] = records(caplog, "imap recovered")
    assert recovered.failures >= 1  # type: ignore[attr-defined]


def assert_one_line_per_streak(caplog: pytest.LogCaptureFixture) -> None:
    """What the log promises: the first fault of an outage is logged; another
    line before "imap recovered" only for a fault of another family (a
    server that is back but refuses the login, say), never the same again."""
    lines = [
        r
        for r in caplog.records
        if r.getMessage() in ("imap mailbox unavailable", "imap login refused", "imap recovered")
    ]
    assert lines and lines[0].getMessage() != "imap recovered"
    assert lines[-1].getMessage() == "imap recovered"
    family = None
    for line in lines:
        if line.getMessage() == "imap recovered":
            family = None
            continue
        now = FAULT_FAMILIES.get(line.fault, line.fault)  # type: ignore[attr-defined]
        assert now != family, [(r.getMessage(), getattr(r, "fault", "")) for r in lines]
        family = now


def _last_error(app: Any, mailbox: str = "default") -> str | None:
    with app.store.reading() as tx:
        state = tx.mailboxes.get(mailbox, "INBOX")
    return state.last_error if state else None


def test_a_refused_login_is_logged_once_per_streak_and_a_new_token_is_read(
    tmp_path: Path,
    db_url: str,
    own_dovecot: Callable[..., Dovecot],
    user: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="spocd.imap")
    server = own_dovecot()
    token = tmp_path / "token"
    token.write_text("an-expired-token\n")
    config = imap_config(
        tmp_path,
        db_url,
        server,
        user,
        auth="oauth2",
        oauth2_token_file=str(token),
        idle=True,
        timeout_seconds=60,
    )
    app = make_app(config)
    try:
        [intake] = app.mailbox_intakes()
        intake.backoff = Backoff(initial=0.05, cap=0.2)
        with running(intake):
            wait_until(lambda: server.log().count("auth failed") >= 3, timeout=90)
            assert len(records(caplog, "imap login refused")) == 1
            assert _last_error(app) is not None and _last_error(app).startswith("login:")  # type: ignore[union-attr]
            token.write_text(PASSWORD + "\n")  # the refresher wrote a valid token
            server.append(user, [make_mail(subject="After the new token")])
            wait_until(lambda: counts(app.store)["tickets"] == 1, timeout=60)
            wait_until(lambda: bool(records(caplog, "imap recovered")), timeout=15)
    finally:
        app.close()
    assert len(records(caplog, "imap login refused")) == 1
    [recovered] = records(caplog, "imap recovered")
    assert recovered.failures >= 3  # type: ignore[attr-defined]


TOKEN_COMMAND = """\
import pathlib, sys
calls = pathlib.Path(sys.argv[1])
calls.write_text(calls.read_text() + "x" if calls.exists() else "x")
print("a-stale-token" if len(calls.read_text()) == 1 else sys.argv[2])
"""


def test_a_refused_token_from_the_command_is_fetched_again_at_once(
    tmp_path: Path,
    db_url: str,
    own_dovecot: Callable[..., Dovecot],
    user: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="spocd.imap")
    server = own_dovecot()
    script = tmp_path / "token.py"
    script.write_text(TOKEN_COMMAND)
    calls = tmp_path / "calls"
    command = f"{sys.executable} {script} {calls} {PASSWORD}"
    server.append(user, [make_mail(subject="XOAUTH2 mailbox")])
    app = make_app(
        imap_config(tmp_path, db_url, server, user, auth="oauth2", oauth2_token_command=command)
    )
    try:
        [intake] = app.mailbox_intakes()
        report = intake.poll_once()
    finally:
        app.close()
    assert (report.error, report.outcomes) == (None, {"created": 1})
    assert calls.read_text() == "xx"  # the stale token, then a fresh one
    assert records(caplog, "imap token refused; trying a fresh one")
    assert not records(caplog, "imap login refused")
    assert "method=XOAUTH2" in server.log()


def test_starttls_and_implicit_tls_with_a_self_signed_certificate(
    tmp_path: Path, db_url: str, own_dovecot: Callable[..., Dovecot]
) -> None:
    server = own_dovecot(tls=True)
    cases: list[tuple[str, dict[str, Any], str | None]] = [
        ("trusted by ca_file", {"tls": "starttls", "ca_file": str(server.cert_file)}, None),
        ("not trusted", {"tls": "starttls"}, "CERTIFICATE_VERIFY_FAILED"),
        (
            "implicit TLS",
            {"tls": "implicit", "port": server.tls_port, "ca_file": str(server.cert_file)},
            None,
        ),
        ("checking off", {"tls": "starttls", "verify_certificate": False}, None),
    ]
    for number, (name, overrides, error) in enumerate(cases):
        user = new_user()
        server.append(user, [make_mail(subject=f"TLS case {name}")])
        directory = tmp_path / user
        directory.mkdir()
        mailbox = f"tls{number}"
        app = make_app(imap_config(directory, db_url, server, user, name=mailbox, **overrides))
        try:
            [intake] = app.mailbox_intakes()
            report = intake.poll_once()
            state_error = _last_error(app, mailbox)
        finally:
            app.close()
        if error is None:
            assert (report.error, report.taken) == (None, 1), name
            assert server.count(user) == 0, name
        else:
            assert report.error is not None and error in report.error, name
            assert state_error is not None and state_error.startswith("tls:"), name
            assert server.count(user) == 1, name  # nothing taken, nothing moved
            assert_only_the_tests_own_logins(server, user)


def test_starttls_not_offered_is_an_error_never_a_plain_text_login(
    tmp_path: Path, db_url: str, dovecot: Dovecot, user: str
) -> None:
    dovecot.append(user, [make_mail(subject="Plain server")])
    app = make_app(imap_config(tmp_path, db_url, dovecot, user, tls="starttls"))
    try:
        [intake] = app.mailbox_intakes()
        report = intake.poll_once()
    finally:
        app.close()
    assert report.error is not None and "does not offer STARTTLS" in report.error
    assert dovecot.count(user) == 1
    assert_only_the_tests_own_logins(dovecot, user)


def assert_only_the_tests_own_logins(server: Dovecot, user: str) -> None:
    """Two logins as `user` in the server's log: the test's APPEND and its
    count afterwards; the intake never logged in."""
    logins = f"Login: user=<{user}>"
    wait_until(lambda: server.log().count(logins) >= 2, timeout=5)
    assert server.log().count(logins) == 2


def test_a_dropped_connection_without_a_goodbye_is_noticed_and_survived(
    tmp_path: Path,
    db_url: str,
    dovecot: Dovecot,
    user: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The imap process behind the intake's IDLE is killed: no BYE, just EOF."""
    caplog.set_level(logging.INFO, logger="spocd.imap")
    app = make_app(imap_config(tmp_path, db_url, dovecot, user, idle=True, poll_seconds=30))
    try:
        [intake] = app.mailbox_intakes()
        intake.backoff = Backoff(initial=0.1, cap=0.5)
        with running(intake):
            wait_until(lambda: len(dovecot.sessions(user, "IDLE")) == 1, timeout=10)
            [session] = dovecot.sessions(user, "IDLE")
            os.kill(session, signal.SIGKILL)
            wait_until(lambda: bool(records(caplog, "imap recovered")), timeout=15)
            dovecot.append(user, [make_mail(subject="After the drop")])
            wait_until(lambda: counts(app.store)["tickets"] == 1, timeout=15)
    finally:
        app.close()
    [fault] = records(caplog, "imap mailbox unavailable")
    assert "ConnectionLost" in fault.error  # type: ignore[attr-defined]


def test_a_hung_server_times_out_and_the_intake_reconnects(
    tmp_path: Path,
    db_url: str,
    dovecot: Dovecot,
    user: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The imap process stops answering (SIGSTOP): the read times out."""
    caplog.set_level(logging.INFO, logger="spocd.imap")
    app = make_app(
        imap_config(tmp_path, db_url, dovecot, user, idle=True, poll_seconds=1, timeout_seconds=2)
    )
    stopped: list[int] = []
    try:
        [intake] = app.mailbox_intakes()
        intake.backoff = Backoff(initial=0.1, cap=0.5)
        with running(intake):
            wait_until(lambda: len(dovecot.sessions(user, "IDLE")) == 1, timeout=10)
            stopped = dovecot.sessions(user, "IDLE")
            os.kill(stopped[0], signal.SIGSTOP)
            dovecot.append(user, [make_mail(subject="While the old session hangs")])
            wait_until(lambda: counts(app.store)["tickets"] == 1, timeout=20)
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGKILL)
        app.close()
    [fault] = records(caplog, "imap mailbox unavailable")
    assert fault.fault == "timeout"  # type: ignore[attr-defined]


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "implicit-tls"])
def test_mail_that_arrives_as_idle_begins_is_taken_at_once(
    tmp_path: Path,
    db_url: str,
    dovecot: Dovecot,
    own_dovecot: Callable[..., Dovecot],
    user: str,
    monkeypatch: pytest.MonkeyPatch,
    tls: bool,
) -> None:
    """Dovecot answers IDLE with "+ idling" and, in the same packet, the
    EXISTS of mail that came in since the last search. The intake must see
    it then, not at the end of the IDLE cycle (poll_seconds, 30 s here); over
    TLS the packet is decrypted into the same buffer."""
    server = own_dovecot(tls=True) if tls else dovecot
    encrypted: dict[str, Any] = (
        {"tls": "implicit", "port": server.tls_port, "ca_file": str(server.cert_file)}
        if tls
        else {}
    )
    idle = IMAPClient.idle
    arrived: list[bool] = []

    def idle_as_mail_arrives(client: IMAPClient) -> None:
        if not arrived:
            server.append(user, [make_mail(subject="Sent as the intake went idle")])
            arrived.append(True)
        idle(client)

    monkeypatch.setattr(IMAPClient, "idle", idle_as_mail_arrives)
    config = imap_config(tmp_path, db_url, server, user, idle=True, poll_seconds=30, **encrypted)
    app = make_app(config)
    try:
        [intake] = app.mailbox_intakes()
        with running(intake):
            wait_until(lambda: counts(app.store)["tickets"] == 1, timeout=10)
    finally:
        app.close()
    assert arrived
