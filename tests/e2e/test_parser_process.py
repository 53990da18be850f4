"""`spocd run` with its helper processes (parsing; writing outgoing mail),
as real processes: mail over SMTP is parsed and answered with or without
them, and a daemon killed with SIGKILL leaves no helper behind."""

from __future__ import annotations

import os
import signal
import smtplib
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import write_config
from tests.support.mail import make_mail
from tests.support.proc import children, running, start_daemon, wait_for_port, wait_until
from tests.support.relay import free_port


@pytest.mark.parametrize("helpers", [True, False])
def test_the_daemon_takes_mail_with_or_without_its_helper_processes(
    tmp_path: Path, helpers: bool
) -> None:
    port = free_port()
    db = f"sqlite:///{tmp_path / 'spocd.db'}"
    limits = {"parser_process": helpers, "delivery_process": helpers}
    config = write_config(tmp_path, db, smtp={"port": port}, limits=limits)
    proc = start_daemon(config, log=tmp_path / "run.log")
    try:
        wait_for_port("127.0.0.1", port, proc=proc)
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
            for n in range(5):
                raw = make_mail(subject=f"Centrala VoIP nie działa {n}", message_id=f"pp{n}@x.org")
                smtp.sendmail("jan.kowalski@example.org", ["helpdesk@example.com"], raw)
        engine = create_engine(db)

        def processed() -> list[str]:
            with engine.connect() as conn:
                return list(conn.execute(text("SELECT group_name FROM tickets")).scalars())

        wait_until(lambda: len(processed()) == 5, timeout=60)
        assert processed() == ["telephony"] * 5  # the rules' decision, wherever it was made

        def sent() -> int:
            with engine.connect() as conn:
                return conn.execute(text("SELECT count(*) FROM outbox WHERE state = 'sent'")).one()[
                    0
                ]

        # Acknowledgements and group notices, written wherever the daemon writes them.
        wait_until(lambda: sent() >= 10, timeout=60)
        maildir = tmp_path / "sent" / "new"
        assert len(list(maildir.iterdir())) == sent()
        engine.dispose()
        helpers_running = [p for p in children(proc.pid) if running(p)]
        # the parser, the delivery helper, multiprocessing's resource tracker
        assert (len(helpers_running) >= 3) is helpers

        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        wait_until(lambda: not any(running(p) for p in helpers_running), timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
