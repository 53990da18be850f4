"""Workarounds through the real command line (SPEC §8): `spocd ingest` of an
agent's `#workaround` mail and `spocd ticket T workaround --note`, then `spocd
tick --now` past the resolution ladder, mail caught by an SMTP relay.

Rules: tests/data/rules/sla_restore.yaml. "Mail server down" is P2 for
anna@example.com: office hours Mon-Fri 08:00-17:00 Europe/Warsaw, response 1h,
restoration 4h, resolution 8h, updates every 4h; the ladder is 75%, 100%,
150% of the target. "Phones down" is P1 for piotr@example.com: 24x7,
response 15m, restoration 1h, resolution 4h, updates every 1h.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import DATA, write_config
from tests.support.mail import make_mail
from tests.support.proc import spocd
from tests.support.relay import Caught, Relay

pytestmark = pytest.mark.slow

RULES = DATA / "rules" / "sla_restore.yaml"


def run(*args: str, config: Path) -> str:
    done = spocd(*args, config=config)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def at(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def body(caught: Caught) -> str:
    part = caught.message.get_body(("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def setup(tmp_path: Path, db_url: str, relay: Relay) -> Path:
    return write_config(
        tmp_path,
        db_url,
        paths={"rules": str(RULES)},
        outgoing={"transport": "smtp", "host": "127.0.0.1", "port": relay.port},
    )


def ingest(tmp_path: Path, config: Path, now: str, **mail: str) -> str:
    eml = tmp_path / f"mail-{now.replace(':', '')}.eml"
    eml.write_bytes(make_mail(**mail))
    return run("ingest", str(eml), "--now", now, config=config)


def show(config: Path, now: str) -> dict:  # type: ignore[type-arg]
    return json.loads(run("show", "HD-1", "--json", "--now", now, config=config))  # type: ignore[no-any-return]


def tick(config: Path, now: str) -> dict:  # type: ignore[type-arg]
    return json.loads(run("tick", "--now", now, "--json", config=config))  # type: ignore[no-any-return]


def test_workaround_by_mail_restores_and_stops_the_ladder(
    tmp_path: Path, db_url: str, relay: Relay
) -> None:
    config = setup(tmp_path, db_url, relay)
    # Wednesday 10:00 Warsaw: restoration due 14:00 (13:00 UTC), resolution
    # due Thursday 09:00 (08:00 UTC); 150% of it is Thursday 13:00 (12:00 UTC).
    assert "new ticket HD-1" in ingest(
        tmp_path, config, "2026-11-25T09:00:00Z", subject="Mail server down"
    )
    opened = show(config, "2026-11-25T09:00:00Z")
    assert at(opened["restoration_due"]) == at("2026-11-25T13:00:00Z")
    assert at(opened["resolution_due"]) == at("2026-11-26T08:00:00Z")
    assert opened["restored_at"] is None
    assert len(relay.caught) == 2  # the ack and the notice to anna

    # An empty #workaround (a signature is no workaround) is refused to the agent.
    ingest(tmp_path, config, "2026-11-25T09:20:00Z", sender="anna@example.com",
           subject="Re: [HD-1] Mail server down", body="#workaround\n\n-- \nAnna\n")  # fmt: skip
    [refusal] = relay.caught[2:]
    assert refusal.rcpt_tos == ["anna@example.com"]
    assert "#workaround needs the workaround below the commands" in body(refusal)
    assert "what the requester should do to work again" in " ".join(body(refusal).split())
    assert show(config, "2026-11-25T09:20:00Z")["restored_at"] is None

    ingest(
        tmp_path,
        config,
        "2026-11-25T09:30:00Z",
        sender="anna@example.com",
        subject="Re: [HD-1] Mail server down",
        body="#workaround\n\nPlease use the web mail at https://mail.example.com meanwhile.\n",
    )
    [mail] = relay.caught[3:]
    assert mail.rcpt_tos == ["jan.kowalski@example.org"]
    assert mail.message["Subject"] == "[HD-1] Workaround: Mail server down"
    text = body(mail)
    assert "this is how you can get working again now" in text
    assert "https://mail.example.com" in text and "permanent fix" in text
    restored = show(config, "2026-11-25T09:30:00Z")
    assert at(restored["restored_at"]) == at("2026-11-25T09:30:00Z")
    assert at(restored["first_responded_at"]) == at("2026-11-25T09:30:00Z")
    assert (restored["status"], restored["sla_state"]) == ("in_progress", "met")

    # A second workaround is mailed and recorded, and moves nothing.
    run("ticket", "HD-1", "workaround", "--note", "Or use the phone app.",
        "--as", "anna@example.com", "--now", "2026-11-25T10:30:00Z", config=config)  # fmt: skip
    [again] = relay.caught[4:]
    assert "here is an updated workaround" in body(again)
    second = show(config, "2026-11-25T10:30:00Z")
    assert at(second["restored_at"]) == at("2026-11-25T09:30:00Z")
    events = [e for e in second["events"] if e["type"] == "workaround"]
    assert [(e["actor"], e["detail"]["first"], e["detail"]["met"]) for e in events] == [
        ("anna@example.com", True, True),
        ("anna@example.com", False, True),
    ]
    assert events[1]["detail"]["text"] == "Or use the phone app."
    assert [m["kind"] for m in second["messages"]].count("workaround") == 2

    # Past 150% of the resolution target: no warning, breach or escalation;
    # the status update (4h after 11:30 Warsaw) still goes, once.
    done = tick(config, "2026-11-26T13:00:00Z")
    assert done["jobs"] == {"status_updates": 1}
    [update] = relay.caught[5:]
    assert update.rcpt_tos == ["jan.kowalski@example.org"]
    assert "you can work again with the workaround we sent" in body(update)
    late = show(config, "2026-11-26T13:00:00Z")
    assert (late["status"], late["sla_state"], late["escalation_level"]) == (
        "in_progress",
        "met",
        0,
    )
    assert not [e for e in late["events"] if e["type"].startswith("sla_")]

    # The permanent fix is resolved as usual; then no workaround any more.
    run("ticket", "HD-1", "resolve", "--code", "fixed", "--note", "Replaced the disk.",
        "--now", "2026-11-26T13:30:00Z", config=config)  # fmt: skip
    refused = spocd("ticket", "HD-1", "workaround", "--note", "Try again.",
                    "--now", "2026-11-26T13:40:00Z", config=config)  # fmt: skip
    assert refused.returncode == 65
    assert b"cannot record a workaround: the ticket is resolved" in refused.stderr
    empty = spocd("ticket", "HD-1", "workaround", config=config)
    assert empty.returncode == 64
    assert b"ticket workaround needs --note TEXT" in empty.stderr


def test_workaround_in_polish_across_the_dst_change_and_the_report(
    tmp_path: Path, db_url: str, relay: Relay
) -> None:
    config = setup(tmp_path, db_url, relay)
    # Friday 2026-10-23 15:00 CEST; summer time ends on Sunday. Restoration:
    # 2h Friday + 2h Monday = Monday 10:00 CET (09:00 UTC); resolution Monday
    # 14:00 CET (13:00 UTC); 150% of it is Tuesday 09:00 CET.
    ingest(tmp_path, config, "2026-10-23T13:00:00Z", sender="jan@firma.pl",
           subject="Mail server down")  # fmt: skip
    opened = show(config, "2026-10-23T13:00:00Z")
    assert at(opened["restoration_due"]) == at("2026-10-26T09:00:00Z")
    assert at(opened["resolution_due"]) == at("2026-10-26T13:00:00Z")

    run("ticket", "HD-1", "workaround", "--note", "Proszę korzystać z poczty przez przeglądarkę.",
        "--as", "anna@example.com", "--now", "2026-10-26T08:30:00Z", config=config)  # fmt: skip
    mail = relay.to("jan@firma.pl")[-1]
    assert mail.message["Subject"] == "[HD-1] Rozwiązanie tymczasowe: Mail server down"
    text = body(mail)
    assert text.startswith("Dzień dobry,\n\nw sprawie Państwa zgłoszenia HD-")
    assert "mamy rozwiązanie tymczasowe – dzięki niemu już teraz mogą Państwo" in text
    assert "wrócić do pracy" in text
    assert "poczty przez przeglądarkę" in text
    restored = show(config, "2026-10-26T08:30:00Z")
    assert at(restored["restored_at"]) == at("2026-10-26T08:30:00Z")

    done = tick(config, "2026-10-27T09:00:00Z")
    assert done["jobs"] == {"status_updates": 1}
    update = relay.to("jan@firma.pl")[-1]
    assert "dzięki przesłanemu rozwiązaniu tymczasowemu mogą Państwo pracować" in body(update)
    assert not relay.to("lead@example.com")

    # Restored after 2h Friday + 1h30 Monday = 12,600 s, in time; the strict
    # resolution is late (open past Monday 14:00).
    args = ("report", "--since", "2026-10-19", "--until", "2026-11-02",
            "--now", "2026-11-04T12:00:00Z")  # fmt: skip
    p2 = json.loads(run(*args, "--json", config=config))["by_priority"]["P2"]
    assert (
        p2["restoration_compliance"],
        p2["resolution_or_workaround_compliance"],
        p2["resolution_compliance"],
        p2["restoration_median_s"],
        p2["restoration_p90_s"],
    ) == (1.0, 1.0, 0.0, 12600, 12600)
    assert "res./wa" in run(*args, config=config)
    rows = list(csv.DictReader(io.StringIO(run(*args, "--csv", config=config))))
    [row] = [r for r in rows if (r["dimension"], r["name"]) == ("priority", "P2")]
    assert (row["restoration_compliance"], row["restoration_median_s"]) == ("1.0", "12600")


def test_24x7_restoration_breached_then_restored_late(
    tmp_path: Path, db_url: str, relay: Relay
) -> None:
    config = setup(tmp_path, db_url, relay)
    ingest(tmp_path, config, "2026-11-25T09:00:00Z", subject="Phones down")
    run("ticket", "HD-1", "reply", "We are on it.", "--as", "piotr@example.com",
        "--now", "2026-11-25T09:05:00Z", config=config)  # fmt: skip
    # Restoration due 10:00 UTC: its warning (09:45) and breach are events.
    done = tick(config, "2026-11-25T10:01:00Z")
    assert done["jobs"] == {"sla_warnings": 1, "sla_breaches": 1}
    breach = [e for e in show(config, "2026-11-25T10:01:00Z")["events"]
              if e["type"] == "sla_breach"]  # fmt: skip
    assert [e["detail"]["target"] for e in breach] == ["restoration"]

    run("ticket", "HD-1", "workaround", "--note", "Use the mobile phones meanwhile.",
        "--as", "piotr@example.com", "--now", "2026-11-25T10:30:00Z", config=config)  # fmt: skip
    late = show(config, "2026-11-25T10:30:00Z")
    assert (late["sla_state"], at(late["restored_at"])) == ("breached", at("2026-11-25T10:30:00Z"))
    [event] = [e for e in late["events"] if e["type"] == "workaround"]
    assert (event["detail"]["first"], event["detail"]["met"]) == (True, False)

    # Past the resolution deadline (13:00) and 150% (15:00): updates only.
    sent_before = len(relay.caught)
    done = tick(config, "2026-11-25T15:30:00Z")
    assert done["jobs"] == {"status_updates": 1}
    assert [c.rcpt_tos for c in relay.caught[sent_before:]] == [["jan.kowalski@example.org"]]
