"""The pure decisions of the IMAP intake, table by table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from daemon.mail.imap_plan import (
    Backoff,
    FaultLog,
    Token,
    destination,
    healthy,
    idle_cycle,
    message_identity,
    parse_token,
    partition,
    server_folder,
    source_key,
)

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def test_the_source_key_names_mailbox_account_folder_uidvalidity_and_uid() -> None:
    key = source_key("desk", "hd@imap.example.com:993", "INBOX", 17, 42)
    assert key == "imap:desk:hd@imap.example.com:993:INBOX:17:42"
    assert source_key("desk", "hd@imap.example.com:993", "INBOX", 18, 42) != key
    assert source_key("desk", "hd@other.example.com:993", "INBOX", 17, 42) != key


def test_a_long_source_key_fits_its_column_and_stays_distinct() -> None:
    long = source_key("desk", "hd@example.com:993", "x" * 500, 1, 2)
    other = source_key("desk", "hd@example.com:993", "x" * 499 + "y", 1, 2)
    assert len(long) <= 400 and long.endswith(":1:2")
    assert long != other


@pytest.mark.parametrize(
    ("outcome", "folder"),
    [
        ("created", "processed"),
        ("appended", "processed"),
        ("duplicate", "processed"),
        ("ignored", "processed"),
        ("bounce", "processed"),
        ("quarantined", "failed"),
        ("failed", "failed"),
    ],
)
def test_where_a_message_goes_after_the_pipeline(outcome: str, folder: str) -> None:
    assert destination(outcome) == folder


@pytest.mark.parametrize(
    ("name", "delimiter", "prefix", "expected"),
    [
        ("spocd/processed", "/", "", "spocd/processed"),
        ("spocd/processed", ".", "", "spocd.processed"),
        ("spocd/processed", None, "", "spocd/processed"),
        ("/spocd//failed/", ".", "", "spocd.failed"),
        ("spocd/processed", ".", "INBOX.", "INBOX.spocd.processed"),
        ("INBOX", ".", "INBOX.", "INBOX"),
        ("inbox", ".", "INBOX.", "inbox"),
        ("INBOX/helpdesk", ".", "INBOX.", "INBOX.helpdesk"),
    ],
)
def test_configured_folder_names_in_the_servers_spelling(
    name: str, delimiter: str | None, prefix: str, expected: str
) -> None:
    assert server_folder(name, delimiter, prefix) == expected


@pytest.mark.parametrize(
    ("uids", "last_uid", "left", "new"),
    [
        ([], 0, [], []),
        ([1, 2, 3], 0, [], [1, 2, 3]),
        ([3, 1, 2], 2, [1, 2], [3]),
        ([5, 5, 7], 9, [5, 7], []),
    ],
)
def test_partition_by_the_high_water_mark(
    uids: list[int], last_uid: int, left: list[int], new: list[int]
) -> None:
    assert partition(uids, last_uid) == (left, new)


def test_backoff_doubles_up_to_its_cap_and_resets() -> None:
    backoff = Backoff(initial=1, cap=60)
    assert [backoff.next_delay() for _ in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    backoff.reset()
    assert backoff.next_delay() == 1


def test_a_streak_of_one_fault_is_logged_once_and_another_family_starts_another() -> None:
    faults = FaultLog()
    assert [faults.failed("login") for _ in range(4)] == [True, False, False, False]
    assert faults.failed("network") is True
    assert faults.failed("network") is False
    assert faults.recovered() == 6
    assert faults.recovered() == 0
    assert faults.failed("network") is True


def test_a_server_restart_is_one_streak_of_transport_faults() -> None:
    faults = FaultLog()
    logged = [faults.failed(k) for k in ("connection", "network", "network", "timeout")]
    assert logged == [True, False, False, False]
    assert faults.failed("login") is True


@pytest.mark.parametrize(
    ("text", "token"),
    [
        ("abc.def\n", Token("abc.def")),
        ("  tok\nsecond line\n", Token("tok")),
        ('{"access_token": "t1"}', Token("t1")),
        ('{"access_token": "t2", "expires_in": 3600}', Token("t2", NOW + timedelta(hours=1))),
        (
            '{"access_token": "t3", "expires_at": 1795640400}',
            Token("t3", datetime.fromtimestamp(1795640400, UTC)),
        ),
        (
            '{"access_token": "t4", "expires_at": "2026-11-25T10:00:00Z"}',
            Token("t4", datetime(2026, 11, 25, 10, 0, tzinfo=UTC)),
        ),
    ],
)
def test_tokens_from_a_file_or_command(text: str, token: Token) -> None:
    assert parse_token(text, NOW) == token


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "no token"),
        ("{not json", "does not parse"),
        ('{"token": "x"}', 'no "access_token"'),
        ('{"access_token": "x", "expires_at": "soon"}', "not a moment"),
    ],
)
def test_unusable_token_text_says_why(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_token(text, NOW)


def test_a_token_near_expiry_is_not_fresh() -> None:
    assert Token("t").fresh_at(NOW)
    assert Token("t", NOW + timedelta(minutes=10)).fresh_at(NOW)
    assert not Token("t", NOW + timedelta(minutes=4)).fresh_at(NOW)


@pytest.mark.parametrize(
    ("age", "poll", "ok"),
    [(None, 30, False), (0, 30, True), (90, 30, True), (91, 30, False), (1000, 600, True)],
)
def test_healthy_means_a_success_within_three_poll_intervals(
    age: int | None, poll: int, ok: bool
) -> None:
    last = None if age is None else NOW - timedelta(seconds=age)
    assert healthy(last, poll, NOW) is ok


def test_idle_is_renewed_every_poll_interval_and_before_29_minutes() -> None:
    assert idle_cycle(30) == 30
    assert idle_cycle(3600) == 28 * 60


def test_a_message_is_named_by_account_folder_and_message_id_whatever_its_uid() -> None:
    mail = b"Subject: x\r\nMessage-ID: <a@b>\r\n\r\nbody\r\nMessage-ID: <not@header>\r\n"
    again = b"Message-ID:  <a@b> \nSubject: resent\n\nother body\n"
    name = message_identity("desk@imap:993", "INBOX", mail)
    assert message_identity("desk@imap:993", "INBOX", again) == name
    assert message_identity("desk@imap:993", "Other", mail) != name
    assert message_identity("else@imap:993", "INBOX", mail) != name
    assert message_identity("desk@imap:993", "INBOX", mail.replace(b"<a@b>", b"<c@d>")) != name
    assert len(name) <= 100  # the identities column


def test_without_a_message_id_the_bytes_name_the_message() -> None:
    one, other = b"Subject: x\r\n\r\none\r\n", b"Subject: x\r\n\r\ntwo\r\n"
    assert message_identity("a", "INBOX", one) == message_identity("a", "INBOX", one)
    assert message_identity("a", "INBOX", one) != message_identity("a", "INBOX", other)


def test_a_connection_settles_after_the_backoff_cap_unless_told() -> None:
    assert Backoff(initial=1, cap=60).settle_seconds == 60
    assert Backoff(initial=1, cap=60, settle=5).settle_seconds == 5
