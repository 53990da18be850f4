"""The closure question as requesters answer it (issue 14.2, 14.3; SPEC §4).

Through the whole pipeline, on SQLite and PostgreSQL, with every mail over real
SMTP to the test's relay: idioms in the answer, one-click answers by subject,
the unclear path, and what the request to confirm and its reminders show.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from daemon.service.wiring import App
from tests.integration.test_conversation import AGENT, LEAD, agent_says, tick_at
from tests.support.flow import events, ingest, ticket
from tests.support.mail import make_mail
from tests.support.relay import Caught, Relay

POLISH = "jan@firma.pl"  # rules.yaml: every .pl domain gets Polish mail
ENGLISH = "john@example.org"
HELPDESK = "helpdesk@example.com"


def resolved_ticket(app: App, requester: str, *, assign: bool = True) -> int:
    number = ingest(app, make_mail(sender=requester, subject="Drukarka się zacina")).ticket
    commands = "#assign me\n" if assign else ""
    agent_says(app, number, f"{commands}#resolve HW-JAM\nWyczyściłem rolki utrwalacza.\n")
    assert str(ticket(app, number).status) == "resolved"
    return number


def answer(app: App, requester: str, number: int, body: str, subject: str = "") -> None:
    ingest(
        app,
        make_mail(sender=requester, subject=subject or f"Re: [HD-{number}] Drukarka", body=body),
    )


def text_of(caught: Caught) -> str:
    return caught.message.get_body(("plain",)).get_content()


def html_of(caught: Caught) -> str:
    return caught.message.get_body(("html",)).get_content()


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href")

    def handle_data(self, data: str) -> None:
        if self._href is not None and data.strip():
            self.links.append((data.strip(), self._href))
            self._href = None


def buttons(html: str) -> dict[str, str]:
    parser = _Links()
    parser.feed(html)
    return dict(parser.links)


# --- idioms: the first word does not decide --------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "closure"),
    [
        ("Tak naprawdę nadal nie działa.\n", "in_progress", None),
        ("Nie ma już problemu, dziękuję!\n", "closed", "verified"),
        ("Dzien dobry,\nniestety dalej to samo.\n\nPozdrawiam\nJan\n", "in_progress", None),
        ("Dziękuję, działa bez zarzutu 👍\n", "closed", "verified"),
    ],
)
def test_polish_answers_are_read_as_people_mean_them(
    relay_app: App, body: str, status: str, closure: str | None
) -> None:
    number = resolved_ticket(relay_app, POLISH)
    quoted = "\nW dniu 25.11.2026 o 10:00, IT Help Desk pisze:\n> Czy problem został rozwiązany?\n"
    answer(relay_app, POLISH, number, body + quoted)
    t = ticket(relay_app, number)
    assert (str(t.status), t.closure) == (status, closure)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ("Unfortunately the problem is still there.\n", "in_progress"),
        ("No problem any more, thanks!\n", "closed"),
        ("Thanks, that fixed it.\n", "closed"),
    ],
)
def test_english_answers_are_read_as_people_mean_them(
    relay_app: App, body: str, status: str
) -> None:
    number = resolved_ticket(relay_app, ENGLISH)
    answer(relay_app, ENGLISH, number, body)
    assert str(ticket(relay_app, number).status) == status


# --- what the request to confirm shows ---------------------------------------------------


@pytest.mark.parametrize(
    ("requester", "words", "labels"),
    [
        (POLISH, ("„tak”", "„nie”"), ("Potwierdzam rozwiązanie", "Problem nadal występuje")),
        (ENGLISH, ('"yes"', '"no"'), ("I confirm the fix", "The problem persists")),
    ],
)
def test_the_request_asks_in_the_requesters_words_with_two_one_click_answers(
    relay_app: App, relay: Relay, requester: str, words: tuple[str, str], labels: tuple[str, str]
) -> None:
    number = resolved_ticket(relay_app, requester)
    request = relay.to(requester)[-1]
    text = text_of(request)
    assert words[0] in text and words[1] in text
    assert '"yes"' not in text if requester == POLISH else True  # today's bug: English words
    links = buttons(html_of(request))
    for label in labels:
        url = urlsplit(links[label])
        assert (url.scheme, url.path) == ("mailto", HELPDESK)
        assert re.fullmatch(r"subject=[A-Za-z0-9%._~-]+", url.query)  # percent-encoded
        [subject] = parse_qs(url.query)["subject"]
        assert subject == f"[HD-{number}] {label}"
        assert url.geturl() in text  # the text part carries the same links
        assert f"[HD-{number}] {label}" in text  # and the subjects as people read them


@pytest.mark.parametrize(
    ("requester", "label", "status"),
    [
        (POLISH, "Potwierdzam rozwiązanie", "closed"),
        (POLISH, "Problem nadal występuje", "in_progress"),
        (ENGLISH, "I confirm the fix", "closed"),
        (ENGLISH, "The problem persists", "in_progress"),
    ],
)
def test_a_one_click_reply_is_understood_by_its_subject(
    relay_app: App, relay: Relay, requester: str, label: str, status: str
) -> None:
    number = resolved_ticket(relay_app, requester)
    url = urlsplit(buttons(html_of(relay.to(requester)[-1]))[label])
    subject = unquote(url.query.removeprefix("subject="))
    # The body says the opposite, or nothing: the subject decides.
    body = "Nadal nie działa.\n" if status == "closed" else "Thanks!\n"
    answer(relay_app, requester, number, body, subject=subject)
    assert str(ticket(relay_app, number).status) == status


@pytest.mark.parametrize(
    ("requester", "date"),
    [(POLISH, "30 listopada 2026 r., godz. 10:00"), (ENGLISH, "Monday 30 November 2026, 10:00")],
)
def test_the_request_and_every_reminder_name_the_auto_close_date(
    relay_app: App, relay: Relay, requester: str, date: str
) -> None:
    # Resolved on Wednesday 2026-11-25 10:00 in Warsaw: closes itself after
    # 3 business days, on Monday 10:00; reminders on Thursday and Friday.
    resolved_ticket(relay_app, requester)
    assert date in text_of(relay.to(requester)[-1])
    assert date in html_of(relay.to(requester)[-1])
    for moment in ("2026-11-26T09:00:00+00:00", "2026-11-27T09:00:00+00:00"):
        assert tick_at(relay_app, moment) == {"verification_reminders": 1}
        reminder = relay.to(requester)[-1]
        assert date in text_of(reminder) and date in html_of(reminder)
        assert "2026-11-30" not in text_of(reminder)  # never ISO in a sentence


# --- unclear answers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requester", "body", "question"),
    [
        (
            POLISH,
            "Nie wiem, sprawdzę jutro.\n",
            "Nie jesteśmy pewni, czy problem został rozwiązany",
        ),
        (ENGLISH, "I'll check tomorrow.\n", "We are not sure whether the problem is solved"),
    ],
)
def test_an_unclear_answer_gets_one_question_and_the_assignee_is_told(
    relay_app: App, relay: Relay, requester: str, body: str, question: str
) -> None:
    number = resolved_ticket(relay_app, requester)
    to_requester, to_agent = len(relay.to(requester)), len(relay.to(AGENT))
    answer(relay_app, requester, number, body)
    assert str(ticket(relay_app, number).status) == "resolved"
    [asked] = relay.to(requester)[to_requester:]
    assert question in text_of(asked) and f"[HD-{number}]" in str(asked.message["Subject"])
    assert "Potwierdzam" in text_of(asked) or "I confirm the fix" in text_of(asked)
    [notice] = relay.to(AGENT)[to_agent:]
    assert body.strip() in text_of(notice)
    # A second unclear answer: the agent hears of it, the requester is not asked again.
    answer(relay_app, requester, number, "Hmm, może.\n")
    assert len(relay.to(requester)) == to_requester + 1
    assert len(relay.to(AGENT)) == to_agent + 2
    assert str(ticket(relay_app, number).status) == "resolved"
    unclear = [e for e in events(relay_app, number) if e.type == "verification_unclear"]
    assert [e.detail["asked"] for e in unclear] == [True, False]


def test_an_unclear_answer_on_an_unassigned_ticket_tells_the_group_lead(
    relay_app: App, relay: Relay
) -> None:
    number = resolved_ticket(relay_app, ENGLISH, assign=False)
    before = len(relay.to(LEAD))
    answer(relay_app, ENGLISH, number, "Not sure yet.\n")
    [notice] = relay.to(LEAD)[before:]
    assert "Not sure yet." in text_of(notice)


def test_a_new_resolution_may_ask_again(relay_app: App, relay: Relay) -> None:
    number = resolved_ticket(relay_app, ENGLISH)
    answer(relay_app, ENGLISH, number, "Not sure.\n")
    answer(relay_app, ENGLISH, number, "Still broken.\n")  # reopened
    agent_says(relay_app, number, "#resolve HW-JAM\nReplaced the fuser.\n")
    before = len(relay.to(ENGLISH))
    answer(relay_app, ENGLISH, number, "Will test on Monday.\n")
    assert len(relay.to(ENGLISH)) == before + 1
