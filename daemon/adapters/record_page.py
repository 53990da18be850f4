"""The incident record laid out: one self-contained printable HTML page
(Jinja2, every value autoescaped) and plain text for the terminal.

The page has its style inline (one <style> element), no script and nothing
fetched from anywhere: it prints on A4 and reads the same when opened from
a mail years later. Its template lives in the package
(daemon/adapters/record_templates) like the board's: a fixed document whose
escaping must hold; its words, in English and Polish, are in `record_labels`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from daemon.adapters import record_labels as words
from daemon.core.record import Entry, IncidentRecord

HERE = Path(__file__).resolve().parent / "record_templates"
#: How much of one message's text the record shows.
MAX_BODY = 4000
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

_ENV = Environment(
    loader=FileSystemLoader(str(HERE)),
    autoescape=True,  # everything in a record was written by someone else
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,
)


def _clean(text: str) -> str:
    """Controls and bidi overrides out (they would rewrite a terminal or
    reverse what a page shows)."""
    return _CONTROLS.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def _body(text: str, lang: str) -> str:
    text = _clean(text).strip()
    if len(text) > MAX_BODY:
        return text[:MAX_BODY].rstrip() + "\n" + words.LABELS[lang]["shortened"]
    return text


class _View:
    """What the template and the text form need, computed once."""

    def __init__(self, record: IncidentRecord, lang: str | None = None) -> None:
        self.r = record
        self.lang = words.language(lang or record.language)
        self.t = words.LABELS[self.lang]
        self.zone = ZoneInfo(record.timezone)

    def when(self, value: Any) -> str:
        return words.moment(value, self.zone, self.lang)

    def dur(self, seconds: float | None) -> str:
        return words.duration(seconds, self.lang)

    def status(self, value: str) -> str:
        return words.STATUSES[self.lang].get(value, value)

    def value(self, name: str, value: str | None) -> str:
        """A field's value in words: states and impact/urgency levels."""
        if value is None:
            return "—"
        if name == "status":
            return self.status(value)
        if name in ("impact", "urgency"):
            return words.LEVELS[self.lang].get(value, value)
        return value

    def channel(self) -> str:
        return self.t.get(self.r.channel, self.r.channel)

    def entry(self, e: Entry) -> dict[str, Any]:
        who = e.actor
        if e.kind == "message" and e.to:
            who = f"{e.actor} → {', '.join(e.to)}"
        return {
            "at": self.when(e.at),
            "who": _clean(who),
            "what": _clean(words.describe(e, self.lang)),
            "subject": _clean(e.subject),
            "text": _body(e.text, self.lang),
            "internal": e.internal,
            "kind": e.kind,
            "files": list(e.attachments),
        }

    def context(self) -> dict[str, Any]:
        r, sla = self.r, self.r.sla
        targets = []
        if sla is not None:
            for target in sla.targets:
                targets.append(
                    {
                        "name": self.t[target.name],
                        "size": words.target_size(target, self.lang, sla.always),
                        "due": self.when(target.due),
                        "actual": self.when(target.actual),
                        "taken": self.dur(target.taken_s),
                        "result": words.result(target, self.lang),
                        "state": target.state,
                    }
                )
        change_rows = [
            {
                "at": self.when(c.at),
                "field": self.t.get(c.field, c.field),
                "change": (
                    self.value(c.field, c.new)
                    if c.old is None
                    else f"{self.value(c.field, c.old)} → {self.value(c.field, c.new)}"
                ),
                "by": c.actor,
                "reason": self.t["opened"] if c.reason == "opened" else (c.reason or ""),
            }
            for c in r.changes
        ]
        return {
            "lang": self.lang,
            "t": self.t,
            "r": r,
            "status": self.status(r.status),
            "impact": self.value("impact", r.impact),
            "urgency": self.value("urgency", r.urgency),
            "channel": self.channel(),
            "reported_at": self.when(r.reported_at),
            "generated_at": self.when(r.generated_at),
            "reported": _clean(r.reported),
            "changes": change_rows,
            "sla": sla,
            "calendar": (self.t["always"] if sla.always else sla.calendar) if sla else "",
            "targets": targets,
            "paused": self.dur(sla.paused_s) if sla else "",
            "pauses": [
                {
                    "since": self.when(p.since),
                    "until": self.when(p.until) if p.until else self.t["still"],
                    "length": self.dur(p.business_s),
                    "reason": self.t[f"pause_{p.reason}"],
                }
                for p in (sla.pauses if sla else ())
            ],
            "breaches": [
                {
                    "at": self.when(b.at),
                    "target": self.t.get(b.target, b.target),
                    "due": self.when(b.due),
                }
                for b in (sla.breaches if sla else ())
            ],
            "escalations": [
                {
                    "at": self.when(x.at),
                    "target": self.t.get(x.target, x.target),
                    "percent": round(x.share * 100),
                    "level": x.level,
                    "told": ", ".join(x.notified) or "—",
                }
                for x in (sla.escalations if sla else ())
            ],
            "restored_at": self.when(r.restored_at) if r.restored_at else None,
            "workaround": _body(r.workaround or "", self.lang),
            "resolved_at": self.when(r.resolved_at) if r.resolved_at else None,
            "note": _body(r.resolution_note or "", self.lang),
            "closure_how": self.t[r.closure.how] if r.closure.how else None,
            "closed_at": self.when(r.closure.at),
            "closure_words": _body(r.closure.words or "", self.lang),
            "timeline": [self.entry(e) for e in r.timeline],
            "files": [
                {
                    "id": f.id,
                    "name": _clean(f.name),
                    "type": f.type,
                    "size": human_size(f.size),
                    "sha256": f.sha256,
                    "message": f"{self.when(f.message_at)}, "
                    f"{words.KINDS[self.lang].get(f.message_kind, f.message_kind)}",
                    "from": f.message_from,
                    "internal": f.internal,
                    "stored": f.stored,
                    "command": f.command,
                }
                for f in r.files
            ],
            "related": bool(r.parent or r.children or r.merged_into or r.linked_to),
        }


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def render_html(record: IncidentRecord, lang: str | None = None) -> str:
    """The record as one printable page in its ticket's language."""
    view = _View(record, lang)
    css = (HERE / "record.css").read_text(encoding="utf-8")
    # Whatever a field brought (a subject, a name), no control or bidi override
    # reaches the page.
    return _clean(_ENV.get_template("record.html").render(css=css, **view.context()))


def render_text(record: IncidentRecord, lang: str | None = None) -> str:
    """The record for a terminal or a plain-text file."""
    view = _View(record, lang)
    c = view.context()
    t, r = c["t"], record
    out: list[str] = [f"{t['title']} {r.id}: {_clean(r.subject)}", ""]

    def row(label: str, value: Any) -> None:
        if value not in (None, "", [], ()):
            out.append(f"  {label + ':':<26} {value}")

    def section(title: str) -> None:
        out.extend(["", title, "-" * len(title)])

    row(t["status"], c["status"])
    row(t["generated"], c["generated_at"])
    row(t["times_in"], r.timezone)
    section(t["reported"])
    row(t["requester"], r.requester)
    row(t["cc"], ", ".join(r.cc))
    row(t["channel"], c["channel"])
    row(t["first_line"], r.escalated_by)
    row(t["reference"], r.external_ref)
    row(t["reported_at"], c["reported_at"])
    row(t["contract"], f"{r.contract_name} ({r.contract_id})" if r.contract_id else None)
    if c["reported"]:
        out.append(f"  {t['what_reported']}:")
        out.extend(f"    | {line}" for line in c["reported"].splitlines())
    section(t["classification"])
    for key in ("category", "impact", "urgency", "priority", "group", "assignee"):
        row(t[key], c[key] if key in ("impact", "urgency") else getattr(r, key))
    if c["changes"]:
        out.append(f"  {t['changes']}:")
        for ch in c["changes"]:
            reason = f" ({ch['reason']})" if ch["reason"] else ""
            out.append(f"    {ch['at']}  {ch['field']}: {ch['change']}{reason}, {ch['by']}")
    if c["sla"] is not None:
        section(t["sla"])
        row(t["priority"], c["sla"].priority)
        row(t["calendar"], c["calendar"])
        for tg in c["targets"]:
            out.append(
                f"  {tg['name']}: {t['size'].lower()} {tg['size']}; {t['due'].lower()} "
                f"{tg['due']}; {t['actual'].lower()} {tg['actual']}; {t['taken'].lower()} "
                f"{tg['taken']}; {tg['result']}"
            )
        row(t["paused"], c["paused"])
        for p in c["pauses"]:
            out.append(f"    {p['since']} – {p['until']}: {p['length']} ({p['reason']})")
        out.append(f"  {t['breaches']}:" if c["breaches"] else f"  {t['no_breaches']}")
        for b in c["breaches"]:
            out.append(f"    {b['at']}  {b['target']} ({t['due'].lower()} {b['due']})")
        out.append(f"  {t['escalations']}:" if c["escalations"] else f"  {t['no_escalations']}")
        for x in c["escalations"]:
            out.append(
                f"    {x['at']}  {t['level'].lower()} {x['level']}, {x['target']} "
                f"{x['percent']}%; {t['told'].lower()}: {x['told']}"
            )
        row(t["level_reached"], c["sla"].level)
    section(t["solution"])
    if c["restored_at"]:
        row(t["restored_at"], f"{c['restored_at']}, {r.workaround_by or ''}".rstrip(", "))
        out.extend(f"    | {line}" for line in c["workaround"].splitlines())
    if c["resolved_at"]:
        row(t["resolved_at"], f"{c['resolved_at']}, {r.resolved_by or ''}".rstrip(", "))
        row(t["code"], r.resolution_code)
        out.append(f"  {t['method']}:")
        out.extend(f"    | {line}" for line in c["note"].splitlines())
    else:
        out.append(f"  {t['not_resolved']}")
    section(t["closure"])
    if c["closure_how"]:
        row(t["closed_at"], f"{c['closed_at']}: {c['closure_how']}")
        if c["closure_words"]:
            label = t["their_words"] if r.closure.how == "verified" else t["agent_note"]
            out.append(f"  {label}:")
            out.extend(f"    | {line}" for line in c["closure_words"].splitlines())
    else:
        out.append(f"  {t['not_closed']}")
    if c["related"]:
        section(t["related"])
        row(t["parent"], r.parent)
        row(t["children"], ", ".join(r.children))
        row(t["merged_into"], r.merged_into)
        row(t["linked_to"], r.linked_to)
    section(f"{t['timeline']} ({t['internal_note'].lower()}: [{t['internal']}])")
    for e in c["timeline"]:
        flag = f" [{t['internal']}]" if e["internal"] else ""
        out.append(f"  {e['at']}  {e['what']}{flag}  ({e['who']})")
        if e["subject"]:
            out.append(f"      {e['subject']}")
        for line in e["text"].splitlines():
            out.append(f"      | {line}")
        if e["files"]:
            out.append(f"      + {t['files'].lower()}: {', '.join(map(str, e['files']))}")
    section(t["files"])
    if not c["files"]:
        out.append(f"  {t['no_files']}")
    for f in c["files"]:
        flag = f" [{t['internal']}]" if f["internal"] else ""
        out.append(f"  {f['id']}: {f['name']} ({f['type']}, {f['size']}){flag}")
        out.append(f"      sha256 {f['sha256']}")
        out.append(f"      {t['message']}: {f['message']}, {f['from']}")
        out.append(f"      {f['command']}")
    return _clean("\n".join(out)) + "\n"


class RecordPages:
    """The port the application uses to lay out a record for mail."""

    def html(self, record: IncidentRecord) -> str:
        return render_html(record)
