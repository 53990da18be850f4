"""read_config_file: only a regular file, only so much of it (issue 20.5)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from daemon.config.files import FileRefused, read_config_bytes, read_config_file


def test_a_regular_file_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("version: 1\n", encoding="utf-8")
    assert read_config_file(path) == "version: 1\n"


def test_a_fifo_is_refused_at_once_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "rules.yaml"
    os.mkfifo(fifo)
    outcome: list[BaseException | str] = []

    def read() -> None:
        try:
            outcome.append(read_config_file(fifo))
        except BaseException as exc:
            outcome.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=5)
    if reader.is_alive():  # blocked: give it a writer and an end so the suite goes on
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(timeout=5)
        pytest.fail("reading a FIFO blocked")
    [error] = outcome
    assert isinstance(error, FileRefused)
    assert error.filename == str(fifo)
    assert "not a regular file (a FIFO)" in str(error)


def test_a_device_is_refused_without_reading_it() -> None:
    with pytest.raises(FileRefused, match="character device"):
        read_config_bytes("/dev/zero")


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileRefused, match="a directory"):
        read_config_bytes(tmp_path)


def test_more_than_the_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * 101)
    with pytest.raises(FileRefused, match="larger than 100 bytes"):
        read_config_bytes(path, limit=100)
    path.write_bytes(b"#" * 100)
    assert len(read_config_bytes(path, limit=100)) == 100


def test_a_missing_file_is_an_ordinary_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_config_bytes(tmp_path / "absent.yaml")
