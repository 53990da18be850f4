"""Words of the incident record in English and Polish, and how it writes
moments, durations and the events of the timeline.

Shared by the text and the HTML form (`record_page`). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from daemon.core.record import Entry, Target

LANGUAGES = ("en", "pl")

LABELS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Incident record",
        "generated": "Record made",
        "times_in": "Times in",
        "status": "Status",
        "reported": "Reported",
        "requester": "Requester",
        "cc": "Copies to",
        "channel": "Channel",
        "first_line": "First line",
        "reference": "Their reference",
        "reported_at": "Reported at",
        "contract": "Contract",
        "no_contract": "none",
        "what_reported": "As reported",
        "classification": "Classification",
        "category": "Category",
        "impact": "Impact",
        "urgency": "Urgency",
        "priority": "Priority",
        "group": "Group",
        "assignee": "Assignee",
        "changes": "Changes",
        "when": "When",
        "field": "What",
        "from_to": "Change",
        "by": "By",
        "reason": "Reason",
        "opened": "at opening",
        "sla": "Service level (SLA)",
        "calendar": "Calendar",
        "always": "24×7",
        "target": "Target",
        "size": "Agreed",
        "due": "Due",
        "actual": "Actual",
        "taken": "Business time taken",
        "result": "Result",
        "response": "Response",
        "restoration": "Restoration",
        "resolution": "Resolution",
        "met": "met",
        "breached": "breached",
        "running": "running",
        "late": "overdue",
        "none": "—",
        "by_reply": "by the first reply",
        "by_workaround": "by a workaround",
        "by_resolution": "by the resolution",
        "paused": "Time paused",
        "pauses": "Pauses of the SLA clock",
        "pause_pending": "waiting for the requester",
        "pause_resolved": "resolved, awaiting confirmation",
        "still": "still paused",
        "breaches": "Breaches",
        "no_breaches": "No target was breached.",
        "escalations": "Escalations",
        "no_escalations": "No escalation.",
        "level": "Level",
        "told": "Told",
        "level_reached": "Highest escalation level",
        "solution": "Solution",
        "workaround": "Workaround",
        "restored_at": "Service restored",
        "resolved_at": "Resolved",
        "code": "Resolution code",
        "method": "How it was solved",
        "not_resolved": "Not resolved yet.",
        "closure": "Closure",
        "closed_at": "Closed",
        "verified": "Confirmed by the requester",
        "agent": "Confirmed by an agent (for example by phone)",
        "auto": "Closed automatically: no answer from the requester",
        "not_closed": "Not closed yet.",
        "their_words": "Their words",
        "agent_note": "Agent's note",
        "related": "Related tickets",
        "parent": "Part of major incident",
        "children": "Linked incidents",
        "merged_into": "Merged into",
        "linked_to": "Follows",
        "timeline": "Timeline",
        "internal": "internal",
        "internal_note": "Internal entries are marked",
        "files": "Attachments",
        "no_files": "No attachments.",
        "file": "File",
        "type": "Type",
        "bytes": "Size",
        "message": "Came with",
        "fetch": "Fetch with",
        "not_kept": "bytes in the raw message",
        "in": "received",
        "out": "sent",
        "to": "to",
        "shortened": "(shortened)",
        "page": "Page",
        "email": "e-mail",
        "escalation": "escalation from first line",
        "cli": "command line",
        "hours": "h",
        "minutes": "min",
        "day_one": "business day",
        "day_few": "business days",
        "day_many": "business days",
        "cal_day_one": "day",
        "cal_day_few": "days",
        "cal_day_many": "days",
    },
    "pl": {
        "title": "Karta incydentu",
        "generated": "Sporządzono",
        "times_in": "Godziny według strefy",
        "status": "Stan",
        "reported": "Zgłoszenie",
        "requester": "Zgłaszający",
        "cc": "Do wiadomości",
        "channel": "Kanał",
        "first_line": "Pierwsza linia",
        "reference": "Numer u zgłaszającego",
        "reported_at": "Data zgłoszenia",
        "contract": "Umowa",
        "no_contract": "brak",
        "what_reported": "Treść zgłoszenia",
        "classification": "Klasyfikacja",
        "category": "Kategoria",
        "impact": "Wpływ",
        "urgency": "Pilność",
        "priority": "Priorytet",
        "group": "Grupa",
        "assignee": "Osoba prowadząca",
        "changes": "Zmiany",
        "when": "Kiedy",
        "field": "Co",
        "from_to": "Zmiana",
        "by": "Kto",
        "reason": "Powód",
        "opened": "przy otwarciu",
        "sla": "Poziom usług (SLA)",
        "calendar": "Kalendarz",
        "always": "24/7",
        "target": "Cel",
        "size": "Uzgodniony czas",
        "due": "Termin",
        "actual": "Wykonano",
        "taken": "Czas roboczy",
        "result": "Wynik",
        "response": "Reakcja",
        "restoration": "Przywrócenie usługi",
        "resolution": "Rozwiązanie",
        "met": "dotrzymany",
        "breached": "przekroczony",
        "running": "w toku",
        "late": "po terminie",
        "none": "—",
        "by_reply": "pierwszą odpowiedzią",
        "by_workaround": "obejściem problemu",
        "by_resolution": "rozwiązaniem",
        "paused": "Czas wstrzymania",
        "pauses": "Wstrzymania zegara SLA",
        "pause_pending": "oczekiwanie na zgłaszającego",
        "pause_resolved": "rozwiązane, oczekiwanie na potwierdzenie",
        "still": "nadal wstrzymany",
        "breaches": "Przekroczenia",
        "no_breaches": "Nie przekroczono żadnego terminu.",
        "escalations": "Eskalacje",
        "no_escalations": "Bez eskalacji.",
        "level": "Poziom",
        "told": "Powiadomieni",
        "level_reached": "Najwyższy poziom eskalacji",
        "solution": "Rozwiązanie",
        "workaround": "Obejście problemu",
        "restored_at": "Przywrócenie usługi",
        "resolved_at": "Rozwiązano",
        "code": "Kod rozwiązania",
        "method": "Sposób rozwiązania",
        "not_resolved": "Zgłoszenie nie zostało jeszcze rozwiązane.",
        "closure": "Zamknięcie",
        "closed_at": "Zamknięto",
        "verified": "Potwierdzone przez zgłaszającego",
        "agent": "Potwierdzone przez technika (np. telefonicznie)",
        "auto": "Zamknięte automatycznie: brak odpowiedzi zgłaszającego",
        "not_closed": "Zgłoszenie nie zostało jeszcze zamknięte.",
        "their_words": "Odpowiedź zgłaszającego",
        "agent_note": "Notatka technika",
        "related": "Powiązane zgłoszenia",
        "parent": "Część poważnego incydentu",
        "children": "Powiązane incydenty",
        "merged_into": "Scalone z",
        "linked_to": "Kontynuacja zgłoszenia",
        "timeline": "Przebieg",
        "internal": "wewnętrzne",
        "internal_note": "Wpisy wewnętrzne są oznaczone",
        "files": "Załączniki",
        "no_files": "Brak załączników.",
        "file": "Plik",
        "type": "Typ",
        "bytes": "Rozmiar",
        "message": "Przyszedł z",
        "fetch": "Polecenie",
        "not_kept": "w oryginalnej wiadomości",
        "in": "odebrana",
        "out": "wysłana",
        "to": "do",
        "shortened": "(skrócono)",
        "page": "Strona",
        "email": "e-mail",
        "escalation": "eskalacja z pierwszej linii",
        "cli": "wiersz poleceń",
        "hours": "godz.",
        "minutes": "min",
        "day_one": "dzień roboczy",
        "day_few": "dni robocze",
        "day_many": "dni roboczych",
        "cal_day_one": "dzień",
        "cal_day_few": "dni",
        "cal_day_many": "dni",
    },
}

#: Message kinds as a reader names them.
KINDS: dict[str, dict[str, str]] = {
    "en": {
        "request": "request",
        "reply": "reply from the requester",
        "agent_reply": "reply to the requester",
        "internal_note": "internal note",
        "ack": "acknowledgement",
        "status_update": "status update",
        "verification": "request to confirm the solution",
        "verification_reminder": "reminder to confirm",
        "escalation_notice": "escalation notice",
        "agent_new": "new-ticket notice to agents",
        "agent_followup": "follow-up to agents",
        "closed": "closure notice",
        "auto_closed": "closure notice",
        "workaround": "workaround to the requester",
        "bounce": "bounce",
    },
    "pl": {
        "request": "zgłoszenie",
        "reply": "odpowiedź zgłaszającego",
        "agent_reply": "odpowiedź do zgłaszającego",
        "internal_note": "notatka wewnętrzna",
        "ack": "potwierdzenie przyjęcia",
        "status_update": "informacja o stanie",
        "verification": "prośba o potwierdzenie rozwiązania",
        "verification_reminder": "przypomnienie o potwierdzeniu",
        "escalation_notice": "powiadomienie o eskalacji",
        "agent_new": "powiadomienie zespołu o nowym zgłoszeniu",
        "agent_followup": "przekazanie odpowiedzi do zespołu",
        "closed": "informacja o zamknięciu",
        "auto_closed": "informacja o zamknięciu",
        "workaround": "obejście problemu dla zgłaszającego",
        "bounce": "zwrot wiadomości",
    },
}

STATUSES: dict[str, dict[str, str]] = {
    "en": {
        "new": "new",
        "assigned": "assigned",
        "in_progress": "in progress",
        "pending": "waiting for the requester",
        "resolved": "resolved",
        "closed": "closed",
        "cancelled": "cancelled",
    },
    "pl": {
        "new": "nowe",
        "assigned": "przypisane",
        "in_progress": "w realizacji",
        "pending": "oczekuje na zgłaszającego",
        "resolved": "rozwiązane",
        "closed": "zamknięte",
        "cancelled": "anulowane",
    },
}

LEVELS: dict[str, dict[str, str]] = {
    "en": {"high": "high", "medium": "medium", "low": "low"},
    "pl": {"high": "wysoki", "medium": "średni", "low": "niski"},
}

_MONTHS_EN = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def language(value: str | None) -> str:
    return value if value in LANGUAGES else "en"


def moment(value: datetime | None, zone: ZoneInfo, lang: str) -> str:
    """ "26 Oct 2026, 09:00 CET" / "26.10.2026, 09:00 CET": the zone's
    abbreviation keeps the hour that repeats when summer time ends apart."""
    if value is None:
        return "—"
    local = value.astimezone(zone)
    abbr = local.strftime("%Z")
    if lang == "pl":
        return f"{local:%d.%m.%Y}, {local:%H:%M} {abbr}"
    return f"{local.day} {_MONTHS_EN[local.month - 1]} {local.year}, {local:%H:%M} {abbr}"


def duration(seconds: float | None, lang: str) -> str:
    """Business time as "26 h 05 min", "3 h", "20 min" (hours, not days: a
    business day is not 24 h)."""
    if seconds is None:
        return "—"
    t = LABELS[lang]
    minutes = round(max(seconds, 0) / 60)
    hours, minutes = divmod(minutes, 60)
    if hours and minutes:
        return f"{hours} {t['hours']} {minutes:02d} {t['minutes']}"
    if hours:
        return f"{hours} {t['hours']}"
    return f"{minutes} {t['minutes']}"


def plural(n: int, lang: str, stem: str) -> str:
    t = LABELS[lang]
    if n == 1:
        return t[f"{stem}_one"]
    if lang == "pl" and n % 10 in (2, 3, 4) and n % 100 not in (12, 13, 14):
        return t[f"{stem}_few"]
    return t[f"{stem}_many"]


def target_size(target: Target, lang: str, always: bool) -> str:
    """The agreed time: "3 business days" / "3 dni robocze", "8 h 00 min"."""
    if target.size_days:
        stem = "cal_day" if always else "day"
        return f"{target.size_days} {plural(target.size_days, lang, stem)}"
    return duration(target.size_s, lang)


def result(target: Target, lang: str) -> str:
    t = LABELS[lang]
    words = t.get(target.state, target.state)
    if target.by and target.state == "met":
        words += f" ({t['by_' + target.by]})" if f"by_{target.by}" in t else ""
    return words


def _pair(detail: Mapping[str, Any]) -> str:
    old, new = detail.get("from"), detail.get("to")
    return f"{old or '—'} → {new or '—'}"


_EVENTS: dict[str, dict[str, str]] = {
    "en": {
        "created": "Ticket opened: priority {priority}",
        "status_changed": "Status {pair}",
        "assignee_changed": "Assignee {pair}",
        "group_changed": "Group {pair}",
        "category_changed": "Category {pair}",
        "impact_changed": "Impact {pair}",
        "urgency_changed": "Urgency {pair}",
        "priority_changed": "Priority {pair}",
        "replied": "Public reply to the requester",
        "note": "Internal note",
        "first_response": "First response",
        "sla_paused": "SLA clock paused",
        "sla_resumed": "SLA clock running again",
        "sla_warning": "SLA warning: {target}",
        "sla_breach": "SLA target breached: {target}",
        "sla_escalation": "Escalation, level {level} ({target}, {percent}%)",
        "sla_retargeted": "SLA targets follow the new priority {to}",
        "workaround": "Workaround given: service restored",
        "resolved": "Resolved, code {code}",
        "closed": "Closed",
        "reopened": "Reopened",
        "verification_reminder": "Reminder to confirm sent",
        "verification_unclear": "Unclear answer to the request to confirm",
        "escalated_by_first_line": "Escalated by first line",
        "merged": "Merged into {into}",
        "merged_in": "Ticket {source} merged in",
        "linked": "Linked to major incident {parent}",
        "unlinked": "Unlinked from the major incident",
        "commands": "Commands",
        "message_received": "Mail recorded: {kind} ({role})",
    },
    "pl": {
        "created": "Otwarcie zgłoszenia: priorytet {priority}",
        "status_changed": "Stan {pair}",
        "assignee_changed": "Osoba prowadząca {pair}",
        "group_changed": "Grupa {pair}",
        "category_changed": "Kategoria {pair}",
        "impact_changed": "Wpływ {pair}",
        "urgency_changed": "Pilność {pair}",
        "priority_changed": "Priorytet {pair}",
        "replied": "Odpowiedź do zgłaszającego",
        "note": "Notatka wewnętrzna",
        "first_response": "Pierwsza reakcja",
        "sla_paused": "Wstrzymanie zegara SLA",
        "sla_resumed": "Wznowienie zegara SLA",
        "sla_warning": "Ostrzeżenie SLA: {target}",
        "sla_breach": "Przekroczenie terminu SLA: {target}",
        "sla_escalation": "Eskalacja, poziom {level} ({target}, {percent}%)",
        "sla_retargeted": "Terminy SLA według nowego priorytetu {to}",
        "workaround": "Obejście problemu: usługa przywrócona",
        "resolved": "Rozwiązanie, kod {code}",
        "closed": "Zamknięcie",
        "reopened": "Ponowne otwarcie",
        "verification_reminder": "Przypomnienie o potwierdzeniu",
        "verification_unclear": "Niejasna odpowiedź na prośbę o potwierdzenie",
        "escalated_by_first_line": "Eskalacja z pierwszej linii",
        "merged": "Scalenie z {into}",
        "merged_in": "Dołączenie zgłoszenia {source}",
        "linked": "Powiązanie z poważnym incydentem {parent}",
        "unlinked": "Odłączenie od poważnego incydentu",
        "commands": "Polecenia",
        "message_received": "Wiadomość zapisana: {kind} ({role})",
    },
}


def describe(entry: Entry, lang: str) -> str:
    """One line saying what a timeline entry was, in the record's language."""
    t = LABELS[lang]
    if entry.kind == "message":
        kind = KINDS[lang].get(entry.type, entry.type.replace("_", " "))
        arrow = t["in"] if entry.direction == "in" else t["out"]
        return f"{kind[:1].upper()}{kind[1:]} ({arrow})"
    d = entry.detail
    target = d.get("target")
    values: dict[str, Any] = {
        **{k: v for k, v in d.items() if isinstance(k, str)},
        "pair": _pair(d),
        "target": t.get(str(target), target) if target else "",
        "percent": round(float(d.get("share") or 0) * 100),
    }
    if entry.type in ("status_changed",):
        values["pair"] = (
            f"{STATUSES[lang].get(str(d.get('from')), d.get('from'))} → "
            f"{STATUSES[lang].get(str(d.get('to')), d.get('to'))}"
        )
    pattern = _EVENTS[lang].get(entry.type)
    if pattern is None:
        extra = ", ".join(f"{k}={v}" for k, v in d.items() if v not in (None, "", [], {}))
        return entry.type.replace("_", " ") + (f": {extra}" if extra else "")
    try:
        line = pattern.format_map(_Missing(values))
    except (ValueError, IndexError):
        line = entry.type
    if entry.type == "closed" and d.get("closure") in ("verified", "agent", "auto"):
        line += f": {t[str(d['closure'])]}"
    if entry.type == "first_response" and "met" in d:
        line += f": {t['met'] if d['met'] else t['breached']}"
    if entry.type == "sla_escalation" and d.get("notified"):
        line += f"; {t['told'].lower()}: {', '.join(map(str, d['notified']))}"
    if entry.type == "commands" and d.get("lines"):
        line += ": " + " ".join(map(str, d["lines"]))
    if entry.type == "escalated_by_first_line" and d.get("by"):
        ref = f" ({d['external_ref']})" if d.get("external_ref") else ""
        line += f": {d['by']}{ref}"
    return line


class _Missing(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "—"
