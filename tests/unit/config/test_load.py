"""spocd.toml: found as SPEC §2 says, every error named with key and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.config import find_config, load_settings, parse_settings
from daemon.core.errors import ConfigError


def settings_from(text: str, tmp_path: Path, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    path = tmp_path / "spocd.toml"
    path.write_text(text)
    return parse_settings(text, path, env or {})


def problems(text: str, tmp_path: Path, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as refused:
        settings_from(text, tmp_path, env)
    return refused.value.problems


def test_no_config_gives_the_embedded_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert find_config(None, {}) is None
    settings = load_settings(None)
    assert settings.database.url == f"sqlite:///{tmp_path}/var/spocd.db"
    assert (settings.smtp.host, settings.smtp.port) == ("127.0.0.1", 2525)
    assert settings.imap == ()
    assert settings.outgoing.transport == "maildir"
    assert settings.outgoing.maildir == tmp_path / "var" / "sent"


def test_config_is_found_by_option_then_environment_then_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spocd.toml").write_text("")
    assert find_config("/etc/x.toml", {"SPOCD_CONFIG": "/y.toml"}) == Path("/etc/x.toml")
    assert find_config(None, {"SPOCD_CONFIG": "/y.toml"}) == Path("/y.toml")
    assert find_config(None, {}) == Path("spocd.toml")


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    s = settings_from(
        '[database]\nurl = "sqlite:///data/d.db"\n[paths]\nrules = "r.yaml"\n', tmp_path
    )
    assert s.database.url == f"sqlite:///{tmp_path}/data/d.db"
    assert s.paths.rules == tmp_path / "r.yaml"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[helpdesk]\nadress = "x@y.pl"\n', ":2: helpdesk.adress: unknown key"),
        ('[smtp]\nport = "2525"\n', ":2: smtp.port: must be a port number"),
        ('[smtp]\n\naccept_from_networks = ["10.0.0.300/8"]\n', ":3: smtp.accept_from_networks"),
        ('[outgoing]\ntransport = "pigeon"\n', ':2: outgoing.transport: must be one of "smtp"'),
        (
            '[helpdesk]\naddress = "pomoc@żółw.pl"\n',
            ":2: helpdesk.address: must be written in ASCII (spocd sends 7-bit mail)",
        ),
        ('[helpdesk]\ntag_prefix = "H D"\n', ":2: helpdesk.tag_prefix"),
        ('[helpdesk]\ntimezone = "Mars/Olympus"\n', ":2: helpdesk.timezone: 'Mars/Olympus' is not"),
        ('[database]\nurl = "mysql://x"\n', ":2: database.url"),
        ("[nonsense]\nx = 1\n", ":1: nonsense: unknown section"),
        ("[smtp\n", "spocd.toml: "),
    ],
)
def test_each_error_names_the_key_and_the_line(text: str, expected: str, tmp_path: Path) -> None:
    [problem] = problems(text, tmp_path)
    assert expected in problem


def test_all_errors_are_reported_at_once(tmp_path: Path) -> None:
    found = problems('[smtp]\nport = -1\nfoo = 2\n[agents]\ntrust = "maybe"\n', tmp_path)
    assert len(found) == 3


def test_secrets_come_from_the_environment_or_a_file(tmp_path: Path) -> None:
    (tmp_path / "relay.pw").write_text("s3cret\n")
    s = settings_from(
        '[outgoing]\ntransport = "smtp"\nusername = "u"\npassword_file = "relay.pw"\n'
        '[imap]\nenabled = true\npassword_env = "IMAP_PW"\n',
        tmp_path,
        {"IMAP_PW": "pw2"},
    )
    assert s.outgoing.password == "s3cret"
    assert s.imap[0].password == "pw2"


def test_a_missing_secret_is_an_error_only_where_it_is_used(tmp_path: Path) -> None:
    text = '[imap]\nenabled = {}\npassword_env = "NOT_SET"\n'
    assert settings_from(text.format("false"), tmp_path).imap[0].password is None
    [problem] = problems(text.format("true"), tmp_path)
    assert ":3: imap.password_env: environment variable NOT_SET is not set" in problem


def test_several_mailboxes_need_distinct_names(tmp_path: Path) -> None:
    s = settings_from('[[imap]]\nname = "a"\n[[imap]]\nname = "b"\nescalation = true\n', tmp_path)
    assert [m.name for m in s.imap] == ["a", "b"]
    assert s.imap[1].escalation
    [problem] = problems('[[imap]]\nname = "a"\n[[imap]]\nname = "a"\n', tmp_path)
    assert "unique" in problem


def test_peers_are_checked_against_the_accepted_networks(tmp_path: Path) -> None:
    s = settings_from('[smtp]\naccept_from_networks = ["10.0.0.0/8", "::1/128"]\n', tmp_path)
    assert s.smtp.accepts_peer("10.1.2.3")
    assert s.smtp.accepts_peer("::1")
    assert not s.smtp.accepts_peer("192.168.0.1")
    assert not s.smtp.accepts_peer("not-an-ip")


def test_intake_limits_and_busy_timeout_have_safe_defaults(tmp_path: Path) -> None:
    s = settings_from("", tmp_path)
    assert s.database.busy_timeout_ms == 30_000
    smtp = s.smtp
    assert (smtp.max_line_length, smtp.max_connections_per_client) == (1000, 20)
    assert smtp.command_timeout_seconds == 300
    assert not (smtp.tls or smtp.require_starttls or smtp.auth_required or smtp.auth_users)


def test_the_parse_budget_is_a_limit_with_a_default(tmp_path: Path) -> None:
    assert settings_from("", tmp_path).limits.max_parse_seconds == 10
    assert (
        settings_from("[limits]\nmax_parse_seconds = 3\n", tmp_path).limits.max_parse_seconds == 3
    )
    [problem] = problems("[limits]\nmax_parse_seconds = 0\n", tmp_path)
    assert ":2: limits.max_parse_seconds: must be a positive" in problem


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[database]\nbusy_timeout_ms = 0\n", ":2: database.busy_timeout_ms: must be a positive"),
        (
            "[smtp]\nmax_line_length = 998\n",
            ":2: smtp.max_line_length: must be a whole number 1000",
        ),
        ("[smtp]\nmax_connections_per_client = -1\n", ":2: smtp.max_connections_per_client"),
        ('[smtp]\ncommand_timeout_seconds = "5m"\n', ":2: smtp.command_timeout_seconds"),
        ('[smtp]\nrequire_starttls = "yes"\n', ":2: smtp.require_starttls: must be true or false"),
        (
            '[smtp]\n\ntls_cert_file = "cert.pem"\n',
            ":3: smtp.tls_cert_file: needs smtp.tls_key_file",
        ),
        (
            "[smtp]\nrequire_starttls = true\n",
            ":2: smtp.require_starttls: needs smtp.tls_cert_file",
        ),
        ("[smtp]\nauth_required = true\n", ":2: smtp.auth_required: needs smtp.auth_users_file"),
        (
            '[smtp]\nauth_users_file = "nope"\nauth_allow_plaintext = true\n',
            ":2: smtp.auth_users_file: cannot read",
        ),
    ],
)
def test_smtp_and_database_keys_are_validated(text: str, expected: str, tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("")
    [problem] = problems(text, tmp_path)
    assert expected in problem


def test_tls_files_must_exist_and_are_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "c.pem").write_text("")
    (tmp_path / "k.pem").write_text("")
    s = settings_from('[smtp]\ntls_cert_file = "c.pem"\ntls_key_file = "k.pem"\n', tmp_path)
    assert (s.smtp.tls_cert_file, s.smtp.tls_key_file) == (tmp_path / "c.pem", tmp_path / "k.pem")
    assert s.smtp.tls
    [problem] = problems('[smtp]\ntls_cert_file = "c.pem"\ntls_key_file = "gone.pem"\n', tmp_path)
    assert ":3: smtp.tls_key_file: " in problem and "no such file" in problem


def test_auth_users_are_read_checked_and_never_in_clear_text(tmp_path: Path) -> None:
    from daemon.core.passwords import hash_password

    hashed = hash_password("pw", scheme="pbkdf2_sha256")
    (tmp_path / "users").write_text(f"# tools\nsd-tool:{hashed}\n")
    text = '[smtp]\nauth_users_file = "users"\nauth_required = true\n'
    # AUTH without TLS would carry passwords in clear text: refused ...
    [problem] = problems(text, tmp_path)
    assert ":2: smtp.auth_users_file: AUTH would carry passwords in clear text" in problem
    # ... unless allowed explicitly (a loopback-only listener).
    s = settings_from(text + "auth_allow_plaintext = true\n", tmp_path)
    assert s.smtp.auth_users == (("sd-tool", hashed),)
    assert hashed not in repr(s)
    # A line that is not user:hash names the users file and its line.
    (tmp_path / "users").write_text(f"sd-tool:{hashed}\nother:plaintext-password\n")
    [problem] = problems(text + "auth_allow_plaintext = true\n", tmp_path)
    assert f"{tmp_path / 'users'}:2: user 'other': not a known hash" in problem


def test_a_relay_login_in_clear_text_is_refused_off_loopback(tmp_path: Path) -> None:
    relay = '[outgoing]\ntransport = "smtp"\nusername = "desk"\npassword = "s3cret"\n'
    [problem] = problems(relay + 'host = "smtp.example.com"\n', tmp_path)
    assert "outgoing.username" in problem and "clear text" in problem
    assert "allow_plaintext_auth" in problem
    for host in ("127.0.0.1", "localhost", "::1"):  # on this machine: allowed, with a warning
        assert settings_from(relay + f'host = "{host}"\n', tmp_path).outgoing.plaintext_login
    allowed = relay + 'host = "smtp.example.com"\nallow_plaintext_auth = true\n'
    assert settings_from(allowed, tmp_path).outgoing.plaintext_login
    encrypted = relay + 'host = "smtp.example.com"\ntls = "starttls"\n'
    assert not settings_from(encrypted, tmp_path).outgoing.plaintext_login
    maildir = '[outgoing]\ntransport = "maildir"\nusername = "desk"\nhost = "smtp.example.com"\n'
    assert not settings_from(maildir, tmp_path).outgoing.plaintext_login
