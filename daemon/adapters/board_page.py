"""The SLA board as an HTML page (Jinja2, every value autoescaped).

Its template and style sheet live inside the package (daemon/adapters/board_templates),
not in the operator's mail templates folder: the page is a fixed, read-only
view whose escaping and Content-Security-Policy must hold, and there is
nothing an operator needs to word differently (labels are here, in both
languages). Mail templates stay editable in `paths.templates`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined

HERE = Path(__file__).resolve().parent / "board_templates"
#: Seconds between the page's own reloads (at most every 30 s, SPEC §9).
REFRESH_SECONDS = 30
LANGUAGES = ("en", "pl")
FILTER_KEYS = ("group", "contract", "assignee", "priority")

LABELS: dict[str, dict[str, str]] = {
    "en": {
        "title": "SLA board",
        "as_of": "As of",
        "refresh": f"this page reloads every {REFRESH_SECONDS} s",
        "counts": "Counts",
        "open": "Open",
        "breached": "Breached",
        "warning": "At warning",
        "unassigned": "Unassigned",
        "health": "Intake",
        "healthy": "healthy",
        "unhealthy": "UNHEALTHY",
        "intake_failed": "intake stopped",
        "mailbox": "mailbox",
        "disabled": "disabled",
        "ok": "ok",
        "no_mailboxes": "no IMAP mailboxes configured",
        "queue": "inbound queue",
        "queued": "queued",
        "failed": "failed",
        "quarantined": "quarantined",
        "outbox": "outbox",
        "pending": "pending",
        "group": "Group",
        "contract": "Contract",
        "assignee": "Assignee",
        "priority": "Priority",
        "all": "all",
        "filter": "Filter",
        "clear_filters": "Clear filters",
        "shown": "Tickets shown",
        "truncated": "Showing the most urgent",
        "caption": "Open tickets, least time left first",
        "tag": "Ticket",
        "sla": "SLA",
        "left": "Time left",
        "subject": "Subject",
        "requester": "Requester",
        "status": "State",
        "level": "Escalation",
        "nobody": "(nobody)",
        "empty": "No open tickets.",
        "state_ok": "ok",
        "state_warning": "warning",
        "state_breached": "breached",
        "state_paused": "paused",
        "state_met": "met",
        "status_new": "new",
        "status_assigned": "assigned",
        "status_in_progress": "in progress",
        "status_pending": "waiting for requester",
        "target_response": "response",
        "target_resolution": "resolution",
        "hours": "h",
        "minutes": "min",
        "none": "no deadline",
    },
    "pl": {
        "title": "Tablica SLA",
        "as_of": "Stan na",
        "refresh": f"strona odświeża się co {REFRESH_SECONDS} s",
        "counts": "Liczby",
        "open": "Otwarte",
        "breached": "Przekroczone",
        "warning": "Ostrzeżenie",
        "unassigned": "Nieprzypisane",
        "health": "Przyjmowanie poczty",
        "healthy": "sprawne",
        "unhealthy": "AWARIA",
        "intake_failed": "przyjmowanie zatrzymane",
        "mailbox": "skrzynka",
        "disabled": "wyłączona",
        "ok": "w porządku",
        "no_mailboxes": "brak skrzynek IMAP",
        "queue": "kolejka przychodząca",
        "queued": "w kolejce",
        "failed": "błędy",
        "quarantined": "w kwarantannie",
        "outbox": "poczta wychodząca",
        "pending": "do wysłania",
        "group": "Grupa",
        "contract": "Umowa",
        "assignee": "Przypisane do",
        "priority": "Priorytet",
        "all": "wszystkie",
        "filter": "Filtruj",
        "clear_filters": "Wyczyść filtry",
        "shown": "Pokazane zgłoszenia",
        "truncated": "Pokazane najpilniejsze",
        "caption": "Otwarte zgłoszenia, od najmniejszego zapasu czasu",
        "tag": "Zgłoszenie",
        "sla": "SLA",
        "left": "Pozostało",
        "subject": "Temat",
        "requester": "Zgłaszający",
        "status": "Stan",
        "level": "Eskalacja",
        "nobody": "(nikt)",
        "empty": "Brak otwartych zgłoszeń.",
        "state_ok": "w terminie",
        "state_warning": "ostrzeżenie",
        "state_breached": "przekroczone",
        "state_paused": "wstrzymane",
        "state_met": "dotrzymane",
        "status_new": "nowe",
        "status_assigned": "przypisane",
        "status_in_progress": "w realizacji",
        "status_pending": "czeka na zgłaszającego",
        "target_response": "reakcja",
        "target_resolution": "rozwiązanie",
        "hours": "godz.",
        "minutes": "min",
        "none": "bez terminu",
    },
}

_ENV = Environment(
    loader=FileSystemLoader(str(HERE)),
    autoescape=True,  # subjects and requesters are written by strangers
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,
)


def language(asked: str | None, default: str) -> str:
    """`?lang=` when it names a language we have, else the desk's default."""
    for choice in (asked, default):
        if choice in LANGUAGES:
            return choice
    return "en"


def duration(seconds: float | None, lang: str) -> str:
    """Business time left as "3 h 05 min" / "−1 h 20 min" (hours, not days:
    a business day is not 24 hours)."""
    t = LABELS[lang]
    if seconds is None:
        return t["none"]
    sign = "−" if seconds < 0 else ""
    minutes = int(abs(seconds) // 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{sign}{hours} {t['hours']} {minutes:02d} {t['minutes']}"
    return f"{sign}{minutes} {t['minutes']}"


def display_rows(rows: list[Any], lang: str, zone: ZoneInfo) -> list[dict[str, Any]]:
    """Rows with their time left and deadline as a person reads them."""
    t = LABELS[lang]
    out = []
    for r in rows:
        due = r.due.astimezone(zone).strftime("%d.%m %H:%M") if r.due else ""
        target = t.get(f"target_{r.target}", r.target or "")
        out.append(
            {
                "tag": r.tag,
                "subject": r.subject,
                "requester": r.requester,
                "contract": r.contract,
                "priority": r.priority,
                "group": r.group,
                "assignee": r.assignee,
                "status": r.status if f"status_{r.status}" in t else "new",
                "sla_state": r.sla_state if f"state_{r.sla_state}" in t else "ok",
                "left": duration(r.seconds_left, lang),
                "deadline": f"{target} {due}".strip(),
                "escalation_level": r.escalation_level,
            }
        )
    return out


def render(data: Mapping[str, Any], lang: str, zone: ZoneInfo, limit: int | None = None) -> str:
    """The page for the board's data (`board.snapshot`) in `lang`."""
    rows = data["rows"]
    shown = rows if limit is None else rows[:limit]
    now: datetime = data["now"]
    return _ENV.get_template("board.html").render(
        lang=lang,
        t=LABELS[lang],
        refresh=REFRESH_SECONDS,
        desk=data["desk"],
        now=now.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
        counts=data["counts"],
        health=data["health"],
        filter_keys=FILTER_KEYS,
        filters=data["filters"],
        choices=data["choices"],
        filtered=any(data["filters"].values()),
        total=len(rows),
        truncated=len(shown) < len(rows),
        rows=display_rows(shown, lang, zone),
    )


def stylesheet() -> bytes:
    return (HERE / "board.css").read_bytes()
