"""The command line as a user runs it: real processes, real files."""

from __future__ import annotations

import json
import mailbox
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import write_config
from tests.support.mail import make_mail
from tests.support.proc import as_at_a_terminal, children, env, running, spocd, wait_until

DATA = Path(__file__).resolve().parents[1] / "data" / "parsing"


@pytest.fixture
def config(tmp_path: Path, sqlite_url: str) -> Path:
    return write_config(tmp_path, sqlite_url)


def out(result) -> str:  # type: ignore[no-untyped-def]
    return result.stdout.decode()


def test_ingest_an_eml_file_prints_the_ticket(config: Path, tmp_path: Path) -> None:
    eml = tmp_path / "one.eml"
    eml.write_bytes(make_mail(subject="Monitor flickers"))
    result = spocd("ingest", str(eml), config=config)
    assert result.returncode == 0, result.stderr
    assert out(result).strip() == f"{eml}: new ticket HD-1"
    sent = [p.read_bytes() for p in (tmp_path / "sent" / "new").iterdir()]
    acks = [raw for raw in sent if b"\r\nTo: jan.kowalski@example.org" in raw]
    assert len(acks) == 1 and b"[HD-1]" in acks[0]


def test_config_option_may_come_before_or_after_the_command_words(
    config: Path, tmp_path: Path
) -> None:
    eml = tmp_path / "one.eml"
    eml.write_bytes(make_mail())
    before = spocd("-c", str(config), "ingest", str(eml))
    after = spocd("ingest", "-c", str(config), "--json", str(eml))
    assert before.returncode == 0 and after.returncode == 0
    assert json.loads(out(after))["outcome"] == "duplicate"


def test_ingest_from_stdin_like_an_mta_pipe(config: Path) -> None:
    result = spocd("ingest", "-", config=config, input=make_mail(subject="From a pipe"))
    assert result.returncode == 0
    assert out(result).strip() == "-: new ticket HD-1"


def test_ingest_an_mbox_and_a_maildir(config: Path, tmp_path: Path) -> None:
    box = mailbox.mbox(str(tmp_path / "in.mbox"))
    for n in range(3):
        box.add(make_mail(subject=f"mbox {n}"))
    box.close()
    maildir = mailbox.Maildir(str(tmp_path / "Maildir"))
    maildir.add(make_mail(subject="maildir 1"))
    maildir.add(make_mail(subject="maildir 2"))
    result = spocd("ingest", str(tmp_path / "in.mbox"), str(tmp_path / "Maildir"), config=config)
    assert result.returncode == 0, result.stderr
    lines = out(result).splitlines()
    assert len(lines) == 5
    assert all("new ticket HD-" in line for line in lines)
    listing = spocd("tickets", "--json", config=config)
    assert len(json.loads(out(listing))) == 5


def requests(tmp_path: Path, count: int) -> Path:
    """A Maildir of `count` new requests from as many requesters."""
    maildir = mailbox.Maildir(str(tmp_path / "Maildir"))
    for n in range(count):
        maildir.add(make_mail(sender=f"user{n}@example.org", subject=f"Problem {n}"))
    return tmp_path / "Maildir"


def assert_each_ticket_made_and_acknowledged_once(
    config: Path, tmp_path: Path, stdout: str, count: int
) -> None:
    lines = stdout.splitlines()
    assert len(lines) == count and all("new ticket HD-" in line for line in lines)
    sent = [p.read_bytes() for p in (tmp_path / "sent" / "new").iterdir()]
    acks = [raw for raw in sent if b"\r\nTo: user" in raw]
    assert len(acks) == count
    assert {raw.split(b"[HD-")[1].split(b"]")[0] for raw in acks} == {
        str(n).encode() for n in range(1, count + 1)
    }
    status = json.loads(out(spocd("status", "--json", config=config)))
    assert status["outbox"] == {"pending": 0, "failed": 0}


def test_a_large_maildir_is_ingested_and_every_ticket_acknowledged_once(
    config: Path, tmp_path: Path
) -> None:
    """Over a batch: parsed in one helper process, written out by another."""
    result = spocd("ingest", str(requests(tmp_path, 450)), config=config)
    assert result.returncode == 0, result.stderr
    assert_each_ticket_made_and_acknowledged_once(config, tmp_path, out(result), 450)


@pytest.mark.slow
def test_helpers_killed_mid_run_leave_the_work_to_the_main_process(
    config: Path, tmp_path: Path
) -> None:
    """The OOM killer takes both helpers: every message still gets its ticket
    and its acknowledgement, once, and the run says what happened."""
    source = requests(tmp_path, 1200)
    cmd = [sys.executable, "-m", "daemon", "ingest", "-c", str(config), str(source)]
    run = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env())
    for pid in _helpers_of(run):
        os.kill(pid, signal.SIGKILL)
    stdout, stderr = run.communicate(timeout=300)
    assert run.returncode == 0, stderr.decode()
    assert "a helper process died" in stderr.decode()
    assert "Traceback" not in stderr.decode()
    assert_each_ticket_made_and_acknowledged_once(config, tmp_path, stdout.decode(), 1200)


def test_a_run_killed_mid_way_leaves_no_helper_behind(config: Path, tmp_path: Path) -> None:
    """SIGKILL (an operator, the OOM killer) gives the run no chance to stop
    its helpers: they notice on their own and exit, rather than wait forever
    for work from a process that is gone."""
    source = requests(tmp_path, 600)
    cmd = [sys.executable, "-m", "daemon", "ingest", "-c", str(config), str(source)]
    run = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env())
    helpers = _helpers_of(run)
    run.kill()
    run.wait(timeout=10)
    try:
        wait_until(lambda: not any(running(pid) for pid in helpers), timeout=10)
    finally:
        for pid in filter(running, helpers):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_ctrl_c_finishes_what_was_read_and_a_second_run_takes_the_rest(
    config: Path, tmp_path: Path
) -> None:
    """Ctrl-C part of the way: the run finishes the batches it has read (their
    tickets made, their mail written), lists them, reads no more and says so.
    The same source ingested again brings in the rest: every request has its
    ticket and its acknowledgement, once."""
    source = requests(tmp_path, 1200)
    cmd = [sys.executable, "-m", "daemon", "ingest", "-c", str(config), str(source)]
    run = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env(),
        preexec_fn=as_at_a_terminal,
    )
    _helpers_of(run)
    sent = tmp_path / "sent" / "new"
    wait_until(lambda: sent.is_dir() and any(sent.iterdir()), timeout=60)
    run.send_signal(signal.SIGINT)
    stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == 130, stderr.decode()
    assert "spocd ingest: interrupted: " in stderr.decode()
    assert "Traceback" not in stderr.decode()
    listed = stdout.decode().splitlines()
    assert listed and all(": new ticket HD-" in line for line in listed)
    assert len(listed) < 1200
    status = json.loads(out(spocd("status", "--json", config=config)))
    assert status["inbound"]["queued"] == 0  # nothing left half done
    assert status["outbox"] == {"pending": 0, "failed": 0}

    again = spocd("ingest", str(source), config=config)
    assert again.returncode == 0, again.stderr
    lines = out(again).splitlines()
    assert sum(": new ticket HD-" in line for line in lines) == 1200 - len(listed)
    assert sum(": duplicate of a message on HD-" in line for line in lines) == len(listed)
    acks = [raw for raw in (p.read_bytes() for p in sent.iterdir()) if b"\r\nTo: user" in raw]
    assert sorted(int(raw.split(b"[HD-")[1].split(b"]")[0]) for raw in acks) == list(range(1, 1201))


def test_ctrl_c_while_it_waits_for_its_input_stops_at_once(config: Path) -> None:
    """`spocd ingest -` typed at a terminal waits on stdin; with nothing read
    there is nothing to finish, and Ctrl-C ends it there and then."""
    run = subprocess.Popen(
        [sys.executable, "-m", "daemon", "ingest", "-c", str(config), "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env(),
        preexec_fn=as_at_a_terminal,
    )
    try:
        wchan = Path(f"/proc/{run.pid}/wchan")
        wait_until(lambda: "pipe" in wchan.read_text(), timeout=30)  # blocked reading stdin
        run.send_signal(signal.SIGINT)
        stdout, stderr = run.communicate(timeout=10)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert run.returncode == 130
    assert stdout == b"" and b"Traceback" not in stderr


@pytest.mark.slow
def test_tick_stopped_finishes_the_batch_in_hand_and_leaves_the_rest_due(
    config: Path, tmp_path: Path
) -> None:
    """`spocd tick` over a large backlog, Ctrl-C'd while it processes and sent
    SIGTERM while it sends: each time the batch in hand is committed (and its leased
    mail written and recorded), nothing more starts, and nothing is left
    leased to wait out its lease. The next tick takes the rest: every request
    its ticket and one acknowledgement."""
    emls = []
    for n in range(400):
        eml = tmp_path / "in" / f"{n}.eml"
        eml.parent.mkdir(exist_ok=True)
        eml.write_bytes(make_mail(sender=f"user{n}@example.org", subject=f"Problem {n}"))
        emls.append(str(eml))
    assert spocd("ingest", "--queue-only", *emls, config=config).returncode == 0
    assert spocd("db", "upgrade", config=config).returncode == 0
    db = sqlite3.connect(tmp_path / "spocd.db")
    sent = tmp_path / "sent" / "new"

    def count(sql: str) -> int:
        return int(db.execute(sql).fetchone()[0])

    def tick_interrupted_when(started: Callable[[], bool], by: int = signal.SIGINT) -> str:
        run = subprocess.Popen(
            [sys.executable, "-m", "daemon", "tick", "-c", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env(),
            preexec_fn=as_at_a_terminal,
        )
        wait_until(started, timeout=60, interval=0.01)
        run.send_signal(by)
        stdout, stderr = run.communicate(timeout=120)
        assert run.returncode == 128 + by, stderr.decode()
        assert "Traceback" not in stderr.decode()
        said = "interrupted" if by == signal.SIGINT else "stopped by SIGTERM"
        assert f"spocd tick: {said}: " in stderr.decode()
        assert (
            count(
                "SELECT count(*) FROM outbox WHERE state = 'pending' AND leased_until IS NOT NULL"
            )
            == 0
        )  # nothing waits out a lease
        return stdout.decode()

    # processing: the group in hand is committed, the rest stays queued, nothing is sent
    said = tick_interrupted_when(lambda: count("SELECT count(*) FROM tickets") > 0)
    made = count("SELECT count(*) FROM tickets")
    assert 0 < made < 400 and f"processed {made} message(s)" in said
    assert count("SELECT count(*) FROM inbound WHERE state = 'queued'") == 400 - made
    assert not sent.exists() or not any(sent.iterdir())

    # sending, stopped as systemd stops a service: what was leased is written
    # and recorded, the rest stays due
    tick_interrupted_when(lambda: sent.is_dir() and any(sent.iterdir()), signal.SIGTERM)
    assert count("SELECT count(*) FROM tickets") == 400
    assert (
        0 < count("SELECT count(*) FROM outbox WHERE state = 'sent'") == len(list(sent.iterdir()))
    )
    assert count("SELECT count(*) FROM outbox WHERE state = 'pending'") > 0

    last = spocd("tick", config=config)
    assert last.returncode == 0, last.stderr
    assert count("SELECT count(*) FROM outbox WHERE state <> 'sent'") == 0
    acks = [raw for raw in (p.read_bytes() for p in sent.iterdir()) if b"\r\nTo: user" in raw]
    assert sorted(int(raw.split(b"[HD-")[1].split(b"]")[0]) for raw in acks) == list(range(1, 401))


def _helpers_of(run: subprocess.Popen[bytes]) -> list[int]:
    wait_until(lambda: len(children(run.pid)) == 2 or run.poll() is not None, 60, 0.01)
    helpers = children(run.pid)
    assert len(helpers) == 2, "the helpers never started"
    return helpers


@pytest.mark.parametrize(
    ("name", "code", "says"),
    [
        ("empty.eml", 65, "0 bytes"),
        ("garbage.bin", 65, "quarantined: not mail"),
    ],
)
def test_bad_input_gets_a_clear_answer_and_exit_65(
    config: Path, name: str, code: int, says: str
) -> None:
    result = spocd("ingest", str(DATA / name), config=config)
    assert result.returncode == code
    assert says in out(result)
    assert b"Traceback" not in result.stderr


def test_an_unreachable_database_is_a_temporary_failure(tmp_path: Path) -> None:
    config = write_config(tmp_path, "postgresql+psycopg://nobody@127.0.0.1:1/none")
    result = spocd("ingest", "-", config=config, input=make_mail())
    assert result.returncode == 75
    assert b"database unavailable" in result.stderr


def test_a_bad_config_is_refused_with_every_problem_and_exit_78(tmp_path: Path) -> None:
    config = tmp_path / "spocd.toml"
    config.write_text('[helpdesk]\naddress = "nope"\n[smtp]\nport = 99999\nfoo = 1\n')
    result = spocd("tickets", config=config)
    assert result.returncode == 78
    err = result.stderr.decode()
    assert f"{config}:2: helpdesk.address: must be an email address" in err
    assert f"{config}:4: smtp.port" in err
    assert f"{config}:5: smtp.foo: unknown key" in err


def test_queue_only_spools_and_the_next_tick_processes(config: Path, tmp_path: Path) -> None:
    result = spocd(
        "ingest", "--queue-only", "-", config=config, input=make_mail(subject="Queued by the MTA")
    )
    assert result.returncode == 0
    assert len(list((tmp_path / "spool" / "new").iterdir())) == 1
    tick = spocd("tick", "--json", config=config)
    assert tick.returncode == 0, tick.stderr
    assert json.loads(out(tick))["processed"] == 1
    assert list((tmp_path / "spool" / "new").iterdir()) == []
    [ticket] = json.loads(out(spocd("tickets", "--json", config=config)))
    assert ticket["subject"] == "Queued by the MTA"


def test_the_pipe_loads_only_the_spool_writer(config: Path, tmp_path: Path) -> None:
    """An MTA starts one process per message: its time is the interpreter's
    start and what gets imported (SPEC's ≤ 60 ms). An import added to a module
    on this path (a database driver, templates, the MIME parser, the full
    settings) would cost tens of milliseconds a message and go unnoticed."""
    result = spocd(
        "ingest", "--queue-only", "-", config=config, input=make_mail(), PYTHONPROFILEIMPORTTIME="1"
    )
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "spool" / "new").iterdir())) == 1
    loaded = {
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.decode().splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "daemon.adapters.spool" in loaded  # the listing is real
    heavy = {"sqlalchemy", "jinja2", "mailparser", "yaml", "argparse", "email", "logging"}
    heavy.add("pathlib")  # with urllib.parse and ipaddress: 8 ms of a 51 ms process
    assert {name.split(".")[0] for name in loaded} & heavy == set()
    assert {name for name in loaded if name.startswith("daemon.")} == {
        "daemon.cli",
        "daemon.cli.pipe",
        "daemon.config",
        "daemon.config.files",
        "daemon.config.spool_only",
        "daemon.adapters",
        "daemon.adapters.spool",
    }


def test_the_pipe_keeps_taking_mail_when_spocd_toml_is_wrong_elsewhere(
    tmp_path: Path, sqlite_url: str
) -> None:
    """A typo in another section must not bounce mail at the MTA: the pipe
    queues it; the daemon and every other command refuse the config."""
    config = write_config(tmp_path, sqlite_url, helpdesk={"not_a_key": 1})
    result = spocd("ingest", "--queue-only", "-", config=config, input=make_mail())
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "spool" / "new").iterdir())) == 1
    assert spocd("tick", config=config).returncode == 78


def test_the_pipe_refuses_a_spool_setting_it_cannot_use_in_the_usual_words(
    tmp_path: Path, sqlite_url: str
) -> None:
    config = write_config(tmp_path, sqlite_url, paths={"spool": 7})
    config.write_text(config.read_text().replace('spool = "7"', "spool = 7"))
    result = spocd("ingest", "--queue-only", "-", config=config, input=make_mail())
    assert result.returncode == 78
    assert "paths.spool" in result.stderr.decode()


def test_show_prints_messages_and_history(config: Path) -> None:
    spocd("ingest", "-", config=config, input=make_mail(subject="Scanner offline"))
    data = json.loads(out(spocd("show", "hd-1", "--json", config=config)))
    assert data["id"] == "HD-1"
    assert [m["kind"] for m in data["messages"]] == ["request", "ack", "agent_new"]
    assert data["events"][0]["type"] == "created"
    text = out(spocd("show", "1", config=config))
    assert "Scanner offline" in text and "History" in text
    missing = spocd("show", "HD-99", config=config)
    assert missing.returncode == 65


def test_usage_errors_exit_64(config: Path) -> None:
    assert spocd("frobnicate", config=config).returncode == 64
    assert spocd("show", "XY-1", config=config).returncode == 64


def test_init_writes_starter_files_and_keeps_existing_ones(tmp_path: Path) -> None:
    target = tmp_path / "desk"
    first = spocd("init", str(target))
    assert first.returncode == 0
    assert (target / "spocd.toml").is_file() and (target / "rules.yaml").is_file()
    assert (target / "templates" / "pl" / "ack.txt").is_file()
    (target / "rules.yaml").write_text("# mine\n")
    second = spocd("init", str(target))
    assert second.returncode == 0
    assert "kept" in out(second) and (target / "rules.yaml").read_text() == "# mine\n"
    check = spocd("rules", "check", config=target / "spocd.toml")
    assert check.returncode == 65  # my edit is not valid rules; init kept it anyway
    forced = spocd("init", str(target), "--force")
    assert forced.returncode == 0
    assert spocd("rules", "check", config=target / "spocd.toml").returncode == 0


def test_passwd_prints_a_users_file_line_from_stdin_never_the_password() -> None:
    from daemon.core.passwords import parse_users, verify_user

    done = spocd("passwd", "sd-tool", "--scheme", "pbkdf2_sha256", input=b"hunter2\n")
    assert done.returncode == 0, done.stderr
    assert b"hunter2" not in done.stdout
    users, problems = parse_users(done.stdout.decode())
    assert not problems and verify_user(users, "sd-tool", "hunter2")
    assert spocd("passwd", "bad user", input=b"x\n").returncode == 64
