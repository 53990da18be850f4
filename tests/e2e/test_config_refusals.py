"""A bad spocd.toml is refused before anything runs: "spocd: configuration
refused:", the problem with its line, exit 78, never a traceback. The MTA pipe
never exits 1 on one (Postfix bounces mail on 1).

Each test starts from a desk made by `spocd init` and changes one value, as an
operator editing the starter file would (the faults the config fuzzing found).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.support.mail import make_mail
from tests.support.proc import spocd

EX_TEMPFAIL, EX_CONFIG = 75, 78


def desk(tmp_path: Path) -> Path:
    """A fresh desk from `spocd init`; its spocd.toml."""
    made = spocd("init", str(tmp_path / "desk"))
    assert made.returncode == 0, made.stderr
    return tmp_path / "desk" / "spocd.toml"


def set_key(config: Path, section: str, key: str, toml_value: str) -> Path:
    """`key = toml_value` in [section] of the starter file, replacing the
    key's line if the section has one."""
    lines = config.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.split("#")[0].strip() == f"[{section}]")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    line = f"{key} = {toml_value}"
    spot = next(
        (i for i in range(start + 1, end) if re.match(rf"{re.escape(key)}\s*=", lines[i])), None
    )
    if spot is None:
        lines.insert(start + 1, line)
    else:
        lines[spot] = line
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


def assert_refused(result: subprocess.CompletedProcess[bytes], *expected: str) -> None:
    err = result.stderr.decode(errors="replace")
    assert result.returncode == EX_CONFIG, err
    assert "spocd: configuration refused:" in err
    for text in expected:
        assert text in err
    assert "Traceback" not in err


def test_a_value_nested_thousands_deep_is_refused_by_every_command(tmp_path: Path) -> None:
    config = desk(tmp_path)
    config.write_text(config.read_text() + "x = " + "[" * 5000 + "]" * 5000 + "\n")
    for command in (("tick",), ("db", "upgrade"), ("status",)):
        assert_refused(spocd(*command, config=config), "nested too deeply")


def test_the_mta_pipe_defers_a_config_nested_too_deeply_and_never_exits_1(
    tmp_path: Path,
) -> None:
    config = desk(tmp_path)
    config.write_text(config.read_text() + "x = " + "{a = " * 3000 + "1" + "}" * 3000 + "\n")
    result = spocd("ingest", "--queue-only", "-", config=config, input=make_mail())
    assert_refused(result, "nested too deeply")  # 78: Postfix defers (4.3.5), never bounces


@pytest.mark.parametrize("zone", ["Europe", "a" * 300])
def test_a_time_zone_that_names_a_folder_or_is_too_long_is_refused(
    tmp_path: Path, zone: str
) -> None:
    config = set_key(desk(tmp_path), "helpdesk", "timezone", f'"{zone}"')
    assert_refused(spocd("tick", config=config), "helpdesk.timezone:", "not a known time zone")


@pytest.mark.parametrize(
    ("section", "key", "value", "problem"),
    [
        ("helpdesk", "address", r'"helpdesk@example.com\n"', "helpdesk.address: must be an email"),
        ("helpdesk", "address", '"' + "a" * 250 + '@example.com"', "at most 254 octets"),
        ("smtp", "escalation_addresses", r'["esc@example.com\n"]', "smtp.escalation_addresses:"),
    ],
)
def test_an_address_with_a_trailing_newline_or_too_long_is_refused(
    tmp_path: Path, section: str, key: str, value: str, problem: str
) -> None:
    config = set_key(desk(tmp_path), section, key, value)
    assert_refused(spocd("ingest", "-", config=config, input=make_mail()), problem)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        (r'"IT\r\nBcc: evil@example.net"', "(found U+000D)"),
        (r'"IT\u0000Desk"', "(found U+0000)"),
        (r'"IT\u202eDesk"', "(found U+202E)"),
        ('"' + "N" * 20_000 + '"', "must be at most 200 characters"),
    ],
)
def test_a_desk_name_that_would_break_the_from_header_is_refused(
    tmp_path: Path, name: str, problem: str
) -> None:
    config = set_key(desk(tmp_path), "helpdesk", "name", name)
    result = spocd("ingest", "-", config=config, input=make_mail())
    assert_refused(result, "helpdesk.name:", problem)
    assert not list((config.parent / "var" / "sent").glob("*/*"))  # nothing was sent


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("sqlite+nosuch:///var/x.db", "'sqlite+nosuch' is not one of"),
        ("postgresql+asyncpg://postgres@127.0.0.1:5432/postgres", "'postgresql+asyncpg'"),
        ("postgresql+psycopg://postgres@127.0.0.1:abc/x", "port 'abc' is not a number"),
        ("postgresql+psycopg://postgres@127.0.0.1:70000/x", "port '70000' is not a number"),
        ("sqlite:///var/x.db?timeout=abc&mode=ro", "?timeout='abc' is not a number"),
    ],
)
@pytest.mark.parametrize("command", [("db", "upgrade"), ("tick",)])
def test_a_database_url_spocd_cannot_use_is_refused_as_configuration(
    tmp_path: Path, url: str, problem: str, command: tuple[str, ...]
) -> None:
    config = set_key(desk(tmp_path), "database", "url", f'"{url}"')
    assert_refused(spocd(*command, config=config), "database.url:", problem)


@pytest.mark.parametrize("kind", ["folder", "garbage file"])
def test_db_upgrade_on_a_database_it_cannot_open_exits_75_without_a_traceback(
    tmp_path: Path, kind: str
) -> None:
    config = set_key(desk(tmp_path), "database", "url", '"sqlite:///var/spocd.db"')
    database = config.parent / "var" / "spocd.db"
    if kind == "folder":
        database.mkdir(parents=True)
    else:
        database.parent.mkdir(parents=True)
        database.write_bytes(b"not a database\x00" * 400)
    result = spocd("db", "upgrade", config=config)
    err = result.stderr.decode()
    assert result.returncode == EX_TEMPFAIL, err
    assert err.startswith("spocd: database unavailable: ")
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("section", "key", "problem"),
    [
        ("smtp", "max_message_size", "up to 1073741824 (bytes: 1 GiB)"),
        ("outgoing", "retry_for_hours", "up to 8760 (hours: one year)"),
        ("outgoing", "timeout_seconds", "up to 86400 (seconds: one day)"),
        ("imap", "timeout_seconds", "up to 86400 (seconds: one day)"),
        ("database", "busy_timeout_ms", "up to 3600000 (milliseconds: one hour)"),
    ],
)
def test_a_number_too_large_to_use_is_refused_with_its_bound(
    tmp_path: Path, section: str, key: str, problem: str
) -> None:
    config = set_key(desk(tmp_path), section, key, str(2**63 - 1))
    result = spocd("ingest", "-", config=config, input=make_mail())
    assert_refused(result, f"{section}.{key}: must be a positive whole number {problem}")


@pytest.mark.parametrize(
    ("section", "key"),
    [("outgoing", "maildir"), ("paths", "rules"), ("paths", "templates"), ("paths", "spool")],
)
def test_a_path_with_a_nul_is_refused(tmp_path: Path, section: str, key: str) -> None:
    config = set_key(desk(tmp_path), section, key, r'"var/a\u0000b"')
    assert_refused(spocd("tick", config=config), f"{section}.{key}: must not contain a NUL")


def test_the_mta_pipe_never_exits_1_on_a_spool_path_with_a_nul(tmp_path: Path) -> None:
    config = set_key(desk(tmp_path), "paths", "spool", r'"var/sp\u0000ool"')
    result = spocd("ingest", "--queue-only", "-", config=config, input=make_mail())
    assert_refused(result, "paths.spool: must not contain a NUL")


def test_a_maildir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    config = desk(tmp_path)
    (config.parent / "var").mkdir()
    (config.parent / "var" / "sent").write_text("")
    result = spocd("ingest", "-", config=config, input=make_mail())
    assert_refused(result, "outgoing.maildir:", "exists and is not a folder")


def test_a_spool_name_longer_than_the_system_takes_is_refused_by_tick(tmp_path: Path) -> None:
    config = set_key(desk(tmp_path), "paths", "spool", '"' + "s" * 300 + '"')
    assert_refused(spocd("tick", config=config), "paths.spool: has a name longer than 255 bytes")


def test_run_refuses_port_0_for_the_smtp_listener(tmp_path: Path) -> None:
    config = set_key(desk(tmp_path), "smtp", "port", "0")
    assert_refused(spocd("run", config=config, timeout=60), "smtp.port: 0 is no port")
    assert spocd("tick", config=config).returncode == 0  # scratch desks that never listen


@pytest.mark.parametrize("host", ["not an address!!", "", "-x.example.com", "a..example.com"])
def test_a_listener_host_that_is_no_address_or_host_name_is_refused(
    tmp_path: Path, host: str
) -> None:
    config = set_key(desk(tmp_path), "smtp", "host", f'"{host}"')
    assert_refused(spocd("run", config=config, timeout=60), "smtp.host:", "neither an IP")


def test_status_refuses_a_missing_rules_file_like_every_other_command(tmp_path: Path) -> None:
    config = desk(tmp_path)
    assert spocd("status", config=config).returncode == 0
    (config.parent / "rules.yaml").unlink()
    assert_refused(spocd("status", config=config), "rules.yaml: cannot read")
