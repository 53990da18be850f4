"""Agents hear what happens on their tickets; first line stays in the loop (SPEC §4).

Every mail goes over real SMTP to the test's relay and is read the way its
recipient reads it: subject, To/Cc, References, the text and the HTML part.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from daemon.config import Settings
from daemon.service.wiring import App
from tests.integration.test_escalations_and_bounces import dsn
from tests.integration.test_sla_sweeps import desk_settings_for, tick
from tests.support.clock import ManualClock
from tests.support.flow import events, ingest, last_out, messages, ticket
from tests.support.mail import make_mail
from tests.support.relay import Caught, Relay

REQUESTER = "jan.kowalski@example.org"
COLLEAGUE = "ewa.nowak@example.org"
AGENT = "anna@example.com"
OTHER_AGENT = "piotr@example.com"
LEAD = "lead@example.com"
GROUP = sorted([LEAD, AGENT, OTHER_AGENT])
FIRST_LINE = "agnieszka@firma.example.pl"
SHARED_MAILBOX = "sd@firma.example.pl"

QUOTED = (
    "\n\nOn Wed, 25 Nov 2026 at 10:00, IT Help Desk <helpdesk@example.com> wrote:\n"
    "> We received your request.\n> It jams on every page.\n"
)


# --- reading mail as its recipient does ----------------------------------------------


def text_of(caught: Caught) -> str:
    return caught.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def html_of(caught: Caught) -> str:
    return caught.message.get_body(("html",)).get_content()  # type: ignore[union-attr]


def addresses(caught: Caught, header: str) -> list[str]:
    return sorted(a.lower() for _, a in email.utils.getaddresses([caught.message[header] or ""]))


def references(caught: Caught) -> list[str]:
    return [r.strip("<>") for r in str(caught.message["References"] or "").split()]


def about(relay: Relay, address: str, words: str) -> list[Caught]:
    """Mail to `address` whose subject carries `words`."""
    return [c for c in relay.to(address) if words in str(c.message["Subject"])]


def assert_command_help_last(caught: Caught) -> None:
    """The command help closes both parts: nothing of the ticket after it."""
    text, html = text_of(caught), html_of(caught)
    assert text.rstrip().endswith(
        "Text after the commands goes to the requester, unless #internal."
    )
    assert "#resolve CODE" in text and "#assign me" in text
    body_end = html.rindex("</body>")
    help_at = html.index("#resolve CODE")
    assert "#assign me" in html[html.index("Reply to this mail") :]
    assert "white-space: pre-wrap" not in html[help_at:body_end]


def with_attachment(raw: bytes, name: str, data: bytes, ctype: str = "image/png") -> bytes:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    maintype, subtype = ctype.split("/")
    msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg.as_bytes()


# --- driving the desk ---------------------------------------------------------------


def open_ticket(app: Any, subject: str = "Printer on floor 2 jams", cc: str | None = None) -> int:
    outcome = ingest(app, make_mail(subject=subject, body="It jams on every page.\n", cc=cc))
    assert outcome.outcome == "created"
    return outcome.ticket


def agent_says(app: Any, number: int, body: str, sender: str = AGENT) -> Any:
    return ingest(app, make_mail(sender=sender, subject=f"Re: [HD-{number}] Printer", body=body))


# --- 14.1: follow-ups reach the people working the ticket ------------------------------


def test_a_requester_follow_up_reaches_the_assignee_with_facts_new_text_and_attachments(
    relay_app: App, relay: Relay
) -> None:
    number = open_ticket(relay_app)
    agent_says(relay_app, number, "#assign me\n")
    raw = make_mail(
        subject=f"Re: [HD-{number}] Printer on floor 2 jams",
        body="It now also shows error E-52 on the display." + QUOTED,
        message_id="follow-up-1@client.example.org",
    )
    ingest(relay_app, with_attachment(raw, "display-E52.png", b"\x89PNG" + b"0" * 2048))

    [forward] = about(relay, AGENT, "wrote")
    assert forward.rcpt_tos == [AGENT]
    assert addresses(forward, "To") == [AGENT] and forward.message["Cc"] is None
    subject = str(forward.message["Subject"])
    assert subject.startswith(f"[HD-{number}] ") and "Printer on floor 2 jams" in subject
    assert forward.message["Auto-Submitted"] == "auto-generated"
    assert forward.message["In-Reply-To"] == "<follow-up-1@client.example.org>"
    assert "follow-up-1@client.example.org" in references(forward)
    text, html = text_of(forward), html_of(forward)
    for part in (text, html):
        assert REQUESTER in part and f"HD-{number}" in part  # the facts
        assert "P4" in part and AGENT in part and "left)" in part  # the deadline, time left
        assert "error E-52 on the display" in part
        assert "We received your request" not in part  # the quoted history is cut
        assert "display-E52.png" in part and "image/png" in part
    # The facts first, then the new text, the attachments, the command help.
    order = [text.index(s) for s in ("Requester:", "error E-52", "display-E52.png", "#assign me")]
    assert order == sorted(order)
    assert_command_help_last(forward)
    assert about(relay, LEAD, "wrote") == [] and about(relay, OTHER_AGENT, "wrote") == []
    [stored] = [m for m in messages(relay_app, number) if m.kind == "agent_followup"]
    assert stored.internal and stored.recipients == (AGENT,)

    # An out-of-office is kept on the ticket but not forwarded: nothing
    # automatic answers automatic mail, and it tells the agent nothing.
    ingest(
        relay_app,
        make_mail(
            subject=f"Automatic reply: [HD-{number}] Printer",
            body="I am out of the office until Monday.\n",
            headers={"Auto-Submitted": "auto-replied"},
        ),
    )
    assert len(about(relay, AGENT, "wrote")) == 1
    assert [m.kind for m in messages(relay_app, number)].count("auto_reply") == 1


def test_a_follow_up_on_an_unassigned_ticket_reaches_the_whole_group(
    relay_app: App, relay: Relay
) -> None:
    number = open_ticket(relay_app)
    assert ticket(relay_app, number).assignee is None
    ingest(relay_app, make_mail(subject=f"Re: [HD-{number}] Printer", body="Now it smokes.\n"))
    [forward] = [c for c in relay.caught if "wrote" in str(c.message["Subject"])]
    assert sorted(forward.rcpt_tos) == GROUP
    assert addresses(forward, "To") == GROUP
    assert "Now it smokes." in text_of(forward) and "Now it smokes." in html_of(forward)
    assert REQUESTER not in forward.rcpt_tos
    assert_command_help_last(forward)


def test_a_cc_follow_up_reaches_the_assignee(relay_app: App, relay: Relay) -> None:
    number = open_ticket(relay_app, cc=COLLEAGUE)
    agent_says(relay_app, number, "#assign me\n")
    ingest(
        relay_app,
        make_mail(
            sender=f"Ewa Nowak <{COLLEAGUE}>",
            subject=f"Re: [HD-{number}] Printer",
            body="Same here on floor 3." + QUOTED,
        ),
    )
    [forward] = about(relay, AGENT, "Ewa Nowak wrote")
    text = text_of(forward)
    assert f"Ewa Nowak <{COLLEAGUE}> (in copy) wrote" in text
    assert "Same here on floor 3." in text and "We received" not in text
    assert "Same here on floor 3." in html_of(forward)
    assert_command_help_last(forward)


def test_a_bounce_of_mail_to_the_requester_reaches_the_assignee(
    relay_app: App, relay: Relay
) -> None:
    number = open_ticket(relay_app)
    agent_says(relay_app, number, "#assign me\nWhich floor exactly?\n")
    reply = last_out(relay_app, number, "agent_reply")
    outcome = ingest(relay_app, dsn(reply.message_id, REQUESTER, subject=f"[HD-{number}] Re"))
    assert (outcome.outcome, outcome.ticket) == ("bounce", number)
    [notice] = about(relay, AGENT, "bounced")
    assert str(notice.message["Subject"]).startswith(f"[HD-{number}] Mail to {REQUESTER} bounced")
    assert notice.rcpt_tos == [AGENT]
    for part in (text_of(notice), html_of(notice)):
        assert REQUESTER in part and "5.1.1" in part and "User unknown" in part
        assert "Printer on floor 2 jams" in part  # the facts
    assert_command_help_last(notice)
    # A report naming only someone else (forged, or an agent's) is kept on the
    # ticket but tells the agent nothing.
    ingest(relay_app, dsn(reply.message_id, "someone@else.example"))
    # Nor does a bounce of a notice to an agent: no notice about a notice.
    ingest(relay_app, dsn(notice.message["Message-ID"].strip("<>"), AGENT))
    assert len(about(relay, AGENT, "bounced")) == 1
    assert [e.type for e in events(relay_app, number)].count("bounce") == 3


# --- 14.1: escalation and breach notices --------------------------------------------


@pytest.fixture
def desk(tmp_path: Path, db_url: str, relay: Relay, clock: ManualClock) -> Iterator[App]:
    """tests/data/rules/sla_desk.yaml: "Mail server down" is P2 for anna;
    "Printer" is P3 for nobody in second-line."""
    settings: Settings = desk_settings_for(tmp_path, db_url, relay)
    app = App(settings, clock)
    yield app
    app.close()


def test_escalation_and_breach_notices_carry_the_facts_and_the_latest_request_text(
    desk: App, relay: Relay
) -> None:
    number = open_ticket(desk, "Mail server down")
    ingest(
        desk,
        make_mail(subject=f"Re: [HD-{number}] Mail server down", body="Webmail says 503." + QUOTED),
    )
    tick(desk, "2026-11-25 10:45")
    [warning] = about(relay, AGENT, "SLA warning")
    tick(desk, "2026-11-25 11:00")
    [breach] = about(relay, LEAD, "SLA breached")
    tick(desk, "2026-11-25 11:30")
    [late] = about(relay, "duty-manager@example.com", "SLA escalation")
    for notice in (warning, breach, late):
        for part in (text_of(notice), html_of(notice)):
            assert REQUESTER in part and "Mail server down" in part and "P2" in part
            assert "Webmail says 503." in part
            assert "We received your request" not in part
        assert_command_help_last(notice)


def test_an_assignee_step_on_an_unassigned_ticket_warns_the_group_lead(
    desk: App, relay: Relay
) -> None:
    # P3 printer, nobody assigned: the 75% step (notify: assignee) at 13:00.
    number = open_ticket(desk, "Printer jams")
    assert ticket(desk, number).assignee is None
    assert tick(desk, "2026-11-25 13:00").jobs == {"sla_warnings": 1, "escalations": 1}
    [warning] = about(relay, LEAD, "SLA warning")
    assert warning.rcpt_tos == [LEAD]
    assert "It jams on every page." in text_of(warning)
    [step] = [e for e in events(desk, number) if e.type == "sla_escalation"]
    assert step.detail["notified"] == [LEAD]


# --- 14.4: first line stays in the loop ----------------------------------------------

ESCALATION_NOTE = "Customer called twice, the whole accounting team is blocked."


def escalate(app: App) -> int:
    raw = make_mail(
        sender=f"Agnieszka (Service Desk) <{FIRST_LINE}>",
        to="escalations@example.com",
        subject="FW: [SD-4711] VPN down for the whole office",
        body=f"{ESCALATION_NOTE}\n\n-----Original Message-----\n"
        f"From: Jan Kowalski <{REQUESTER}>\n"
        "Sent: Tuesday, November 3, 2026 9:12 AM\n"
        f"To: Service Desk <{SHARED_MAILBOX}>\n"
        "Subject: VPN down for the whole office\n\nNobody can connect since 8:00.\n",
    )
    outcome = ingest(app, raw, escalation=True)
    assert outcome.outcome == "created"
    t = ticket(app, outcome.ticket)
    assert (t.requester, t.escalated_by, t.external_ref) == (REQUESTER, FIRST_LINE, "SD-4711")
    return outcome.ticket


def test_the_group_notice_of_an_escalation_carries_first_lines_note_and_reference(
    relay_app: App, relay: Relay
) -> None:
    number = escalate(relay_app)
    [notice] = [c for c in relay.caught if "New" in str(c.message["Subject"])]
    assert str(notice.message["Subject"]).startswith(f"[HD-{number}] ")
    text, html = text_of(notice), html_of(notice)
    for part in (text, html):
        assert ESCALATION_NOTE in part and "SD-4711" in part and FIRST_LINE in part
        assert "Nobody can connect since 8:00." in part
    assert text.index(ESCALATION_NOTE) < text.index("Nobody can connect since 8:00.")
    # the requester by the name the original came with, not first line's
    assert f"Requester:  Jan Kowalski <{REQUESTER}>" in text
    assert f"<td>Jan Kowalski &lt;{REQUESTER}&gt;</td>" in html
    assert_command_help_last(notice)
    assert FIRST_LINE not in notice.rcpt_tos


def test_the_new_ticket_notice_names_the_requester_as_their_mail_did(
    relay_app: App, relay: Relay
) -> None:
    ingest(relay_app, make_mail(sender=f'"Kowalski, Jan <boss@example.org>" <{REQUESTER}>'))
    ingest(relay_app, make_mail(sender=COLLEAGUE, subject="Scanner does not scan"))
    [named] = about(relay, LEAD, "Printer")
    assert f"Requester:  Kowalski, Jan <boss@example.org> <{REQUESTER}>" in text_of(named)
    # a name is the sender's own words: escaped, and the real address follows it
    assert f"Kowalski, Jan &lt;boss@example.org&gt; &lt;{REQUESTER}&gt;" in html_of(named)
    [bare] = about(relay, LEAD, "Scanner")
    assert f"Requester:  {COLLEAGUE}\r\n" in text_of(bare)


def test_first_line_is_copied_on_the_milestones_and_never_on_internal_mail(
    relay_app: App, relay: Relay
) -> None:
    number = escalate(relay_app)
    [ack] = relay.to(REQUESTER)
    assert addresses(ack, "To") == [REQUESTER] and addresses(ack, "Cc") == [FIRST_LINE]
    assert ticket(relay_app, number).cc == []  # the shared mailbox is not a watcher

    agent_says(relay_app, number, "#assign me\n#internal\nThe VPN key expired, renewing.\n")
    ingest(relay_app, make_mail(subject=f"Re: [HD-{number}] VPN", body="Any news?\n"))
    agent_says(relay_app, number, "#resolve CERT\nRenewed the VPN server certificate.\n")
    ingest(relay_app, make_mail(subject=f"Re: [HD-{number}] VPN", body="Yes, it works.\n"))
    assert str(ticket(relay_app, number).status) == "closed"

    to_requester = relay.to(REQUESTER)
    kinds = [c.message["Subject"] for c in to_requester]
    assert len(to_requester) == 3, kinds  # ack, verification, closure
    for caught in to_requester:
        assert addresses(caught, "Cc") == [FIRST_LINE]
        assert FIRST_LINE in caught.rcpt_tos
    assert "Renewed the VPN server certificate." in text_of(to_requester[1])
    assert {c.message["Message-ID"] for c in relay.to(FIRST_LINE)} == {
        c.message["Message-ID"] for c in to_requester
    }
    for caught in relay.to(FIRST_LINE):
        assert b"renewing" not in caught.raw and b"Any news" not in caught.raw
    assert relay.to(SHARED_MAILBOX) == []
    # The internal mail went to agents only.
    internal = [m for m in messages(relay_app, number) if m.direction == "out" and m.internal]
    assert {m.kind for m in internal} >= {"agent_new", "agent_followup"}
    assert all(FIRST_LINE not in m.recipients for m in internal)


def test_a_polish_desk_gives_its_agents_the_facts_in_polish(
    settings: Settings, clock: ManualClock, relay: Relay
) -> None:
    """Levels in Polish words with the right gender, and time left without a
    verb that would have to agree with the number („zostało 2 dni” is wrong)."""
    from dataclasses import replace

    polish = replace(
        settings,
        helpdesk=replace(settings.helpdesk, default_language="pl"),
        outgoing=replace(settings.outgoing, transport="smtp", host="127.0.0.1", port=relay.port),
    )
    app = App(polish, clock)
    try:
        open_ticket(app)
    finally:
        app.close()
    [notice] = [c for c in relay.to(LEAD) if "Nowe" in str(c.message["Subject"])]
    for part in (text_of(notice), html_of(notice)):
        assert "wpływ niski, pilność średnia" in part  # the printer rule: low impact
        assert "(jeszcze " in part and "zostało" not in part
        assert "wpływ low" not in part and "pilność medium" not in part
