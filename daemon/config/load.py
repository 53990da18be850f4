"""`spocd.toml`: found, read, validated into frozen settings.

Every error names the key and the line it is on, and all errors are reported
at once, so an admin fixes the file in one go. Secrets come from the file, an
environment variable (`*_env`) or a file of their own (`*_file`, e.g. a systemd
credential).
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from daemon.config.files import read_config_file
from daemon.config.schema import LIST_KEYS, PATH_KEYS, SCHEMA, SECRET, is_str, key_lines
from daemon.config.settings import (
    AgentsSettings,
    DatabaseSettings,
    HelpdeskSettings,
    HttpSettings,
    ImapMailbox,
    LimitsSettings,
    LoggingSettings,
    OutgoingSettings,
    PathsSettings,
    Settings,
    SmtpSettings,
)
from daemon.config.spool_only import CONFIG_ENV, DEFAULT_NAME
from daemon.core.errors import ConfigError

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
    data = read_toml(text, path)
    lines = key_lines(text)
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
                if key not in schema and schema.get(secret_base) is SECRET and key != secret_base:
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
                problem = is_str(value) if check is SECRET else check(value)
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
    outgoing = resolved.get("outgoing", [{}])[0]
    problems.extend(_maildir_problem(outgoing, base, lambda k: where("outgoing", 0, k)))
    if "smtp" in resolved:
        problems.extend(_check_smtp(resolved["smtp"][0], base, lambda k: where("smtp", 0, k)))
    if "http" in resolved:
        problems.extend(_check_http(resolved["http"][0], base, lambda k: where("http", 0, k)))
    if problems:
        raise ConfigError(problems)
    return _build(resolved, path, base)


def listener_problems(settings: Settings) -> list[str]:
    """What `spocd run` cannot start with though every other command can:
    smtp.port = 0 binds a port no MTA knows (and the start-up check then
    said "Connection refused"). Scratch desks that never listen (tests,
    `spocd bench`) write port 0, so only the listener refuses it."""
    if not settings.smtp.enabled or settings.smtp.port != 0:
        return []
    spot = str(settings.source) if settings.source else "spocd.toml"
    if settings.source is not None:
        try:
            line = key_lines(read_config_file(settings.source)).get(("smtp", 0, "port"))
        except OSError:
            line = None
        spot = f"{spot}:{line}" if line else spot
    return [
        f"{spot}: smtp.port: 0 is no port an MTA can send to: set the listener's port "
        "(2525 by default) or smtp.enabled = false"
    ]


def read_toml(text: str, path: Path) -> dict[str, Any]:
    """The parsed file, or ConfigError saying why not.

    tomllib parses nested arrays and tables by recursion: a value nested a few
    thousand deep raised RecursionError, a traceback from every command."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: {exc}"]) from exc
    except RecursionError:
        raise ConfigError([f"{path}: a value is nested too deeply to read"]) from None


def _maildir_problem(table: dict[str, Any], base: Path, where: Callable[[str], str]) -> list[str]:
    """A Maildir outbox that can never be made: the path, or a folder on the
    way to it, is a file (each mail then failed with a traceback)."""
    defaults = OutgoingSettings()
    if table.get("transport", defaults.transport) != "maildir":
        return []
    blocker = _not_a_folder(_under(base, table.get("maildir", str(defaults.maildir))))
    if blocker is None:
        return []
    return [f"{where('maildir')}: outgoing.maildir: {blocker} exists and is not a folder"]


def _not_a_folder(path: Path) -> Path | None:
    """The first existing path on the way to `path` (itself included) that is
    not a folder, or None when a folder can be made there."""
    for step in (path, *path.parents):
        if os.path.exists(step):
            return None if os.path.isdir(step) else step
        if os.path.lexists(step):
            return step  # a dangling link: nothing can be made through it
    return None


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
    from daemon.core import passwords  # hashlib and secrets: only with a users file

    users, bad = passwords.parse_users(text)
    problems.extend(f"{users_path}:{line}: {problem}" for line, problem in bad)
    if not users and not bad:
        problems.append(
            f"{where('auth_users_file')}: smtp.auth_users_file: {users_path} lists no users"
        )
    table["auth_users"] = tuple(sorted(users.items()))
    return problems


def _check_http(table: dict[str, Any], base: Path, where: Callable[[str], str]) -> list[str]:
    """The SLA board shows requesters and subjects: off loopback it needs a
    login (a users file, or a trusted authenticating proxy)."""
    problems: list[str] = []
    cert, key = table.get("tls_cert_file"), table.get("tls_key_file")
    if (cert is None) != (key is None):
        have, lack = (
            ("tls_cert_file", "tls_key_file") if key is None else ("tls_key_file", "tls_cert_file")
        )
        problems.append(f"{where(have)}: http.{have}: needs http.{lack} as well")
    for name in ("tls_cert_file", "tls_key_file"):
        value = table.get(name)
        if value is not None and not _under(base, value).is_file():
            problems.append(f"{where(name)}: http.{name}: {_under(base, value)}: no such file")
    for value in table.get("trusted_proxies", ()):
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            problems.append(
                f"{where('trusted_proxies')}: http.trusted_proxies: {value!r} is not an "
                "address or network"
            )
    header = table.get("trusted_proxy_header")
    if header is not None and not table.get("trusted_proxies"):
        problems.append(
            f"{where('trusted_proxy_header')}: http.trusted_proxy_header: needs "
            "http.trusted_proxies (the proxies whose header is believed)"
        )
    users_file = table.get("users_file")
    if users_file is not None:
        from daemon.core import passwords  # hashlib and secrets: only with a users file

        users_path = _under(base, users_file)
        try:
            users, bad = passwords.parse_users(read_config_file(users_path))
        except OSError as exc:
            problems.append(f"{where('users_file')}: http.users_file: cannot read: {exc}")
            users, bad = {}, []
        problems.extend(f"{users_path}:{line}: {problem}" for line, problem in bad)
        if not users and not bad:
            problems.append(f"{where('users_file')}: http.users_file: {users_path} lists no users")
        table["users"] = tuple(sorted(users.items()))
    host = table.get("host", HttpSettings().host)
    if table.get("enabled") and not _loopback(host) and users_file is None and header is None:
        problems.append(
            f"{where('host')}: http.host: {host!r} is not a loopback address and the SLA "
            "board shows requesters and subjects: set http.users_file (HTTP Basic) or "
            "http.trusted_proxy_header with http.trusted_proxies (an authenticating proxy), "
            'or bind http.host = "127.0.0.1"'
        )
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
    if "\0" in value:
        return None, "must not contain a NUL character"
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
        if (section, key) in PATH_KEYS:
            value = Path(value)
        elif key in LIST_KEYS:
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
        http=replace(
            settings.http,
            users_file=absolute(settings.http.users_file) if settings.http.users_file else None,
            tls_cert_file=absolute(settings.http.tls_cert_file)
            if settings.http.tls_cert_file
            else None,
            tls_key_file=absolute(settings.http.tls_key_file)
            if settings.http.tls_key_file
            else None,
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
