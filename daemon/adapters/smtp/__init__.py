"""SMTP intake (aiosmtpd): check the client, the recipients and the size,
commit the raw bytes to the inbound queue, and only then answer 250.

Commits are grouped: a writer thread takes every message that arrived while
the previous commit ran and commits them together, so many concurrent
clients cost one fsync per group, and each still hears 250 only after its
own bytes are on disk.

The listener is on the open network's edge, so every resource a client can
take is bounded (`[smtp]`): message size, recipients, line length,
concurrent connections per client address, idle time per command, AUTH
attempts per connection. STARTTLS and AUTH (users with salted hashes,
`daemon.core.passwords`) are optional; AUTH is offered only over TLS unless the
admin allows plain text for a loopback listener.
"""
