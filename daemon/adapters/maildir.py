"""The local Maildir transport (the SMTP relay is `relay`).

The Maildir transport names each file after the outbox row and Message-ID, so
sending the same row again after a crash finds the file already delivered.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from daemon.config.files import open_private, private_dirs
from daemon.mail.headers import fold_list
from daemon.ports import OutboxItem, Refusal, TransportError


@functools.cache
def _syncfs() -> Callable[[int], int] | None:
    """Linux's syncfs(2): one flush of a whole file system, in place of one
    fsync per file (which costs a journal commit each). Looked up once, in the
    C library already loaded (`ctypes.util.find_library` would run ldconfig)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.syncfs  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


class MaildirTransport:
    """Writes each mail as a file of its own into a Maildir.

    A batch is written, then made durable at once (`flush`), and only then is
    it recorded as sent. The file name comes from the outbox row, so a row sent
    again after a crash finds its complete file and is not delivered twice; a
    file cut short by the crash is written again.
    """

    idempotent = True

    def __init__(self, root: Path) -> None:
        self.root = root
        for sub in ("tmp", "new", "cur"):
            private_dirs(root / sub)
        self._written: list[Path] = []
        self._syncfs = _syncfs()

    def _name(self, item: OutboxItem) -> str:
        digest = hashlib.sha256(item.message_id.encode()).hexdigest()[:16]
        return f"{item.id:010d}.{digest}.spocd"

    def send(self, item: OutboxItem, envelope_from: str) -> list[Refusal]:
        name = self._name(item)
        content = (
            f"Return-Path: <{envelope_from}>\r\n"
            f"X-Original-To: {fold_list('X-Original-To', item.recipients)}\r\n"
        ).encode() + item.raw
        for done in (self.root / "new" / name, self.root / "cur" / f"{name}:2,"):
            with contextlib.suppress(OSError):
                if done.stat().st_size == len(content):
                    return []  # delivered before a crash kept us from recording it
        tmp = self.root / "tmp" / name
        try:
            with open_private(tmp) as fh:
                fh.write(content)
            final = self.root / "new" / name
            os.rename(tmp, final)
        except OSError as exc:
            raise TransportError(f"maildir {self.root}: {exc.strerror or exc}") from exc
        self._written.append(final)
        return []

    def flush(self) -> None:
        """Make the batch durable before anyone records it as sent."""
        written, self._written = self._written, []
        if not written:
            return
        try:
            dir_fd = os.open(self.root / "new", os.O_RDONLY)
            try:
                if self._syncfs is None or self._syncfs(dir_fd) != 0:
                    for path in written:
                        with open(path, "rb") as fh:
                            os.fsync(fh.fileno())
                    os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise TransportError(f"maildir {self.root}: {exc.strerror or exc}") from exc

    def abort(self) -> None:
        pass  # a local write: it finishes promptly

    def close(self) -> None:
        pass
