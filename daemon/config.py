"""`spocd.toml`: found, read, validated into frozen settings.

Every error names the key and the line it is on, and all errors are reported
at once, so an admin fixes the file in one go. Secrets come from the file, an
environment variable (`*_env`) or a file of their own (`*_file`, e.g. a systemd
credential).
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from daemon import passwords
from daemon.errors import ConfigError
from daemon.files import read_config_file

CONFIG_ENV = "SPOCD_CONFIG"
DEFAULT_NAME = "spocd.toml"


@dataclass(frozen=True, slots=True)
class HelpdeskSettings:
    address: str = "helpdesk@example.com"
    name: str = "IT Help Desk"
    tag_prefix: str = "HD"
    default_language: str = "en"
    timezone: str = "Europe/Warsaw"  # how times are shown in mail

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2].lower()


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    url: str = "sqlite:///var/spocd.db"
    #: How long a write waits for a lock held by another process before it
    #: fails (SQLite busy timeout; PostgreSQL lock_timeout). SMTP then answers
    #: 451 and the sender retries, so a stuck lock never loses mail.
    busy_timeout_ms: int = 30_000


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 2525
    max_message_size: int = 26_214_400
    max_recipients: int = 50
    accept_from_networks: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    escalation_addresses: tuple[str, ...] = ("escalations@example.com",)
    extra_addresses: tuple[str, ...] = ()  # more recipients we accept (aliases)
    #: Longest line in octets, CRLF included (RFC 5321 4.5.3.1.6: 1000), not
    #: counting the dot SMTP adds to a line that begins with one; longer gets 500.
    max_line_length: int = 1000
    #: Concurrent connections one client address may hold; the next gets 421.
    max_connections_per_client: int = 20
    #: Concurrent connections in all; the next gets 421. Lowered at start to
    #: fit the process's open-file limit (RLIMIT_NOFILE), with a warning.
    max_connections: int = 100
    #: Idle time allowed per command (the DATA transfer included), then 421.
    command_timeout_seconds: int = 300
    tls_cert_file: Path | None = None  # both set: STARTTLS is offered
    tls_key_file: Path | None = None
    require_starttls: bool = False  # no MAIL before STARTTLS
    auth_users_file: Path | None = None  # `user:hash` lines (daemon.passwords)
    auth_required: bool = False  # no MAIL before AUTH
    auth_allow_plaintext: bool = False  # AUTH without TLS (a loopback-only listener)
    auth_users: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    @property
    def tls(self) -> bool:
        return self.tls_cert_file is not None and self.tls_key_file is not None

    def accepts_peer(self, host: str) -> bool:
        try:
            ip = ipaddress.ip_address(host.split("%")[0])
        except ValueError:
            return False
        if ip.version == 6 and ip.ipv4_mapped:  # ::ffff:127.0.0.1
            ip = ip.ipv4_mapped
        return any(
            ip in ipaddress.ip_network(net, strict=False) for net in self.accept_from_networks
        )


@dataclass(frozen=True, slots=True)
class ImapMailbox:
    name: str = "default"
    enabled: bool = False
    host: str = "imap.example.com"
    port: int = 993
    tls: str = "implicit"
    verify_certificate: bool = True
    ca_file: Path | None = None
    username: str = "helpdesk"
    password: str | None = field(default=None, repr=False)
    auth: str = "password"  # "password" | "oauth2"
    oauth2_token_file: Path | None = None
    oauth2_token_command: str | None = None
    folder: str = "INBOX"
    processed_folder: str = "spocd/processed"
    failed_folder: str = "spocd/failed"
    idle: bool = True
    poll_seconds: int = 30
    batch_size: int = 100
    escalation: bool = False
    timeout_seconds: int = 60
    max_message_size: int | None = None  # None: [smtp] max_message_size


@dataclass(frozen=True, slots=True)
class OutgoingSettings:
    transport: str = "maildir"
    maildir: Path = Path("var/sent")
    host: str = "localhost"
    port: int = 25
    tls: str = "none"  # "none" | "starttls" | "implicit"
    verify_certificate: bool = True
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout_seconds: int = 30
    retry_for_hours: int = 48  # a mail the relay keeps deferring fails after this
    allow_plaintext_auth: bool = False  # a login without TLS to a relay not on loopback

    @property
    def plaintext_login(self) -> bool:
        """A relay login whose password would cross the wire unencrypted."""
        return self.transport == "smtp" and bool(self.username) and self.tls == "none"


@dataclass(frozen=True, slots=True)
class PathsSettings:
    rules: Path = Path("rules.yaml")
    templates: Path = Path("templates")
    spool: Path = Path("var/spool")


@dataclass(frozen=True, slots=True)
class AgentsSettings:
    trust: str = "authentication-results"
    trusted_authserv_ids: tuple[str, ...] = ("mx.example.com",)


@dataclass(frozen=True, slots=True)
class LimitsSettings:
    max_attachment_bytes: int = 10 * 1024 * 1024
    #: CPU seconds parsing and sanitising one message may take; past it the
    #: message is quarantined with the reason (one mail never holds intake).
    max_parse_seconds: int = 10


@dataclass(frozen=True, slots=True)
class LoggingSettings:
    format: str = "logfmt"  # "logfmt" | "json"
    level: str = "INFO"


@dataclass(frozen=True, slots=True)
class HttpSettings:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 9325


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything `spocd.toml` says, with paths made absolute."""

    helpdesk: HelpdeskSettings = HelpdeskSettings()
    database: DatabaseSettings = DatabaseSettings()
    smtp: SmtpSettings = SmtpSettings()
    imap: tuple[ImapMailbox, ...] = ()
    outgoing: OutgoingSettings = OutgoingSettings()
    paths: PathsSettings = PathsSettings()
    agents: AgentsSettings = AgentsSettings()
    limits: LimitsSettings = LimitsSettings()
    logging: LoggingSettings = LoggingSettings()
    http: HttpSettings = HttpSettings()
    source: Path | None = None  # the file read, or None for the embedded default
    base_dir: Path = Path(".")

    @property
    def own_addresses(self) -> frozenset[str]:
        """Every address that is us: mail from these is our own."""
        return frozenset(
            a.lower()
            for a in (
                self.helpdesk.address,
                *self.smtp.escalation_addresses,
                *self.smtp.extra_addresses,
            )
        )


# --- schema -----------------------------------------------------------------

Check = Callable[[Any], str | None]  # returns a problem or None


def _is_str(v: Any) -> str | None:
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


_SECRET = object()  # marks a key that also accepts *_env and *_file

SCHEMA: dict[str, dict[str, Any]] = {
    "helpdesk": {
        "address": _is_address,
        "name": _is_str,
        "tag_prefix": _is_prefix,
        "default_language": _one_of("en", "pl"),
        "timezone": _is_zone,
    },
    "database": {"url": _is_db_url, "busy_timeout_ms": _is_positive},
    "smtp": {
        "enabled": _is_bool,
        "host": _is_str,
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
        "tls_cert_file": _is_str,
        "tls_key_file": _is_str,
        "require_starttls": _is_bool,
        "auth_users_file": _is_str,
        "auth_required": _is_bool,
        "auth_allow_plaintext": _is_bool,
    },
    "imap": {
        "name": _is_str,
        "enabled": _is_bool,
        "host": _is_str,
        "port": _is_port,
        "tls": _one_of("implicit", "starttls", "none"),
        "verify_certificate": _is_bool,
        "ca_file": _is_str,
        "username": _is_str,
        "password": _SECRET,
        "auth": _one_of("password", "oauth2"),
        "oauth2_token_file": _is_str,
        "oauth2_token_command": _is_str,
        "folder": _is_str,
        "processed_folder": _is_str,
        "failed_folder": _is_str,
        "idle": _is_bool,
        "poll_seconds": _is_positive,
        "batch_size": _is_positive,
        "escalation": _is_bool,
        "timeout_seconds": _is_positive,
        "max_message_size": _is_positive,
    },
    "outgoing": {
        "transport": _one_of("smtp", "maildir"),
        "maildir": _is_str,
        "host": _is_str,
        "port": _is_port,
        "tls": _one_of("none", "starttls", "implicit"),
        "verify_certificate": _is_bool,
        "username": _is_str,
        "password": _SECRET,
        "timeout_seconds": _is_positive,
        "retry_for_hours": _is_positive,
        "allow_plaintext_auth": _is_bool,
    },
    "paths": {"rules": _is_str, "templates": _is_str, "spool": _is_str},
    "agents": {
        "trust": _one_of("authentication-results", "none"),
        "trusted_authserv_ids": _is_str_list,
    },
    "limits": {"max_attachment_bytes": _is_positive, "max_parse_seconds": _is_positive},
    "logging": {
        "format": _one_of("logfmt", "json"),
        "level": _one_of("DEBUG", "INFO", "WARNING", "ERROR"),
    },
    "http": {"enabled": _is_bool, "host": _is_str, "port": _is_port},
}
_PATH_KEYS = {
    ("outgoing", "maildir"),
    ("paths", "rules"),
    ("paths", "templates"),
    ("paths", "spool"),
    ("imap", "ca_file"),
    ("imap", "oauth2_token_file"),
    ("smtp", "tls_cert_file"),
    ("smtp", "tls_key_file"),
    ("smtp", "auth_users_file"),
}
_LIST_KEYS = {
    "accept_from_networks",
    "escalation_addresses",
    "extra_addresses",
    "trusted_authserv_ids",
}


# --- locating keys in the text ------------------------------------------------

_TABLE_RE = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\" ]+?)\s*\]\]?\s*(#.*)?$")
_KEY_RE = re.compile(r"^\s*([A-Za-z0-9_\-]+)\s*=")


def _key_lines(text: str) -> dict[tuple[str, int, str], int]:
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


# --- loading -------------------------------------------------------------------


def find_config(explicit: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> Path | None:
    """SPEC §2: `-c PATH`, else $SPOCD_CONFIG, else ./spocd.toml, else none."""
    if explicit:
        return Path(explicit)
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV])
    local = Path(DEFAULT_NAME)
    return local if local.is_file() else None


def load_settings(path: Path | None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate a config file; None gives the embedded default."""
    environ = os.environ if environ is None else environ
    if path is None:
        return _absolutise(Settings(), Path.cwd(), {})
    try:
        text = read_config_file(path)
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc}"]) from exc
    return parse_settings(text, path, environ)


def parse_settings(text: str, path: Path, environ: Mapping[str, str]) -> Settings:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: {exc}"]) from exc
    lines = _key_lines(text)
    problems: list[str] = []

    def where(table: str, index: int, key: str) -> str:
        line = lines.get((table, index, key)) or lines.get((table, index, ""))
        return f"{path}:{line}" if line else str(path)

    sections: dict[str, list[dict[str, Any]]] = {}
    for name, value in data.items():
        if name not in SCHEMA:
            spot = where(name, 0, "") if (name, 0, "") in lines else where("", 0, name)
            problems.append(f"{spot}: {name}: unknown section")
            continue
        tables = value if isinstance(value, list) else [value]
        if name != "imap" and isinstance(value, list):
            problems.append(f"{where(name, 0, '')}: [[{name}]]: only [imap] may be repeated")
            continue
        if not all(isinstance(t, dict) for t in tables):
            problems.append(f"{where('', 0, name)}: {name}: must be a table")
            continue
        sections[name] = tables

    resolved: dict[str, list[dict[str, Any]]] = {}
    base = path.resolve().parent
    for name, tables in sections.items():
        resolved[name] = []
        for index, table in enumerate(tables):
            out: dict[str, Any] = {}
            for key, value in table.items():
                label = f"{name}.{key}" if len(tables) == 1 else f"{name}[{index}].{key}"
                spot = where(name, index, key)
                secret_base = key.removesuffix("_env").removesuffix("_file")
                schema = SCHEMA[name]
                if key not in schema and schema.get(secret_base) is _SECRET and key != secret_base:
                    secret, problem = _read_secret(key, value, environ, base)
                    if problem:
                        if _in_use(name, table):
                            problems.append(f"{spot}: {label}: {problem}")
                    else:
                        out[secret_base] = secret
                    continue
                check = schema.get(key)
                if check is None:
                    problems.append(f"{spot}: {label}: unknown key")
                    continue
                problem = _is_str(value) if check is _SECRET else check(value)
                if problem:
                    problems.append(f"{spot}: {label}: {problem}")
                    continue
                out[key] = value
            resolved[name].append(out)

    for index, table in enumerate(resolved.get("imap", [])):
        label = "imap" if len(resolved["imap"]) == 1 else f"imap[{index}]"
        for key, problem in _imap_problems(table, sections["imap"][index]):
            problems.append(f"{where('imap', index, key)}: {label}.{key}: {problem}")
    names = [t.get("name", f"imap{i}") for i, t in enumerate(resolved.get("imap", []))]
    if len(set(names)) != len(names):
        problems.append(
            f"{where('imap', 0, '')}: imap: mailbox names must be unique "
            "(give each [[imap]] a name)"
        )
    if "outgoing" in resolved:
        problems.extend(_check_outgoing(resolved["outgoing"][0], lambda k: where("outgoing", 0, k)))
    if "smtp" in resolved:
        problems.extend(_check_smtp(resolved["smtp"][0], base, lambda k: where("smtp", 0, k)))
    if problems:
        raise ConfigError(problems)
    return _build(resolved, path, base)


def _check_outgoing(table: dict[str, Any], where: Callable[[str], str]) -> list[str]:
    """A relay login in clear text is refused unless the relay is on this
    machine or the configuration says it knowingly."""
    plain = replace(OutgoingSettings(), **{k: table[k] for k in _LOGIN_KEYS if k in table})
    if not plain.plaintext_login or table.get("allow_plaintext_auth"):
        return []
    if _loopback(plain.host):
        return []
    return [
        f"{where('username')}: outgoing.username: the relay password would cross the "
        f'network in clear text: set outgoing.tls = "starttls" or "implicit" '
        "(or outgoing.allow_plaintext_auth = true)"
    ]


_LOGIN_KEYS = ("transport", "host", "tls", "username")


def _loopback(host: str) -> bool:
    """`localhost` or a loopback address (a name is not looked up)."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_smtp(table: dict[str, Any], base: Path, where: Callable[[str], str]) -> list[str]:
    """The [smtp] keys that only work together; reads the AUTH users file."""
    problems: list[str] = []
    cert, key = table.get("tls_cert_file"), table.get("tls_key_file")
    if (cert is None) != (key is None):
        have, lack = (
            ("tls_cert_file", "tls_key_file") if key is None else ("tls_key_file", "tls_cert_file")
        )
        problems.append(f"{where(have)}: smtp.{have}: needs smtp.{lack} as well")
    for name in ("tls_cert_file", "tls_key_file"):
        value = table.get(name)
        if value is not None and not _under(base, value).is_file():
            problems.append(f"{where(name)}: smtp.{name}: {_under(base, value)}: no such file")
    tls = cert is not None and key is not None
    if table.get("require_starttls") and not tls:
        problems.append(
            f"{where('require_starttls')}: smtp.require_starttls: "
            "needs smtp.tls_cert_file and smtp.tls_key_file"
        )
    users_file = table.get("auth_users_file")
    if table.get("auth_required") and users_file is None:
        problems.append(f"{where('auth_required')}: smtp.auth_required: needs smtp.auth_users_file")
    if users_file is None:
        return problems
    if not tls and not table.get("auth_allow_plaintext"):
        problems.append(
            f"{where('auth_users_file')}: smtp.auth_users_file: AUTH would carry passwords "
            "in clear text: set smtp.tls_cert_file and smtp.tls_key_file "
            "(or smtp.auth_allow_plaintext = true for a loopback-only listener)"
        )
    users_path = _under(base, users_file)
    try:
        text = read_config_file(users_path)
    except OSError as exc:
        problems.append(f"{where('auth_users_file')}: smtp.auth_users_file: cannot read: {exc}")
        return problems
    users, bad = passwords.parse_users(text)
    problems.extend(f"{users_path}:{line}: {problem}" for line, problem in bad)
    if not users and not bad:
        problems.append(
            f"{where('auth_users_file')}: smtp.auth_users_file: {users_path} lists no users"
        )
    table["auth_users"] = tuple(sorted(users.items()))
    return problems


def _under(base: Path, value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else base / path


def _in_use(section: str, table: dict[str, Any]) -> bool:
    """A disabled mailbox or an unused relay may name a secret that is absent."""
    if section == "imap":
        return table.get("enabled") is True
    if section == "outgoing":
        return table.get("transport") == "smtp"
    return True


def _imap_problems(table: dict[str, Any], given: dict[str, Any]) -> list[tuple[str, str]]:
    """What makes an enabled mailbox unusable, by the key to fix.

    A disabled mailbox may be incomplete (the starter file has one), so a
    missing password stops nothing until the mailbox is switched on.
    """
    if table.get("enabled") is not True:
        return []
    out: list[tuple[str, str]] = []
    auth = table.get("auth", "password")
    if auth == "password" and table.get("password") is None:
        secret_keys = [k for k in ("password", "password_env", "password_file") if k in given]
        if not secret_keys:
            out.append(("password", 'required when auth = "password" (or password_env / _file)'))
    if auth == "oauth2":
        sources = [k for k in ("oauth2_token_file", "oauth2_token_command") if k in table]
        if len(sources) != 1:
            out.append(
                (
                    sources[-1] if sources else "auth",
                    'auth = "oauth2" needs exactly one of oauth2_token_file, oauth2_token_command',
                )
            )
    folder = table.get("folder", "INBOX")
    for key in ("processed_folder", "failed_folder"):
        default = getattr(ImapMailbox(), key)
        if table.get(key, default).strip("/").lower() == folder.strip("/").lower():
            out.append((key, f"must differ from folder ({folder!r}): messages are moved out of it"))
    return out


def _read_secret(
    key: str, value: Any, environ: Mapping[str, str], base: Path
) -> tuple[str | None, str | None]:
    if not isinstance(value, str):
        return None, "must be a string"
    if key.endswith("_env"):
        if value not in environ:
            return None, f"environment variable {value} is not set"
        return environ[value], None
    secret_path = Path(value) if Path(value).is_absolute() else base / value
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    if not secret_path.exists() and credentials and "/" not in value:
        secret_path = Path(credentials) / value  # systemd LoadCredential=
    try:
        return read_config_file(secret_path).rstrip("\r\n"), None
    except OSError as exc:
        return None, f"cannot read {secret_path}: {exc.strerror or exc}"


def _build(resolved: dict[str, list[dict[str, Any]]], path: Path, base: Path) -> Settings:
    def one(name: str, cls: type) -> Any:
        tables = resolved.get(name) or [{}]
        return cls(**_convert(name, tables[0]))

    mailboxes = tuple(
        ImapMailbox(
            **{"name": t.get("name", "default" if i == 0 else f"imap{i}"), **_convert("imap", t)}
        )
        for i, t in enumerate(resolved.get("imap", []))
    )
    settings = Settings(
        helpdesk=one("helpdesk", HelpdeskSettings),
        database=one("database", DatabaseSettings),
        smtp=one("smtp", SmtpSettings),
        imap=mailboxes,
        outgoing=one("outgoing", OutgoingSettings),
        paths=one("paths", PathsSettings),
        agents=one("agents", AgentsSettings),
        limits=one("limits", LimitsSettings),
        logging=one("logging", LoggingSettings),
        http=one("http", HttpSettings),
        source=path.resolve(),
        base_dir=base,
    )
    return _absolutise(settings, base, resolved)


def _convert(section: str, table: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in table.items():
        if (section, key) in _PATH_KEYS:
            value = Path(value)
        elif key in _LIST_KEYS:
            value = tuple(value)
        elif key in ("address",):
            value = value.lower()
        out[key] = value
    if section == "smtp":
        for key in ("escalation_addresses", "extra_addresses"):
            if key in out:
                out[key] = tuple(a.lower() for a in out[key])
    return out


def _absolutise(settings: Settings, base: Path, resolved: dict[str, Any]) -> Settings:
    """Relative paths (and SQLite files) are relative to the config's folder."""

    def absolute(p: Path) -> Path:
        return p if p.is_absolute() else (base / p)

    url = settings.database.url
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        rest = url.removeprefix("sqlite:///")
        if rest and rest != ":memory:":
            url = "sqlite:///" + str(absolute(Path(rest)))
    mailboxes = tuple(
        replace(
            m,
            ca_file=absolute(m.ca_file) if m.ca_file else None,
            oauth2_token_file=absolute(m.oauth2_token_file) if m.oauth2_token_file else None,
            max_message_size=m.max_message_size or settings.smtp.max_message_size,
        )
        for m in settings.imap
    )
    smtp = settings.smtp
    return replace(
        settings,
        base_dir=base,
        database=replace(settings.database, url=url),
        smtp=replace(
            smtp,
            tls_cert_file=absolute(smtp.tls_cert_file) if smtp.tls_cert_file else None,
            tls_key_file=absolute(smtp.tls_key_file) if smtp.tls_key_file else None,
            auth_users_file=absolute(smtp.auth_users_file) if smtp.auth_users_file else None,
        ),
        outgoing=replace(settings.outgoing, maildir=absolute(settings.outgoing.maildir)),
        paths=replace(
            settings.paths,
            rules=absolute(settings.paths.rules),
            templates=absolute(settings.paths.templates),
            spool=absolute(settings.paths.spool),
        ),
        imap=mailboxes,
    )
