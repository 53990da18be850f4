"""SLA escalation through the real command line: `spocd ingest`, then
`spocd tick --now` as processes, mail caught by an SMTP relay; then `spocd
show` and `spocd report` read what the ticks did.

Rules and moments as in test_sla_sweeps: "Mail server down" opened Wednesday
2026-11-25 09:00 UTC (10:00 Warsaw) is P2 for anna@example.com; its response
is due 10:00 UTC, 75% of it at 09:45 UTC.
"""

from __future__ import annotations

import csv
import io
import json
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import DATA, write_config
from tests.support.mail import make_mail
from tests.support.proc import spocd, start_daemon, wait_until
from tests.support.relay import Relay

RULES = DATA / "rules" / "sla_desk.yaml"


def run(*args: str, config: Path) -> str:
    done = spocd(*args, config=config)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


@pytest.mark.slow
def test_ingest_then_ticks_escalate_once_each_through_the_cli(
    tmp_path: Path, db_url: str, relay: Relay
) -> None:
    config = write_config(
        tmp_path,
        db_url,
        paths={"rules": str(RULES)},
        outgoing={"transport": "smtp", "host": "127.0.0.1", "port": relay.port},
    )
    eml = tmp_path / "request.eml"
    eml.write_bytes(make_mail(subject="Mail server down"))

    out = run("ingest", str(eml), "--now", "2026-11-25T09:00:00Z", config=config)
    assert "new ticket HD-1" in out
    # The ack, and the new-ticket notice to the assignee the rules chose.
    assert [c.rcpt_tos for c in relay.caught] == [
        ["jan.kowalski@example.org"],
        ["anna@example.com"],
    ]

    quiet = json.loads(run("tick", "--now", "2026-11-25T09:44:00Z", "--json", config=config))
    assert (quiet["jobs"], quiet["sent"]) == ({}, 0)

    # A moment with an offset names the same instant as 09:45Z.
    due = json.loads(run("tick", "--now", "2026-11-25T10:45:00+01:00", "--json", config=config))
    assert due["jobs"] == {"sla_warnings": 1, "escalations": 1}
    assert due["sent"] == 1
    [notice] = relay.caught[2:]
    assert notice.rcpt_tos == ["anna@example.com"]
    assert notice.message["Subject"].startswith("[HD-1] SLA warning: 75% of the response time")
    assert notice.message["Auto-Submitted"] == "auto-generated"

    again = json.loads(run("tick", "--now", "2026-11-25T09:45:00Z", "--json", config=config))
    assert (again["jobs"], again["sent"]) == ({}, 0)
    assert len(relay.caught) == 3

    text = run("tick", "--now", "2026-11-25T10:00:00Z", config=config)
    assert "jobs: " in text and "escalations 1" in text and "mail sent 1" in text
    assert relay.caught[-1].rcpt_tos == ["anna@example.com", "lead@example.com"]

    shown = json.loads(
        run("show", "HD-1", "--json", "--now", "2026-11-25T10:05:00Z", config=config)
    )
    assert (shown["sla_state"], shown["escalation_level"]) == ("breached", 1)
    types = [e["type"] for e in shown["events"]]
    assert types.count("sla_escalation") == 2
    assert [m["kind"] for m in shown["messages"]].count("escalation_notice") == 2

    report = json.loads(run("report", "--json", "--now", "2026-11-25T10:05:00Z", config=config))
    assert report["counts"] == {"opened": 1, "resolved": 0, "closed": 0, "open": 1}
    assert report["by_priority"]["P2"]["response_compliance"] == 0.0
    assert [(b["ticket"], b["target"], b["open"]) for b in report["breaches"]] == [
        ("HD-1", "response", True)
    ]
    assert report["escalations"]["by_level"] == {"0": 1, "1": 1}
    assert report["backlog"]["by_state"]["assigned"] == 1

    rows = list(
        csv.DictReader(
            io.StringIO(
                run("report", "--csv", "--since", "2026-11-25", "--now", "2026-11-25T10:05:00Z",
                    config=config)
            )
        )
    )  # fmt: skip
    assert {(r["dimension"], r["name"]) for r in rows} >= {("priority", "P2"), ("all", "all")}
    assert "SLA report" in run("report", "--now", "2026-11-25T10:05:00Z", config=config)


def test_report_refuses_a_period_that_ends_before_it_starts(tmp_path: Path, db_url: str) -> None:
    config = write_config(tmp_path, db_url, paths={"rules": str(RULES)})
    done = spocd("report", "--since", "2026-11-25", "--until", "2026-11-20", config=config)
    assert done.returncode == 64
    assert b"must come before --until" in done.stderr


def test_spocd_run_sweeps_what_is_due_and_mails_it(
    tmp_path: Path, sqlite_url: str, relay: Relay
) -> None:
    """The daemon's scheduler: a P1 ticket (24x7, response 15m) opened an
    hour ago has its whole response ladder due when `spocd run` starts."""
    config = write_config(
        tmp_path,
        sqlite_url,
        smtp={"enabled": False},  # the scheduler is what is under test
        paths={"rules": str(RULES)},
        outgoing={"transport": "smtp", "host": "127.0.0.1", "port": relay.port},
    )
    eml = tmp_path / "request.eml"
    eml.write_bytes(make_mail(subject="All phones down"))
    opened = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert "new ticket HD-1" in run("ingest", str(eml), "--now", opened, config=config)

    daemon = start_daemon(config, log=tmp_path / "run.log")
    try:
        wait_until(lambda: len([c for c in relay.caught if "SLA " in c.message["Subject"]]) >= 3)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
    notices = [c for c in relay.caught if "SLA " in c.message["Subject"]]
    assert [sorted(c.rcpt_tos) for c in notices] == [
        ["piotr@example.com"],
        ["lead@example.com", "piotr@example.com"],
        ["duty-manager@example.com", "lead@example.com", "vendor-lead@example.com"],
    ]
    assert daemon.returncode == 0
