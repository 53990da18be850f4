"""Reading the operator's files (config, rules, templates) without trusting them.

A FIFO, a device or a multi-gigabyte file put where `rules.yaml` belongs must
not block or swamp the daemon: every reader goes through `read_config_file`,
which opens without blocking, accepts only a regular file, and reads at most
`limit` bytes within `timeout` seconds. Anything else is refused with the
reason, and a running daemon keeps the files it has.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from typing import BinaryIO

#: Far above any real config, rules file or template; far below a memory problem.
MAX_CONFIG_BYTES = 4 * 1024 * 1024
#: A regular file is read at disk speed; a stuck network mount is not waited for.
READ_TIMEOUT = 5.0
_CHUNK = 64 * 1024

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class FileRefused(OSError):
    """The file is not something spocd reads as configuration; `str()` says why."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(reason)
        self.filename = os.fspath(path)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


def _kind(mode: int) -> str:
    return next((name for check, name in _KINDS if check(mode)), "not a regular file")


def read_config_bytes(
    path: str | os.PathLike[str], limit: int = MAX_CONFIG_BYTES, timeout: float = READ_TIMEOUT
) -> bytes:
    """The whole content of a regular file of at most `limit` bytes.

    O_NONBLOCK makes opening a FIFO return at once (instead of waiting for a
    writer); fstat on the open descriptor then decides, so a swap between a
    check and the open cannot slip a FIFO or a device through.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise FileRefused(path, f"not a regular file ({_kind(mode)})")
        deadline = time.monotonic() + timeout
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(_CHUNK, limit + 1 - size))
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            size += len(chunk)
            if time.monotonic() > deadline:
                raise FileRefused(path, f"not read within {timeout:g} s")
        raise FileRefused(path, f"larger than {limit} bytes")
    finally:
        os.close(fd)


def read_config_file(
    path: str | os.PathLike[str], limit: int = MAX_CONFIG_BYTES, timeout: float = READ_TIMEOUT
) -> str:
    """`read_config_bytes` decoded as UTF-8 (a decoding error says where)."""
    raw = read_config_bytes(path, limit, timeout)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileRefused(path, f"not UTF-8 text (byte {exc.start})") from None


# --- what spocd writes: private to its user, whatever the umask -------------------
# The database holds every mail and the HMAC key; the spool and the Maildir
# outbox hold mail. Under umask 022 they were world-readable outside systemd.


def private_dirs(path: str | os.PathLike[str]) -> None:
    """`mkdir -p` where each folder created is 0700; existing ones are left as
    they are (they may be the operator's, such as a home directory)."""
    missing: list[str] = []
    current = os.path.abspath(path)
    while not os.path.lexists(current):
        missing.append(current)
        current = os.path.dirname(current)
    for folder in reversed(missing):
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            continue  # made meanwhile by someone else: theirs to set
        os.chmod(folder, 0o700)  # the umask may have taken bits we want


def open_private(path: str | os.PathLike[str], *, exclusive: bool = False) -> BinaryIO:
    """A file opened for writing, created 0600 (truncated if it exists, unless
    `exclusive`, where an existing file is FileExistsError)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)
        return os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise


def create_private(path: str | os.PathLike[str]) -> None:
    """An empty file created 0600 if none is there (a SQLite database: its
    -wal and -shm files then take the same mode)."""
    with contextlib.suppress(FileExistsError):
        open_private(path, exclusive=True).close()
