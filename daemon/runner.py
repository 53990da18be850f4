"""`spocd run`: the daemon in the foreground.

Threads: the SMTP listener (aiosmtpd's own loop), the inbound worker, the
outbox sender, one IMAP intake per enabled mailbox; the main thread handles
signals and runs the scheduler. Every loop waits on an event with a timeout,
so a commit wakes the next step at once, SIGTERM ends an IMAP IDLE within
about a second, and nothing depends on sleeping.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import FrameType

import schedule

from daemon.config import Settings, load_settings
from daemon.errors import ConfigError
from daemon.service import App, resolve_paths
from daemon.smtp_intake import SmtpIntake

log = logging.getLogger("spocd.run")


class Daemon:
    def __init__(
        self,
        app: App,
        config_path: Path | None,
        jobs: Callable[[datetime], dict[str, int]] | None = None,
    ) -> None:
        self.app = app
        self.config_path = config_path
        self.jobs = jobs
        self.stop_event = threading.Event()
        self.inbound_wake = threading.Event()
        self.outbox_wake = threading.Event()
        self.reload_requested = threading.Event()
        self.smtp: SmtpIntake | None = None
        self.threads: list[threading.Thread] = []
        self.scheduler = schedule.Scheduler()
        self._watched: dict[Path, float] = {}

    # --- signals ---------------------------------------------------------------

    def install_signals(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_hup)

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop_event.set()
        self.inbound_wake.set()
        self.outbox_wake.set()

    def _on_hup(self, signum: int, frame: FrameType | None) -> None:
        self.reload_requested.set()

    # --- loops -----------------------------------------------------------------

    def _inbound_loop(self) -> None:
        while not self.stop_event.is_set():
            self.inbound_wake.wait(1.0)
            self.inbound_wake.clear()
            try:
                self.app.import_spool()
                done = self.app.inbound.drain(stop=self.stop_event.is_set)
            except Exception as exc:  # storage unavailable: keep trying, say so once a round
                log.error("inbound worker error", extra={"error": str(exc)})
                self.stop_event.wait(2.0)
                continue
            if done:
                self.outbox_wake.set()

    def _outbox_loop(self) -> None:
        while not self.stop_event.is_set():
            self.outbox_wake.wait(1.0)
            self.outbox_wake.clear()
            try:
                self.app.sender.send_due()
            except Exception as exc:
                log.error("outbox sender error", extra={"error": str(exc)})
                self.stop_event.wait(2.0)

    def _run_jobs(self) -> None:
        if self.jobs is None:
            return
        try:
            done = self.jobs(self.app.clock.now())
        except Exception as exc:
            log.error("scheduled jobs failed", extra={"error": str(exc)})
            return
        if any(done.values()):
            log.info("scheduled jobs", extra=done)
            self.outbox_wake.set()

    # --- reload ----------------------------------------------------------------

    def _watch_files(self) -> list[Path]:
        rules, templates = resolve_paths(self.app.settings)
        paths = [rules]
        if self.config_path:
            paths.append(self.config_path)
        paths.extend(p for p in templates.rglob("*") if p.is_file())
        return paths

    def _snapshot(self) -> dict[Path, float]:
        out = {}
        for path in self._watch_files():
            try:
                out[path] = path.stat().st_mtime_ns
            except OSError:
                out[path] = -1
        return out

    def _check_files(self) -> None:
        current = self._snapshot()
        if current != self._watched:
            self._watched = current
            log.info("a watched file changed; reloading")
            self.reload()

    def reload(self) -> None:
        """Config, rules and templates; a bad new file is refused, the old stays."""
        try:
            settings = load_settings(self.config_path) if self.config_path else self.app.settings
            self.app.reload(settings if _reloadable(self.app.settings, settings) else None)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("reload refused; keeping the rules in force", extra={"problem": problem})
            return
        self._watched = self._snapshot()

    # --- life cycle --------------------------------------------------------------

    def start(self) -> None:
        settings = self.app.settings
        if settings.smtp.enabled:
            self.smtp = SmtpIntake(
                settings, self.app.store, self.app.clock.now, on_commit=self.inbound_wake.set
            )
            self.smtp.start()
            log.info("smtp listening", extra={"host": settings.smtp.host, "port": self.smtp.port})
        for name, target in (("inbound", self._inbound_loop), ("outbox", self._outbox_loop)):
            thread = threading.Thread(target=target, name=f"spocd-{name}", daemon=True)
            thread.start()
            self.threads.append(thread)
        for intake in self.app.mailbox_intakes(on_processed=self.outbox_wake.set):
            # One thread per mailbox: a server that hangs stalls only its own.
            thread = threading.Thread(
                target=intake.run,
                args=(self.stop_event,),
                name=f"spocd-imap-{intake.mailbox.name}",
                daemon=True,
            )
            thread.start()
            self.threads.append(thread)
            log.info(
                "imap intake started",
                extra={"mailbox": intake.mailbox.name, "host": intake.mailbox.host},
            )
        self._watched = self._snapshot()
        self.scheduler.every(30).seconds.do(self._run_jobs)
        self.scheduler.every(2).seconds.do(self._check_files)
        self.inbound_wake.set()

    def serve(self) -> None:
        """Block until SIGTERM; then finish the work in hand and return."""
        self._run_jobs()
        while not self.stop_event.is_set():
            if self.reload_requested.is_set():
                self.reload_requested.clear()
                log.info("SIGHUP: reloading")
                self.reload()
            self.scheduler.run_pending()
            self.stop_event.wait(0.5)
        self.shutdown()

    def shutdown(self) -> None:
        log.info("stopping")
        if self.smtp is not None:
            self.smtp.stop()
        self.stop_event.set()
        self.inbound_wake.set()
        self.outbox_wake.set()
        for thread in self.threads:
            thread.join(timeout=60)
        self.app.close()
        log.info("stopped")


def _reloadable(old: Settings, new: Settings) -> bool:
    """Only rules/templates/helpdesk text changes apply live; listeners and
    the database need a restart (logged)."""
    if (old.database, old.smtp, old.imap) != (new.database, new.smtp, new.imap):
        log.warning("database, smtp or imap settings changed: restart spocd to apply them")
        return False
    return True
