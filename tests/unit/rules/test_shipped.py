"""The shipped rules.yaml: it loads, and realistic mail lands where a desk expects."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from daemon.core.domain import Address, ParsedMessage
from daemon.rules.ruleset import Rules, decide, load_rules

SHIPPED = Path(__file__).parents[3] / "rules.yaml"


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_rules(SHIPPED.read_text(encoding="utf-8"), str(SHIPPED))


def message(
    subject: str,
    sender: str = "user@customer.com",
    body: str = "",
    headers: dict[str, tuple[str, ...]] | None = None,
) -> ParsedMessage:
    return ParsedMessage(
        message_id="m@example.com",
        subject=subject,
        sender=Address(sender),
        to=(Address("helpdesk@example.com"),),
        headers={k.lower(): v for k, v in (headers or {}).items()},
        text=body,
    )


def test_shipped_rules_load(rules: Rules) -> None:
    assert len(rules.rules) >= 10
    assert set(rules.groups) == {"second-line", "telephony", "third-line"}
    assert set(rules.sla) == {"P1", "P2", "P3", "P4", "P5"}
    assert [step.share for step in rules.escalation] == [0.75, 1.0, 1.5]
    assert rules.find_external_ref("FW: [SD-4711] Drukarka") == "SD-4711"


POLISH_HOLIDAYS = [
    "2026-01-01", "2026-01-06", "2026-04-05", "2026-04-06", "2026-05-01", "2026-05-03",
    "2026-05-24", "2026-06-04", "2026-08-15", "2026-11-01", "2026-11-11", "2026-12-24",
    "2026-12-25", "2026-12-26",
    "2027-01-01", "2027-01-06", "2027-03-28", "2027-03-29", "2027-05-01", "2027-05-03",
    "2027-05-16", "2027-05-27", "2027-08-15", "2027-11-01", "2027-11-11", "2027-12-24",
    "2027-12-25", "2027-12-26",
]  # fmt: skip


def test_office_calendar_has_every_polish_public_holiday(rules: Rules) -> None:
    office = rules.calendars["office"]
    assert office.timezone == "Europe/Warsaw"
    assert office.weekly[0] == ((8 * 60, 17 * 60),)
    assert office.weekly[5:] == ((), ())
    days = {
        date.fromordinal(n)
        for first, last in office.holidays
        for n in range(first.toordinal(), last.toordinal() + 1)
    }
    assert days == {date.fromisoformat(day) for day in POLISH_HOLIDAYS}


SUBJECTS = [
    # (subject, sender, expected category, group, priority, language)
    ("Telefony nie działają w całym biurze", "jan@firma.pl", "voip", "telephony", "P1", "pl"),
    ("VoIP down - no dial tone", "it@customer.com", "voip", "telephony", "P1", "en"),
    ("Proszę o zmianę numeru wewnętrznego", "ola@firma.pl", "voip", "telephony", "P3", "pl"),
    (
        "Serwer plików nie działa",
        "kierownik@biuro.com.pl",
        "infrastructure",
        "third-line",
        "P2",
        "pl",
    ),
    (
        "VPN not working for the whole team",
        "a@customer.com",
        "infrastructure",
        "third-line",
        "P2",
        "en",
    ),
    (
        "Konfiguracja VLAN na switchu w magazynie",
        "a@firma.pl",
        "infrastructure",
        "third-line",
        "P4",
        "pl",
    ),
    (
        "Niebieski ekran (BSOD) na laptopie",
        "ewa@firma.pl",
        "windows-repair",
        "second-line",
        "P3",
        "pl",
    ),
    (
        "Komputer nie uruchamia się po aktualizacji",
        "ewa@firma.pl",
        "windows-repair",
        "second-line",
        "P3",
        "pl",
    ),
    (
        "Windows 11 error after update",
        "bob@customer.com",
        "windows-repair",
        "second-line",
        "P3",
        "en",
    ),
    ("Reinstalacja systemu Windows 10", "a@firma.pl", "windows-install", "second-line", "P4", "pl"),
    (
        "New laptop for a new employee",
        "hr@customer.com",
        "windows-install",
        "second-line",
        "P4",
        "en",
    ),
    (
        "Outlook nie synchronizuje poczty",
        "a@firma.pl",
        "office-microsoft",
        "second-line",
        "P3",
        "pl",
    ),
    (
        "Excel crashes when opening a file",
        "a@customer.com",
        "office-microsoft",
        "second-line",
        "P3",
        "en",
    ),
    (
        "Problem z plikiem w LibreOffice Calc",
        "a@firma.pl",
        "office-opensource",
        "second-line",
        "P3",
        "pl",
    ),
    (
        "Prośba o zainstalowanie programu 7-Zip",
        "a@firma.pl",
        "software-install",
        "second-line",
        "P4",
        "pl",
    ),
    (
        "Please install Adobe Reader",
        "a@customer.com",
        "software-install",
        "second-line",
        "P4",
        "en",
    ),
    (
        "Czyszczenie komputera z kurzu, głośny wentylator",
        "a@firma.pl",
        "hardware",
        "second-line",
        "P4",
        "pl",
    ),
    ("Wymiana dysku na SSD", "a@firma.pl", "hardware", "second-line", "P4", "pl"),
    ("Drukarka nie drukuje", "a@firma.pl", "hardware", "second-line", "P4", "pl"),
    (
        "Prośba o połączenie zdalne przez AnyDesk",
        "a@firma.pl",
        "remote-support",
        "second-line",
        "P4",
        "pl",
    ),
    (
        "TeamViewer session tomorrow at 10?",
        "a@customer.com",
        "remote-support",
        "second-line",
        "P4",
        "en",
    ),
    ("Pytanie o fakturę", "a@firma.pl", "general", "second-line", "P3", "pl"),
]


@pytest.mark.parametrize(
    ("subject", "sender", "category", "group", "priority", "language"), SUBJECTS
)
def test_realistic_subjects(
    rules: Rules,
    subject: str,
    sender: str,
    category: str,
    group: str,
    priority: str,
    language: str,
) -> None:
    decision = decide(rules, message(subject, sender))
    assert (decision.category, decision.group, decision.priority, decision.language) == (
        category,
        group,
        priority,
        language,
    ), decision.matched
    assert not decision.ignore


def test_newsletter_is_ignored(rules: Rules) -> None:
    bulk = message(
        "Nowości w ofercie – newsletter marzec",
        "news@sklep-it.pl",
        headers={"List-Unsubscribe": ("<mailto:unsubscribe@sklep-it.pl>",)},
    )
    assert decide(rules, bulk).ignore is True


def test_escalated_newsletter_lookalike_is_not_ignored(rules: Rules) -> None:
    forwarded = message(
        "[SD-12] Webinar link does not work",
        "servicedesk@example.com",
        headers={"List-Unsubscribe": ("<mailto:x@y>",)},
    )
    decision = decide(rules, forwarded, "escalation")
    assert decision.ignore is False
    assert "first-line" in decision.tags


def test_vip_tag_adds_to_the_category_rule(rules: Rules) -> None:
    decision = decide(rules, message("Drukarka nie drukuje", "prezes@kluczowy-klient.pl"))
    assert decision.tags == ("vip", "printer")
    assert decision.category == "hardware"
    assert decision.matched == ("VIP requester", "Printers")


def test_unsupported_windows_is_tagged(rules: Rules) -> None:
    decision = decide(rules, message("Windows 7 nie uruchamia się", "a@firma.pl"))
    assert "unsupported-os" in decision.tags
    assert decision.category == "windows-repair"


def test_word_matches_only_as_the_product_name(rules: Rules) -> None:
    assert decide(rules, message("Word crashes on save")).category == "office-microsoft"
    assert decide(rules, message("a word about invoices")).category == "general"


def test_the_example_contracts_load_when_uncommented() -> None:
    """The two commented contracts are valid as written: an office-hours client
    and a 24x7 one with tighter P1 targets than the desk's."""
    lines = SHIPPED.read_text(encoding="utf-8").splitlines()
    start = lines.index("# contracts:")
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("#"))
    uncommented = [line[2:] for line in lines[start:end]]
    text = "\n".join([*lines[:start], *uncommented, *lines[end:]])
    rules = load_rules(text, str(SHIPPED))
    office, always = rules.contracts["kancelaria"], rules.contracts["translog"]
    assert office.sla["P1"].calendar.name == "office" and office.report is not None
    assert always.sla["P1"].calendar.name == "always"
    assert always.sla["P1"].resolution.seconds < rules.sla["P1"].resolution.seconds
    assert always.sla["P3"] is rules.sla["P3"]
    assert rules.contract_for("magazyn@wroclaw.translog.pl") is always
    assert rules.contract_for("dyzurny.translog@gmail.com") is always
    assert rules.contract_for("sekretariat@kancelaria-nowak.pl") is office
    assert rules.warnings == ()
    decision = decide(rules, message("Drukarka nie drukuje", sender="anna@translog.pl"))
    found = (decision.contract, decision.group, decision.language)
    assert found == ("translog", "third-line", "pl")
