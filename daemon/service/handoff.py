"""What a delivery helper does with a claimed batch: hand it to an idempotent
transport and make it durable, with no database work and a plain result.

Apart from `sender` and `delivery` so a helper loads only this, the Maildir
transport and the addresses' rules: batch ingest forks its helpers before the
rest of spocd is loaded, and a helper unpickling its first job would
otherwise load the pipeline's modules for nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from daemon.adapters.maildir import MaildirTransport
from daemon.app.notify import writable
from daemon.ports import OutboxItem, Transport, TransportError

#: What became of a batch: ids delivered; (id, error, permanent) for the rest.
Delivered = tuple[list[int], list[tuple[int, str, bool]]]


def deliver_batch(transport: Transport, envelope_from: str, batch: list[OutboxItem]) -> Delivered:
    """Hand a batch to an idempotent transport and make it durable. No
    database work and a plain result, so it can run in another process."""
    delivered: list[int] = []
    errors: list[tuple[int, str, bool]] = []
    for item in batch:
        # the sender screened the recipients (`OutboxSender._screen`)
        wire = tuple(w for w in map(writable, item.recipients) if w is not None)
        if wire != item.recipients:
            item = replace(item, recipients=wire)
        try:
            transport.send(item, envelope(envelope_from))
        except TransportError as exc:
            errors.append((item.id, str(exc), exc.permanent))
            continue
        delivered.append(item.id)
    if delivered:
        try:
            transport.flush()
        except TransportError as exc:
            errors.extend((item_id, str(exc), exc.permanent) for item_id in delivered)
            delivered = []
    return delivered, errors


def envelope(address: str) -> str:
    """Our own address in the envelope: as written in mail (an IDN domain as
    A-labels); one that cannot be is left to the transport to refuse."""
    return writable(address) or address


def maildir_job(maildir: Path, envelope_from: str) -> Callable[[list[OutboxItem]], Delivered]:
    """A helper's job: write a claimed batch into `maildir` and make it
    durable (picklable, for a spawned helper as for a forked one)."""
    return functools.partial(_write, str(maildir), envelope_from)


#: The helper's own transport, made at its first batch.
_TRANSPORT: MaildirTransport | None = None


def _write(maildir: str, envelope_from: str, batch: list[OutboxItem]) -> Delivered:
    global _TRANSPORT
    if _TRANSPORT is None or str(_TRANSPORT.root) != maildir:
        _TRANSPORT = MaildirTransport(Path(maildir))
    return deliver_batch(_TRANSPORT, envelope_from, batch)
