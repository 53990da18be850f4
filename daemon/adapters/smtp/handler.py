"""The replies to each SMTP command: who may send, to which help desk
addresses, how many recipients; an accepted message goes to the writer and
the client hears 250 only once it is committed."""

from __future__ import annotations

import asyncio
import logging

from aiosmtpd.smtp import SMTP, Envelope, Session

from daemon.adapters.smtp.auth import AuthUser
from daemon.adapters.smtp.writer import QueueWriter
from daemon.config import Settings
from daemon.core.domain import Intake
from daemon.ports import QueuedRaw

log = logging.getLogger("spocd.smtp")

OK = "250 2.0.0 Ok: queued as {id}"
TEMPFAIL = "451 4.3.0 Temporary storage failure; please try again later"
NOT_PERMITTED = "554 5.7.1 Your address is not permitted to send mail here"
UNKNOWN_RCPT = "550 5.1.1 <{rcpt}>: not a help desk address (we relay nothing)"
TOO_MANY_RCPTS = "452 4.5.3 Too many recipients"
AUTH_REQUIRED = "530 5.7.0 Authentication required"


class IntakeHandler:
    """aiosmtpd hooks; each returns the SMTP reply."""

    def __init__(self, settings: Settings, writer: QueueWriter) -> None:
        self.settings = settings
        self.writer = writer
        self.accepted = {
            a.lower()
            for a in (
                settings.helpdesk.address,
                *settings.smtp.escalation_addresses,
                *settings.smtp.extra_addresses,
            )
        }
        self.escalation = {a.lower() for a in settings.smtp.escalation_addresses}

    def _permitted(self, session: Session) -> bool:
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
        return self.settings.smtp.accepts_peer(peer)

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        if not self._permitted(session):
            log.warning("client refused", extra={"peer": str(session.peer)})
            return [NOT_PERMITTED]
        session.host_name = hostname
        if not self.settings.smtp.auth_users:  # nothing to log in to: offer no AUTH
            responses = [r for r in responses if not r[4:].upper().startswith("AUTH")]
        return responses

    async def handle_HELO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str
    ) -> str:
        if not self._permitted(session):
            return NOT_PERMITTED
        session.host_name = hostname
        return f"250 {server.hostname}"

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if not self._permitted(session):
            return NOT_PERMITTED
        if self.settings.smtp.auth_required and not session.authenticated:
            return AUTH_REQUIRED
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if not self._permitted(session):
            return NOT_PERMITTED
        if address.lower() not in self.accepted:
            return UNKNOWN_RCPT.format(rcpt=address)
        if len(envelope.rcpt_tos) >= self.settings.smtp.max_recipients:
            return TOO_MANY_RCPTS
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        rcpts = tuple(r.lower() for r in envelope.rcpt_tos)
        item = QueuedRaw(
            raw=raw if isinstance(raw, bytes) else bytes(raw),
            intake=Intake.SMTP,
            escalation=any(r in self.escalation for r in rcpts),
            peer=str(session.peer[0]) if isinstance(session.peer, tuple) else None,
            envelope_from=envelope.mail_from,
            envelope_to=rcpts,
        )
        try:
            item_id = await asyncio.wrap_future(self.writer.submit(item))
        except Exception:
            return TEMPFAIL
        user = session.auth_data.login if isinstance(session.auth_data, AuthUser) else None
        log.info(
            "accepted",
            extra={
                "inbound": item_id,
                "size": len(item.raw),
                "peer": item.peer,
                "user": user,
                "escalation": item.escalation,
            },
        )
        return OK.format(id=item_id)
