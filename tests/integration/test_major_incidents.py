"""Major incidents (SPEC §8): #link/#unlink, the parent's words reaching each
child's requester on the child's own ticket, and the resolve cascade.

Mail goes over real SMTP to the test's relay; SQLite and PostgreSQL. Rules:
tests/data/rules/sla_desk.yaml. HD-1 "Mail server down" (jan, English) is
P2, assigned to anna; HD-2 (ewa, a .pl domain: Polish) is P3; HD-3 (maria,
with her manager in cc) is P3.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from daemon.config import Settings
from daemon.core.domain import Status
from daemon.service.wiring import App
from tests.integration.test_sla_sweeps import at, desk_settings_for, tick, view
from tests.support.clock import ManualClock
from tests.support.flow import events, ingest, messages, ticket
from tests.support.mail import make_mail
from tests.support.relay import Caught, Relay

JAN = "jan.kowalski@example.org"
EWA = "ewa.nowak@firma.pl"
MARIA = "maria@example.net"
BOSS = "boss@example.net"
ANNA = "anna@example.com"


@pytest.fixture
def desk(tmp_path: Path, db_url: str, relay: Relay, clock: ManualClock) -> Iterator[App]:
    app = App(desk_settings_for(tmp_path, db_url, relay), clock)
    yield app
    app.close()


def open_three(app: App) -> None:
    """HD-1 the outage, HD-2 and HD-3 two more reports of it."""
    assert ingest(app, make_mail(sender=JAN, subject="Mail server down")).ticket == 1
    assert ingest(app, make_mail(sender=EWA, subject="Nie działa poczta")).ticket == 2
    outcome = ingest(app, make_mail(sender=MARIA, cc=BOSS, subject="Outlook cannot connect"))
    assert outcome.ticket == 3


def agent_says(app: App, number: int, body: str, *, headers: dict[str, str] | None = None) -> Any:
    return ingest(
        app,
        make_mail(sender=ANNA, subject=f"Re: [HD-{number}] ticket", body=body, headers=headers),
    )


def linked(app: App) -> None:
    open_three(app)
    agent_says(app, 2, "#link HD-1\n")
    agent_says(app, 3, "#link hd-1\n")
    assert (ticket(app, 2).parent, ticket(app, 3).parent) == (1, 1)


def clear(relay: Relay) -> None:
    with relay.handler.lock:
        relay.handler.caught.clear()


def caught_by(relay: Relay, address: str) -> list[Caught]:
    return relay.to(address)


def text_of(caught: Caught) -> str:
    return caught.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def html_of(caught: Caught) -> str:
    return caught.message.get_body(("html",)).get_content()  # type: ignore[union-attr]


def requester_thread(app: App, number: int) -> list[str]:
    return [
        m.message_id
        for m in messages(app, number)
        if not m.internal and (m.direction == "out" or m.kind == "request")
    ]


# --- linking -------------------------------------------------------------------------


def test_link_by_mail_makes_the_ticket_a_child_with_events_on_both(desk: App) -> None:
    open_three(desk)
    agent_says(desk, 2, "#link HD-1\n")
    assert ticket(desk, 2).parent == 1
    assert view(desk, 2)["parent"] == "HD-1"
    assert view(desk, 1)["parent"] is None
    [on_child] = [e for e in events(desk, 2) if e.type == "linked"]
    [on_parent] = [e for e in events(desk, 1) if e.type == "linked"]
    assert (on_child.actor, on_child.detail["parent"]) == (ANNA, "HD-1")
    assert (on_parent.actor, on_parent.detail["child"]) == (ANNA, "HD-2")
    with desk.store.reading() as tx:
        assert [c.number for c in tx.tickets.children(1)] == [2]
        assert tx.tickets.child_counts() == {1: 1}

    agent_says(desk, 2, "#unlink\n")
    assert ticket(desk, 2).parent is None
    assert [e.detail["parent"] for e in events(desk, 2) if e.type == "unlinked"] == ["HD-1"]
    assert [e.detail["child"] for e in events(desk, 1) if e.type == "unlinked"] == ["HD-2"]
    with desk.store.reading() as tx:
        assert tx.tickets.children(1) == []


@pytest.mark.parametrize(
    ("number", "body", "says"),
    [
        (2, "#link HD-2\n", "cannot link a ticket to itself"),
        (2, "#link HD-99\n", "no ticket HD-99 to link to"),
        (4, "#link HD-1\n", "it is a major incident itself (1 linked: HD-3)"),
        (2, "#link HD-3\n", "HD-3 is itself part of the major incident HD-4"),
        (2, "#link HD-5\n", "cannot link to HD-5: it is cancelled"),
        (2, "#unlink\n", "it is not linked to a major incident"),
        (2, "#link HD-1\n#unlink\n", "link or unlink, not both"),
        (2, "#link 1x\n", "#link needs the major incident's ticket, like HD-7"),
    ],
)
def test_a_link_that_cannot_be_is_refused_with_the_reason(
    desk: App, relay: Relay, number: int, body: str, says: str
) -> None:
    open_three(desk)
    ingest(desk, make_mail(sender="olek@example.org", subject="Mail down for me too"))  # HD-4
    ingest(desk, make_mail(sender="olek@example.org", subject="Old"))  # HD-5
    agent_says(desk, 3, "#link HD-4\n")  # HD-4 is a parent, HD-3 its child
    agent_says(desk, 5, "#cancel\n")
    before = [ticket(desk, n).parent for n in range(1, 6)]
    agent_says(desk, number, body)
    assert [ticket(desk, n).parent for n in range(1, 6)] == before
    [refused] = [e for e in events(desk, number) if e.type == "commands_refused"]
    assert any(says in p for p in refused.detail["problems"]), refused.detail
    answer = [c for c in caught_by(relay, ANNA) if says in text_of(c)]
    assert answer, "the agent is told why"


def test_a_merged_ticket_cannot_be_a_parent_and_a_parent_cannot_be_merged(desk: App) -> None:
    linked(desk)
    ingest(desk, make_mail(sender="olek@example.org", subject="Dup"))  # HD-4
    agent_says(desk, 4, "#merge HD-3\n")
    agent_says(desk, 2, "#link HD-4\n")
    [refused] = [e for e in events(desk, 2) if e.type == "commands_refused"]
    assert "HD-4 was merged into HD-3; link to HD-3" in refused.detail["problems"][0]
    agent_says(desk, 1, "#merge HD-3\n")
    assert ticket(desk, 1).merged_into is None
    [refused] = [e for e in events(desk, 1) if e.type == "commands_refused"]
    assert "major incident with 2 open linked tickets" in refused.detail["problems"][0]


@pytest.fixture
def strict_desk(tmp_path: Path, db_url: str, relay: Relay, clock: ManualClock) -> Iterator[App]:
    settings: Settings = desk_settings_for(tmp_path, db_url, relay)
    strict = replace(
        settings,
        agents=replace(
            settings.agents,
            trust="authentication-results",
            trusted_authserv_ids=("mx.example.com",),
        ),
    )
    app = App(strict, clock)
    yield app
    app.close()


def test_a_link_from_an_untrusted_agent_or_a_requester_is_not_obeyed(strict_desk: App) -> None:
    open_three(strict_desk)
    agent_says(strict_desk, 2, "#link HD-1\n", headers={"Authentication-Results": "x; dkim=fail"})
    assert ticket(strict_desk, 2).parent is None
    assert any(e.type == "untrusted_commands" for e in events(strict_desk, 2))
    ingest(strict_desk, make_mail(sender=EWA, subject="Re: [HD-2] poczta", body="#link HD-1\n"))
    assert ticket(strict_desk, 2).parent is None
    assert not any(e.type == "linked" for e in events(strict_desk, 1))
    trusted = {"Authentication-Results": "mx.example.com; dkim=pass header.d=example.com"}
    agent_says(strict_desk, 2, "#link HD-1\n", headers=trusted)
    assert ticket(strict_desk, 2).parent == 1


# --- the parent's reply reaches each child's requester --------------------------------


def test_a_reply_on_the_parent_reaches_each_open_child_in_its_own_thread(
    desk: App, relay: Relay
) -> None:
    linked(desk)
    ingest(desk, make_mail(sender="olek@example.org", subject="Mail down here too"))  # HD-4
    agent_says(desk, 4, "#link HD-1\n")
    agent_says(desk, 4, "#cancel\n")  # a cancelled child hears nothing more
    before = {n: ticket(desk, n) for n in (2, 3)}
    threads = {n: requester_thread(desk, n) for n in (2, 3)}
    clear(relay)
    desk.clock.set(at("2026-11-25 10:20"))  # type: ignore[attr-defined]

    agent_says(desk, 1, "The mail server's disk is full; we are moving the archive.\n")

    [to_jan] = caught_by(relay, JAN)
    assert "moving the archive" in text_of(to_jan)
    [to_ewa] = caught_by(relay, EWA)
    [to_maria] = caught_by(relay, MARIA)
    assert caught_by(relay, "olek@example.org") == []
    assert to_ewa.rcpt_tos == [EWA] and to_ewa.message["To"] == EWA
    assert to_ewa.message["Cc"] is None
    assert sorted(to_maria.rcpt_tos) == [BOSS, MARIA]
    assert (to_maria.message["To"], to_maria.message["Cc"]) == (MARIA, BOSS)
    for caught, number, language in ((to_ewa, 2, "pl"), (to_maria, 3, "en")):
        msg = caught.message
        raw = caught.raw.decode("utf-8", "replace")
        assert f"[HD-{number}]" in msg["Subject"] and "HD-1" not in msg["Subject"]
        assert msg["In-Reply-To"].strip("<>") == threads[number][-1]
        assert threads[number][0] in msg["References"]
        assert msg["Content-Language"] == language
        assert msg["Auto-Submitted"] is None  # a person's words
        assert JAN not in raw  # the parent's requester stays unknown to them
        assert "HD-1" not in raw and "Mail server down" not in raw
        assert "moving the archive" in text_of(caught) and "moving the archive" in html_of(caught)
    assert MARIA not in to_ewa.raw.decode() and BOSS not in to_ewa.raw.decode()
    assert EWA not in to_maria.raw.decode() and JAN not in to_maria.raw.decode()
    pl = text_of(to_ewa)
    assert "Dzień dobry," in pl and "Państwa zgłoszenie HD-2 jest częścią szerszego" in pl
    assert "Z poważaniem" in pl
    assert "your request HD-3 is part of a wider problem" in text_of(to_maria)

    for number in (2, 3):
        after = ticket(desk, number)
        [out] = [m for m in messages(desk, number) if "moving the archive" in m.body]
        assert (out.direction, out.kind, out.internal) == ("out", "agent_reply", False)
        [came] = [e for e in events(desk, number) if e.type == "from_parent"]
        assert came.detail["parent"] == "HD-1" and came.detail["kind"] == "agent_reply"
        assert came.actor == ANNA
        # The reply counts as the child's first response; its targets stay its own.
        assert after.first_responded_at == at("2026-11-25 10:20")
        assert after.first_response_due == before[number].first_response_due
        assert after.resolution_due == before[number].resolution_due
        assert after.priority == "P3" and after.status == Status.IN_PROGRESS
    [fanned] = [e for e in events(desk, 1) if e.type == "fanned_out"]
    assert fanned.detail["children"] == ["HD-2", "HD-3"]
    with desk.store.reading() as tx:
        rows = {m.outbox_id for n in (1, 2, 3) for m in tx.messages.of_ticket(n)}
    assert len(rows) >= 3  # one outbox row per mail


def test_the_parents_pending_does_not_pause_its_children(desk: App, relay: Relay) -> None:
    linked(desk)
    clear(relay)
    agent_says(desk, 1, "#pending\n\nJan, could you tell us when it started?\n")
    assert ticket(desk, 1).status == Status.PENDING
    # The question is for the parent's requester only.
    assert caught_by(relay, EWA) == [] and caught_by(relay, MARIA) == []
    for number in (2, 3):
        child = ticket(desk, number)
        assert child.status != Status.PENDING and child.paused_at is None
        assert view(desk, number)["sla_state"] != "paused"


def test_a_pending_child_stays_pending_when_the_parent_replies(desk: App, relay: Relay) -> None:
    linked(desk)
    agent_says(desk, 3, "#pending\n\nWhich Outlook version do you use?\n")
    paused = ticket(desk, 3).paused_at
    assert paused is not None
    agent_says(desk, 1, "We are moving the archive.\n")
    child = ticket(desk, 3)
    assert (child.status, child.paused_at) == (Status.PENDING, paused)
    assert ticket(desk, 2).status == Status.IN_PROGRESS


def test_a_reply_after_unlink_stays_on_the_parent(desk: App, relay: Relay) -> None:
    linked(desk)
    agent_says(desk, 2, "#unlink\n")
    clear(relay)
    agent_says(desk, 1, "Still working on it.\n")
    assert caught_by(relay, EWA) == []
    assert len(caught_by(relay, MARIA)) == 1


def test_a_workaround_fanned_out_says_so_in_each_childs_language(desk: App, relay: Relay) -> None:
    """The call the workaround (issue 16) makes on the parent."""
    from daemon.app import major
    from daemon.app.actions import Ctx
    from daemon.app.tickets import Actor

    linked(desk)
    clear(relay)
    seen: list[int] = []
    with desk.store.transaction() as tx:
        parent = tx.tickets.get(1, for_update=True)
        assert parent is not None
        ctx = Ctx(tx, desk.runtime, desk.clock.now(), Actor(ANNA, "cli"), parent)
        reached = major.fan_out_public(
            ctx, "workaround", "Use webmail for now.", each=lambda c: seen.append(c.ticket.number)
        )
        ctx.save()
    desk.sender.send_due()
    assert reached == seen == [2, 3]
    pl = text_of(caught_by(relay, EWA)[0])
    assert "Mamy rozwiązanie tymczasowe" in pl and "Use webmail for now." in pl
    assert "We have a temporary solution" in text_of(caught_by(relay, MARIA)[0])
    assert [m.kind for m in messages(desk, 2) if m.direction == "out"][-1] == "workaround"


def test_a_workaround_by_mail_on_the_parent_restores_each_open_child(
    desk: App, relay: Relay
) -> None:
    """`#workaround` on the major incident: the service is back for every
    linked requester too, each told on their own ticket and restored then."""
    linked(desk)
    clear(relay)
    agent_says(desk, 1, "#workaround\n\nUse the web mail at https://mail.example.com for now.\n")
    desk.sender.send_due()
    now = desk.clock.now()
    for number in (1, 2, 3):
        assert ticket(desk, number).restored_at == now
    assert "web mail" in text_of(caught_by(relay, EWA)[0])
    assert "Mamy rozwiązanie tymczasowe" in text_of(caught_by(relay, EWA)[0])
    assert "We have a temporary solution" in text_of(caught_by(relay, MARIA)[0])
    restored = [e for e in events(desk, 2) if e.type == "workaround"]
    assert len(restored) == 1 and restored[0].detail["from_parent"] is True


# --- status updates ----------------------------------------------------------------


def test_the_parents_status_update_reaches_the_children(desk: App, relay: Relay) -> None:
    linked(desk)
    desk.clock.set(at("2026-11-25 10:30"))  # type: ignore[attr-defined]
    agent_says(desk, 1, "#assign me\n\nWe are on it.\n")
    clear(relay)
    # HD-1 is P2: an update every 4 business hours after the reply, 14:30.
    report = tick(desk, "2026-11-25 14:30")
    assert report.jobs.get("status_updates") == 1
    [to_jan] = caught_by(relay, JAN)
    [to_ewa] = caught_by(relay, EWA)
    [to_maria] = caught_by(relay, MARIA)
    assert to_jan.message["Subject"] == "[HD-1] Status update: Mail server down"
    assert to_ewa.message["Subject"] == "[HD-2] Stan zgłoszenia: Nie działa poczta"
    assert to_ewa.message["Auto-Submitted"] == "auto-generated"
    assert to_ewa.message["In-Reply-To"].strip("<>") == requester_thread(desk, 2)[-2]
    pl = text_of(to_ewa)
    assert "Państwa zgłoszenie HD-2 jest częścią szerszego problemu" in pl
    assert "Postęp prac od" in pl and "JAN" not in pl and JAN not in to_ewa.raw.decode()
    # Its own next step: HD-2's resolution (P3, 3 business days), not the parent's.
    assert "planujemy je zakończyć do 30 listopada 2026 r., godz. 10:00" in pl
    assert "Progress on the incident since" in text_of(to_maria)
    for number in (2, 3):
        [m] = [m for m in messages(desk, number) if m.kind == "status_update"]
        assert m.direction == "out"
        came = [e for e in events(desk, number) if e.type == "from_parent"]
        assert came[-1].detail["kind"] == "status_update"
    # Each update from the parent restarts the children's own update clocks
    # (P3: every business day, next due Thursday 10:30 after the reply), so
    # they hear the parent's rhythm and nothing twice.
    assert tick(desk, "2026-11-26 09:30").jobs.get("status_updates") == 1
    assert tick(desk, "2026-11-26 13:30").jobs.get("status_updates") == 1
    assert "status_updates" not in tick(desk, "2026-11-26 14:45").jobs
    assert len(caught_by(relay, EWA)) == 3
    assert not [e for e in events(desk, 2) if e.type == "status_update"]


def test_a_late_sweep_gives_a_child_the_parents_update_and_not_its_own_as_well(
    desk: App, relay: Relay
) -> None:
    # One sweep fires the parent's update (due 14:30) and, later in the same
    # batch, HD-2's own (due the next day 10:30). The parent's update restarts
    # HD-2's clock, so its own is no longer due: the batch reads HD-2 afresh.
    linked(desk)
    desk.clock.set(at("2026-11-25 10:30"))  # type: ignore[attr-defined]
    agent_says(desk, 1, "#assign me\n\nWe are on it.\n")
    agent_says(desk, 2, "Sprawdzamy to.\n")
    clear(relay)
    report = tick(desk, "2026-11-26 10:30")
    assert report.jobs.get("status_updates") == 1
    assert len(caught_by(relay, EWA)) == 1
    [m] = [m for m in messages(desk, 2) if m.kind == "status_update"]
    assert m.direction == "out"


# --- resolving the parent ---------------------------------------------------------


def test_resolving_the_parent_resolves_the_open_children_who_verify_on_their_own(
    desk: App, relay: Relay
) -> None:
    linked(desk)
    agent_says(desk, 3, "#pending\n\nWhich Outlook version do you use?\n")
    assert ticket(desk, 3).status == Status.PENDING
    clear(relay)
    agent_says(desk, 1, "#resolve fixed\nThe disk was full; we moved the archive and restarted.\n")

    for number in (1, 2, 3):
        t = ticket(desk, number)
        assert (t.status, t.resolution_code) == (Status.RESOLVED, "fixed")
        assert t.resolution_note is not None and "moved the archive" in t.resolution_note
    [to_ewa] = caught_by(relay, EWA)
    assert to_ewa.message["Subject"].startswith("[HD-2]")
    pl = text_of(to_ewa)
    assert "moved the archive" in pl and "„tak”" in pl
    to_maria = [c for c in caught_by(relay, MARIA) if "moved the archive" in text_of(c)]
    assert len(to_maria) == 1 and "[HD-3]" in to_maria[0].message["Subject"]
    [with_parent] = [e for e in events(desk, 3) if e.type == "resolved_with_parent"]
    assert with_parent.detail == {"parent": "HD-1", "was": "pending", "pending": True}
    assert any(
        e.type == "note" and "while it was waiting" in e.detail["text"] for e in events(desk, 3)
    )
    [not_pending] = [e for e in events(desk, 2) if e.type == "resolved_with_parent"]
    assert not_pending.detail["pending"] is False
    [done] = [e for e in events(desk, 1) if e.type == "children_resolved"]
    assert done.detail["children"] == ["HD-2", "HD-3"]

    # Each child's requester confirms on their own ticket.
    ingest(desk, make_mail(sender=EWA, subject="Re: [HD-2] Nie działa poczta", body="Tak, działa"))
    assert ticket(desk, 2).status == Status.CLOSED
    assert (ticket(desk, 1).status, ticket(desk, 3).status) == (Status.RESOLVED, Status.RESOLVED)


def test_a_child_that_is_already_resolved_is_left_alone(desk: App, relay: Relay) -> None:
    linked(desk)
    agent_says(desk, 2, "#resolve workaround\nUse webmail for now.\n")
    agent_says(desk, 1, "#resolve fixed\nDisk replaced.\n")
    assert ticket(desk, 2).resolution_code == "workaround"
    assert ticket(desk, 3).resolution_code == "fixed"
