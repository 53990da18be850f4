"""mbox files split as `mailbox.mbox` splits them, a block at a time, in bounded memory."""

from __future__ import annotations

import io
import mailbox
import tracemalloc
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.cli.mbox import mbox_messages

PIECES = [
    b"From ",
    b"From a@example.com Mon Dec  7 04:00:00 2026\n",
    b"\n",
    b"\n\n",
    b"\r\n",
    b">From quoted\n",
    b"F",
    b"rom ",
    b"Subject: hello\n",
    b"body text\n",
    b"x",
]


def as_mailbox_reads(path: Path, limit: int) -> list[bytes | None]:
    """What `spocd ingest` read with `mailbox.mbox`: each message, or None over the limit."""
    box = mailbox.mbox(str(path), factory=None, create=False)
    try:
        out: list[bytes | None] = []
        for key in box.keys():  # noqa: SIM118 (a mailbox iterates over messages)
            with box.get_file(key) as fh:
                raw = fh.read(limit + 1)
            out.append(None if len(raw) > limit else raw)
        return out
    finally:
        box.close()


@settings(max_examples=1500, deadline=None)
@given(
    data=st.lists(st.sampled_from(PIECES), max_size=30).map(b"".join),
    limit=st.integers(min_value=0, max_value=60),
    block=st.one_of(st.integers(min_value=1, max_value=9), st.just(1 << 20)),
)
def test_messages_are_split_as_mailbox_splits_them(
    tmp_path_factory: object, data: bytes, limit: int, block: int
) -> None:
    path = tmp_path_factory.mktemp("mbox") / "box"  # type: ignore[attr-defined]
    path.write_bytes(data)
    assert list(mbox_messages(io.BytesIO(data), limit, block)) == as_mailbox_reads(path, limit)


def test_the_blank_line_before_the_next_from_line_is_not_the_messages() -> None:
    box = (
        b"From a@example.com Mon Dec  7 04:00:00 2026\nSubject: one\n\nfirst\n\n"
        b"From b@example.com Mon Dec  7 04:01:00 2026\nSubject: two\n\nsecond\n"
        b">From the quoted line\n\n"
    )
    assert list(mbox_messages(io.BytesIO(box), 1000)) == [
        b"Subject: one\n\nfirst\n",
        b"Subject: two\n\nsecond\n>From the quoted line\n",
    ]


class Endless(io.RawIOBase):
    """`size` bytes made as they are read: a mailbox larger than memory would hold."""

    def __init__(self, head: bytes, filler: bytes, size: int, tail: bytes) -> None:
        self.head, self.filler, self.left, self.tail = head, filler, size, tail

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self.head:
            data, self.head = self.head[: len(buffer)], self.head[len(buffer) :]
        elif self.left > 0:
            data = (self.filler * (len(buffer) // len(self.filler) + 1))[
                : min(len(buffer), self.left)
            ]
            self.left -= len(data)
        else:
            data, self.tail = self.tail[: len(buffer)], self.tail[len(buffer) :]
        buffer[: len(data)] = data
        return len(data)


def read_measured(stream: io.BufferedReader) -> tuple[list[bytes | None], int]:
    """The messages of `stream` (a 1 MiB limit, 64 KiB blocks) and the peak of
    memory allocated while reading them."""
    tracemalloc.start()
    try:
        messages = list(mbox_messages(stream, 1 << 20, block=64 << 10))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return messages, peak


def test_a_message_over_the_limit_is_skipped_without_being_held() -> None:
    stream = io.BufferedReader(
        Endless(
            b"From a@example.com Mon Dec  7 04:00:00 2026\nSubject: huge\n\n",
            b"0123456789abcdef\n",
            64 << 20,
            b"\nFrom b@example.com Mon Dec  7 04:01:00 2026\nSubject: next\n\nsmall\n",
        )
    )
    messages, peak = read_measured(stream)
    assert messages == [None, b"Subject: next\n\nsmall\n"]
    assert peak < 3 << 20  # the limit and a few blocks, not the 64 MB message


def test_a_from_line_of_megabytes_is_not_held_either() -> None:
    stream = io.BufferedReader(
        Endless(b"From ", b"x", 32 << 20, b"\nSubject: after a long line\n\nbody\n")
    )
    messages, peak = read_measured(stream)
    assert messages == [b"Subject: after a long line\n\nbody\n"]
    assert peak < 1 << 20
