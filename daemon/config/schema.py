"""What spocd.toml may say: the keys of each section, their checks and defaults.

Also where each key stands in the file, so that every complaint names its line.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Check = Callable[[Any], str | None]  # returns a problem or None


def is_str(v: Any) -> str | None:
    return None if isinstance(v, str) else "must be a string"


def _is_bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else "must be true or false"


def _is_port(v: Any) -> str | None:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 65535:
        return "must be a port number 0..65535"
    return None


def _is_positive(v: Any) -> str | None:
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        return "must be a positive whole number"
    return None


def _is_str_list(v: Any) -> str | None:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        return "must be a list of strings"
    return None


def _one_of(*choices: str) -> Check:
    def check(v: Any) -> str | None:
        if v not in choices:
            return "must be one of " + ", ".join(f'"{c}"' for c in choices)
        return None

    return check


_ADDRESS_RE = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$|^[^@\s<>]+@localhost$")


def _is_address(v: Any) -> str | None:
    if not isinstance(v, str) or not _ADDRESS_RE.match(v):
        return "must be an email address"
    return None


def _is_own_address(v: Any) -> str | None:
    """The desk's own address goes out in every From, envelope and Message-ID,
    and spocd writes 7-bit mail: a non-ASCII one would fail every mail."""
    problem = _is_address(v)
    if problem is None and not v.isascii():
        return (
            "must be written in ASCII (spocd sends 7-bit mail): a domain such as "
            "żółw.pl in its IDNA form, xn--w-uga1v8h.pl"
        )
    return problem


def _is_address_list(v: Any) -> str | None:
    if _is_str_list(v) or not all(_ADDRESS_RE.match(x) for x in v):
        return "must be a list of email addresses"
    return None


def _is_networks(v: Any) -> str | None:
    if _is_str_list(v):
        return 'must be a list of networks such as "127.0.0.0/8"'
    for net in v:
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            return f"{net!r} is not a network"
    return None


def _is_prefix(v: Any) -> str | None:
    if not isinstance(v, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9]{0,9}", v):
        return 'must be 1-10 letters or digits starting with a letter, such as "HD"'
    return None


def _is_db_url(v: Any) -> str | None:
    if not isinstance(v, str) or not re.match(r"^(sqlite|postgresql)(\+\w+)?://", v):
        return "must be a sqlite:/// or postgresql+psycopg:// URL"
    return None


def _is_zone(v: Any) -> str | None:
    if not isinstance(v, str):
        return 'must be a time zone name such as "Europe/Warsaw"'
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError):
        return f"{v!r} is not a known time zone"
    return None


def _is_line_length(v: Any) -> str | None:
    if isinstance(v, bool) or not isinstance(v, int) or not 1000 <= v <= 1_000_000:
        return "must be a whole number 1000..1000000 (RFC 5321 requires at least 1000)"
    return None


SECRET = object()  # marks a key that also accepts *_env and *_file

SCHEMA: dict[str, dict[str, Any]] = {
    "helpdesk": {
        "address": _is_own_address,
        "name": is_str,
        "tag_prefix": _is_prefix,
        "default_language": _one_of("en", "pl"),
        "timezone": _is_zone,
    },
    "database": {"url": _is_db_url, "busy_timeout_ms": _is_positive},
    "smtp": {
        "enabled": _is_bool,
        "host": is_str,
        "port": _is_port,
        "max_message_size": _is_positive,
        "max_recipients": _is_positive,
        "accept_from_networks": _is_networks,
        "escalation_addresses": _is_address_list,
        "extra_addresses": _is_address_list,
        "max_line_length": _is_line_length,
        "max_connections_per_client": _is_positive,
        "max_connections": _is_positive,
        "command_timeout_seconds": _is_positive,
        "tls_cert_file": is_str,
        "tls_key_file": is_str,
        "require_starttls": _is_bool,
        "auth_users_file": is_str,
        "auth_required": _is_bool,
        "auth_allow_plaintext": _is_bool,
    },
    "imap": {
        "name": is_str,
        "enabled": _is_bool,
        "host": is_str,
        "port": _is_port,
        "tls": _one_of("implicit", "starttls", "none"),
        "verify_certificate": _is_bool,
        "ca_file": is_str,
        "username": is_str,
        "password": SECRET,
        "auth": _one_of("password", "oauth2"),
        "oauth2_token_file": is_str,
        "oauth2_token_command": is_str,
        "folder": is_str,
        "processed_folder": is_str,
        "failed_folder": is_str,
        "idle": _is_bool,
        "poll_seconds": _is_positive,
        "batch_size": _is_positive,
        "escalation": _is_bool,
        "timeout_seconds": _is_positive,
        "max_message_size": _is_positive,
    },
    "outgoing": {
        "transport": _one_of("smtp", "maildir"),
        "maildir": is_str,
        "host": is_str,
        "port": _is_port,
        "tls": _one_of("none", "starttls", "implicit"),
        "verify_certificate": _is_bool,
        "username": is_str,
        "password": SECRET,
        "timeout_seconds": _is_positive,
        "retry_for_hours": _is_positive,
        "allow_plaintext_auth": _is_bool,
    },
    "paths": {"rules": is_str, "templates": is_str, "spool": is_str},
    "agents": {
        "trust": _one_of("authentication-results", "none"),
        "trusted_authserv_ids": _is_str_list,
    },
    "limits": {
        "max_attachment_bytes": _is_positive,
        "max_outgoing_attachment_bytes": _is_positive,
        "max_parse_seconds": _is_positive,
        "parser_process": _is_bool,
        "delivery_process": _is_bool,
    },
    "logging": {
        "format": _one_of("logfmt", "json"),
        "level": _one_of("DEBUG", "INFO", "WARNING", "ERROR"),
    },
    "http": {
        "enabled": _is_bool,
        "host": is_str,
        "port": _is_port,
        "users_file": is_str,
        "tls_cert_file": is_str,
        "tls_key_file": is_str,
        "trusted_proxy_header": is_str,
        "trusted_proxies": _is_str_list,
    },
}
PATH_KEYS = {
    ("outgoing", "maildir"),
    ("paths", "rules"),
    ("paths", "templates"),
    ("paths", "spool"),
    ("imap", "ca_file"),
    ("imap", "oauth2_token_file"),
    ("smtp", "tls_cert_file"),
    ("smtp", "tls_key_file"),
    ("smtp", "auth_users_file"),
    ("http", "users_file"),
    ("http", "tls_cert_file"),
    ("http", "tls_key_file"),
}
LIST_KEYS = {
    "accept_from_networks",
    "escalation_addresses",
    "extra_addresses",
    "trusted_authserv_ids",
    "trusted_proxies",
}


# --- locating keys in the text ------------------------------------------------

_TABLE_RE = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\" ]+?)\s*\]\]?\s*(#.*)?$")
_KEY_RE = re.compile(r"^\s*([A-Za-z0-9_\-]+)\s*=")


def key_lines(text: str) -> dict[tuple[str, int, str], int]:
    """(table, array index, key) -> line number; key "" is the table header."""
    lines: dict[tuple[str, int, str], int] = {}
    table, index = "", 0
    counts: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        header = _TABLE_RE.match(line)
        if header:
            table = header.group(2).replace('"', "").strip()
            if header.group(1) == "[[":
                index = counts.get(table, 0)
                counts[table] = index + 1
            else:
                index = 0
            lines.setdefault((table, index, ""), number)
            continue
        key = _KEY_RE.match(line)
        if key:
            lines.setdefault((table, index, key.group(1)), number)
    return lines
