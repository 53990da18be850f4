"""Settings: spocd.toml found, read and validated into frozen dataclasses.

`settings` holds the dataclasses, `schema` the keys and their checks, `load`
finds and reads the file, `files` reads any config file within bounds (and
creates spocd's own files private). May import `daemon.core` only; every layer
above reads settings from here, never from a file of its own.
"""

_FROM = {
    "CONFIG_ENV": "load",
    "DEFAULT_NAME": "load",
    "find_config": "load",
    "listener_problems": "load",
    "load_settings": "load",
    "parse_settings": "load",
}


def __getattr__(name: str) -> object:
    """Imported on first use: `daemon.config.files` (the spool writer of the
    MTA pipe) must not pay for building the settings classes."""
    import importlib

    module = importlib.import_module(f"daemon.config.{_FROM.get(name, 'settings')}")
    try:
        return getattr(module, name)
    except AttributeError:
        raise AttributeError(f"module 'daemon.config' has no attribute {name!r}") from None


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
    "listener_problems",
    "load_settings",
    "parse_settings",
]
