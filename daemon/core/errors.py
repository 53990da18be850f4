"""Exceptions that carry a disposition: each names what happens to the input.

The pipeline catches them in one place and maps them to an outcome (quarantine,
ignore, retry), the way Mailman and Roundup end a message's journey.
"""

from __future__ import annotations


class SpocdError(Exception):
    """Base of every error spocd raises on purpose."""


class ConfigError(SpocdError):
    """The configuration is invalid; `problems` lists every finding."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class NotMail(SpocdError):
    """The input is not an RFC 5322 message: it is quarantined whole."""


class Disposition(SpocdError):
    """Ends the processing of one message with a recorded outcome."""

    outcome = "done"


class Duplicate(Disposition):
    """The Message-ID is already stored: nothing changes."""

    outcome = "duplicate"


class Ignored(Disposition):
    """Stored but opens no ticket and answers nothing (a rule said ignore)."""

    outcome = "ignored"


class Quarantined(Disposition):
    """Kept whole with its reason, touching no ticket (policy refused it)."""

    outcome = "quarantined"


class TemporaryFailure(SpocdError):
    """Storage or a peer is unavailable: the caller should retry later."""
