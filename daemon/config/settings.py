"""The frozen settings of spocd.toml: one dataclass per section.

Built by `daemon.config.load`; every other layer reads them and never a file.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path


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
    auth_users_file: Path | None = None  # `user:hash` lines (daemon.core.passwords)
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
    #: Attachments one outgoing mail carries at most; the rest it lists.
    max_outgoing_attachment_bytes: int = 10 * 1024 * 1024
    #: CPU seconds parsing and sanitising one message may take; past it the
    #: message is quarantined with the reason (one mail never holds intake).
    max_parse_seconds: int = 10
    #: `spocd run` parses and decides in a helper process, beside the one
    #: that accepts mail (off: in the daemon's own process).
    parser_process: bool = True
    #: `spocd run` writes outgoing mail into the Maildir from a helper process.
    delivery_process: bool = True


@dataclass(frozen=True, slots=True)
class LoggingSettings:
    format: str = "logfmt"  # "logfmt" | "json"
    level: str = "INFO"


@dataclass(frozen=True, slots=True)
class HttpSettings:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 9325
    #: Who may see the SLA board off loopback: `user:hash` lines (HTTP Basic) ...
    users_file: Path | None = None
    users: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # from users_file
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    #: ... or a header naming the user, set by an authenticating reverse proxy
    #: and believed only from `trusted_proxies` (addresses or networks).
    trusted_proxy_header: str | None = None
    trusted_proxies: tuple[str, ...] = ()


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
