"""Pure mail knowledge: parsing raw bytes, MIME cutting, spocd's Message-IDs,
threading, first-line forwards, bounces, loops, Authentication-Results trust,
verification answers and the pure plan of the IMAP intake.

Works on bytes and strings handed to it; no I/O. May import `daemon.core`.
"""
