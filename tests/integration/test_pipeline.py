"""The core pipeline end to end: mail in, ticket and acknowledgement out.

Runs on SQLite and PostgreSQL; outgoing mail goes over real SMTP to a relay
started by the test.
"""

from __future__ import annotations

from dataclasses import replace

from daemon.app.prepare import prepare_many
from daemon.core.domain import Intake
from daemon.ports import QueuedRaw
from tests.support.flow import ingest, ticket
from tests.support.mail import make_mail


def test_a_new_mail_opens_a_ticket_and_the_requester_gets_an_acknowledgement(relay_app, relay):
    outcome = ingest(relay_app, make_mail(subject="Printer on floor 2 jams"))

    assert outcome.outcome == "created"
    assert outcome.ticket == 1
    [ack] = relay.to("jan.kowalski@example.org")
    assert ack.rcpt_tos == ["jan.kowalski@example.org"]
    msg = ack.message
    assert msg["Subject"].startswith("[HD-1] ")
    assert "Printer on floor 2 jams" in msg["Subject"]
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["Message-ID"].endswith("@example.com>")
    assert msg["In-Reply-To"]
    assert {p.get_content_type() for p in msg.walk()} >= {"text/plain", "text/html"}


def test_a_reply_with_the_tag_joins_the_ticket(app):
    ingest(app, make_mail(subject="VPN does not connect"))
    outcome = ingest(
        app,
        make_mail(
            subject="RE: [hd-0001] VPN does not connect",
            body="It works from home, not from the office.",
        ),
    )
    assert (outcome.outcome, outcome.ticket) == ("appended", 1)
    with app.store.reading() as tx:
        assert [t.number for t in tx.tickets.listing(None)] == [1]
        kinds = [m.kind for m in tx.messages.of_ticket(1)]
    assert kinds == ["request", "ack", "agent_new", "reply", "agent_followup"]


def test_a_reply_by_reference_to_our_acknowledgement_joins_the_ticket(app):
    ingest(app, make_mail(subject="Outlook crashes"))
    with app.store.reading() as tx:
        ack = next(m for m in tx.messages.of_ticket(1) if m.kind == "ack")
    outcome = ingest(app, make_mail(subject="Outlook crashes (no tag)", in_reply_to=ack.message_id))
    assert (outcome.outcome, outcome.ticket) == ("appended", 1)


def test_a_forged_own_reference_is_not_trusted(app):
    ingest(app, make_mail(subject="Outlook crashes"))
    forged = "spocd.1.deadbeef.00000000000000000000@example.com"
    outcome = ingest(app, make_mail(subject="hello", in_reply_to=forged))
    assert (outcome.outcome, outcome.ticket) == ("created", 2)


def test_the_same_message_twice_changes_nothing(app):
    raw = make_mail(message_id="once@client.example.org")
    first = ingest(app, raw)
    second = ingest(app, raw)
    assert first.outcome == "created"
    assert (second.outcome, second.ticket) == ("duplicate", 1)
    with app.store.reading() as tx:
        assert len(tx.tickets.listing(None)) == 1
        assert tx.outbox.count("sent") == 2  # the ack, and the notice to the group


def test_a_stranger_using_a_tag_opens_a_new_ticket_that_notes_it(app):
    ingest(app, make_mail(subject="Laptop broken"))
    outcome = ingest(
        app, make_mail(sender="mallory@evil.example", subject="Re: [HD-1] Laptop broken")
    )
    assert (outcome.outcome, outcome.ticket) == ("created", 2)
    with app.store.reading() as tx:
        events = tx.events.of_ticket(2)
        assert [m.sender for m in tx.messages.of_ticket(1) if m.direction == "in"] == [
            "jan.kowalski@example.org"
        ]
    assert any(e.type == "tag_not_honoured" and e.detail["tag"] == "HD-1" for e in events)


def test_input_that_is_not_mail_is_quarantined_whole(app):
    garbage = b"\x00\x01\x02 this is not mail \xff\xfe"
    outcome = ingest(app, garbage)
    assert outcome.outcome == "quarantined"
    with app.store.reading() as tx:
        [entry] = tx.inbound.entries(["quarantined"], 10)
        assert "not mail" in (entry.reason or "")
        assert tx.inbound.raw(entry.id) == garbage


def _process_prepared(app, raw, prepared, *, escalation=False):  # type: ignore[no-untyped-def]
    with app.store.transaction() as tx:
        item_id = tx.inbound.add(
            QueuedRaw(raw=raw, intake=Intake.INGEST, escalation=escalation), app.clock.now()
        )
    [outcome] = app.inbound.process_items([item_id], parsed={item_id: prepared})
    return outcome


def test_a_decision_made_ahead_counts_only_under_the_same_rules(app):
    """Batch ingest decides in its parser process; the ticket takes that
    decision only when the rules have not changed in between."""
    rules = app.runtime.rules
    raw = make_mail(subject="Printer jams", message_id="ahead-1@example.org")
    [prepared] = prepare_many([raw], 1 << 20, rules)
    assert prepared.decision is not None and prepared.decision.trace == ()
    marked = replace(prepared, decision=replace(prepared.decision, group="telephony"))
    assert ticket(app, _process_prepared(app, raw, marked).ticket).group == "telephony"

    raw = make_mail(subject="Printer jams", message_id="ahead-2@example.org")
    [prepared] = prepare_many([raw], 1 << 20, rules)
    stale = replace(
        prepared,
        decision=replace(prepared.decision, group="telephony"),
        rules_version="older-rules",
    )
    assert ticket(app, _process_prepared(app, raw, stale).ticket).group == "second-line"


def test_an_escalation_is_decided_again_for_the_incident_inside(app):
    raw = make_mail(
        sender="sd@example.com",
        subject="FW: Printer jams",
        body="Please take this.\n\n---------- Forwarded message ---------\n"
        "From: Jan <jan.kowalski@example.org>\nSubject: Printer jams\n\nIt jams.\n",
    )
    [prepared] = prepare_many([raw], 1 << 20, app.runtime.rules)
    marked = replace(prepared, decision=replace(prepared.decision, group="telephony"))
    outcome = _process_prepared(app, raw, marked, escalation=True)
    assert ticket(app, outcome.ticket).group == "second-line"


def test_a_reply_is_not_decided_ahead(app):

    raw = make_mail(subject="Re: Printer jams", in_reply_to="earlier@example.org")
    [prepared] = prepare_many([raw], 1 << 20, app.runtime.rules)
    assert prepared.decision is None


def test_a_message_over_the_parse_budget_is_quarantined_with_the_budget_named(app):
    deep = "<div>" * 30_000 + "x" + "</div>" * 30_000
    outcome = ingest(app, make_mail(html=deep))
    assert outcome.outcome == "quarantined"
    assert "parse budget" in outcome.detail and "limits.max_parse_seconds" in outcome.detail
    with app.store.reading() as tx:
        assert tx.inbound.count("quarantined") == 1
