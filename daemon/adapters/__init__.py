"""The only code that does I/O: the database (`storage/`), the SMTP listener,
the IMAP intake (`imap/`), the spool, outgoing transports, templates, the HTTP
endpoint, systemd notification and logs.

Each implements a Protocol of `daemon.ports`; none imports the application.
May import `daemon.core`, `daemon.mail`, `daemon.rules.ruleset`, `daemon.ports` and
`daemon.config`.
"""
