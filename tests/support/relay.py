"""A real SMTP server (aiosmtpd) that keeps what it is given: the test's relay."""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from daemon.cli.bench.tcp_ports import free_port


@dataclass
class Caught:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.raw, policy=email.policy.default)  # type: ignore[return-value]


@dataclass
class _Handler:
    caught: list[Caught] = field(default_factory=list)
    reply: str | None = None  # e.g. "451 4.3.0 try later" to refuse
    lock: threading.Lock = field(default_factory=threading.Lock)
    delay: float = 0.0  # seconds before answering each mail's DATA: a slow relay
    rcpt_replies: dict[str, str] = field(default_factory=dict)  # address -> "550 ..."
    data_started: threading.Event = field(default_factory=threading.Event)
    rcpt_delay: float = 0.0  # seconds before answering each RCPT TO

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        if self.rcpt_delay:
            await asyncio.sleep(self.rcpt_delay)
        reply = self.rcpt_replies.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.data_started.set()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.reply:
            return self.reply
        with self.lock:
            self.caught.append(
                Caught(
                    envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content)
                )
            )
        return "250 OK"


class Relay:
    """Start on 127.0.0.1 and a free port; `caught` lists what arrived."""

    def __init__(self, port: int | None = None) -> None:
        """`port`: a given one, to bring a relay "back" where an old one was."""
        self.handler = _Handler()
        self.controller = Controller(
            self.handler, hostname="127.0.0.1", port=port if port is not None else free_port()
        )

    @property
    def caught(self) -> list[Caught]:
        with self.handler.lock:
            return list(self.handler.caught)

    def refuse(self, reply: str | None) -> None:
        self.handler.reply = reply

    def refuse_rcpt(self, address: str, reply: str | None) -> None:
        """Answer RCPT TO for `address` with `reply` ("550 5.1.1 unknown");
        None takes it again."""
        if reply is None:
            self.handler.rcpt_replies.pop(address.lower(), None)
        else:
            self.handler.rcpt_replies[address.lower()] = reply

    def slow(self, seconds: float) -> None:
        """Take `seconds` over each mail before answering its DATA."""
        self.handler.delay = seconds

    def slow_rcpt(self, seconds: float) -> None:
        """Take `seconds` over each RCPT TO: a mail to many recipients is slow
        while no single answer is late."""
        self.handler.rcpt_delay = seconds

    def wait_for_data(self, timeout: float) -> bool:
        """Whether a client has sent a mail's DATA (it may still be waiting)."""
        return self.handler.data_started.wait(timeout)

    def start(self) -> Relay:
        self.controller.start()
        return self

    @property
    def port(self) -> int:
        return self.controller.server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        self.controller.stop()

    def to(self, address: str) -> list[Caught]:
        return [c for c in self.caught if address in c.rcpt_tos]
