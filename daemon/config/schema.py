"""What spocd.toml may say: the keys of each section, their checks and defaults.

Also where each key stands in the file, so that every complaint names its line.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Callable
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from daemon.config.spool_only import MAX_BYTES

Check = Callable[[Any], str | None]  # returns a problem or None


def is_str(v: Any) -> str | None:
    return None if isinstance(v, str) else "must be a string"


def _is_bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else "must be true or false"


def _is_port(v: Any) -> str | None:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 65535:
        return "must be a port number 0..65535"
    return None


def _up_to(limit: int, unit: str) -> Check:
    """A positive whole number no larger than `limit`. Every count, size and
    time in the file has a ceiling: a value such as 2**63-1 passed a bare
    "positive" check, then overflowed a timedelta, a time_t or an index deep
    inside a command (a traceback, not a refusal)."""

    def check(v: Any) -> str | None:
        if isinstance(v, bool) or not isinstance(v, int) or not 0 < v <= limit:
            return f"must be a positive whole number up to {limit} ({unit})"
        return None

    return check


#: The ceilings, by what the number counts; far above any real setting.
_SECONDS = _up_to(86_400, "seconds: one day")
_BYTES = _up_to(MAX_BYTES, "bytes: 1 GiB")
_COUNT = _up_to(100_000, "a count")
_MILLISECONDS = _up_to(3_600_000, "milliseconds: one hour")
_HOURS = _up_to(8_760, "hours: one year")


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


# Matched whole (fullmatch): `$` also matched before a trailing newline, so
# "desk@example.com\n" passed and then failed every mail it was used in.
_ADDRESS_RE = re.compile(r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+|[^@\s<>]+@localhost")
#: RFC 5321 4.5.3.1.3: a path is at most 256 octets with its angle brackets.
MAX_ADDRESS_OCTETS = 254


def _is_address(v: Any) -> str | None:
    if not isinstance(v, str) or not _ADDRESS_RE.fullmatch(v):
        return "must be an email address"
    if len(v.encode("utf-8")) > MAX_ADDRESS_OCTETS:
        return f"must be an email address of at most {MAX_ADDRESS_OCTETS} octets (RFC 5321)"
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
    if _is_str_list(v):
        return "must be a list of email addresses"
    for address in v:
        if _is_address(address):
            return f"{address!r} is not an email address of at most {MAX_ADDRESS_OCTETS} octets"
    return None


#: Far more than any desk's name; a 20,000-character one made a From line 20
#: times RFC 5322's 998 octets.
MAX_NAME_CHARS = 200


def _is_display_name(v: Any) -> str | None:
    """The desk's name goes raw into the From header of every mail: a CR or LF
    would start a header of its own (`Bcc: ...`), a NUL breaks the mail."""
    if not isinstance(v, str):
        return "must be a string"
    bad = next((ch for ch in v if _breaks_header(ch)), None)
    if bad is not None:
        return (
            f"must not contain control or line-break characters (found U+{ord(bad):04X}): "
            "it goes into the From header of every mail"
        )
    if len(v) > MAX_NAME_CHARS:
        return f"must be at most {MAX_NAME_CHARS} characters (it is {len(v)})"
    return None


def _breaks_header(ch: str) -> bool:
    """A control, format, private or unassigned character (Unicode's C*), or
    a line or paragraph separator, which some readers take as a line break."""
    return unicodedata.category(ch)[0] == "C" or ch in "\u2028\u2029"


# RFC 1123 labels: letters, digits and inner hyphens, 1-63 each, 253 in all;
# an underscore too, as resolvers take it (Windows networks name hosts so).
_LABEL_RE = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")


def _is_host(v: Any) -> str | None:
    """An IP address or a host name that could resolve; not looked up here
    (the network may be down at load), only its spelling."""
    if not isinstance(v, str):
        return "must be a string"
    try:
        ipaddress.ip_address(v.strip("[]"))
        return None
    except ValueError:
        pass
    name = v.removesuffix(".")
    if 0 < len(name) <= 253 and all(_LABEL_RE.fullmatch(p) for p in name.split(".")):
        return None
    return f"{v!r} is neither an IP address nor a host name"


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


_DB_URL_HINT = "must be a sqlite:/// or postgresql+psycopg:// URL"
#: The dialect+driver names the storage engine builds (adapters.storage.engine):
#: any other driver is not installed or not one spocd is tested with.
DB_SCHEMES = ("sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg")
#: The sqlite3 arguments SQLAlchemy reads from a sqlite URL's query, by type.
_SQLITE_QUERY = {
    "timeout": float,
    "detect_types": int,
    "cached_statements": int,
    "uri": bool,
    "check_same_thread": bool,
}
_BOOL_WORDS = {"true", "false", "yes", "no", "on", "off", "y", "n", "t", "f", "1", "0"}


def _is_db_url(v: Any) -> str | None:
    """Refused here, not when the engine is built: there an unknown driver or
    a port such as "abc" was a traceback, or exit 75 (retry for ever)."""
    if not isinstance(v, str):
        return _DB_URL_HINT
    if "\0" in v:  # the SQLite file could never be opened
        return f"{_DB_URL_HINT}, without a NUL character"
    scheme, sep, _ = v.partition("://")
    if not sep or scheme not in DB_SCHEMES:
        return f"{_DB_URL_HINT} ({scheme!r} is not one of {', '.join(DB_SCHEMES)})"
    url = urlsplit(v)
    try:
        port = url.port  # urllib's reading: digits only, 0..65535
    except ValueError:
        port = 0
    if port == 0:
        written = url.netloc.rpartition("@")[2].rpartition(":")[2]
        return f"{_DB_URL_HINT}: port {written!r} is not a number 1..65535"
    if scheme.startswith("sqlite"):
        return _sqlite_url_problem(url)
    return None


def _sqlite_url_problem(url: SplitResult) -> str | None:
    if url.netloc:
        return "a sqlite URL names a file, not a server: sqlite:///relative or sqlite:////absolute"
    for key, value in parse_qsl(url.query, keep_blank_values=True):
        kind = _SQLITE_QUERY.get(key)
        if kind is None or _fits(kind, value):
            continue
        wanted = "true or false" if kind is bool else "a number"
        return f"{_DB_URL_HINT}: ?{key}={value!r} is not {wanted}"
    return None


def _fits(kind: type, value: str) -> bool:
    if kind is bool:
        return value.strip().lower() in _BOOL_WORDS
    try:
        kind(value)
    except ValueError:
        return False
    return True


def _is_zone(v: Any) -> str | None:
    if not isinstance(v, str):
        return 'must be a time zone name such as "Europe/Warsaw"'
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Europe" is a folder
        return f"{v!r} is not a known time zone"
    return None


#: Linux's NAME_MAX and PATH_MAX: a longer name fails every open with ENAMETOOLONG.
MAX_NAME_BYTES, MAX_PATH_BYTES = 255, 4095


def _is_path(v: Any) -> str | None:
    """A path the operating system can take: no NUL (every open raised
    ValueError on it) and no name past the system's limits."""
    if not isinstance(v, str):
        return "must be a string"
    if not v:
        return "must be a path, not empty"
    if "\0" in v:
        return "must not contain a NUL character"
    if len(v.encode("utf-8", "surrogateescape")) > MAX_PATH_BYTES:
        return f"must be a path of at most {MAX_PATH_BYTES} bytes"
    longest = max(v.split("/"), key=lambda part: len(part.encode("utf-8", "surrogateescape")))
    if len(longest.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
        return f"has a name longer than {MAX_NAME_BYTES} bytes ({longest[:20]}...)"
    return None


def _is_line_length(v: Any) -> str | None:
    if isinstance(v, bool) or not isinstance(v, int) or not 1000 <= v <= 1_000_000:
        return "must be a whole number 1000..1000000 (RFC 5321 requires at least 1000)"
    return None


SECRET = object()  # marks a key that also accepts *_env and *_file

SCHEMA: dict[str, dict[str, Any]] = {
    "helpdesk": {
        "address": _is_own_address,
        "name": _is_display_name,
        "tag_prefix": _is_prefix,
        "default_language": _one_of("en", "pl"),
        "timezone": _is_zone,
    },
    "database": {"url": _is_db_url, "busy_timeout_ms": _MILLISECONDS},
    "smtp": {
        "enabled": _is_bool,
        "host": _is_host,
        "port": _is_port,
        "max_message_size": _BYTES,
        "max_recipients": _COUNT,
        "accept_from_networks": _is_networks,
        "escalation_addresses": _is_address_list,
        "extra_addresses": _is_address_list,
        "max_line_length": _is_line_length,
        "max_connections_per_client": _COUNT,
        "max_connections": _COUNT,
        "command_timeout_seconds": _SECONDS,
        "tls_cert_file": _is_path,
        "tls_key_file": _is_path,
        "require_starttls": _is_bool,
        "auth_users_file": _is_path,
        "auth_required": _is_bool,
        "auth_allow_plaintext": _is_bool,
    },
    "imap": {
        "name": is_str,
        "enabled": _is_bool,
        "host": _is_host,
        "port": _is_port,
        "tls": _one_of("implicit", "starttls", "none"),
        "verify_certificate": _is_bool,
        "ca_file": _is_path,
        "username": is_str,
        "password": SECRET,
        "auth": _one_of("password", "oauth2"),
        "oauth2_token_file": _is_path,
        "oauth2_token_command": is_str,
        "folder": is_str,
        "processed_folder": is_str,
        "failed_folder": is_str,
        "idle": _is_bool,
        "poll_seconds": _SECONDS,
        "batch_size": _COUNT,
        "escalation": _is_bool,
        "timeout_seconds": _SECONDS,
        "max_message_size": _BYTES,
    },
    "outgoing": {
        "transport": _one_of("smtp", "maildir"),
        "maildir": _is_path,
        "host": _is_host,
        "port": _is_port,
        "tls": _one_of("none", "starttls", "implicit"),
        "verify_certificate": _is_bool,
        "username": is_str,
        "password": SECRET,
        "timeout_seconds": _SECONDS,
        "retry_for_hours": _HOURS,
        "allow_plaintext_auth": _is_bool,
    },
    "paths": {"rules": _is_path, "templates": _is_path, "spool": _is_path},
    "agents": {
        "trust": _one_of("authentication-results", "none"),
        "trusted_authserv_ids": _is_str_list,
    },
    "limits": {
        "max_attachment_bytes": _BYTES,
        "max_outgoing_attachment_bytes": _BYTES,
        "max_parse_seconds": _SECONDS,
        "parser_process": _is_bool,
        "delivery_process": _is_bool,
    },
    "logging": {
        "format": _one_of("logfmt", "json"),
        "level": _one_of("DEBUG", "INFO", "WARNING", "ERROR"),
    },
    "http": {
        "enabled": _is_bool,
        "host": _is_host,
        "port": _is_port,
        "users_file": _is_path,
        "tls_cert_file": _is_path,
        "tls_key_file": _is_path,
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
