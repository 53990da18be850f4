"""What batch ingest reads before its app is open: the first batches go to
the helpers while the rest of spocd loads, but never more than three of them
nor more than `EARLY_BYTES`, so a mailbox of large messages is not held in
memory while the database layer loads."""

from __future__ import annotations

import concurrent.futures
import mailbox
from pathlib import Path

import pytest

from daemon.cli import ingest
from daemon.config import Settings


class AppOpened(Exception):
    """Stands in for the app: the test ends where the app would open."""


def read_before_the_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sizes: list[int]
) -> list[int]:
    """The batch sizes handed to the helpers before the app opened, for an
    mbox of messages of `sizes` bytes each."""
    box = mailbox.mbox(tmp_path / "in.mbox")
    for n, size in enumerate(sizes):
        box.add(f"Subject: message {n}\n\n".encode() + b"x" * size + b"\n")
    box.close()
    handed: list[int] = []

    def parse(self: object, raws: list[bytes]) -> concurrent.futures.Future[list[object]]:
        handed.append(len(raws))
        done: concurrent.futures.Future[list[object]] = concurrent.futures.Future()
        done.set_result([])
        return done

    def open_app() -> None:
        raise AppOpened

    monkeypatch.setattr(ingest._Helpers, "parse", parse)
    with pytest.raises(AppOpened):
        ingest.ingest(
            Settings(),
            None,
            [str(tmp_path / "in.mbox")],
            open_app,  # type: ignore[arg-type]
            escalation=False,
            as_json=False,
        )
    return handed


def test_three_growing_batches_are_parsing_before_the_app_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert read_before_the_app(tmp_path, monkeypatch, [100] * 600) == [50, 100, 200]


def test_a_short_source_is_read_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert read_before_the_app(tmp_path, monkeypatch, [100] * 70) == [50, 20]


def test_large_messages_stop_the_early_reading_at_its_byte_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest, "EARLY_BYTES", 2_000_000)
    # 50 messages of 50 KB: 2.5 MB in the first batch, past the bound already
    assert read_before_the_app(tmp_path, monkeypatch, [50_000] * 400) == [50]
