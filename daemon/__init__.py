"""spocd: an email-driven IT service desk daemon (single point of contact)."""

__version__ = "0.1.0"
