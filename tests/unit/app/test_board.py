"""The SLA board's pure parts: business time over many tickets, the login
throttle, and the [http] keys that keep the board from being open to all."""

from __future__ import annotations

import logging
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from daemon.adapters.board_http import LOCKOUT_SECONDS, MAX_FAILURES, LoginThrottle
from daemon.config import parse_settings
from daemon.core import businesstime
from daemon.core.errors import ConfigError
from daemon.rules.ruleset import load_rules
from tests.conftest import ROOT


def test_timeline_agrees_with_business_seconds() -> None:
    """Across weekends, holidays (24-26 December) and both DST changes."""
    rules = load_rules((ROOT / "rules.yaml").read_text(encoding="utf-8"))
    office = rules.calendars["office"]
    line = businesstime.Timeline(date(2026, 3, 1), date(2026, 12, 31))
    rng = random.Random(17)
    base = datetime(2026, 3, 2, tzinfo=UTC)
    for _ in range(2000):
        a = base + timedelta(minutes=rng.randrange(0, 300 * 24 * 60))
        b = a + timedelta(minutes=rng.randrange(0, 40 * 24 * 60))
        assert line(office, a, b) == pytest.approx(
            businesstime.business_seconds(office, a, b), abs=1e-3
        )
    # Outside the span it falls back to the walk, with the same answer.
    early, late = datetime(2025, 12, 1, tzinfo=UTC), datetime(2026, 3, 10, tzinfo=UTC)
    assert line(office, early, late) == businesstime.business_seconds(office, early, late)
    assert line(office, late, early) == 0.0


def test_login_throttle_counts_a_streak_and_logs_it_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    throttle = LoginThrottle(lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="spocd.http"):
        for _ in range(MAX_FAILURES):
            assert not throttle.blocked("192.0.2.1")
            throttle.failed("192.0.2.1", "lead")
        assert throttle.blocked("192.0.2.1") and not throttle.blocked("192.0.2.2")
        now[0] += LOCKOUT_SECONDS  # a quiet spell ends the streak
        assert not throttle.blocked("192.0.2.1")
        throttle.failed("192.0.2.1", "lead")
        throttle.succeeded("192.0.2.1")
        assert not throttle.blocked("192.0.2.1")
    logged = [r for r in caplog.records if r.getMessage() == "board login failed"]
    assert len(logged) == 2  # one per streak, not one per try


def _problems(text: str, tmp_path: Path) -> list[str]:
    path = tmp_path / "spocd.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        parse_settings(text, path, {})
    return caught.value.problems


@pytest.mark.parametrize(
    ("http", "expected"),
    [
        (
            'enabled = true\nhost = "0.0.0.0"',
            ":3: http.host: '0.0.0.0' is not a loopback address",
        ),
        (
            'enabled = true\nhost = "::"\ntrusted_proxy_header = "X-User"',
            ":4: http.trusted_proxy_header: needs http.trusted_proxies",
        ),
        ('trusted_proxies = ["proxy.example"]', ":2: http.trusted_proxies: 'proxy.example'"),
        ('tls_cert_file = "cert.pem"', ":2: http.tls_cert_file: needs http.tls_key_file"),
        ('users_file = "missing"', ":2: http.users_file: cannot read"),
    ],
)
def test_http_keys_are_checked(http: str, expected: str, tmp_path: Path) -> None:
    found = _problems(f"[http]\n{http}\n", tmp_path)
    assert any(expected in p for p in found), found


def test_off_loopback_the_board_needs_a_login(tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.write_text("lead:" + "pbkdf2_sha256$600000$abcdefghijkl$" + "A" * 43 + "=\n")
    path = tmp_path / "spocd.toml"
    text = f'[http]\nenabled = true\nhost = "0.0.0.0"\nusers_file = "{users}"\n'
    settings = parse_settings(text, path, {})
    assert dict(settings.http.users).keys() == {"lead"}
    assert "pbkdf2" not in repr(settings.http)
    proxied = '[http]\nenabled = true\nhost = "0.0.0.0"\ntrusted_proxy_header = "X-User"\n'
    proxied += 'trusted_proxies = ["10.0.0.5"]\n'
    assert parse_settings(proxied, path, {}).http.trusted_proxies == ("10.0.0.5",)
    loopback = parse_settings('[http]\nenabled = true\nhost = "::1"\n', path, {})
    assert loopback.http.users == ()


def test_page_language_and_time_left_words() -> None:
    from daemon.adapters.board_page import duration, language

    assert language(None, "pl") == "pl" and language("en", "pl") == "en"
    assert language("de", "pl") == "pl" and language("xx", "xx") == "en"
    assert duration(3 * 3600 + 5 * 60 + 59, "en") == "3 h 05 min"
    assert duration(-(45 * 60), "pl") == "−45 min"
    assert duration(-(26 * 3600), "pl") == "−26 godz. 00 min"  # business hours, not days
    assert duration(None, "pl") == "bez terminu"
