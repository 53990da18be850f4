"""Pure decisions: domain values, errors, the ticket lifecycle, agent commands,
business time and SLA arithmetic, quoted-text handling, password hashes.

No I/O and no clock of its own. May import the standard library and `daemon.core`.
"""
