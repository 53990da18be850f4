"""The group notice of a ticket a stranger's tagged mail opened names the tag
it carried, so agents can tell a colleague forwarding a thread from a spoofer."""

from __future__ import annotations

from dataclasses import replace

import pytest

from daemon.config import Settings
from daemon.service.wiring import App
from tests.support.clock import ManualClock
from tests.support.flow import ingest
from tests.support.mail import make_mail
from tests.support.relay import Relay

STRANGER = "mallory@evil.example"


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("en", "This mail carried the tag [HD-1] of a ticket its sender is not on."),
        (
            "pl",
            "Ta wiadomość miała znacznik [HD-1] zgłoszenia, w którym jej nadawca nie uczestniczy.",
        ),
    ],
)
def test_the_group_notice_of_a_strangers_new_ticket_names_the_tag_it_carried(
    settings: Settings, clock: ManualClock, relay: Relay, language: str, words: str
) -> None:
    desk = replace(
        settings,
        helpdesk=replace(settings.helpdesk, default_language=language),
        outgoing=replace(settings.outgoing, transport="smtp", host="127.0.0.1", port=relay.port),
    )
    app = App(desk, clock)
    try:
        ingest(app, make_mail(subject="Laptop broken"))
        outcome = ingest(app, make_mail(sender=STRANGER, subject="Re: [HD-1] Laptop broken"))
        assert (outcome.outcome, outcome.ticket) == ("created", 2)
    finally:
        app.close()
    notices = [
        c.message
        for c in relay.caught
        if "[HD-2]" in str(c.message["Subject"]) and STRANGER not in c.rcpt_tos
    ]
    assert notices, "the group heard of the new ticket"
    first = [
        c.message
        for c in relay.caught
        if "[HD-1]" in str(c.message["Subject"]) and "jan.kowalski@example.org" not in c.rcpt_tos
    ]
    for notice in notices:
        assert words in notice.get_body(("plain",)).get_content()
        assert words in notice.get_body(("html",)).get_content()
    opening = words.split("[")[0]
    for notice in first:  # a requester's own new ticket carries no such line
        assert opening not in notice.get_body(("plain",)).get_content()
