"""The sources `spocd ingest` reads: each message with its label, or why none."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

from daemon.cli import ingest
from daemon.cli.ingest import TOO_LARGE, read_sources

BOX = (
    b"From a@example.com Mon Dec  7 04:00:00 2026\nSubject: one\n\nfirst\n\n"
    b"From b@example.com Mon Dec  7 04:01:00 2026\nSubject: two\n\n" + b"x" * 100 + b"\n\n"
    b"From c@example.com Mon Dec  7 04:02:00 2026\nSubject: three\n\nthird\n"
)


def test_an_mbox_gives_each_message_numbered_and_refuses_one_over_the_limit(
    tmp_path: Path,
) -> None:
    box = tmp_path / "in.mbox"
    box.write_bytes(BOX)
    got = list(read_sources([str(box)], limit=60))
    assert got[0] == (f"{box}#1", b"Subject: one\n\nfirst\n", "", "")
    assert got[1][:3] == (f"{box}#2", None, TOO_LARGE)
    assert got[2] == (f"{box}#3", b"Subject: three\n\nthird\n", "", "")


def test_a_read_failing_part_way_through_an_mbox_ends_that_source_with_its_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No traceback: the messages before the failure are taken, the source
    is said unreadable, and the next source is read."""
    box, other = tmp_path / "in.mbox", tmp_path / "one.eml"
    box.write_bytes(BOX)
    other.write_bytes(b"Subject: next\n\nbody\n")
    real = ingest.mbox_messages

    def failing(fh: BinaryIO, limit: int) -> Iterator[bytes | None]:
        messages = real(fh, limit)
        yield next(messages)
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(ingest, "mbox_messages", failing)
    got = list(read_sources([str(box), str(other)], limit=10_000))
    assert got == [
        (f"{box}#1", b"Subject: one\n\nfirst\n", "", ""),
        (str(box), None, "unreadable", "cannot read: Input/output error"),
        (str(other), b"Subject: next\n\nbody\n", "", ""),
    ]
