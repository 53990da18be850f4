"""What the mail telling the requester their ticket is closed carries besides
the news (SPEC §8): a summary of scope and method (what they reported, the
resolution code and note) and, for a contract with `record: attach`, the
incident record as one HTML page (`HD-42-record.html`).

The record attached is the client's: no internal notes, no mail among agents,
no files of either (SPEC §4: internal facts never reach a requester).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from daemon.app import record
from daemon.app.tickets import Runtime, outgoing_plan
from daemon.core.domain import Attachment, Ticket
from daemon.core.record import CLIENT
from daemon.mail import attachparts
from daemon.mail.attachparts import NO_FILES, Plan
from daemon.ports import Tx

#: How many lines of the request the closing mail quotes.
SUMMARY_LINES = 6
RECORD_TYPE = "text/html"


@dataclass(frozen=True, slots=True)
class Closing:
    """The closing mail's extra context, its attachment plan and the files to
    store with it (so the outbox finds the bytes by their hash)."""

    context: dict[str, Any]
    plan: Plan = NO_FILES
    files: Sequence[Attachment] = ()


def record_name(rt: Runtime, ticket: Ticket) -> str:
    return f"{rt.ticket_id(ticket.number)}-record.html"


def attaches_record(rt: Runtime, ticket: Ticket) -> bool:
    """Whether the ticket's contract asks for the record with the closure."""
    contract_id = getattr(ticket, "contract", None)
    if not contract_id or rt.record_pages is None:
        return False
    contract = getattr(rt.rules, "contracts", {}).get(contract_id)
    return getattr(contract, "record", None) == "attach"


def closing(tx: Tx, rt: Runtime, ticket: Ticket, now: Any) -> Closing:
    """The summary for the closing mail, and the record when it travels."""
    reported = record.reported_text(tx.messages.of_ticket(ticket.number))
    lines = reported.splitlines()
    short = "\n".join(lines[:SUMMARY_LINES]).strip()
    context: dict[str, Any] = {
        "reported": short,
        "reported_cut": len(lines) > SUMMARY_LINES,
        "record_name": None,
    }
    if not attaches_record(rt, ticket):
        return Closing(context)
    desk = rt.settings.helpdesk
    found = record.load(
        tx,
        rt.rules,
        ticket.number,
        now,
        ticket=ticket,
        prefix=rt.prefix,
        desk_name=desk.name,
        desk_address=desk.address,
        timezone=desk.timezone,
        audience=CLIENT,
    )
    if found is None or rt.record_pages is None:
        return Closing(context)
    data = rt.record_pages.html(found).encode("utf-8")
    page = Attachment(
        record_name(rt, ticket), RECORD_TYPE, len(data), hashlib.sha256(data).hexdigest(), data
    )
    plan = outgoing_plan(rt, [attachparts.Item(None, page)])
    context["record_name"] = page.filename if plan.attached else None
    return Closing(context, plan, (page,))
