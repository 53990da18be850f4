"""Agents working tickets by mail, requesters confirming fixes (SPEC §4).

Every outgoing mail goes over real SMTP to the test's relay, so the tests can
check who received what.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from daemon.config import Settings
from daemon.service.wiring import App
from tests.support.clock import ManualClock
from tests.support.flow import events, ingest, last_out, messages, ticket
from tests.support.mail import make_mail
from tests.support.relay import Relay

REQUESTER = "jan.kowalski@example.org"
AGENT = "anna@example.com"
OTHER_AGENT = "piotr@example.com"
LEAD = "lead@example.com"


def open_ticket(app: Any, subject: str = "Printer on floor 2 jams") -> int:
    outcome = ingest(app, make_mail(subject=subject, body="It jams on every page.\n"))
    assert outcome.outcome == "created"
    return outcome.ticket


def agent_says(
    app: Any, number: int, body: str, *, sender: str = AGENT, headers: dict[str, str] | None = None
) -> Any:
    notice = (
        last_out(app, number, "agent_new")
        if any(m.kind == "agent_new" for m in messages(app, number))
        else None
    )
    return ingest(
        app,
        make_mail(
            sender=sender,
            subject=f"Re: [HD-{number}] something",
            body=body,
            in_reply_to=notice.message_id if notice else None,
            headers=headers,
        ),
    )


def requester_says(app: Any, number: int, body: str, subject: str | None = None) -> Any:
    return ingest(app, make_mail(subject=subject or f"Re: [HD-{number}] Printer", body=body))


def bodies_to(relay: Relay, address: str) -> list[str]:
    out = []
    for caught in relay.to(address):
        msg = caught.message
        out.append(msg.get_body(("plain",)).get_content())
    return out


def test_an_agent_reply_with_commands_is_applied_and_the_rest_reaches_the_requester(
    relay_app: App, relay: Relay
) -> None:
    number = open_ticket(relay_app)
    agent_says(
        relay_app,
        number,
        "#assign me\n#priority P2\n\nWe are sending a technician.\n\n> quoted history\n> more\n",
    )
    t = ticket(relay_app, number)
    assert (t.assignee, t.priority, str(t.status)) == (AGENT, "P2", "in_progress")
    assert t.first_responded_at == relay_app.clock.now()
    [reply] = [b for b in bodies_to(relay, REQUESTER) if "technician" in b]
    assert "We are sending a technician." in reply
    assert "quoted history" not in reply and "#assign" not in reply
    types = [e.type for e in events(relay_app, number)]
    assert {"assignee_changed", "priority_changed", "first_response", "replied"} <= set(types)


def test_a_request_copied_to_thousands_keeps_a_mails_worth_of_them(
    relay_app: App, relay: Relay
) -> None:
    """The Cc is the sender's to write: 2,000 addresses there must not become
    2,000 recipients of the agent's reply."""
    crowd = [f"person{n}@example.net" for n in range(2000)]
    outcome = ingest(relay_app, make_mail(cc=", ".join([REQUESTER, *crowd, crowd[0]])))
    number = outcome.ticket
    limit = relay_app.settings.smtp.max_recipients
    assert ticket(relay_app, number).cc == crowd[:limit]  # in order, once, not the requester
    [created] = [e for e in events(relay_app, number) if e.type == "created"]
    assert created.detail["cc_left_out"] == 2000 - limit
    agent_says(relay_app, number, "We are looking into it.\n")
    [reply] = [c for c in relay.to(REQUESTER) if b"looking into it" in c.raw]
    assert sorted(reply.rcpt_tos) == sorted([REQUESTER, *crowd[:limit]])


def test_an_internal_note_never_reaches_the_requester(relay_app: App, relay: Relay) -> None:
    number = open_ticket(relay_app)
    agent_says(relay_app, number, "#internal\nThe password is hunter2, do not tell anyone.\n")
    for caught in relay.caught:
        assert b"hunter2" not in caught.raw or REQUESTER not in caught.rcpt_tos
    assert not any("hunter2" in body for body in bodies_to(relay, REQUESTER))
    notes = [e for e in events(relay_app, number) if e.type == "note"]
    assert "hunter2" in notes[0].detail["text"]
    assert ticket(relay_app, number).first_responded_at is None  # a note is no response


def test_an_unknown_command_applies_nothing_and_tells_the_agent_why(
    relay_app: App, relay: Relay
) -> None:
    number = open_ticket(relay_app)
    before = len(relay.to(REQUESTER))
    agent_says(relay_app, number, "#assign me\n#frobnicate now\n\nDone.\n")
    t = ticket(relay_app, number)
    assert t.assignee is None and str(t.status) == "new"
    assert len(relay.to(REQUESTER)) == before  # nothing to the requester
    [answer] = [c for c in relay.to(AGENT) if "Not applied" in str(c.message["Subject"])]
    assert "unknown command #frobnicate" in answer.message.get_body(("plain",)).get_content()


def test_a_refused_action_rolls_back_the_commands_before_it(relay_app: App, relay: Relay) -> None:
    number = open_ticket(relay_app)
    agent_says(relay_app, number, "#priority P1\n#close\n")  # close needs resolve first
    t = ticket(relay_app, number)
    assert t.priority != "P1"
    assert any(e.type == "commands_refused" for e in events(relay_app, number))


@pytest.fixture
def strict_app(settings: Settings, clock: ManualClock, relay: Relay) -> Any:
    """Commands only with a DKIM/DMARC pass from mx.example.com."""
    strict = replace(
        settings,
        agents=replace(
            settings.agents,
            trust="authentication-results",
            trusted_authserv_ids=("mx.example.com",),
        ),
        outgoing=replace(settings.outgoing, transport="smtp", host="127.0.0.1", port=relay.port),
    )
    application = App(strict, clock)
    yield application
    application.close()


@pytest.mark.parametrize(
    ("header", "obeyed"),
    [
        ("mx.example.com; dkim=pass header.d=example.com", True),
        ("mx.example.com; dmarc=pass header.from=example.com", True),
        (None, False),
        ("mx.attacker.example; dkim=pass header.d=example.com", False),
        ("mx.example.com; dkim=fail header.d=example.com", False),
    ],
)
def test_commands_need_a_trusted_authentication_result(
    strict_app: App, relay: Relay, header: str | None, obeyed: bool
) -> None:
    number = open_ticket(strict_app)
    headers = {"Authentication-Results": header} if header else None
    agent_says(strict_app, number, "#priority P1\n\nOn it.\n", headers=headers)
    t = ticket(strict_app, number)
    assert (t.priority == "P1") is obeyed
    reached_requester = any("On it." in body for body in bodies_to(relay, REQUESTER))
    assert reached_requester is obeyed
    kinds = {e.type for e in events(strict_app, number)}
    assert ("untrusted_commands" in kinds) is not obeyed


def test_a_stranger_cannot_command_a_ticket(relay_app: App) -> None:
    number = open_ticket(relay_app)
    outcome = agent_says(relay_app, number, "#close\n#priority P1\n", sender="x@evil.example")
    assert outcome.ticket != number
    assert ticket(relay_app, number).priority != "P1"


@pytest.mark.parametrize(
    ("answer", "closure"),
    [
        ("Yes, it works now, thanks!", "verified"),
        ("ok", "verified"),
        ("Tak, działa.", "verified"),
        ("Potwierdzam", "verified"),
    ],
)
def test_a_yes_answer_closes_the_ticket_as_verified(
    relay_app: App, relay: Relay, answer: str, closure: str
) -> None:
    number = open_ticket(relay_app)
    agent_says(
        relay_app,
        number,
        "#assign me\n#resolve HW-JAM\nRemoved a torn page from the "
        "fuser and cleaned the rollers.\n",
    )
    t = ticket(relay_app, number)
    assert str(t.status) == "resolved" and t.resolution_code == "HW-JAM"
    [request] = [
        b
        for b in bodies_to(relay, REQUESTER)
        if "please confirm" in b.lower() or "confirm" in b.lower()
    ]
    assert "cleaned the rollers" in request
    requester_says(relay_app, number, f"{answer}\n\nOn Wed, X wrote:\n> Resolved\n")
    t = ticket(relay_app, number)
    assert (str(t.status), t.closure) == ("closed", closure)
    assert any("is now closed" in b for b in bodies_to(relay, REQUESTER))


def test_a_no_answer_reopens_to_the_assignee_who_is_told(relay_app: App, relay: Relay) -> None:
    number = open_ticket(relay_app)
    agent_says(relay_app, number, "#assign me\n#resolve HW-JAM\nCleaned the rollers.\n")
    requester_says(relay_app, number, "Not fixed, it still jams on page 2.\n")
    t = ticket(relay_app, number)
    assert (str(t.status), t.assignee, t.closure) == ("in_progress", AGENT, None)
    reopened = [c for c in relay.to(AGENT) if "Reopened" in str(c.message["Subject"])]
    assert reopened and "still jams" in reopened[0].message.get_body(("plain",)).get_content()


def test_an_unclear_answer_is_kept_and_the_question_stands(relay_app: App) -> None:
    number = open_ticket(relay_app)
    agent_says(relay_app, number, "#resolve HW-JAM\nCleaned the rollers.\n")
    requester_says(relay_app, number, "I will check tomorrow when I am in the office.\n")
    assert str(ticket(relay_app, number).status) == "resolved"
    assert any(e.type == "verification_unclear" for e in events(relay_app, number))


def test_a_reply_to_a_closed_ticket_reopens_it_within_reopen_days(relay_app: App) -> None:
    number = open_ticket(relay_app)
    agent_says(relay_app, number, "#assign me\n#resolve HW-JAM\nCleaned.\n")
    requester_says(relay_app, number, "yes\n")
    assert str(ticket(relay_app, number).status) == "closed"
    relay_app.clock.advance(timedelta(days=13))
    outcome = requester_says(relay_app, number, "It jams again since this morning.\n")
    assert outcome.ticket == number
    assert str(ticket(relay_app, number).status) == "in_progress"


def test_a_reply_after_reopen_days_opens_a_linked_ticket(relay_app: App) -> None:
    number = open_ticket(relay_app)
    agent_says(relay_app, number, "#resolve HW-JAM\nCleaned.\n")
    requester_says(relay_app, number, "yes\n")
    relay_app.clock.advance(timedelta(days=15))
    outcome = requester_says(relay_app, number, "It jams again.\n")
    assert outcome.outcome == "created" and outcome.ticket != number
    assert ticket(relay_app, outcome.ticket).linked_to == number
    assert str(ticket(relay_app, number).status) == "closed"


def test_merge_moves_messages_and_later_mail_lands_on_the_survivor(relay_app: App) -> None:
    first = open_ticket(relay_app, "Printer jams")
    second = ingest(
        relay_app, make_mail(sender="ewa@example.org", subject="Printer on floor 2 broken")
    ).ticket
    agent_says(relay_app, second, f"#merge HD-{first}\n")
    survivor, merged = ticket(relay_app, first), ticket(relay_app, second)
    assert merged.merged_into == first and str(merged.status) == "cancelled"
    assert "ewa@example.org" in survivor.cc
    assert any(m.sender == "ewa@example.org" for m in messages(relay_app, first))
    outcome = ingest(
        relay_app, make_mail(sender="ewa@example.org", subject=f"Re: [HD-{second}] still broken")
    )
    assert outcome.ticket == first


def test_pending_pauses_and_the_requester_answer_resumes(relay_app: App) -> None:
    number = open_ticket(relay_app)
    agent_says(relay_app, number, "#pending\nWhich printer model is it?\n")
    t = ticket(relay_app, number)
    assert str(t.status) == "pending" and t.paused_at is not None
    due_before = t.resolution_due
    relay_app.clock.advance(timedelta(hours=2))
    requester_says(relay_app, number, "It is an HP LaserJet 4250.\n")
    t = ticket(relay_app, number)
    assert str(t.status) == "in_progress" and t.paused_at is None
    assert t.resolution_due > due_before  # the paused business time was added


def tick_at(app: App, moment: str) -> dict[str, int]:
    from datetime import datetime

    from daemon.app.jobs import run_due

    app.clock.set(datetime.fromisoformat(moment))  # type: ignore[attr-defined]
    report = app.tick(lambda now: run_due(app.store, lambda: app.runtime, now))
    return report.jobs


@pytest.mark.parametrize(
    ("sender", "words"),
    [
        (REQUESTER, ("please confirm", "Reminder", "Closed after resolution")),
        ("jan@firma.pl", ("prosimy o potwierdzenie", "Przypomnienie", "Zamknęliśmy zgłoszenie")),
    ],
)
def test_silence_brings_reminders_then_closes_the_ticket_itself(
    relay_app: App, relay: Relay, sender: str, words: tuple[str, str, str]
) -> None:
    # Resolved on Wednesday 2026-11-25 10:00 in Warsaw (09:00 UTC): remind every
    # business day, close after 3 business days (Monday 10:00).
    number = ingest(relay_app, make_mail(sender=sender, subject="Drukarka")).ticket
    agent_says(relay_app, number, "#assign me\n#resolve HW-JAM\nCleaned the rollers.\n")
    mails = lambda: relay.to(sender)  # noqa: E731
    assert words[0] in mails()[-1].message.get_body(("plain",)).get_content().lower() or (
        words[0] in str(mails()[-1].message["Subject"]).lower()
    )
    sent_before = len(mails())
    assert tick_at(relay_app, "2026-11-26T08:59:00+00:00") == {}
    assert tick_at(relay_app, "2026-11-26T09:00:00+00:00") == {"verification_reminders": 1}
    assert tick_at(relay_app, "2026-11-26T09:30:00+00:00") == {}  # the same tick again
    assert words[1] in str(mails()[-1].message["Subject"])
    assert tick_at(relay_app, "2026-11-27T09:00:00+00:00") == {"verification_reminders": 1}
    assert len(mails()) == sent_before + 2
    # Nothing at the weekend; Monday 10:00 in Warsaw closes it.
    assert tick_at(relay_app, "2026-11-29T12:00:00+00:00") == {}
    assert tick_at(relay_app, "2026-11-30T09:00:00+00:00") == {"auto_closed": 1}
    t = ticket(relay_app, number)
    assert (str(t.status), t.closure) == ("closed", "auto")
    assert words[2] in str(mails()[-1].message["Subject"])
    assert tick_at(relay_app, "2026-12-01T09:00:00+00:00") == {}


def test_after_downtime_the_auto_close_wins_over_missed_reminders(
    relay_app: App, relay: Relay
) -> None:
    number = open_ticket(relay_app)
    agent_says(relay_app, number, "#resolve HW-JAM\nCleaned the rollers.\n")
    before = len(relay.to(REQUESTER))
    assert tick_at(relay_app, "2026-12-10T09:00:00+00:00").get("auto_closed") == 1
    assert len(relay.to(REQUESTER)) == before + 1  # the closure notice only


# Every command, each as a trusted agent (applied), an untrusted agent and a
# stranger (neither applied). Each row: the commands, and what the ticket shows
# when they were obeyed.
COMMANDS = [
    ("#assign piotr@example.com", lambda t: t.assignee == OTHER_AGENT),
    ("#assign me", lambda t: t.assignee == AGENT),
    ("#status in_progress", lambda t: str(t.status) == "in_progress"),
    ("#priority P1", lambda t: t.priority == "P1" and t.priority_explicit),
    ("#impact high", lambda t: t.impact == "high" and t.priority == "P2"),
    ("#urgency low", lambda t: t.urgency == "low" and t.priority == "P5"),
    ("#category printers", lambda t: t.category == "printers"),
    ("#group telephony", lambda t: t.group == "telephony"),
    ("#pending\n\nWhich model?", lambda t: str(t.status) == "pending"),
    ("#internal\nnote to self", lambda t: t.first_responded_at is None and t.updated_at),
    ("#resolve FIXED\nReplaced the fuser.", lambda t: str(t.status) == "resolved"),
    (
        "#resolve FIXED\n#close\nConfirmed by phone.",
        lambda t: (str(t.status), t.closure) == ("closed", "agent"),
    ),
    ("#cancel\nDuplicate of a call.", lambda t: str(t.status) == "cancelled"),
]


@pytest.mark.parametrize("sender_kind", ["trusted", "untrusted", "stranger"])
@pytest.mark.parametrize(("commands", "obeyed"), COMMANDS, ids=[c[0] for c in COMMANDS])
def test_every_command_is_obeyed_only_from_a_trusted_agent(
    strict_app: App, sender_kind: str, commands: str, obeyed: Any
) -> None:
    # The printer rule gives P4 (impact low, urgency medium).
    number = open_ticket(strict_app, "Zepsuta drukarka")
    before = ticket(strict_app, number)
    headers = {"Authentication-Results": "mx.example.com; dkim=pass header.d=example.com"}
    if sender_kind == "trusted":
        agent_says(strict_app, number, commands + "\n", headers=headers)
    elif sender_kind == "untrusted":
        agent_says(
            strict_app,
            number,
            commands + "\n",
            headers={"Authentication-Results": "mx.example.com; dkim=fail"},
        )
    else:
        agent_says(strict_app, number, commands + "\n", sender="mallory@evil.example")
    after = ticket(strict_app, number)
    if sender_kind == "trusted":
        assert obeyed(after), after
    else:
        for field in (
            "assignee",
            "status",
            "priority",
            "impact",
            "urgency",
            "category",
            "group",
            "closure",
        ):
            assert getattr(after, field) == getattr(before, field), field


def test_reopen_command_brings_a_resolved_ticket_back(strict_app: App) -> None:
    number = open_ticket(strict_app)
    headers = {"Authentication-Results": "mx.example.com; dkim=pass header.d=example.com"}
    agent_says(strict_app, number, "#assign me\n#resolve FIXED\nDone.\n", headers=headers)
    agent_says(strict_app, number, "#reopen\nThe requester called: not fixed.\n", headers=headers)
    assert str(ticket(strict_app, number).status) == "in_progress"


@pytest.mark.parametrize(
    "real",
    [
        "mx.example.com; spf=pass smtp.mailfrom=ü@evil.example",
        "mx.example.com; spf=none smtp.helo=[203.0.113.5]",
    ],
)
def test_a_forged_pass_below_an_unparsable_mx_header_is_not_believed(
    strict_app: App, relay: Relay, real: str
) -> None:
    # The MX writes its header on top, carrying the sender's MAIL FROM or
    # HELO; the sender wrote the dkim=pass below it.
    number = open_ticket(strict_app)
    notice = last_out(strict_app, number, "agent_new")
    forged = make_mail(
        sender=AGENT,
        subject=f"Re: [HD-{number}] something",
        body="#priority P1\n\nOn it.\n",
        in_reply_to=notice.message_id,
        headers={"Authentication-Results": "mx.example.com; dkim=pass header.d=example.com"},
    )
    ingest(strict_app, f"Authentication-Results: {real}\r\n".encode() + forged)
    assert ticket(strict_app, number).priority != "P1"
    assert not any("On it." in body for body in bodies_to(relay, REQUESTER))
    [untrusted] = [e for e in events(strict_app, number) if e.type == "untrusted_commands"]
    assert "cannot be parsed" in untrusted.detail["reason"]
