"""Compose outgoing mail from templates. It never sends: the outbox does.

Every mail carries the ticket tag, a signed Message-ID of our own domain,
In-Reply-To/References to the thread, RFC 3834 `Auto-Submitted` for automatic
mail, a loop header, and a text part plus an HTML part.
"""

from __future__ import annotations

import email.policy
import email.utils
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from typing import Any

from daemon import msgid
from daemon.domain import OutgoingMail, Ticket
from daemon.mailthread import format_tag
from daemon.ports import Renderer

LOOP_HEADER = "X-Spocd-Loop"
_POLICY = email.policy.SMTP.clone(max_line_length=998)


@dataclass(frozen=True, slots=True)
class Identity:
    """Who we are on the wire."""

    address: str
    name: str
    tag_prefix: str
    key: bytes = field(repr=False)

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2].lower()


@dataclass(frozen=True, slots=True)
class Thread:
    """Where a new mail sits in a conversation."""

    in_reply_to: str | None = None
    references: tuple[str, ...] = ()

    def after(self, message_id: str) -> Thread:
        refs = tuple(r for r in self.references if r != message_id)[-20:]
        return Thread(in_reply_to=message_id, references=(*refs, message_id))


class Composer:
    """Renders a template for a ticket into an `OutgoingMail`."""

    def __init__(self, identity: Identity, renderer: Renderer) -> None:
        self.identity = identity
        self.renderer = renderer

    def new_message_id(self, ticket_number: int | None) -> str:
        return msgid.make_message_id(
            self.identity.key, self.identity.domain, ticket_number, secrets.token_hex(8)
        )

    def compose(
        self,
        *,
        template: str,
        kind: str,
        ticket: Ticket | None,
        to: Sequence[str],
        context: dict[str, Any],
        now: datetime,
        language: str | None = None,
        cc: Sequence[str] = (),
        thread: Thread = Thread(),
        auto_submitted: str | None = "auto-replied",
    ) -> OutgoingMail:
        """`auto_submitted` None marks a mail a person sent (an agent's reply)."""
        lang = language or (ticket.language if ticket else "en")
        number = ticket.number if ticket else None
        full_context = {
            "helpdesk": {"name": self.identity.name, "address": self.identity.address},
            "tag": format_tag(self.identity.tag_prefix, number) if number else "",
            "ticket": ticket_context(ticket, self.identity.tag_prefix) if ticket else None,
            **context,
        }
        rendered = self.renderer.render(lang, template, full_context)
        message_id = self.new_message_id(number)
        msg = EmailMessage(policy=_POLICY)
        msg["From"] = HeaderAddress(self.identity.name, addr_spec=self.identity.address)
        msg["Reply-To"] = self.identity.address
        msg["To"] = ", ".join(to)
        if cc:
            msg["Cc"] = ", ".join(cc)
        msg["Subject"] = one_line(rendered.subject)
        msg["Date"] = email.utils.format_datetime(now)
        msg["Message-ID"] = f"<{message_id}>"
        if thread.in_reply_to:
            msg["In-Reply-To"] = f"<{thread.in_reply_to}>"
        if thread.references:
            msg["References"] = " ".join(f"<{r}>" for r in thread.references)
        if auto_submitted:
            msg["Auto-Submitted"] = auto_submitted
            msg["X-Auto-Response-Suppress"] = "All"
            msg["Precedence"] = "auto_reply" if auto_submitted == "auto-replied" else "bulk"
        msg[LOOP_HEADER] = self.identity.domain
        msg["Content-Language"] = lang
        msg.set_content(rendered.text, subtype="plain", charset="utf-8", cte="quoted-printable")
        msg.add_alternative(rendered.html, subtype="html", charset="utf-8", cte="quoted-printable")
        recipients = tuple(dict.fromkeys(a.lower() for a in (*to, *cc)))
        return OutgoingMail(
            message_id=message_id,
            recipients=recipients,
            raw=msg.as_bytes(policy=_POLICY),
            kind=kind,
            ticket_number=number,
            automatic=auto_submitted is not None,
            subject=str(msg["Subject"]),
            text=rendered.text,
        )


def one_line(text: str) -> str:
    """Header text from user data: CR, LF and other controls become spaces."""
    return " ".join("".join(ch if ch >= " " and ch != "\x7f" else " " for ch in text).split())


def ticket_context(ticket: Ticket, prefix: str) -> dict[str, Any]:
    """The ticket as plain data for templates (user text stays data)."""
    return {
        "id": f"{prefix}-{ticket.number}",
        "number": ticket.number,
        "subject": ticket.subject,
        "requester": ticket.requester,
        "status": str(ticket.status),
        "priority": ticket.priority,
        "impact": ticket.impact,
        "urgency": ticket.urgency,
        "category": ticket.category,
        "group": ticket.group,
        "assignee": ticket.assignee,
        "external_ref": ticket.external_ref,
        "escalated_by": ticket.escalated_by,
        "created_at": ticket.created_at,
        "first_response_due": ticket.first_response_due,
        "resolution_due": ticket.resolution_due,
        "resolution_code": ticket.resolution_code,
        "resolution_note": ticket.resolution_note,
    }
