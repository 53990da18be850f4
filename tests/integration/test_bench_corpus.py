"""`spocd bench --corpus`: a corpus folder as make_corpus.py writes it, run
into a fresh desk and checked against its manifest (no timing asserted)."""

from __future__ import annotations

import json
import mailbox
import resource
import sys
from email.message import EmailMessage
from pathlib import Path

from daemon.cli.bench import corpus as bench_corpus
from daemon.cli.bench import load

AGENT = "kim.agent@example.org"


def write_corpus(folder: Path) -> None:
    """Two conversations: a request, the agent's answer, the requester's thanks."""
    box = mailbox.mbox(str(folder / "corpus.mbox"))
    messages = []
    for n, (requester, subject) in enumerate(
        [("ola@example.pl", "Drukarka nie drukuje"), ("tom@example.com", "VPN is down")], 1
    ):
        previous = None
        for pos, author in enumerate([requester, AGENT, requester]):
            msg = EmailMessage()
            msg["From"] = author
            msg["To"] = "support@helpdesk.example.com"
            msg["Subject"] = subject if pos == 0 else f"Re: {subject}"
            msg["Message-ID"] = f"<t{n}m{pos}@corpus.example>"
            msg["Date"] = f"Mon, 04 Mar 2024 08:0{pos}:00 +0100"
            if previous:
                msg["In-Reply-To"] = previous
                msg["References"] = previous
            msg.set_content(f"Message {pos} of conversation {n}.\n")
            box.add(msg)
            previous = msg["Message-ID"]
            messages.append(
                {
                    "message_id": msg["Message-ID"],
                    "ticket": n,
                    "author": author,
                    "agent": author == AGENT,
                }
            )
    box.close()
    manifest = {"summary": {"mbox": "corpus.mbox", "messages": 6}, "messages": messages}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def test_the_corpus_is_ingested_into_a_fresh_desk_and_its_threading_checked(
    tmp_path: Path,
) -> None:
    write_corpus(tmp_path)
    figures = bench_corpus.run(tmp_path)
    assert figures["messages"] == 6
    assert (figures["tickets"], figures["split"], figures["mixed"]) == (2, 0, 0)
    assert figures["threading_ok"] is True
    # per ticket: an acknowledgement, the group's notice, the agent's answer sent
    # on to the requester and the thanks forwarded to the agent. Were the agent
    # not in the group, their answers would open tickets of their own.
    assert figures["outgoing_mails"] == 8
    # the interpreter alone costs some CPU; more than the wall time means both cores
    assert 0 < figures["cpu_s"] < 4 * figures["seconds"]


def test_main_fails_when_the_threading_is_wrong(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    write_corpus(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    manifest["messages"][1]["ticket"] = 2  # the manifest now says the agent's answer is elsewhere
    (tmp_path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert bench_corpus.main([str(tmp_path)]) == 1
    assert "threading_ok=False" in capsys.readouterr().out


def test_a_message_that_is_not_mail_is_counted_unplaced_not_a_failed_run(tmp_path: Path) -> None:
    write_corpus(tmp_path)
    with (tmp_path / "corpus.mbox").open("ab") as box:  # ingest quarantines it, exit 65
        box.write(b"From x@y Mon Mar  4 08:00:00 2024\n\x00\x01 no header fields at all\n\n")
    manifest = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    manifest["messages"].append({"message_id": "<junk@corpus.example>", "ticket": 3})
    (tmp_path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    figures = bench_corpus.run(tmp_path)
    assert (figures["tickets"], figures["unplaced"], figures["threading_ok"]) == (2, 1, False)


def test_bench_takes_the_corpus_folder_after_an_equals_sign_too(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    write_corpus(tmp_path)
    assert load.main([f"--corpus={tmp_path}", "--json"]) == 0
    (figures,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert figures["threading_ok"] is True and figures["messages"] == 6


def test_a_run_reports_its_own_peak_memory_not_an_earlier_larger_childs() -> None:
    # Linux counts the launching process's own high-water mark (the forked copy
    # before exec) into a child's: measure against it, not against a constant.
    floor = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    size = int(floor + 300)
    grow = f"b = bytearray({size} * 1024 * 1024); b[::4096] = b'x' * len(b[::4096])"
    big = load.timed_run([sys.executable, "-c", grow])
    small = load.timed_run([sys.executable, "-c", "print('small')"])
    assert big.returncode == 0 and big.peak_rss_mb > size
    assert small.returncode == 0 and small.stdout == b"small\n"
    assert small.peak_rss_mb < floor + 100  # the running maximum of all children: > size


def test_a_run_reports_the_cpu_time_of_the_command_and_of_the_helpers_it_waited_for() -> None:
    # As the peers' scripts report "cpu": a command that sleeps uses next to
    # none, one that computes in itself and in a forked helper uses both.
    spin = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\n"
    both = f"import os\npid = os.fork()\n{spin}if pid == 0: os._exit(0)\nos.waitpid(pid, 0)\n"
    asleep = load.timed_run([sys.executable, "-c", "import time; time.sleep(0.4)"])
    busy = load.timed_run([sys.executable, "-c", both])
    assert asleep.seconds >= 0.4 and asleep.cpu_seconds < 0.2
    assert busy.returncode == 0 and busy.cpu_seconds >= 0.6
