"""`spocd ingest` refuses a message over smtp.max_message_size (issue 20.6).

The MTA pipe is read in chunks: a message over the limit costs neither memory
nor disk, nothing of it is kept, and exit 65 makes the MTA bounce it.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import write_config
from tests.support.mail import make_mail
from tests.support.proc import env, measured, peak_rss_kb, spocd

LIMIT = 1_000_000


def huge(size: int) -> bytes:
    body = b"junk junk junk junk junk junk junk junk junk junk junk junk junk\r\n"
    return make_mail(subject="Huge") + body * (size // len(body))


def test_queue_only_streams_and_refuses_over_the_limit_without_keeping_it(
    tmp_path: Path, sqlite_url: str
) -> None:
    config = write_config(tmp_path, sqlite_url, smtp={"max_message_size": LIMIT})
    chunk = b"x" * (1024 * 1024)
    sent_mb = 200
    proc = subprocess.Popen(
        measured(
            [sys.executable, "-m", "daemon", "ingest", "--queue-only", "-", "-c", str(config)]
        ),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env(),
    )
    assert proc.stdin is not None and proc.stderr is not None
    with contextlib.suppress(BrokenPipeError):  # it stopped reading at the limit: the point
        proc.stdin.write(make_mail(subject="Huge"))
        for _ in range(sent_mb):
            proc.stdin.write(chunk)
    with contextlib.suppress(BrokenPipeError):
        proc.stdin.close()
    err = proc.stderr.read().decode()
    proc.wait()
    proc.stderr.close()
    assert proc.stdout is not None
    proc.stdout.close()
    assert proc.returncode == 65, err
    assert f"larger than smtp.max_message_size ({LIMIT} bytes); not kept" in err
    # Never held in memory.
    assert peak_rss_kb(err) * 1024 < sent_mb * 1024 * 1024 / 2
    for sub in ("new", "tmp"):
        folder = tmp_path / "spool" / sub
        assert not folder.exists() or list(folder.iterdir()) == []


def test_ingest_refuses_a_message_over_the_limit_from_a_pipe_or_a_file(
    tmp_path: Path, sqlite_url: str
) -> None:
    config = write_config(tmp_path, sqlite_url, smtp={"max_message_size": LIMIT})
    big = huge(2 * LIMIT)
    piped = spocd("ingest", "-", config=config, input=big)
    assert piped.returncode == 65, piped.stderr
    assert "-: too-large: larger than smtp.max_message_size" in piped.stdout.decode()
    eml = tmp_path / "big.eml"
    eml.write_bytes(big)
    small = tmp_path / "small.eml"
    small.write_bytes(make_mail(subject="Small enough"))
    both = spocd("ingest", str(eml), str(small), config=config)
    assert both.returncode == 65
    assert f"{eml}: too-large" in both.stdout.decode()
    assert f"{small}: new ticket HD-1" in both.stdout.decode()
    [ticket] = json.loads(spocd("tickets", "--json", config=config).stdout)
    assert ticket["subject"] == "Small enough"
    queue = spocd("queue", "--json", config=config)
    assert b"Huge" not in queue.stdout


def test_a_spooled_file_over_the_limit_is_set_aside_unread(tmp_path: Path, sqlite_url: str) -> None:
    config = write_config(tmp_path, sqlite_url, smtp={"max_message_size": LIMIT})
    new = tmp_path / "spool" / "new"
    new.mkdir(parents=True)
    (new / "1.1.junk").write_bytes(huge(2 * LIMIT))
    (new / "2.1.fine").write_bytes(make_mail(subject="Spooled and fine"))
    tick = spocd("tick", "--json", config=config)
    assert tick.returncode == 0, tick.stderr
    assert json.loads(tick.stdout)["processed"] == 1
    assert list(new.iterdir()) == []
    assert [p.name for p in (tmp_path / "spool" / "refused").iterdir()] == ["1.1.junk"]
    assert b"over smtp.max_message_size set aside unread" in tick.stderr + tick.stdout


def test_a_message_over_the_limit_in_an_mbox_is_refused_and_the_next_are_taken(
    tmp_path: Path, sqlite_url: str
) -> None:
    config = write_config(tmp_path, sqlite_url, smtp={"max_message_size": LIMIT})
    box = tmp_path / "box.mbox"
    separator = b"From someone@example.com Mon Dec  7 04:00:00 2026\n"
    box.write_bytes(
        separator
        + make_mail(subject="First").replace(b"\r\n", b"\n")
        + b"\n"
        + separator
        + huge(3 * LIMIT).replace(b"\r\n", b"\n")
        + b"\n"
        + separator
        + make_mail(subject="Third").replace(b"\r\n", b"\n")
    )
    run = spocd("ingest", str(box), config=config)
    assert run.returncode == 65, run.stderr
    out = run.stdout.decode()
    assert f"{box}#1: new ticket HD-1" in out
    assert f"{box}#2: too-large: larger than smtp.max_message_size" in out
    assert f"{box}#3: new ticket HD-2" in out
    subjects = {t["subject"] for t in json.loads(spocd("tickets", "--json", config=config).stdout)}
    assert subjects == {"First", "Third"}
