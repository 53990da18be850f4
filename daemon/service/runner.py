"""`spocd run`: the daemon in the foreground.

Threads: the SMTP listener (aiosmtpd's own loop), the inbound worker, the
outbox sender, one IMAP intake per enabled mailbox; the main thread handles
signals and runs the scheduler. Parsing and the rules' decision run in a
helper process (`parsers`), and so does writing outgoing mail into the
Maildir (`delivery`; the sender thread claims and records). Every loop
waits on an event with a timeout, so a commit wakes the next step at once,
SIGTERM ends an IMAP IDLE within about a second, and nothing depends on
sleeping.

This module is the daemon's life cycle and main loop; the mailbox threads
(`mailboxes`), the health answers (`health`), the instance lock (`instance`)
and what a reload watches (`reload`) are their own modules.
"""

from __future__ import annotations

import concurrent.futures
import gc
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any
from zoneinfo import ZoneInfo

import schedule

from daemon.adapters.board_http import BoardEndpoint
from daemon.adapters.http import HealthServer, Heartbeat, Metrics
from daemon.adapters.smtp.listener import SmtpIntake
from daemon.adapters.storage.leader import Leadership
from daemon.adapters.storage.stats import read_stats
from daemon.adapters.systemd import Notifier
from daemon.app import board
from daemon.app.pipeline import Outcome
from daemon.app.status import INTAKE_FAILURE
from daemon.config import load_settings
from daemon.core.clockjump import JumpGuard
from daemon.core.domain import InboundItem
from daemon.core.errors import ConfigError
from daemon.service.delivery import BackgroundDelivery, DeliveryProcess
from daemon.service.desk_files import resolve_paths
from daemon.service.health import ready, status_line, tls_context
from daemon.service.instance import lock_instance, safe_url
from daemon.service.mailboxes import MailboxRunner
from daemon.service.parsers import ParserProcess
from daemon.service.reload import reloadable, snapshot, watched_files
from daemon.service.sender import SendReport
from daemon.service.wiring import App

log = logging.getLogger("spocd.run")

#: `spocd run`'s exit status when an intake thread died (EX_SOFTWARE):
#: non-zero, so systemd's Restart=on-failure starts a fresh process.
EXIT_INTAKE_DIED = 70
#: Outbox rows handed to the delivery helper at a time (their bytes are in memory).
DELIVERY_CLAIM = 200
#: Seconds the sender waits to gather mail while SMTP clients are delivering.
GATHER_WHILE_BUSY = 0.2


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
        self.notifier = Notifier()
        self.leader = Leadership(app.store.engine)
        self.heartbeat = Heartbeat()
        self.metrics = Metrics(lambda: read_stats(app.store.engine))
        self.http: HealthServer | None = None
        self.mailboxes: dict[str, MailboxRunner] = {}
        self._lock_file: IO[bytes] | None = None
        self._last_watchdog = 0.0
        self.clock_guard = JumpGuard()
        self.monotonic: Callable[[], float] = time.monotonic
        self._errors_logged: dict[str, float] = {}
        self.failed: str | None = None  # why the daemon stopped serving, if it did
        self.parser: ParserProcess | None = None
        self.delivery_process: DeliveryProcess | None = None
        self.delivery: BackgroundDelivery | None = None
        self.delivery_retry_seconds = 30.0
        self._delivery_lost: float | None = None
        app.inbound.observer = self._observe

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
                done = self._drain()
            except Exception as exc:  # storage unavailable: keep trying, say so once a round
                log.error("inbound worker error", extra={"error": str(exc)})
                self.stop_event.wait(2.0)
                continue
            if done:
                self.outbox_wake.set()

    def _drain(self) -> int:
        """Process the queue group by group. While SMTP clients are delivering,
        take small groups and step aside between them: a 250 waits for the
        database's write lock and for this process's attention (one GIL), and
        accepting mail comes first; the durable queue keeps the rest."""
        done = 0
        while not self.stop_event.is_set():
            busy = self.smtp is not None and self.smtp.busy()
            # Small groups while mail arrives: the write lock is held briefly.
            # With parsing in the helper a group costs this process less, and
            # groups of 8 processed ~40 % more while accepting as many (bench).
            group = self.app.inbound.process_group(
                limit=(8 if self.parser is not None else 4) if busy else 25
            )
            if not group:
                break
            done += len(group)
            self.outbox_wake.set()
            if busy:
                self.stop_event.wait(0.005)
        return done

    def _outbox_loop(self) -> None:
        while not self.stop_event.is_set():
            self.outbox_wake.wait(1.0)
            self.outbox_wake.clear()
            if self.smtp is not None and self.smtp.busy():
                # While clients deliver, gather a moment's mail into one batch:
                # fewer claims and records competing with the 250s for the
                # write lock (bench: 7-17 % more accepted, the same processed).
                self.stop_event.wait(GATHER_WHILE_BUSY)
            try:
                report = self._send_round() if self.delivery else self.app.sender.send_due()
            except Exception as exc:
                log.error("outbox sender error", extra={"error": str(exc)})
                self.stop_event.wait(2.0)
                continue
            for result in ("sent", "deferred", "failed"):
                if getattr(report, result):
                    self.metrics.sent.labels(result).inc(getattr(report, result))

    def _send_round(self) -> SendReport:
        """Everything due, batch after batch through the delivery helper, each
        batch's result recorded in the commit that claims the next. A helper
        that died is replaced after `delivery_retry_seconds` (meanwhile mail
        goes out from here); one that hangs past the send budget is killed,
        and its batch released to be sent again (the same files)."""
        delivery, helper = self.delivery, self.delivery_process
        assert delivery is not None and helper is not None
        if delivery.executor is None:
            now = self.monotonic()
            if self._delivery_lost is None:
                self._delivery_lost = now
            elif now - self._delivery_lost >= self.delivery_retry_seconds:
                self._delivery_lost = None
                helper.close()
                delivery.hand_off(helper.executor(), helper.job)
        budget = self.app.sender.lease.total_seconds() * self.app.sender.SEND_SHARE
        delivery.report = SendReport()  # this round's
        while not self.stop_event.is_set():
            delivery.pump()
            if delivery.pending is None:
                break
            done, _ = concurrent.futures.wait([delivery.pending[1]], timeout=budget)
            if not done:
                log.error("delivery helper hung; killed", extra={"seconds": budget})
                helper.close()
        return delivery.report

    def _observe(self, item: InboundItem, outcome: Outcome, now: datetime) -> None:
        self.metrics.received.labels(str(item.intake), outcome.outcome).inc()
        self.metrics.latency.observe(max((now - item.received_at).total_seconds(), 0.0))

    def _supervise_mailboxes(self) -> None:
        """Each mailbox is worked by the one instance holding its lock; a
        survivor starts it within seconds of its holder's death."""
        for name, runner in self.mailboxes.items():
            if self.stop_event.is_set():
                return
            ours = self.leader.holds(f"mailbox:{name}")
            if ours and not runner.running:
                runner.start()
            elif not ours and runner.running:
                log.warning("imap mailbox lock lost; stopping its intake", extra={"mailbox": name})
                runner.stop()

    def _claim_sweeps(self) -> None:
        """Take over the sweeps within seconds when their holder is gone (and
        catch up at once on what came due meanwhile)."""
        if self.leader.shared and "sweeps" not in self.leader.held and self.leader.holds("sweeps"):
            self._run_jobs()

    def _run_jobs(self) -> None:
        if self.jobs is None:
            return
        if not self.leader.holds("sweeps"):
            return  # another instance on this PostgreSQL database runs them
        now = self.app.clock.now()
        jump = self.clock_guard.jump(now, self.monotonic())
        if jump is not None:
            log.warning(
                "the wall clock jumped forward; this sweep is skipped",
                extra={"jump": str(jump), "now": now.isoformat()},
            )
            return
        try:
            done = self.jobs(now)
        except Exception as exc:
            log.error("scheduled jobs failed", extra={"error": str(exc)})
            return
        for kind, count in done.items():
            self.metrics.jobs.labels(kind).inc(count)
        if any(done.values()):
            log.info("scheduled jobs", extra=done)
            self.outbox_wake.set()

    # --- reload ----------------------------------------------------------------

    def _watch_files(self) -> list[Path]:
        return watched_files(self.app.settings, self.config_path)

    def _snapshot(self) -> dict[Path, float]:
        return snapshot(self._watch_files())

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
            self.app.reload(settings if reloadable(self.app.settings, settings) else None)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("reload refused; keeping the rules in force", extra={"problem": problem})
            return
        self._watched = self._snapshot()

    # --- life cycle --------------------------------------------------------------

    def start(self) -> None:
        """Start everything; a failure part of the way (a port taken, another
        instance holding the lock) stops what had started, in order, and is
        raised for the caller to say why and exit."""
        try:
            self._start()
        except BaseException:
            self.shutdown()
            raise

    def _start(self) -> None:
        settings = self.app.settings
        self._lock_file = lock_instance(self.app.store.engine)
        self._record_failure("")  # a failure recorded by an earlier run is over
        # Before anything listens: a file changed from here on is a change to apply.
        self._watched = self._snapshot()
        if self.app.store.engine.dialect.name == "sqlite":
            # A lone instance (SQLite allows one): rows left in flight by a crash
            # are ours, so they are due now rather than when their lease ends.
            released = self.app.sender.release_leases()
            if released:
                log.info(
                    "outbox rows in flight at the last stop are due again", extra={"rows": released}
                )
        if settings.outgoing.plaintext_login:
            log.warning(
                'the relay login goes in clear text (outgoing.tls = "none")',
                extra={"host": settings.outgoing.host, "username": settings.outgoing.username},
            )
        if settings.limits.parser_process:
            self._start_parser()
        if settings.limits.delivery_process and settings.outgoing.transport == "maildir":
            helper = DeliveryProcess(settings.outgoing.maildir, settings.helpdesk.address)
            self.delivery_process = helper
            self.delivery = BackgroundDelivery(
                self.app.sender, helper.executor(), helper.job, claim=DELIVERY_CLAIM
            )
        for name, target in (("inbound", self._inbound_loop), ("outbox", self._outbox_loop)):
            thread = threading.Thread(target=target, name=f"spocd-{name}", daemon=True)
            thread.start()
            self.threads.append(thread)
        if settings.agents.trust == "none":
            log.warning(
                "[agents] trust = none: mail commands are obeyed on the From address "
                "alone, which anyone can forge"
            )
        rules_path, templates = resolve_paths(settings)
        log.info(
            "spocd started",
            extra={
                "config": str(self.config_path) if self.config_path else "embedded default",
                "database": safe_url(settings.database.url),
                "rules": str(rules_path),
                "rules_version": self.app.runtime.rules.version,
                "templates": str(templates),
                "outgoing": settings.outgoing.transport
                if settings.outgoing.transport == "smtp"
                else f"maildir {settings.outgoing.maildir}",
            },
        )
        self.mailboxes = {
            intake.mailbox.name: MailboxRunner(intake)
            for intake in self.app.mailbox_intakes(on_processed=self.outbox_wake.set)
        }
        self._supervise_mailboxes()
        self.scheduler.every(3).seconds.do(self._guarded, self._supervise_mailboxes)
        self.scheduler.every(30).seconds.do(self._guarded, self._run_jobs)
        self.scheduler.every(3).seconds.do(self._guarded, self._claim_sweeps)
        self.scheduler.every(2).seconds.do(self._guarded, self._check_files)
        self.scheduler.every(10).seconds.do(self._guarded, self._report_status)
        if settings.http.enabled:
            http = HealthServer(
                settings.http.host,
                settings.http.port,
                self.metrics,
                self._alive,
                self._ready,
                extra=BoardEndpoint(
                    settings.http,
                    self._board,
                    lambda: self.app.runtime.settings.helpdesk.default_language,
                    lambda: ZoneInfo(self.app.runtime.settings.helpdesk.timezone),
                ).handle,
                tls=tls_context(settings.http),
            )
            http.start()
            self.http = http  # only a running server is stopped
            log.info("http listening", extra={"host": settings.http.host, "port": http.port})
        # Listening last: clients queued up during a restart connect at once,
        # and a flood of them takes every file descriptor. Whatever the start
        # still had to open then (a module to import, the HTTP socket) failed,
        # and spocd exited; with everything open first, the flood only waits.
        if settings.smtp.enabled:
            smtp = SmtpIntake(
                settings, self.app.store, self.app.clock.now, on_commit=self.inbound_wake.set
            )
            smtp.start()
            self.smtp = smtp
            log.info("smtp listening", extra={"host": settings.smtp.host, "port": smtp.port})
        self.inbound_wake.set()
        # What is loaded by now (modules, the ORM's tables, rules, templates)
        # lives as long as the process: the collector need not walk it again
        # on every full collection, which otherwise costs a page of the SLA
        # board over 10,000 tickets a third of its time.
        gc.collect()
        gc.freeze()
        self.notifier.ready(self._status_line())

    def _start_parser(self) -> None:
        """Parsing and the rules' decision in a helper process (`parsers`)."""
        parser = ParserProcess()
        parser.start()
        self.parser = parser

        def prepare(raws: list[bytes]) -> list[Any] | None:
            rt = self.app.runtime  # the settings and rules in force now
            return parser.prepare(
                raws, resolve_paths(rt.settings)[0], rt.rules.version, rt.settings.limits
            )

        self.app.inbound.preparer = prepare

    def _board(self, filters: Mapping[str, str]) -> dict[str, Any]:
        """What the SLA board shows now: read in a read-only transaction."""
        rt = self.app.runtime
        now = self.app.clock.now()
        with self.app.store.reading() as tx:
            return board.snapshot(tx, rt.settings, rt.rules, now, filters)

    def _guarded(self, step: Callable[[], object]) -> None:
        """Run one main-thread step; an error (out of file descriptors, say)
        is logged, at most once a minute per step, and the loop goes on."""
        try:
            step()
        except Exception as exc:
            name = getattr(step, "__name__", str(step))
            now = time.monotonic()
            if now - self._errors_logged.get(name, -60.0) >= 60.0:
                self._errors_logged[name] = now
                log.error("main loop step failed", extra={"step": name, "error": str(exc)})

    def _failure(self) -> str | None:
        """An intake or worker thread that died: the daemon cannot recover it."""
        if self.smtp is not None and (why := self.smtp.failure()):
            return why
        for thread in self.threads:
            if not thread.is_alive():
                return f"thread {thread.name} died"
        return None

    def _alive(self) -> tuple[bool, str]:
        """/healthz: the main loop beats and no thread of ours died."""
        why = self._failure()
        if why:
            return False, why
        return (True, "ok") if self.heartbeat.alive() else (False, "main loop stalled")

    def _record_failure(self, why: str) -> None:
        """What `spocd status` reads ("" clears it)."""
        try:
            with self.app.store.transaction() as tx:
                tx.settings.put(INTAKE_FAILURE, why)
        except Exception as exc:
            log.error("cannot record the intake state", extra={"error": str(exc)})

    def _ready(self) -> tuple[bool, str]:
        return ready(self.app)

    def _status_line(self) -> str:
        return status_line(self.app)

    def _report_status(self) -> None:
        self.notifier.status(self._status_line())

    def _watchdog(self) -> None:
        interval = self.notifier.watchdog_interval
        now = time.monotonic()
        if interval and now - self._last_watchdog >= interval:
            self.notifier.watchdog()
            self._last_watchdog = now

    def serve(self) -> int:
        """Block until SIGTERM, or until an intake thread dies; then finish
        the work in hand and return the exit status (0, or EXIT_INTAKE_DIED)."""
        self._guarded(self._run_jobs)
        while not self.stop_event.is_set():
            if why := self._failure():
                self._fail(why)
                break
            self.heartbeat.beat()
            self._guarded(self._watchdog)
            if self.reload_requested.is_set():
                self.reload_requested.clear()
                log.info("SIGHUP: reloading")
                self._guarded(self.notifier.reloading)
                self._guarded(self.reload)
                self._guarded(lambda: self.notifier.ready(self._status_line()))
            self._guarded(self.scheduler.run_pending)
            self.stop_event.wait(0.5)
        self.shutdown()
        return EXIT_INTAKE_DIED if self.failed else 0

    def _fail(self, why: str) -> None:
        self.failed = why
        log.critical("intake stopped; exiting for a restart", extra={"problem": why})
        self._record_failure(f"{self.app.clock.now().isoformat()} {why} (pid {os.getpid()})")
        self._guarded(lambda: self.notifier.status(f"FAILED: {why}; exiting for a restart"))

    def shutdown(self) -> None:
        log.info("stopping")
        self.notifier.stopping()
        if self.http is not None:
            self.http.stop()
        if self.smtp is not None:
            try:
                self.smtp.stop()
            except Exception as exc:  # its thread died: nothing more to stop
                log.error("smtp listener did not stop cleanly", extra={"error": str(exc)})
        self.stop_event.set()
        self.app.sender.interrupt()  # a relay that tarpits does not hold up the stop
        self.inbound_wake.set()
        self.outbox_wake.set()
        for runner in self.mailboxes.values():
            runner.stop()
        for thread in self.threads:
            thread.join(timeout=60)
        for runner in self.mailboxes.values():
            runner.join(timeout=60)
        if self.parser is not None:
            self.parser.close()
        if self.delivery_process is not None:
            self.delivery_process.close()
        self.leader.release_all()
        self.app.close()
        if self._lock_file is not None:
            self._lock_file.close()
        log.info("stopped")
