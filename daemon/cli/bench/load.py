"""`spocd bench`: a synthetic mail load through the real code, measured.

Modes (each in a fresh temporary folder and database, so figures compare):
- ingest: `spocd ingest` of a Maildir, end to end (queue, pipeline, the
  acknowledgements and group notices written to the Maildir outbox and
  made durable), timed from the start of the command to its exit;
- pipe:   `spocd ingest --queue-only -` once per message, as an MTA pipe runs it;
- smtp:   `spocd run` as a process, 16 clients sending over SMTP; counts the
  250s (each after a durable commit) per second.
Peak memory is the largest resident set of the measured process (or of its
helper processes, whichever is larger).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import mailbox
import os
import random
import re
import resource
import secrets
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from daemon.cli.bench.tcp_ports import free_port

WORDS = [
    "drukarka",
    "nie",
    "drukuje",
    "komputer",
    "serwer",
    "sieć",
    "hasło",
    "konto",
    "outlook",
    "excel",
    "faktura",
    "printer",
    "does",
    "not",
    "work",
    "error",
    "screen",
    "laptop",
    "password",
    "account",
    "invoice",
    "please",
    "help",
    "urgent",
    "today",
    "meeting",
    "office",
    "floor",
    "room",
    "user",
    "system",
    "update",
    "restart",
]


def synthetic_mail(n: int, rng: random.Random, opened: list[tuple[str, str, str]]) -> bytes:
    """A ~3 KB mail; some with an HTML part, some with an attachment; about a
    third are replies by a requester to one of their earlier mails, threaded by
    In-Reply-To as mail clients do.

    `opened` lists (sender, Message-ID, subject) of the new requests so far; a
    new (non-reply) mail appends itself to it.
    """
    msg = EmailMessage()
    message_id = f"bench-{n}-{rng.getrandbits(40):x}@client.example.pl"
    if opened and rng.random() < 0.3:
        sender, parent, subject = opened[rng.randrange(len(opened))]
        msg["In-Reply-To"] = f"<{parent}>"
        msg["References"] = f"<{parent}>"
        subject = f"Re: {subject}"
    else:
        sender = f"user{n}@client{n % 7}.example.pl"
        subject = " ".join(rng.choice(WORDS) for _ in range(6)).capitalize()
        opened.append((sender, message_id, subject))
    msg["From"] = f"User {n} <{sender}>"
    msg["To"] = "helpdesk@example.com"
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{message_id}>"
    msg["Date"] = "Wed, 25 Nov 2026 10:00:00 +0100"
    body = "\n".join(" ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(32))
    msg.set_content(body)
    if rng.random() < 0.3:
        html = "<html><body><p>" + body.replace("\n", "</p><p>") + "</p></body></html>"
        msg.add_alternative(html, subtype="html")
    if rng.random() < 0.1:
        msg.add_attachment(
            rng.randbytes(2048), maintype="application", subtype="pdf", filename=f"skan-{n}.pdf"
        )
    return msg.as_bytes()


def write_config(
    folder: Path, database: str | None, port: int = 0, rules: str | None = None
) -> Path:
    """A config for a scratch desk in `folder`. Its rules are `rules` if given,
    else the starter rules except that every synthetic sender may get any
    number of acknowledgements (the real limit would hold most back)."""
    db = database or f"sqlite:///{folder / 'spocd.db'}"
    config = folder / "spocd.toml"
    from daemon.service.desk_files import starter_root

    starter = starter_root()
    if rules is None:
        rules = (starter / "rules.yaml").read_text(encoding="utf-8")
        rules = re.sub(r"(?m)^auto_replies:.*$", "", rules)
        rules += "\nauto_replies: {max_per_hour: 1000000}\n"
    (folder / "rules.yaml").write_text(rules, encoding="utf-8")
    config.write_text(
        f"[database]\nurl = {_toml(db)}\n"
        f"[smtp]\nport = {port}\n"
        f'[outgoing]\ntransport = "maildir"\nmaildir = {_toml(folder / "sent")}\n'
        f"[paths]\nrules = {_toml(folder / 'rules.yaml')}\n"
        f"templates = {_toml(starter / 'templates')}\nspool = {_toml(folder / 'spool')}\n"
        f'[logging]\nlevel = "WARNING"\n',
        encoding="utf-8",
    )
    return config


def _toml(value: object) -> str:
    """A TOML basic string for any path or URL. JSON's escapes are TOML's,
    except that TOML refuses surrogate-pair escapes (`ensure_ascii=False`
    leaves astral characters as they are) and a bare DEL, which JSON leaves."""
    return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")


@dataclass(frozen=True)
class Timed:
    """A command run to its exit: its wall time, the CPU time it used, and its
    own peak memory."""

    seconds: float
    returncode: int
    stdout: bytes
    stderr: bytes
    peak_rss_mb: float  # the process's or its largest helper's, whichever is larger
    #: User and system time of the process and of the helpers it waited for
    #: (what the peers' scripts report as "cpu"): beside `seconds`, how much of
    #: the two cores the run kept busy.
    cpu_seconds: float


def timed_run(command: list[str]) -> Timed:
    """Run `command` and time it from start to exit. Its peak RSS comes from
    its own rusage (`wait4`), not the running maximum of every child so far,
    which a larger earlier command (or an earlier run) would hide. Linux adds
    the launcher's own high-water mark (its forked copy before exec): the
    bench process stays far smaller than what it measures."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        return Timed(
            seconds,
            proc.returncode,
            out.read(),
            err.read(),
            usage.ru_maxrss / 1024,
            usage.ru_utime + usage.ru_stime,
        )


def _spocd(*args: str) -> list[str]:
    return [sys.executable, "-m", "daemon", *args]


def _child_peak_mb() -> float:
    """Peak RSS of the largest child so far (Linux reports kilobytes): in the
    SMTP bench, the largest daemon (`db upgrade` before it is smaller)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def bench_ingest(count: int, database: str | None) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="spocd-bench-") as tmp, _scratch(database) as url:
        folder = Path(tmp)
        config = write_config(folder, url)
        box = mailbox.Maildir(str(folder / "load"))
        rng = random.Random(7)
        opened: list[tuple[str, str, str]] = []
        for n in range(count):
            box.add(synthetic_mail(n, rng, opened))
        box.close()
        subprocess.run(_spocd("db", "upgrade", "-c", str(config)), check=True, capture_output=True)
        # The load was just written: flush it now, or the first durable
        # write of the measured run (a syncfs, an fsync) flushes it too.
        os.sync()
        run = timed_run(_spocd("ingest", "-c", str(config), str(folder / "load")))
        if run.returncode != 0:
            raise SystemExit(f"ingest failed: {run.stderr.decode()[-2000:]}")
        return {
            "messages": count,
            "seconds": round(run.seconds, 2),
            "messages_per_s": round(count / run.seconds, 1),
            "cpu_s": round(run.cpu_seconds, 2),
            "peak_rss_mb": round(run.peak_rss_mb, 1),
        }


def bench_pipe(count: int, database: str | None) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="spocd-bench-") as tmp, _scratch(database) as url:
        folder = Path(tmp)
        config = write_config(folder, url)
        rng = random.Random(11)
        times = []
        for n in range(count):
            raw = synthetic_mail(n, rng, [])
            started = time.perf_counter()
            subprocess.run(
                _spocd("ingest", "--queue-only", "-c", str(config), "-"),
                input=raw,
                capture_output=True,
                check=True,
            )
            times.append(time.perf_counter() - started)
        return {
            "processes": count,
            "median_ms": round(statistics.median(times) * 1000, 1),
            "max_ms": round(max(times) * 1000, 1),
            "messages_per_s_one_at_a_time": round(count / sum(times), 1),
        }


def bench_smtp(
    count: int, database: str | None, clients: int = 16, instances: int = 1
) -> dict[str, float]:
    """`instances` daemons on one database (PostgreSQL for more than one), the
    clients spread over their listeners. Counts the 250s per second, and the
    time until every message is processed and acknowledged."""
    if instances > 1 and not database:
        raise SystemExit("--instances above 1 needs --database (PostgreSQL)")
    with tempfile.TemporaryDirectory(prefix="spocd-bench-") as tmp, _scratch(database) as url:
        procs, ports = [], []
        for n in range(instances):
            folder = Path(tmp) / f"i{n}"
            folder.mkdir()
            port = free_port()
            config = write_config(folder, url, port)
            procs.append(
                subprocess.Popen(
                    _spocd("run", "-c", str(config)),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            ports.append(port)
        try:
            for proc, port in zip(procs, ports, strict=True):
                _wait_port(port, proc)
            rng = random.Random(13)
            # On the wire, lines end in CRLF (smtplib sends bytes as they are).
            mails = [synthetic_mail(n, rng, []).replace(b"\n", b"\r\n") for n in range(count)]
            accepted = [0] * clients
            waits: list[float] = []  # MAIL FROM to the 250 after the data, per message

            def client(index: int) -> None:
                port = ports[index % len(ports)]
                with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
                    for raw in mails[index::clients]:
                        began = time.perf_counter()
                        smtp.sendmail("bench@example.pl", ["helpdesk@example.com"], raw)
                        waits.append(time.perf_counter() - began)
                        accepted[index] += 1

            threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
            started = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - started
            db = url or f"sqlite:///{Path(tmp) / 'i0' / 'spocd.db'}"
            during = _processed_count(db)  # by the daemons while the clients delivered
            done = _wait_processed(db, count)
            processed = time.perf_counter() - started
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=60)
        return {
            "instances": instances,
            "clients": clients,
            "accepted": sum(accepted),
            "seconds": round(elapsed, 2),
            "accepted_per_s": round(sum(accepted) / elapsed, 1),
            "latency_p50_ms": round(1000 * statistics.median(waits), 1),
            "latency_p99_ms": round(1000 * statistics.quantiles(waits, n=100)[98], 1),
            "processed_while_accepting_per_s": round(during / elapsed, 1),
            "processed": done,
            "processed_per_s": round(done / processed, 1),
            "daemon_peak_rss_mb": round(_child_peak_mb(), 1),
        }


@contextlib.contextmanager
def _scratch(database: str | None) -> Iterator[str | None]:
    """A fresh database on the given PostgreSQL server, dropped afterwards, so
    the benchmark never touches existing data."""
    if not database:
        yield None
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(database)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    name = f"spocd_bench_{secrets.token_hex(6)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


#: Queued messages the daemons have taken through the pipeline.
_PROCESSED = "SELECT count(*) FROM inbound WHERE state <> 'queued'"


def _processed_count(url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(_PROCESSED)).scalar_one())
    finally:
        engine.dispose()


def _wait_processed(url: str, count: int, timeout: float = 600) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    deadline = time.monotonic() + timeout
    done = 0
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                done = conn.execute(text(_PROCESSED)).scalar_one()
                pending = conn.execute(
                    text("SELECT count(*) FROM outbox WHERE state = 'pending'")
                ).scalar_one()
            if done >= count and pending == 0:
                break
            time.sleep(0.1)
    finally:
        engine.dispose()
    return done


def _wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("spocd run exited before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("spocd run did not listen within 30 s")


def main(argv: list[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if "--sla" in words:  # the SLA sweep benchmark has options of its own
        from daemon.cli.bench import sla as bench_sla

        words.remove("--sla")
        return bench_sla.main(words)
    corpus = [w for w in words if w == "--corpus" or w.startswith("--corpus=")]
    if corpus:  # the peers' corpus, threading checked against its manifest
        from daemon.cli.bench import corpus as bench_corpus

        at = words.index(corpus[0])
        words[at : at + 1] = [corpus[0].partition("=")[2]] if "=" in corpus[0] else []
        return bench_corpus.main(words)
    if "--board" in words:  # the SLA board page over 10,000 open tickets
        from daemon.cli.bench import board as bench_board

        words.remove("--board")
        return bench_board.main(words)
    if "--imap" in words:  # so has the IMAP one (it starts a private Dovecot)
        from daemon.cli.bench import imap as bench_imap

        words.remove("--imap")
        return bench_imap.main(words)
    parser = argparse.ArgumentParser(prog="spocd bench", description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["ingest", "pipe", "smtp", "all"], default="all")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument(
        "--database",
        help="a PostgreSQL server URL: the benchmark creates "
        "and drops a database of its own there, instead of a temporary SQLite file",
    )
    parser.add_argument(
        "--instances",
        type=int,
        default=1,
        help="smtp mode: this many `spocd run` on the one database",
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--corpus",
        metavar="DIR",
        help="a make_corpus.py folder: its mbox into a fresh desk, as the peers' scripts "
        "run it (see --corpus --help)",
    )
    parser.add_argument(
        "--sla",
        action="store_true",
        help="the SLA sweep over 100,000 open tickets instead (see --sla --help)",
    )
    args = parser.parse_args(words)
    results: dict[str, dict[str, float]] = {}
    if args.mode in ("ingest", "all"):
        results["ingest"] = bench_ingest(args.messages, args.database)
    if args.mode in ("pipe", "all"):
        results["pipe"] = bench_pipe(min(args.messages, 50), args.database)
    if args.mode in ("smtp", "all"):
        results["smtp"] = bench_smtp(args.messages, args.database, instances=args.instances)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for mode, figures in results.items():
            print(f"{mode:<7} " + "  ".join(f"{k}={v}" for k, v in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
