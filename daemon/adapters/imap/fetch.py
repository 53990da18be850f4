"""Fetching message bodies one UID at a time, in batches measured by the
bytes actually received.

A server's RFC822.SIZE is only a hint: the batch is closed by what arrived,
so under-reported sizes cannot put six 50 MB messages into one batch. One
FETCH per UID also tells exactly which message the server did not deliver,
answered for another UID, or sent larger than the size cap (`ReadGuard`
reads such a literal into nowhere).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from daemon.adapters.imap.guard import ReadGuard


@dataclass(frozen=True, slots=True)
class Fetched:
    """What one FETCH of one UID gave: the body, or why not."""

    uid: int
    raw: bytes | None = None
    too_large: int | None = None  # the size of a body over the cap
    answered: tuple[int, ...] = ()  # UIDs the server answered for instead

    @property
    def missing(self) -> bool:
        return self.raw is None and self.too_large is None


def fetch_one(client: Any, guard: ReadGuard, uid: int) -> Fetched:
    before = len(guard.oversized)
    fetched = client.fetch([uid], ["BODY.PEEK[]"])
    if len(guard.oversized) > before:
        return Fetched(uid, too_large=guard.oversized[-1])
    raw = fetched.get(uid, {}).get(b"BODY[]")
    if raw is None:
        return Fetched(uid, answered=tuple(sorted(u for u in fetched if u != uid)))
    return Fetched(uid, raw=bytes(raw))


def fetch_batches(
    client: Any,
    guard: ReadGuard,
    uids: Iterable[int],
    *,
    max_count: int,
    max_bytes: int,
    go_on: Callable[[], bool],
) -> Iterator[tuple[list[tuple[int, bytes]], list[Fetched]]]:
    """(bodies, troubles) per batch: at most `max_count` bodies and, but for a
    single larger one, `max_bytes` of them; stops early when `go_on()` says."""
    bodies: list[tuple[int, bytes]] = []
    troubles: list[Fetched] = []
    size = 0
    for uid in uids:
        if not go_on():
            break
        got = fetch_one(client, guard, uid)
        if got.raw is None:
            troubles.append(got)
            continue
        bodies.append((uid, got.raw))
        size += len(got.raw)
        del got
        if len(bodies) >= max_count or size >= max_bytes:
            yield bodies, troubles
            bodies, troubles, size = [], [], 0
    if bodies or troubles:
        yield bodies, troubles
