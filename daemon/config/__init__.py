"""Settings: spocd.toml found, read and validated into frozen dataclasses.

`settings` holds the dataclasses, `schema` the keys and their checks, `load`
finds and reads the file, `files` reads any config file within bounds (and
creates spocd's own files private). May import `daemon.core` only; every layer
above reads settings from here, never from a file of its own.
"""

from daemon.config.load import CONFIG_ENV, DEFAULT_NAME, find_config, load_settings, parse_settings
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

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_NAME",
    "AgentsSettings",
    "DatabaseSettings",
    "HelpdeskSettings",
    "HttpSettings",
    "ImapMailbox",
    "LimitsSettings",
    "LoggingSettings",
    "OutgoingSettings",
    "PathsSettings",
    "Settings",
    "SmtpSettings",
    "find_config",
    "load_settings",
    "parse_settings",
]
