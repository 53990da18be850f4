"""A real SMTP server (aiosmtpd) that keeps what it is given: the test's relay."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage

from aiosmtpd.controller import Controller


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

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        if self.reply:
            return self.reply
        with self.lock:
            self.caught.append(
                Caught(
                    envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content)
                )
            )
        return "250 OK"


def free_port() -> int:
    """A port nobody listens on right now (aiosmtpd's Controller needs a real one)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
