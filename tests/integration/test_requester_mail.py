"""What requesters and agents read (SPEC §4 "What requesters see", issue 14.5/14.6).

One desk day is played through the real pipeline and jobs, in English and in
Polish, and every mail is read as its recipient gets it from the relay:
subject, text part, HTML part, recipients and References. Requesters see one
polite register, human dates, the agent's name, and nothing internal (group
names, escalation levels, priority codes, Message-IDs of internal mail);
agents get the command help in the HTML part too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from daemon.app.jobs import run_due
from daemon.config import Settings
from daemon.service.wiring import App
from tests.conftest import ROOT
from tests.integration.test_escalations_and_bounces import dsn
from tests.support.clock import ManualClock
from tests.support.flow import ingest, last_out, messages, ticket
from tests.support.mail import make_mail
from tests.support.relay import Caught, Relay
from tests.unit.adapters.test_templates import INFORMAL_PL

AGENT = "anna@example.com"
AGENT_NAME = "Anna Nowak"
TRUSTED = {"Authentication-Results": "mx.example.com; dkim=pass header.d=example.com"}
GROUPS = ("second-line", "telephony", "third-line")
REQUESTER_KINDS = {
    "ack",
    "agent_reply",
    "status_update",
    "verification",
    "verification_reminder",
    "closed",
    "auto_closed",
}
AGENT_KINDS = {
    "agent_new",
    "agent_followup",
    "assigned",
    "command_result",
    "escalation_notice",
    "reopened",
    "verification_held",
}
PRIORITY_CODE = re.compile(r"\bP[1-5]\b")
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{2}:\d{2} (CET|CEST|UTC)")
INTERNAL_WORDS = ("Zespół", "Grupa", "Team", "Group", "poziom", "level", "Escalat", "Eskal")


@dataclass
class Language:
    code: str
    requester: str
    gone: str
    yes: str
    no: str
    human_date: str  # how the ack's deadline reads
    signed: str  # the closing of an agent's reply


LANGUAGES = [
    Language(
        "en",
        "jan.kowalski@example.org",
        "gone@example.org",
        "Yes, it works now",
        "No, still broken",
        "Thursday 26 November 2026, 10:00",
        f"Kind regards,\n{AGENT_NAME}\nIT Help Desk",
    ),
    Language(
        "pl",
        "jan@firma.pl",
        "gone@firma.pl",
        "Tak, działa",
        "Nie, nadal nie działa",
        "26 listopada 2026 r., godz. 10:00",
        f"Z poważaniem\n{AGENT_NAME}\nIT Help Desk",
    ),
]


@pytest.fixture
def desk(settings: Settings, clock: ManualClock, relay: Relay, tmp_path: Path) -> Iterator[App]:
    app = open_desk(settings, clock, relay, tmp_path)
    yield app
    app.close()


def open_desk(
    settings: Settings, clock: ManualClock, relay: Relay, tmp_path: Path, agents_read: str = "en"
) -> App:
    """Shipped rules with a named agent; commands need a DKIM pass from our MX;
    mail to agents in `agents_read` (helpdesk.default_language)."""
    shipped = (ROOT / "rules.yaml").read_text(encoding="utf-8")
    named = shipped.replace(
        "members: [anna@example.com, piotr@example.com]",
        f'members: ["{AGENT_NAME} <{AGENT}>", piotr@example.com]',
    )
    assert named != shipped
    rules = tmp_path / "rules.yaml"
    rules.write_text(named, encoding="utf-8")
    return App(
        replace(
            settings,
            paths=replace(settings.paths, rules=rules),
            helpdesk=replace(settings.helpdesk, default_language=agents_read),
            agents=replace(
                settings.agents,
                trust="authentication-results",
                trusted_authserv_ids=("mx.example.com",),
            ),
            outgoing=replace(
                settings.outgoing, transport="smtp", host="127.0.0.1", port=relay.port
            ),
        ),
        clock,
    )


def tick_at(app: App, moment: str) -> dict[str, int]:
    app.clock.set(datetime.fromisoformat(moment))  # type: ignore[attr-defined]
    return app.tick(lambda now: run_due(app.store, lambda: app.runtime, now)).jobs


def agent_says(
    app: App, number: int, body: str, *, trusted: bool = True, sender: str = AGENT
) -> None:
    notice = last_out(app, number, "agent_new")
    ingest(
        app,
        make_mail(
            sender=sender,
            subject=f"Re: [HD-{number}] notice",
            body=body,
            in_reply_to=notice.message_id,
            references=[notice.message_id],
            headers=TRUSTED if trusted else None,
        ),
    )


def requester_says(app: App, lang: Language, number: int, body: str) -> None:
    ingest(app, make_mail(sender=lang.requester, subject=f"Re: [HD-{number}] x", body=body))


def play_the_desk(app: App, lang: Language) -> tuple[int, int, int]:
    """A day and a half of a desk: every requester and agent mail kind once."""
    first = ingest(app, make_mail(sender=lang.requester, subject="Printer jams")).ticket
    # An agent's mail with commands but without proof: kept internal, the agent told.
    agent_says(app, first, "#priority P1\n\nInternal musing.\n", trusted=False)
    agent_says(
        app,
        first,
        "#assign piotr@example.com\n#priority P2\n\nWe are sending a technician.\n",
    )
    app.clock.set(datetime.fromisoformat("2026-11-25T10:00:00+00:00"))  # type: ignore[attr-defined]
    agent_says(app, first, "#group third-line\n")  # the requester hears it moved, not where
    app.clock.set(datetime.fromisoformat("2026-11-25T10:30:00+00:00"))  # type: ignore[attr-defined]
    agent_says(app, first, f"#assign {AGENT}\n")  # and who works on it, by name
    # Status updates and escalation steps through Wednesday and Thursday.
    for moment in ("2026-11-25T13:00", "2026-11-26T08:00", "2026-11-26T12:00"):
        tick_at(app, f"{moment}:00+00:00")
    agent_says(app, first, "#resolve HW-JAM\nCleaned the rollers.\n")
    tick_at(app, "2026-11-27T12:00:00+00:00")  # a reminder
    requester_says(app, lang, first, f"{lang.yes}\n")
    assert str(ticket(app, first).status) == "closed"

    second = ingest(app, make_mail(sender=lang.requester, subject="Scanner")).ticket
    agent_says(app, second, "#assign me\n#resolve SCAN\nNew driver.\n")
    requester_says(app, lang, second, f"{lang.no}\n")  # reopened, the assignee told
    agent_says(app, second, "#resolve SCAN2\nNew cable.\n")
    tick_at(app, "2026-12-10T09:00:00+00:00")  # closes itself
    assert ticket(app, second).closure == "auto"

    third = ingest(app, make_mail(sender=lang.gone, subject="Monitor")).ticket
    agent_says(app, third, "#assign me\n#resolve MON\nNew monitor.\n")
    ingest(app, dsn(last_out(app, third, "verification").message_id, lang.gone))
    return first, second, third


def kind_of(app: App, caught: Caught, numbers: tuple[int, ...]) -> str:
    message_id = str(caught.message["Message-ID"]).strip("<>")
    for number in numbers:
        for m in messages(app, number):
            if m.message_id == message_id:
                return m.kind
    raise AssertionError(f"{message_id} is on no ticket")


def parts(msg: EmailMessage) -> tuple[str, str, str]:
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    return str(msg["Subject"]), text.replace("\r\n", "\n"), html.replace("\r\n", "\n")


def internal_ids(app: App, numbers: tuple[int, ...]) -> set[str]:
    return {
        m.message_id
        for n in numbers
        for m in messages(app, n)
        if m.internal or (m.direction == "in" and m.kind == "agent_reply")
    }


def refs(msg: EmailMessage) -> set[str]:
    named = f"{msg.get('In-Reply-To', '')} {msg.get('References', '')}"
    return set(re.findall(r"<([^>]+)>", named))


@pytest.mark.parametrize("lang", LANGUAGES, ids=lambda lang: lang.code)
def test_requesters_read_one_register_human_dates_and_nothing_internal(
    desk: App, relay: Relay, lang: Language
) -> None:
    numbers = play_the_desk(desk, lang)
    hidden = internal_ids(desk, numbers)
    kinds_on_tickets = {m.kind for n in numbers for m in messages(desk, n) if m.internal}
    assert {"agent_new", "command_result", "escalation_notice"} <= kinds_on_tickets
    seen: dict[str, list[tuple[str, str, str]]] = {}
    for caught in relay.to(lang.requester):
        msg = caught.message
        kind = kind_of(desk, caught, numbers)
        assert kind in REQUESTER_KINDS, kind
        assert caught.rcpt_tos == [lang.requester]
        subject, text, html = parts(msg)
        seen.setdefault(kind, []).append((subject, text, html))
        assert not (refs(msg) & hidden), f"{kind} threads on internal mail"
        for part in (subject, text, html):
            for group in GROUPS:
                assert group not in part, f"{kind}: group name {group!r}"
            assert not PRIORITY_CODE.search(part), f"{kind}: priority code in {part!r}"
            assert not ISO_DATE.search(part), f"{kind}: ISO date in {part!r}"
            for word in INTERNAL_WORDS:
                assert word not in part, f"{kind}: {word!r} in {part!r}"
            if lang.code == "pl":
                found = INFORMAL_PL.search(part)
                assert found is None, f"{kind}: informal {found and found.group(0)!r}"
    assert set(seen) == REQUESTER_KINDS
    _, ack_text, ack_html = seen["ack"][0]
    assert lang.human_date in ack_text and lang.human_date in ack_html, ack_text
    _, reply_text, reply_html = seen["agent_reply"][0]
    assert lang.signed in reply_text
    assert lang.signed.replace("\n", "<br>") in reply_html
    updates = " ".join(text for _, text, _ in seen["status_update"])
    escalated = {"en": "we escalated your request", "pl": "przekazaliśmy zgłoszenie wyżej"}
    moved = {"en": "passed your request to the specialists", "pl": "specjalistom"}
    assert escalated[lang.code] in updates and moved[lang.code] in updates
    named = {"en": f"{AGENT_NAME} is now working", "pl": f"zgłoszeniem zajmuje się {AGENT_NAME}"}
    assert named[lang.code] in updates


@pytest.mark.parametrize("lang", LANGUAGES, ids=lambda lang: lang.code)
def test_every_agent_mail_carries_the_command_help_in_its_html_part(
    desk: App, relay: Relay, lang: Language
) -> None:
    numbers = play_the_desk(desk, lang)
    requesters = {lang.requester, lang.gone}
    kinds: set[str] = set()
    for caught in relay.caught:
        if set(caught.rcpt_tos) & requesters:
            continue
        kind = kind_of(desk, caught, numbers)
        kinds.add(kind)
        _, _, html = parts(caught.message)
        assert "#assign me" in html and "#resolve" in html and "#internal" in html, kind
        assert "Text after the commands" in html or "Tekst po poleceniach" in html, kind
    assert kinds == AGENT_KINDS


@pytest.mark.parametrize(
    ("lang", "body", "signed"),
    [
        ("en", "Please restart the router.\n\nBest regards,\nAnna\n", "Best regards,\nAnna"),
        ("en", "Please restart the router.\n\nCheers\n", f"Cheers\n{AGENT_NAME}"),
        (
            "pl",
            "Proszę zrestartować router.\n\nPozdrawiam serdecznie,\nAnna\n",
            "Pozdrawiam serdecznie,\nAnna",
        ),
        ("pl", "Proszę zrestartować router.\n\nPozdrawiam\n", f"Pozdrawiam\n{AGENT_NAME}"),
    ],
    ids=["en-named", "en-closing", "pl-named", "pl-closing"],
)
def test_an_agent_who_signs_the_reply_gets_no_second_closing(
    desk: App, relay: Relay, lang: str, body: str, signed: str
) -> None:
    """The agent's own closing stays the only one: under their name the desk's
    name follows, under a bare closing their name and the desk's."""
    requester = next(x.requester for x in LANGUAGES if x.code == lang)
    template_closing = next(x.signed for x in LANGUAGES if x.code == lang).split("\n")[0]
    number = ingest(desk, make_mail(sender=requester, subject="Router")).ticket
    agent_says(desk, number, body)
    _, text, html = parts(relay.to(requester)[-1].message)
    assert f"{signed}\nIT Help Desk\n" in text, text
    assert template_closing not in text and template_closing not in html
    assert signed.replace("\n", "<br>") in html.replace("\n", "<br>") + "<br>", html
    assert "IT Help Desk</div>" in html  # the desk's name right under the agent's


def test_an_agent_without_a_name_in_the_rules_signs_with_the_name_of_their_mail(
    desk: App, relay: Relay
) -> None:
    requester = "jan@firma.pl"
    number = ingest(desk, make_mail(sender=requester, subject="Drukarka")).ticket
    agent_says(
        desk,
        number,
        "Proszę sprawdzić kabel.\n",
        sender="Piotr Wi\u015bniewski <piotr@example.com>",
    )
    _, text, html = parts(relay.to(requester)[-1].message)
    assert "Z poważaniem\nPiotr Wiśniewski\nIT Help Desk" in text, text
    assert "Z poważaniem<br>Piotr Wiśniewski<br>IT Help Desk" in html
    agent_says(desk, number, "Proszę sprawdzić zasilacz.\n", sender="piotr@example.com")
    _, text, _ = parts(relay.to(requester)[-1].message)
    assert "Z poważaniem\npiotr@example.com\nIT Help Desk" in text, text
    # The sender wrote this header: a bidi override is shown, not obeyed, as
    # in any user text; a name too long to be one is not used.
    agent_says(
        desk,
        number,
        "Proszę sprawdzić gniazdko.\n",
        sender="Piotr\u202eikswein <piotr@example.com>",
    )
    _, text, html = parts(relay.to(requester)[-1].message)
    assert "Z poważaniem\nPiotr[U+202E]ikswein\nIT Help Desk" in text, text
    assert "\u202e" not in text and "\u202e" not in html
    agent_says(
        desk, number, "Proszę sprawdzić router.\n", sender=f"{'Piotr ' * 20}<piotr@example.com>"
    )
    _, text, _ = parts(relay.to(requester)[-1].message)
    assert "Z poważaniem\npiotr@example.com\nIT Help Desk" in text, text


@pytest.mark.parametrize(
    ("lang", "answered", "wrote_after"),
    [
        (
            "en",
            "The requester answered that the problem persists: “No, still broken”",
            "The requester wrote after the ticket was closed.",
        ),
        (
            "pl",
            "Zgłaszający odpowiedział, że problem nadal występuje: „Nie, nadal nie działa”",
            "Zgłaszający napisał po zamknięciu zgłoszenia.",
        ),
    ],
)
def test_the_reopened_notice_says_why_in_the_agents_language(
    settings: Settings,
    clock: ManualClock,
    relay: Relay,
    tmp_path: Path,
    lang: str,
    answered: str,
    wrote_after: str,
) -> None:
    """Why a ticket came back, in the language agents read: not an English
    note ("requester: …") inside a Polish mail."""
    requester = next(x for x in LANGUAGES if x.code == lang)
    app = open_desk(settings, clock, relay, tmp_path, agents_read=lang)
    try:
        numbers = play_the_desk(app, requester)
        number = numbers[1]  # rejected once, then closed itself
        reopened = [c for c in relay.caught if kind_of(app, c, numbers) == "reopened"]
        _, text, html = parts(reopened[0].message)
        assert answered in text and answered in html, text
        assert "requester:" not in text and "requester:" not in html
        requester_says(app, requester, number, "It broke again.\n")
        last = relay.caught[-1]
        assert kind_of(app, last, numbers) == "reopened"
        _, text, html = parts(last.message)
        assert wrote_after in text and wrote_after in html, text
        assert "the requester wrote" not in text
    finally:
        app.close()
