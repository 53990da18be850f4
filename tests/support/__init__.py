"""Helpers shared by the tests: clocks, mail builders, a capturing SMTP relay."""
