"""The IMAP intakes' threads, one per mailbox.

Apart from the daemon because a mailbox's thread has a life of its own: it is
started and stopped as its lock comes and goes (`Daemon._supervise_mailboxes`).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger("spocd.run")


class MailboxRunner:
    """One IMAP intake in a thread of its own (a server that hangs stalls only
    its own mailbox), started and stopped as its lock comes and goes."""

    def __init__(self, intake: Any) -> None:
        self.intake = intake
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def start(self) -> None:
        self.stop_event = threading.Event()
        self.thread = threading.Thread(
            target=self.intake.run,
            args=(self.stop_event,),
            name=f"spocd-imap-{self.intake.mailbox.name}",
            daemon=True,
        )
        self.thread.start()
        log.info(
            "imap intake started",
            extra={"mailbox": self.intake.mailbox.name, "host": self.intake.mailbox.host},
        )

    def stop(self) -> None:
        self.stop_event.set()

    def join(self, timeout: float) -> None:
        if self.thread is not None:
            self.thread.join(timeout=timeout)
