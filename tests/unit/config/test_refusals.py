"""Values the schema refuses at load that used to pass and fail later, deep
inside a command (a traceback, a header injection, a mail retried for ever)."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.config import Settings, listener_problems, load_settings, parse_settings, spool_only
from daemon.config.schema import SCHEMA, SECRET
from daemon.core.errors import ConfigError


def problems(text: str, tmp_path: Path) -> list[str]:
    path = tmp_path / "spocd.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as refused:
        parse_settings(text, path, {})
    return refused.value.problems


def accepted(text: str, tmp_path: Path) -> Settings:
    path = tmp_path / "spocd.toml"
    path.write_text(text)
    return parse_settings(text, path, {})


def _numeric_keys() -> list[tuple[str, str]]:
    """Every key whose check takes a whole number (1 passes it)."""
    return [
        (section, key)
        for section, keys in SCHEMA.items()
        for key, check in keys.items()
        if check is not SECRET and check(1) is None
    ]


@pytest.mark.parametrize(("section", "key"), _numeric_keys())
def test_every_numeric_key_has_an_upper_bound_it_names(section: str, key: str) -> None:
    problem = SCHEMA[section][key](2**63 - 1)
    assert problem is not None, f"{section}.{key} takes 2**63-1"
    assert "up to" in problem or ".." in problem


def test_the_bounds_keep_every_default(tmp_path: Path) -> None:
    defaults = Settings()
    for section, key in _numeric_keys():
        value = getattr(getattr(defaults, section), key, None) if section != "imap" else None
        if isinstance(value, int):
            assert SCHEMA[section][key](value) is None, f"{section}.{key} = {value}"


def test_a_toml_value_nested_too_deeply_is_refused_not_a_recursion_error(tmp_path: Path) -> None:
    text = "x = " + "[" * 5000 + "]" * 5000 + "\n"
    assert problems(text, tmp_path) == [
        f"{tmp_path / 'spocd.toml'}: a value is nested too deeply to read"
    ]
    # The MTA pipe hands it to the full loader, which refuses it (78, never exit 1).
    assert spool_only.spool_settings(str(tmp_path / "spocd.toml"), {}) is None


def test_the_pipe_takes_no_larger_message_limit_than_the_full_loader(tmp_path: Path) -> None:
    config = tmp_path / "spocd.toml"
    config.write_text(f"[smtp]\nmax_message_size = {spool_only.MAX_BYTES + 1}\n")
    assert spool_only.spool_settings(str(config), {}) is None
    with pytest.raises(ConfigError):
        load_settings(config)


@pytest.mark.parametrize("zone", ["Europe", "a" * 300, "Europe/" + "b" * 300])
def test_a_zone_that_is_a_folder_or_too_long_is_not_a_zone(zone: str, tmp_path: Path) -> None:
    [problem] = problems(f'[helpdesk]\ntimezone = "{zone}"\n', tmp_path)
    assert ":2: helpdesk.timezone:" in problem and "is not a known time zone" in problem


@pytest.mark.parametrize(
    "text",
    [
        '[helpdesk]\naddress = "desk@example.com\\n"\n',
        '[helpdesk]\naddress = "' + "a" * 243 + '@example.com"\n',
        '[smtp]\nescalation_addresses = ["esc@example.com\\n"]\n',
        '[smtp]\nextra_addresses = ["ok@example.com", "x@example.com\\n"]\n',
    ],
)
def test_an_address_is_matched_whole_and_within_254_octets(text: str, tmp_path: Path) -> None:
    [problem] = problems(text, tmp_path)
    assert ":2: " in problem and "address" in problem


def test_an_address_of_254_octets_is_taken(tmp_path: Path) -> None:
    address = "a" * 242 + "@example.com"
    assert len(address) == 254
    assert accepted(f'[helpdesk]\naddress = "{address}"\n', tmp_path).helpdesk.address == address


@pytest.mark.parametrize(
    ("name", "found"),
    [
        ("IT\\r\\nBcc: evil@example.net", "U+000D"),
        ("IT\\nDesk", "U+000A"),
        ("IT\\u0000Desk", "U+0000"),
        ("IT\\tDesk", "U+0009"),
        ("IT\\u0085Desk", "U+0085"),
        ("IT\\u2028Desk", "U+2028"),
    ],
)
def test_a_desk_name_with_a_control_character_is_refused(
    name: str, found: str, tmp_path: Path
) -> None:
    [problem] = problems(f'[helpdesk]\nname = "{name}"\n', tmp_path)
    assert ":2: helpdesk.name: must not contain control" in problem and found in problem


def test_a_desk_name_is_at_most_200_characters(tmp_path: Path) -> None:
    assert accepted('[helpdesk]\nname = "Dział IT – Pomoc"\n', tmp_path).helpdesk.name
    assert accepted(f'[helpdesk]\nname = "{"N" * 200}"\n', tmp_path)
    [problem] = problems(f'[helpdesk]\nname = "{"N" * 201}"\n', tmp_path)
    assert ":2: helpdesk.name: must be at most 200 characters (it is 201)" in problem


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///var/spocd.db",
        "sqlite:////srv/spocd/spocd.db",
        "sqlite://",
        "sqlite:///:memory:",
        "sqlite+pysqlite:///x.db?timeout=5&check_same_thread=false",
        "sqlite:///file::memory:?cache=shared&uri=true",
        "postgresql://db.example.com/spocd",
        "postgresql+psycopg://user:p%40ss@127.0.0.1:5432/spocd?sslmode=require",
        "postgresql+psycopg://user@[::1]:5432/spocd",
    ],
)
def test_the_database_urls_spocd_supports_are_taken(url: str, tmp_path: Path) -> None:
    assert accepted(f'[database]\nurl = "{url}"\n', tmp_path)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("sqlite+nosuch:///x.db", "'sqlite+nosuch' is not one of"),
        ("postgresql+nosuch://h/db", "'postgresql+nosuch' is not one of"),
        ("postgresql+asyncpg://h/db", "'postgresql+asyncpg' is not one of"),
        ("mysql://h/db", "'mysql' is not one of"),
        ("postgresql+psycopg://u@h:abc/db", "port 'abc' is not a number 1..65535"),
        ("postgresql+psycopg://u@h:0/db", "port '0' is not a number 1..65535"),
        ("postgresql+psycopg://u@h:65536/db", "port '65536' is not a number 1..65535"),
        ("sqlite:///x.db?timeout=abc", "?timeout='abc' is not a number"),
        ("sqlite:///x.db?check_same_thread=maybe", "is not true or false"),
        ("sqlite://host/x.db", "a sqlite URL names a file, not a server"),
        ("sqlite:///x\\u0000.db", "without a NUL character"),
    ],
)
def test_a_database_url_spocd_cannot_use_is_refused(url: str, problem: str, tmp_path: Path) -> None:
    [found] = problems(f'[database]\nurl = "{url}"\n', tmp_path)
    assert ":2: database.url: " in found and problem in found


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "::1",
        "[::1]",
        "0.0.0.0",
        "::",
        "localhost",
        "mail.example.com",
        "relay_1.lan.",
    ],
)
def test_a_host_is_an_ip_address_or_a_host_name(host: str, tmp_path: Path) -> None:
    assert accepted(f'[smtp]\nhost = "{host}"\n', tmp_path)


@pytest.mark.parametrize(
    "host", ["not an address!!", "", "-x.example.com", "x-.example.com", "a..b", "a" * 64 + ".com"]
)
@pytest.mark.parametrize("section", ["smtp", "http", "outgoing", "imap"])
def test_a_host_that_could_never_resolve_is_refused(
    host: str, section: str, tmp_path: Path
) -> None:
    [problem] = problems(f'[{section}]\nhost = "{host}"\n', tmp_path)
    assert f":2: {section}.host: " in problem and "neither an IP address nor a host name" in problem


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ("outgoing", "maildir"),
        ("paths", "rules"),
        ("paths", "templates"),
        ("paths", "spool"),
        ("smtp", "tls_cert_file"),
        ("smtp", "auth_users_file"),
        ("http", "users_file"),
        ("imap", "ca_file"),
    ],
)
def test_a_path_with_a_nul_or_a_name_too_long_is_refused(
    section: str, key: str, tmp_path: Path
) -> None:
    [nul] = problems(f'[{section}]\n{key} = "a\\u0000b"\n', tmp_path)
    assert f":2: {section}.{key}: must not contain a NUL character" in nul
    [long] = problems(f'[{section}]\n{key} = "x/{"n" * 256}"\n', tmp_path)
    assert f":2: {section}.{key}: has a name longer than 255 bytes" in long


def test_a_secret_file_with_a_nul_is_refused(tmp_path: Path) -> None:
    text = '[imap]\nenabled = true\npassword_file = "pw\\u0000"\n'
    [problem] = problems(text, tmp_path)
    assert ":3: imap.password_file: must not contain a NUL character" in problem


def test_a_maildir_where_a_file_stands_is_refused(tmp_path: Path) -> None:
    (tmp_path / "var").write_text("")
    [problem] = problems('[outgoing]\nmaildir = "var/sent"\n', tmp_path)
    assert f":2: outgoing.maildir: {tmp_path / 'var'} exists and is not a folder" in problem
    # Not used by the smtp transport: not checked.
    assert accepted('[outgoing]\ntransport = "smtp"\nmaildir = "var/sent"\n', tmp_path)
    (tmp_path / "var").unlink()
    assert accepted('[outgoing]\nmaildir = "var/sent"\n', tmp_path)  # made when first used


def test_port_0_is_refused_only_for_a_listener_that_starts(tmp_path: Path) -> None:
    settings = accepted("[smtp]\n\nport = 0\n", tmp_path)  # scratch desks: tests, bench
    [problem] = listener_problems(settings)
    assert problem.startswith(f"{tmp_path / 'spocd.toml'}:3: smtp.port: 0 is no port")
    assert listener_problems(accepted("[smtp]\nport = 0\nenabled = false\n", tmp_path)) == []
    assert listener_problems(accepted("[smtp]\nport = 2525\n", tmp_path)) == []
