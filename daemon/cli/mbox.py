"""The messages of an mbox file, as `mailbox.mbox` splits them, read in blocks.

`mailbox.mbox` finds the messages by reading the file a line at a time, with
a `tell()` (a system call) before every line: a 600-message mailbox of 1.9 MB
is 45,000 lines and 45,000 calls, 25 ms before the first message is queued.
Here the file is read a megabyte at a time and the lines that begin a message
are found with `bytes.find`. The split is `mailbox.mbox`'s to the byte: a
message begins after each line that starts with `From `; the blank line
before the next such line is the separator, not the message's; what comes
before the first such line belongs to no message. A message longer than the
limit is skipped without being held in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

BLOCK = 1 << 20
_START = b"\nFrom "
_TAIL = len(_START) - 1  # bytes at the end of a block that may begin a separator

# what is being read: bytes before the first "From " line, a "From " line, a message
_BEFORE, _FROM_LINE, _MESSAGE = range(3)


def mbox_messages(fh: BinaryIO, limit: int, block: int = BLOCK) -> Iterator[bytes | None]:
    """Each message's bytes without its `From ` line, or None for one of more
    than `limit` bytes; memory holds at most `limit` and two blocks."""
    buf = bytearray(b"\n")  # as if a line ended before the file: a "From " there begins one
    pos = 0  # where the bytes not yet given begin
    scan = 0  # where to look next (no separator begins before it)
    eof = False
    state = _BEFORE
    dropped = False  # the message under way is over the limit: its bytes are let go
    while True:
        found = buf.find(b"\n" if state == _FROM_LINE else _START, scan)
        if found < 0 and not eof:
            tail = max(scan, len(buf) - _TAIL)  # where a separator may still begin
            if state == _MESSAGE and tail - pos > limit:
                dropped = True  # what is surely the message's is already too long
            if state == _FROM_LINE:
                tail = len(buf)  # only the line's end is looked for
            keep = min(pos, tail) if state == _MESSAGE and not dropped else tail
            chunk = fh.read(block)
            eof = not chunk
            del buf[:keep]  # in place: a long message is not copied at every block
            buf += chunk
            pos, scan = max(0, pos - keep), tail - keep
            continue
        if state == _FROM_LINE:
            if found < 0:  # the file ends within the "From " line: an empty message
                yield b""
                return
            state, dropped = _MESSAGE, False
            pos = found + 1
            scan = found  # its "\n" may begin the next separator (an empty message)
            continue
        end = found + 1 if found >= 0 else len(buf)  # a message ends with its last "\n"
        if state == _MESSAGE:
            yield None if dropped else _without_separator(bytes(memoryview(buf)[pos:end]), limit)
        if found < 0:
            return
        state = _FROM_LINE
        pos = scan = found + 1


def _without_separator(message: bytes, limit: int) -> bytes | None:
    """The message without the blank line that separates it from the next
    (for `mailbox.mbox`, only a line that is exactly "\\n")."""
    if message == b"\n" or message.endswith(b"\n\n"):
        message = message[:-1]
    return message if len(message) <= limit else None
