"""No mail loops, both ways (SPEC §4 "No loops").

Inbound: nothing automatic answers automatic mail. Outbound: our automatic
mail says so (RFC 3834 and Exchange's header), and automatic answers to one
address are rate-limited. Two spocd instances whose addresses write to each
other stop within a bounded number of mails, even when a hop in between
strips every loop signal.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from daemon.config import Settings, load_settings
from daemon.service.wiring import App
from tests.conftest import DATA, write_config
from tests.support.clock import ManualClock
from tests.support.flow import events, ingest
from tests.support.mail import make_mail
from tests.support.relay import Relay
from tests.unit.mail.test_loops import CASES as AUTOMATIC_CASES

A, B = "helpdesk@desk-a.example", "helpdesk@desk-b.example"


def desk(tmp_path: Path, name: str, address: str, clock: ManualClock, relay: Relay) -> App:
    """One spocd instance with its own database, sending through its relay."""
    folder = tmp_path / name
    folder.mkdir()
    config = write_config(
        folder,
        f"sqlite:///{folder / 'spocd.db'}",
        helpdesk={"address": address, "name": f"Desk {name}"},
        outgoing={"transport": "smtp", "host": "127.0.0.1", "port": relay.port},
    )
    return App(load_settings(config), clock)


@pytest.fixture
def relays() -> Iterator[tuple[Relay, Relay]]:
    pair = (Relay().start(), Relay().start())
    yield pair
    for relay in pair:
        relay.stop()


def play(
    apps: dict[str, App],
    relays: dict[str, Relay],
    hop: Callable[[bytes], bytes] = lambda raw: raw,
    cap: int = 200,
) -> list[tuple[str, str]]:
    """Deliver what each desk's relay caught for the other desk, until no
    mail moves (or `cap` mails: a loop). Returns (from desk, subject) pairs."""
    other = {A: B, B: A}
    delivered: dict[str, int] = {A: 0, B: 0}
    moved: list[tuple[str, str]] = []
    while len(moved) < cap:
        progress = False
        for source in (A, B):
            target = other[source]
            caught = [c for c in relays[source].caught if target in c.rcpt_tos]
            for mail in caught[delivered[source] :]:
                moved.append((source, str(mail.message["Subject"])))
                ingest(apps[target], hop(mail.raw))
                progress = True
            delivered[source] = len(caught)
        if not progress:
            break
    return moved


def test_two_desks_answering_each_other_stop_after_one_mail(
    tmp_path: Path, clock: ManualClock, relays: tuple[Relay, Relay]
) -> None:
    relay_a, relay_b = relays
    apps = {A: desk(tmp_path, "a", A, clock, relay_a), B: desk(tmp_path, "b", B, clock, relay_b)}
    try:
        # Someone makes desk A write to desk B (a forged or misdirected mail).
        ingest(apps[A], make_mail(sender=B, to=A, subject="Printer on floor 2 jams"))
        moved = play(apps, {A: relay_a, B: relay_b})
        assert [source for source, _ in moved] == [A]  # A's ack; B answers nothing
        ack = next(c for c in relay_a.caught if B in c.rcpt_tos).message
        assert ack["Auto-Submitted"] == "auto-replied"
        assert ack["X-Auto-Response-Suppress"] == "All"
        assert ack["X-Spocd-Loop"] == "desk-a.example"
        [suppressed] = [e for e in events(apps[B], 1) if e.type == "auto_reply_suppressed"]
        assert suppressed.detail["reason"].startswith("auto-reply: ")
    finally:
        for app in apps.values():
            app.close()


def strip_loop_signals(raw: bytes) -> bytes:
    """A hop that re-sends mail as new (some gateways, "redirect" rules): no
    RFC 3834 or Exchange header, no loop header, no thread, no ticket tag."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    for name in (
        "Auto-Submitted",
        "X-Auto-Response-Suppress",
        "Precedence",
        "X-Spocd-Loop",
        "In-Reply-To",
        "References",
    ):
        del msg[name]
    subject = re.sub(r"\[HD-\d+\]\s*", "", str(msg["Subject"]))
    msg.replace_header("Subject", subject)
    msg.replace_header("Message-ID", email.utils.make_msgid(domain="gateway.example"))
    return msg.as_bytes()


def test_with_every_loop_signal_stripped_the_rate_limit_still_ends_the_loop(
    tmp_path: Path, clock: ManualClock, relays: tuple[Relay, Relay]
) -> None:
    relay_a, relay_b = relays
    apps = {A: desk(tmp_path, "a", A, clock, relay_a), B: desk(tmp_path, "b", B, clock, relay_b)}
    try:
        ingest(apps[A], make_mail(sender=B, to=A, subject="Printer on floor 2 jams"))
        moved = play(apps, {A: relay_a, B: relay_b}, hop=strip_loop_signals)
        limit = apps[A].runtime.rules.auto_reply_max_per_hour
        assert limit == 10  # the default
        # Each desk acknowledges the other at most `limit` times in the hour.
        assert [s for s, _ in moved].count(A) <= limit
        assert [s for s, _ in moved].count(B) <= limit
        assert len(moved) == 2 * limit  # ... and then it stops
        suppressed = [
            e
            for app in apps.values()
            for t in range(1, limit + 2)
            for e in events(app, t)
            if e.type == "auto_reply_suppressed"
        ]
        assert suppressed and all("in an hour" in e.detail["reason"] for e in suppressed)
    finally:
        for app in apps.values():
            app.close()


# --- the rate limit --------------------------------------------------------------------


def test_automatic_mail_to_one_address_is_limited_to_ten_an_hour_and_recorded(
    relay_app: App, relay: Relay
) -> None:
    sender = "busy@example.org"
    for n in range(12):
        outcome = ingest(relay_app, make_mail(sender=sender, subject=f"Problem number {n}"))
        assert (outcome.outcome, outcome.ticket) == ("created", n + 1)
    assert len(relay.to(sender)) == 10
    for number in (11, 12):  # ticketed, not answered; the reason is on the ticket
        [event] = [e for e in events(relay_app, number) if e.type == "auto_reply_suppressed"]
        assert event.detail["kind"] == "ack"
        assert event.detail["reason"] == f"more than 10 automatic mails to {sender} in an hour"
    with relay_app.store.reading() as tx:
        assert tx.outbox.count("suppressed") == 2
    relay_app.clock.advance(timedelta(minutes=61))  # type: ignore[attr-defined]
    ingest(relay_app, make_mail(sender=sender, subject="Problem number 13"))
    assert len(relay.to(sender)) == 11  # a new hour, a new budget


def test_the_limit_comes_from_rules_yaml(
    tmp_path: Path, settings: Settings, clock: ManualClock
) -> None:
    rules = tmp_path / "rules-3.yaml"
    shipped = settings.paths.rules.read_text(encoding="utf-8")
    rules.write_text(
        shipped.replace("auto_replies: {max_per_hour: 10}", "auto_replies: {max_per_hour: 3}"),
        encoding="utf-8",
    )
    app = App(replace(settings, paths=replace(settings.paths, rules=rules)), clock)
    try:
        for n in range(5):
            ingest(app, make_mail(sender="jan@example.org", subject=f"Problem {n}"))
        with app.store.reading() as tx:
            assert tx.outbox.count("suppressed") == 2
    finally:
        app.close()


# --- inbound: what gets no automatic answer ------------------------------------------------


@pytest.fixture
def own_desk(tmp_path: Path, db_url: str, clock: ManualClock) -> Iterator[App]:
    """A desk at desk.example.com, the domain of the loop fixtures' own mail."""
    config = write_config(tmp_path, db_url, helpdesk={"address": "helpdesk@desk.example.com"})
    app = App(load_settings(config), clock)
    yield app
    app.close()


def outbox_to(app: App, address: str) -> list[str]:
    from sqlalchemy import text

    with app.store.engine.connect() as conn:
        rows = conn.execute(text("SELECT state, recipients FROM outbox")).all()
    return [state for state, rcpts in rows if address in rcpts and state != "suppressed"]


def test_no_automatic_mail_gets_an_automatic_answer(own_desk: App) -> None:
    """Every auto-reply, bounce, list, bulk and own-mail fixture, one desk:
    each is stored (or matched to its ticket), none is answered."""
    answered = []
    for path, kind, _ in AUTOMATIC_CASES:
        raw = (DATA / path).read_bytes()
        address = email.utils.parseaddr(str(email.message_from_bytes(raw)["From"]))[1].lower()
        outcome = ingest(own_desk, raw)
        assert outcome.outcome != "failed", (path, outcome)
        if outbox_to(own_desk, address):
            answered.append((path, kind))
    assert answered == []


def test_a_message_that_only_carries_x_auto_response_suppress_is_ticketed_and_answered(
    relay_app: App, relay: Relay
) -> None:
    raw = (DATA / "loops" / "x_auto_response_suppress_only.eml").read_bytes()
    sender = email.utils.parseaddr(str(email.message_from_bytes(raw)["From"]))[1].lower()
    outcome = ingest(relay_app, raw)
    assert outcome.outcome == "created"
    [ack] = relay.to(sender)
    assert ack.message["Auto-Submitted"] == "auto-replied"
    assert not [e for e in events(relay_app, outcome.ticket) if e.type == "auto_reply_suppressed"]
