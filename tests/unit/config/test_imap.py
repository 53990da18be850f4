"""`[imap]` / `[[imap]]` in spocd.toml: mailboxes, secrets, and what makes one unusable."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.config import parse_settings
from daemon.core.errors import ConfigError

PATH = Path("/etc/spocd/spocd.toml")


def problems(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_settings(text, PATH, environ or {})
    return caught.value.problems


def test_several_mailboxes_with_their_own_names_credentials_and_folders() -> None:
    text = """
[[imap]]
name = "requesters"
enabled = true
host = "outlook.office365.com"
username = "helpdesk@example.com"
auth = "oauth2"
oauth2_token_command = "/usr/local/bin/ms-token"

[[imap]]
name = "first-line"
enabled = true
host = "imap.example.com"
username = "escalations"
password_env = "ESC_PW"
folder = "INBOX/Escalations"
escalation = true
ca_file = "certs/ca.pem"
"""
    settings = parse_settings(text, PATH, {"ESC_PW": "pw"})
    first, second = settings.imap
    assert (first.name, first.auth, first.oauth2_token_command) == (
        "requesters",
        "oauth2",
        "/usr/local/bin/ms-token",
    )
    assert (second.name, second.password, second.escalation) == ("first-line", "pw", True)
    assert second.ca_file == Path("/etc/spocd/certs/ca.pem")


def test_a_disabled_mailbox_needs_no_secret_yet() -> None:
    settings = parse_settings('[imap]\nenabled = false\npassword_env = "UNSET"\n', PATH, {})
    assert settings.imap[0].enabled is False
    assert settings.imap[0].password is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[imap]\nenabled = true\npassword_env = "UNSET"\n',
            "spocd.toml:3: imap.password_env: environment variable UNSET is not set",
        ),
        (
            "[imap]\nenabled = true\n",
            'spocd.toml:1: imap.password: required when auth = "password"',
        ),
        (
            '[imap]\nenabled = true\nauth = "oauth2"\n',
            'spocd.toml:3: imap.auth: auth = "oauth2" needs exactly one of oauth2_token_file',
        ),
        (
            '[imap]\nenabled = true\nauth = "oauth2"\noauth2_token_file = "t"\n'
            'oauth2_token_command = "c"\n',
            'spocd.toml:5: imap.oauth2_token_command: auth = "oauth2" needs exactly one',
        ),
        (
            '[imap]\nenabled = true\npassword = "x"\nprocessed_folder = "inbox"\n',
            "spocd.toml:4: imap.processed_folder: must differ from folder",
        ),
        (
            '[[imap]]\nname = "a"\n[[imap]]\nname = "b"\nenabled = true\npassword = "x"\n'
            'folder = "desk"\nfailed_folder = "desk/"\n',
            "spocd.toml:8: imap[1].failed_folder: must differ from folder",
        ),
        (
            '[imap]\ntls = "ssl"\n',
            'spocd.toml:2: imap.tls: must be one of "implicit", "starttls", "none"',
        ),
        ("[imap]\nidle_seconds = 5\n", "spocd.toml:2: imap.idle_seconds: unknown key"),
    ],
)
def test_every_problem_names_key_and_line(text: str, expected: str) -> None:
    found = problems(text)
    assert any(expected in p for p in found), found
