"""OAuth2 access tokens from a file or a command: when they are fetched again."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from daemon.adapters.imap.connect import TokenError, TokenSource

COMMAND = """\
import json, pathlib, sys
calls = pathlib.Path(sys.argv[1])
count = len(calls.read_text()) + 1 if calls.exists() else 1
calls.write_text("x" * count)
print(json.dumps({"access_token": f"token-{count}", "expires_in": int(sys.argv[2])}))
"""


def command_source(tmp_path: Path, expires_in: int) -> tuple[TokenSource, Path]:
    script = tmp_path / "token.py"
    script.write_text(COMMAND)
    calls = tmp_path / "calls"
    return TokenSource(None, f"{sys.executable} {script} {calls} {expires_in}"), calls


def test_a_commands_token_is_kept_until_it_nears_expiry(tmp_path: Path) -> None:
    source, calls = command_source(tmp_path, expires_in=3600)
    assert [source.token(), source.token()] == ["token-1", "token-1"]
    assert calls.read_text() == "x"


def test_a_token_near_its_expiry_is_fetched_again(tmp_path: Path) -> None:
    source, _ = command_source(tmp_path, expires_in=60)
    assert [source.token(), source.token()] == ["token-1", "token-2"]


def test_a_refused_token_is_fetched_again_on_request(tmp_path: Path) -> None:
    source, _ = command_source(tmp_path, expires_in=3600)
    assert source.token() == "token-1"
    assert source.token(refresh=True) == "token-2"
    assert source.token() == "token-2"


def test_a_token_file_is_read_at_every_login(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("first\n")
    source = TokenSource(token, None)
    assert source.token() == "first"
    token.write_text('{"access_token": "second", "expires_in": 3600}')
    assert source.token() == "second"


@pytest.mark.parametrize(
    ("file", "command", "problem"),
    [
        ("missing", None, "cannot read"),
        (None, f"{sys.executable} -c 'import sys; sys.exit(\"no tenant\")'", "exited 1: no tenant"),
        (None, "/nonexistent/token-helper", "oauth2_token_command failed"),
        (None, f"{sys.executable} -c 'print()'", "no token"),
    ],
)
def test_no_token_is_an_error_that_says_why(
    tmp_path: Path, file: str | None, command: str | None, problem: str
) -> None:
    source = TokenSource(tmp_path / file if file else None, command)
    with pytest.raises(TokenError, match=problem):
        source.token()
