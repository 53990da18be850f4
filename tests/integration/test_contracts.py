"""Tickets under contracts (SPEC §7): the contract a ticket opens under, the
targets it keeps, and a priority change that keeps the time already spent.
Runs on SQLite and PostgreSQL.

Rules: tests/data/rules/contracts_desk.yaml (the SLA desk plus ACME, office
hours with P2 at 30m/6h, and Globex with P1 at 10m/2h 24x7). The clock starts
at conftest T0, Wednesday 2026-11-25 10:00 Warsaw.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from daemon.app import slaclock
from daemon.app.jobs import run_due
from daemon.app.views import ticket_json
from daemon.config import load_settings
from daemon.service.wiring import App
from tests.conftest import DATA, write_config
from tests.support.clock import ManualClock
from tests.support.flow import events, ingest, ticket
from tests.support.mail import make_mail
from tests.support.relay import Caught, Relay

WARSAW = ZoneInfo("Europe/Warsaw")
RULES = DATA / "rules" / "contracts_desk.yaml"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=WARSAW)


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    """A copy of the desk's rules the test may edit and reload."""
    path = tmp_path / "rules.yaml"
    path.write_text(RULES.read_text("utf-8"), "utf-8")
    return path


@pytest.fixture
def desk(tmp_path: Path, db_url: str, clock: ManualClock, rules_file: Path) -> Iterator[App]:
    settings = load_settings(write_config(tmp_path, db_url, paths={"rules": str(rules_file)}))
    app = App(settings, clock)
    yield app
    app.close()


def open_ticket(app: App, sender: str, subject: str = "Printer jams", **kw: object) -> int:
    outcome = ingest(app, make_mail(sender=sender, subject=subject), **kw)  # type: ignore[arg-type]
    assert outcome.outcome == "created"
    return int(outcome.ticket)


def test_a_ticket_opens_under_its_requesters_contract(desk: App) -> None:
    number = open_ticket(desk, "Jan Kowalski <jan@biuro.acme.pl>", "Server down")
    t = ticket(desk, number)
    assert (t.contract, t.priority, t.group, t.language) == ("acme", "P2", "third-line", "pl")
    # ACME's P2 row: response 30m, resolution 6h of office time from 10:00
    assert t.first_response_due == at("2026-11-25 10:30")
    assert t.resolution_due == at("2026-11-25 16:00")
    document = ticket_json(t, desk.runtime.prefix, desk.runtime.rules, desk.clock.now())
    assert document["contract"] == "acme"
    [created] = [e for e in events(desk, number) if e.type == "created"]
    assert created.detail["contract"] == "acme"
    assert created.detail["contract_reason"] == "matched by domain acme.pl"


def test_a_requester_under_no_contract_gets_the_top_level_targets(desk: App) -> None:
    number = open_ticket(desk, "someone@example.org", "Server down")
    t = ticket(desk, number)
    assert (t.contract, t.priority, t.group, t.language) == (None, "P2", "second-line", "en")
    assert t.first_response_due == at("2026-11-25 11:00")  # top-level P2: 1h, 8h
    assert t.resolution_due == at("2026-11-26 09:00")
    assert ticket_json(t, "HD", desk.runtime.rules, desk.clock.now())["contract"] is None


def test_an_escalation_takes_the_forwarded_requesters_contract(desk: App) -> None:
    raw = make_mail(
        sender="Service Desk <sd@firstline.example.net>",
        to="escalations@example.com",
        subject="FW: [SD-11] Printer jams",
        body="Please take this one.\n\n-----Original Message-----\n"
        "From: Jan Kowalski <jan@acme.pl>\nSubject: Printer jams\n\nIt jams again.\n",
    )
    outcome = ingest(desk, raw, escalation=True)
    t = ticket(desk, outcome.ticket)
    assert (t.requester, t.escalated_by) == ("jan@acme.pl", "sd@firstline.example.net")
    assert (t.contract, t.language) == ("acme", "pl")


def test_first_line_itself_under_a_contract_does_not_lend_it(desk: App) -> None:
    raw = make_mail(
        sender="Service Desk <sd@acme.pl>",
        to="escalations@example.com",
        subject="FW: [SD-12] Printer jams",
        body="Please take this one.\n\n-----Original Message-----\n"
        "From: Ola <ola@globex.com>\nSubject: Printer jams\n\nIt jams.\n",
    )
    t = ticket(desk, ingest(desk, raw, escalation=True).ticket)
    assert (t.requester, t.contract) == ("ola@globex.com", "globex")


def test_a_rules_set_contract_wins(desk: App) -> None:
    t = ticket(desk, open_ticket(desk, "jan@acme.pl", "Partner request"))
    assert (t.contract, t.group) == ("globex", "second-line")


# --- the targets a ticket keeps ----------------------------------------------------------

AGENT = "ewa@example.com"  # third-line, ACME's group


def agent_says(app: App, number: int, body: str) -> None:
    outcome = ingest(app, make_mail(sender=AGENT, subject=f"Re: [HD-{number}] x", body=body))
    assert outcome.outcome == "appended", outcome


def requester_says(app: App, number: int, sender: str, body: str) -> None:
    outcome = ingest(app, make_mail(sender=sender, subject=f"Re: [HD-{number}] x", body=body))
    assert outcome.outcome == "appended", outcome


def test_a_priority_change_takes_the_contracts_row_and_keeps_time_spent_and_pauses(
    desk: App, clock: ManualClock
) -> None:
    """Hand-computed on the office calendar (Mon-Fri 08:00-17:00 Warsaw):
    opened Monday 09:00 as P3 under ACME (the top-level P3: 4h, 3d); pending
    from 09:30 to 10:30 (1h of business time paused); #priority P2 at 11:00
    takes ACME's P2 row (30m, 6h), counted from the opening, not from the
    change: 09:00 + 6h = 15:00, plus the 1h paused = Monday 16:00. (The
    top-level P2, 8h, would say Tuesday 09:00; counting from the change
    would say Monday 18:00 = Tuesday 09:00 too, with the pause, Tuesday 10:00.)"""
    clock.set(at("2026-11-30 09:00"))
    number = open_ticket(desk, "jan@acme.pl", "Printer jams")
    t = ticket(desk, number)
    assert (t.contract, t.priority) == ("acme", "P3")
    assert t.resolution_due == at("2026-12-03 09:00")  # 3 business days
    clock.set(at("2026-11-30 09:30"))
    agent_says(desk, number, "#pending\n\nWhich printer is it?\n")
    assert ticket(desk, number).paused_at == at("2026-11-30 09:30")
    clock.set(at("2026-11-30 10:30"))
    requester_says(desk, number, "jan@acme.pl", "The one on floor 2.")
    t = ticket(desk, number)
    assert (t.paused_at, t.paused_seconds) == (None, 3600.0)
    assert t.resolution_due == at("2026-12-03 10:00")
    clock.set(at("2026-11-30 11:00"))
    agent_says(desk, number, "#priority P2\n")
    t = ticket(desk, number)
    assert (t.priority, t.paused_seconds) == ("P2", 3600.0)
    assert t.resolution_due == at("2026-11-30 16:00")
    # answered at 09:30 (the #pending mail asked a question): the response
    # target was met and stays so
    assert t.first_responded_at == at("2026-11-30 09:30")
    [retarget] = [e for e in events(desk, number) if e.type == "sla_retargeted"]
    assert (retarget.detail["from"], retarget.detail["to"]) == ("P3", "P2")


def test_a_priority_change_of_an_unanswered_ticket_retargets_the_response_too(
    desk: App, clock: ManualClock
) -> None:
    """Globex P3 opened Monday 09:00; #priority P1 at 09:05 (by an agent
    note, which is no response): Globex's P1 row, 24x7, 10m and 2h from
    09:00 -> response 09:10, resolution 11:00."""
    clock.set(at("2026-11-30 09:00"))
    number = open_ticket(desk, "ola@globex.com", "Printer jams")
    clock.set(at("2026-11-30 09:05"))
    ingest(
        desk,
        make_mail(sender="lead@example.com", subject=f"Re: [HD-{number}] x", body="#priority P1\n"),
    )
    t = ticket(desk, number)
    assert (t.contract, t.priority, t.first_responded_at) == ("globex", "P1", None)
    assert (t.first_response_due, t.resolution_due) == (
        at("2026-11-30 09:10"),
        at("2026-11-30 11:00"),
    )


def _edit_rules(app: App, path: Path, old: str, new: str) -> None:
    text = path.read_text("utf-8")
    assert old in text
    path.write_text(text.replace(old, new), "utf-8")
    app.reload()


def test_a_reload_changes_only_tickets_opened_after_it(
    desk: App, clock: ManualClock, rules_file: Path
) -> None:
    before = open_ticket(desk, "jan@acme.pl", "Server down")  # ACME P2: 30m, 6h
    _edit_rules(
        desk,
        rules_file,
        "P2: {response: 30m, resolution: 6h, update_every: 2h}",
        "P2: {response: 2h, resolution: 7h, update_every: 2h}",
    )
    after = open_ticket(desk, "jan@acme.pl", "Server down")
    rules = desk.runtime.rules
    old, new = ticket(desk, before), ticket(desk, after)
    assert (old.first_response_due, new.first_response_due) == (
        at("2026-11-25 10:30"),
        at("2026-11-25 12:00"),
    )
    old_policy, new_policy = slaclock.policy_of(old, rules), slaclock.policy_of(new, rules)
    assert old_policy is not None and new_policy is not None
    assert (old_policy.response.seconds, new_policy.response.seconds) == (1800, 7200)
    breach = {p.key: p.due_at for p in slaclock.plan_timers(old, rules)}["response:breach"]
    assert breach == at("2026-11-25 10:30")
    # a priority change of the old ticket takes the row it opened under
    clock.set(at("2026-11-25 10:05"))
    agent_says(desk, before, "#priority P3\n")
    agent_says(desk, before, "#priority P2\n")
    assert ticket(desk, before).resolution_due == at("2026-11-25 16:00")


def test_a_contract_removed_by_a_reload_leaves_its_tickets_on_their_targets(
    desk: App, clock: ManualClock, rules_file: Path
) -> None:
    number = open_ticket(desk, "ola@globex.com", "Phones down")  # Globex P1: 10m, 2h 24x7
    t = ticket(desk, number)
    assert (t.contract, t.priority, t.resolution_due) == ("globex", "P1", at("2026-11-25 12:00"))
    text = rules_file.read_text("utf-8")
    start, end = text.index("  globex:"), text.index("rules:")
    rules_file.write_text(
        text[:start] + text[end:].replace("set: {contract: globex, ", "set: {"), "utf-8"
    )
    desk.reload()
    rules = desk.runtime.rules
    assert "globex" not in rules.contracts
    t = ticket(desk, number)
    assert t.contract == "globex"
    assert ticket_json(t, "HD", rules, clock.now())["contract"] == "globex"
    policy = slaclock.policy_of(t, rules)
    assert policy is not None and policy.resolution.seconds == 7200  # not the top-level 4h
    clock.set(at("2026-11-25 10:05"))
    agent_says(desk, number, "#priority P2\n#priority P1\n")
    assert ticket(desk, number).resolution_due == at("2026-11-25 12:00")
    newer = ticket(desk, open_ticket(desk, "ola@globex.com", "Phones down"))
    assert (newer.contract, newer.resolution_due) == (None, at("2026-11-25 14:05"))


def test_a_ticket_without_a_stored_table_reads_the_current_rules(desk: App) -> None:
    """Tickets opened before contracts existed have no table of their own."""
    number = open_ticket(desk, "jan@acme.pl", "Server down")
    with desk.store.transaction() as tx:
        t = tx.tickets.get(number)
        assert t is not None
        del t.extra[slaclock.SLA_TABLE_KEY]
        t.contract = None
        tx.tickets.save(t)
    policy = slaclock.policy_of(ticket(desk, number), desk.runtime.rules)
    assert policy is desk.runtime.rules.sla["P2"]


# --- contacts ------------------------------------------------------------------------------

CONTACT = "it-manager@acme.pl"


@pytest.fixture
def mailed(tmp_path: Path, db_url: str, clock: ManualClock, relay: Relay) -> Iterator[App]:
    """The desk sending over real SMTP to the test's relay."""
    settings = load_settings(
        write_config(
            tmp_path,
            db_url,
            paths={"rules": str(RULES)},
            outgoing={"transport": "smtp", "host": "127.0.0.1", "port": relay.port},
        )
    )
    app = App(settings, clock)
    yield app
    app.close()


def to_(relay: Relay, address: str, since: int = 0) -> list[Caught]:
    """What the relay caught for `address`, from the `since`-th mail on."""
    return [c for c in relay.caught[since:] if address in c.rcpt_tos]


def test_contacts_get_a_copy_of_the_acknowledgement_of_their_priorities(
    mailed: App, relay: Relay
) -> None:
    p2 = open_ticket(mailed, "jan@acme.pl", "Server down")  # P2: in cc_priorities
    [ack] = to_(relay, "jan@acme.pl")
    [copy] = to_(relay, CONTACT)
    assert copy.rcpt_tos == [CONTACT] and ack.rcpt_tos == ["jan@acme.pl"]
    for caught in (ack, copy):
        assert caught.message["Cc"] == CONTACT
        assert caught.message["To"] == "jan@acme.pl"
        assert f"[HD-{p2}]" in str(caught.message["Subject"])
    assert ack.message["Message-ID"] != copy.message["Message-ID"]
    assert ack.message.get_body(("plain",)).get_content() == (
        copy.message.get_body(("plain",)).get_content()
    )
    # internal mail never: the group's notice of the new ticket goes to agents only
    assert all(CONTACT not in c.rcpt_tos for c in relay.caught if c not in (copy,))
    seen = len(relay.caught)
    open_ticket(mailed, "ola@acme.pl", "Printer jams")  # P3: not in cc_priorities
    assert to_(relay, "ola@acme.pl") and not to_(relay, CONTACT, seen)
    open_ticket(mailed, "jan@example.org", "Server down")  # no contract
    assert not to_(relay, CONTACT, seen)


def test_contacts_get_the_status_updates_but_not_the_escalations(
    mailed: App, relay: Relay, clock: ManualClock
) -> None:
    """ACME P2 from 10:00: updates every 2h (12:00); the response ladder
    (75% at 10:22:30, 100% at 10:30 ...) is internal mail."""
    number = open_ticket(mailed, "jan@acme.pl", "Server down")
    seen = len(relay.caught)
    for moment in ("10:23", "10:31", "10:46", "12:01"):
        clock.set(at(f"2026-11-25 {moment}"))
        mailed.tick(lambda now: run_due(mailed.store, lambda: mailed.runtime, now))
    assert len(to_(relay, "jan@acme.pl", seen)) == 1
    [copy] = to_(relay, CONTACT, seen)
    assert copy.message["Cc"] == CONTACT and f"[HD-{number}]" in str(copy.message["Subject"])
    assert "Auto-Submitted" in copy.message
    assert len(relay.caught) - seen > 2  # escalation notices went out, none to the contact


def test_each_contact_is_rate_limited_and_loop_protected_like_a_correspondent(
    mailed: App, relay: Relay
) -> None:
    """auto_replies.max_per_hour is 10: the eleventh copy within the hour is
    held back for the contact alone; the requesters get every acknowledgement."""
    numbers = [open_ticket(mailed, f"user{n}@acme.pl", "Server down") for n in range(11)]
    assert len(to_(relay, CONTACT)) == 10
    assert all(to_(relay, f"user{n}@acme.pl") for n in range(11))
    held = [e for e in events(mailed, numbers[-1]) if e.type == "auto_reply_suppressed"]
    assert [e.detail["to"] for e in held] == [[CONTACT]]
    assert "more than 10 automatic mails" in held[0].detail["reason"]


def test_a_failing_contact_gets_no_copy(mailed: App, relay: Relay, clock: ManualClock) -> None:
    with mailed.store.transaction() as tx:
        tx.addresses.mark_failing(CONTACT, clock.now(), "550 no such user")
    number = open_ticket(mailed, "jan@acme.pl", "Server down")
    assert to_(relay, "jan@acme.pl") and not to_(relay, CONTACT)
    [held] = [e for e in events(mailed, number) if e.type == "auto_reply_suppressed"]
    assert held.detail["to"] == [CONTACT] and "failing" in held.detail["reason"]


def test_a_contacts_reply_joins_the_thread_like_a_cc(mailed: App, relay: Relay) -> None:
    number = open_ticket(mailed, "jan@acme.pl", "Server down")
    [copy] = to_(relay, CONTACT)
    outcome = ingest(
        mailed,
        make_mail(
            sender=f"IT Manager <{CONTACT}>",
            subject=f"Re: {copy.message['Subject']}",
            body="We have a spare server in the rack, use it if needed.",
            in_reply_to=str(copy.message["Message-ID"]).strip("<>"),
        ),
    )
    assert (outcome.outcome, outcome.ticket) == ("appended", number)
    [received] = [e for e in events(mailed, number) if e.type == "message_received"]
    assert received.detail["role"] == "cc"
