"""A client's contacts on its tickets (SPEC §7): the people of a contract's
`contacts` are copied (Cc) on the acknowledgement and the status updates of
its tickets whose priority is one of `cc_priorities`, never on internal mail,
and a contact who writes to the thread is heard like any cc'd person.

Each contact gets its own copy of the mail (the same mail with its own
Message-ID) as its own outbox entry whose first recipient is the contact: the
loop protection of `queue_mail` (a failing address, `auto_replies.max_per_hour`)
then holds back copies to that contact alone, exactly as it does for any
correspondent, and the requester's mail goes out whatever happens to a
contact's. Every copy's headers name the contacts in Cc, so the requester and
the contacts see who else got it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from daemon.app.tickets import Runtime, queue_mail
from daemon.core.domain import OutgoingMail, Ticket
from daemon.ports import Tx


def contacts_of(rt: Runtime, ticket: Ticket) -> tuple[str, ...]:
    """Every contact of the ticket's contract (as the rules are now)."""
    contract = rt.rules.contracts.get(ticket.contract) if ticket.contract else None
    return contract.contacts if contract is not None else ()


def copied(rt: Runtime, ticket: Ticket, already: Sequence[str] = ()) -> list[str]:
    """The contacts to Cc on the ticket's acknowledgement and status updates:
    none unless its priority is one of the contract's `cc_priorities`; never
    the requester, an agent, or someone the mail already goes to."""
    contract = rt.rules.contracts.get(ticket.contract) if ticket.contract else None
    if contract is None:
        return []
    skip = {ticket.requester.lower(), *(a.lower() for a in already)}
    return [a for a in contract.copies(ticket.priority) if a not in skip and not rt.is_agent(a)]


def queue_with_copies(
    tx: Tx, rt: Runtime, ticket: Ticket, mail: OutgoingMail, contacts: Sequence[str], now: datetime
) -> bool:
    """Queue `mail` (composed with `contacts` in its Cc) to its other
    recipients, and one copy to each contact. Returns whether the mail to the
    requester went out (not held back)."""
    wanted = set(contacts)
    main = replace(mail, recipients=tuple(r for r in mail.recipients if r not in wanted))
    sent = queue_mail(tx, rt, ticket, main, now)
    header = f"Message-ID: <{mail.message_id}>".encode()
    for contact in contacts:
        message_id = rt.composer.new_message_id(ticket.number)
        raw = mail.raw.replace(header, f"Message-ID: <{message_id}>".encode(), 1)
        copy = replace(mail, message_id=message_id, recipients=(contact,), raw=raw)
        queue_mail(tx, rt, ticket, copy, now)
    return sent
