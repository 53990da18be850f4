"""The file of compiled code kept between processes (`kept_code`)."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from daemon.cli import kept_code
from daemon.cli.kept_code import KeptCode


def test_entries_are_read_at_the_first_get_and_new_ones_written_at_save(tmp_path: Path) -> None:
    path = str(tmp_path / "kept.marshal")
    first = KeptCode("test")
    assert first.open(path)
    assert first.get("text") is None
    first.add("text", b"code")
    first.save()
    second = KeptCode("test")
    second.open(path)
    assert second.get("text") == b"code"
    assert kept_code.read(path) == {"text": b"code"}


def test_a_process_that_made_nothing_new_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "kept.marshal"
    kept_code.write(str(path), {"text": b"code"})
    before = path.stat().st_mtime_ns
    store = KeptCode("test")
    store.open(str(path))
    assert store.get("text") == b"code"
    os.utime(path, ns=(before - 10**9, before - 10**9))
    store.save()
    assert path.stat().st_mtime_ns == before - 10**9


def test_past_its_bounds_the_file_keeps_what_the_last_process_used(tmp_path: Path) -> None:
    path = str(tmp_path / "kept.marshal")
    kept_code.write(path, {f"old {n}": b"x" for n in range(10)})
    store = KeptCode("test")
    store.open(path)
    store.max_entries = 5
    assert store.get("old 3") == b"x"
    assert store.get("new") is None
    store.add("new", b"y")
    store.save()
    assert kept_code.read(path) == {"old 3": b"x", "new": b"y"}


@pytest.mark.parametrize(
    "junk",
    [b"", b"\x00garbage", b"\xe9\x01\x00\x00\x00", b"\x00\x00\x00\x00" + b"\x00" * 9],
    ids=["empty", "garbage", "short", "zero checksum"],
)
def test_a_damaged_file_reads_as_empty(tmp_path: Path, junk: bytes) -> None:
    path = tmp_path / "kept.marshal"
    path.write_bytes(junk)
    assert kept_code.read(str(path)) == {}


def test_a_file_damaged_by_one_bit_or_cut_short_reads_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "kept.marshal"
    kept_code.write(str(path), {f"text {n}": bytes(50) for n in range(20)})
    whole = path.read_bytes()
    for damaged in (whole[:-40] + bytes([whole[-40] ^ 1]) + whole[-39:], whole[:100]):
        path.write_bytes(damaged)
        assert kept_code.read(str(path)) == {}


def test_a_file_over_the_size_bound_or_of_another_shape_reads_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "kept.marshal"
    kept_code.write(str(path), {"text": bytes(2000)})
    assert kept_code.read(str(path), max_bytes=1000) == {}
    kept_code.write(str(path), {"text": "not bytes", 1: b"not a text key", "ok": b"1"})  # type: ignore[dict-item]
    assert kept_code.read(str(path)) == {"ok": b"1"}


def test_the_file_lives_in_a_folder_of_the_user_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    found = kept_code.cache_file("test")
    assert found is not None
    folder = Path(found).parent
    assert folder == tmp_path / f"spocd-code-{os.getuid()}"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert Path(found).name.startswith("test-cpython-")
    folder.chmod(0o777)  # anyone could put code there: nothing is taken from it
    assert kept_code.cache_file("test") is None
    assert KeptCode("test").open() is False


def test_a_file_it_cannot_replace_is_left_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "kept.marshal"
    path.mkdir()  # neither read nor replaced: a directory in the file's place
    store = KeptCode("test")
    store.open(str(path))
    assert store.get("text") is None
    store.add("text", b"code")
    store.save()
    assert path.is_dir() and list(tmp_path.iterdir()) == [path]


def test_fewer_new_entries_than_its_minimum_leave_the_file_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "kept.marshal"
    kept_code.write(str(path), {"old": b"x"})
    store = KeptCode("test", min_new=3)
    store.open(str(path))
    for n in range(2):
        store.add(f"new {n}", b"y")
    store.save()
    assert kept_code.read(str(path)) == {"old": b"x"}
    store.add("new 2", b"y")
    store.save()
    assert set(kept_code.read(str(path))) == {"old", "new 0", "new 1", "new 2"}


def test_a_write_removes_the_stale_files_other_builds_of_its_kind_left(tmp_path: Path) -> None:
    """An upgraded interpreter or package names a new file; the old ones go
    once no process has written them for `STALE_SECONDS`."""
    stale = time.time() - kept_code.STALE_SECONDS - 60
    files = {
        name: tmp_path / f"{name}.marshal"
        for name in ("regex-old-py3.11.6", "regex-recent-py3.11.6", "re-sre1-py3.11.6", "mine")
    }
    for name, path in files.items():
        path.write_bytes(b"")
        if name != "regex-recent-py3.11.6":
            os.utime(path, (stale, stale))
    leftover = tmp_path / "regex-new-py3.11.7.marshal.4242"  # a write that never finished
    leftover.write_bytes(b"")
    os.utime(leftover, (stale, stale))
    store = KeptCode("regex-new-py3.11.7")
    store.open(str(tmp_path / "regex-new-py3.11.7.marshal"))
    store.add("text", b"code")
    store.save()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "mine.marshal",  # another kind
        "re-sre1-py3.11.6.marshal",  # `re`'s, not `regex`'s
        "regex-new-py3.11.7.marshal",  # its own, just written
        "regex-recent-py3.11.6.marshal",  # written within the month: perhaps in use
    ]


def test_pruning_keeps_files_written_within_the_month(tmp_path: Path) -> None:
    old = tmp_path / "dataclasses-cpython-310-a.marshal"
    old.write_bytes(b"")
    own = str(tmp_path / "dataclasses-cpython-311-b.marshal")
    now = old.stat().st_mtime
    assert kept_code.prune(own, now=now + kept_code.STALE_SECONDS - 60) == []
    assert kept_code.prune(own, now=now + kept_code.STALE_SECONDS + 60) == [old.name]
    assert not old.exists()
