"""The one place that builds concrete objects and wires them together.

`App` owns the store, the current runtime (settings, rules, templates), the
pipeline and the senders; the CLI and the daemon loop use it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from daemon.adapters.maildir import MaildirTransport
from daemon.adapters.spool import spooled
from daemon.adapters.spool_import import import_spool
from daemon.adapters.storage.store import SqlStore
from daemon.adapters.templates import TemplateRenderer
from daemon.app.notify import Composer, Identity
from daemon.app.pipeline import Outcome, Pipeline
from daemon.app.tickets import Runtime
from daemon.config import Settings
from daemon.config.files import FileRefused
from daemon.core.errors import ConfigError
from daemon.ports import Clock, SystemClock, Transport
from daemon.rules import ruleset as rules_mod
from daemon.service.desk_files import load_rules_file, resolve_paths
from daemon.service.sender import OutboxSender, SendReport
from daemon.service.worker import InboundWorker

if TYPE_CHECKING:
    from daemon.adapters.imap.intake import MailboxIntake
    from daemon.adapters.imap.session import PollReport
    from daemon.core.record import IncidentRecord

log = logging.getLogger("spocd.service")


class _RecordPages:
    """The record page's layout, loaded at the first closing mail that
    attaches a record: most runs never do, and its Jinja environment and
    labels cost every command's start a few hundredths of a second."""

    def html(self, record: IncidentRecord) -> str:
        from daemon.adapters.record_page import RecordPages

        return RecordPages().html(record)


def load_runtime(settings: Settings, key: bytes, rules: rules_mod.Rules | None = None) -> Runtime:
    """Rules and templates, validated; raises ConfigError with every problem.
    `rules`, when given, were read from the same file a moment before (batch
    ingest reads them first, for its helpers)."""
    rules_path, templates = resolve_paths(settings)
    problems: list[str] = []
    if rules is None:
        try:
            rules = load_rules_file(rules_path)
        except ConfigError as exc:
            problems.extend(exc.problems)
    renderer = None
    try:
        renderer = TemplateRenderer(templates, settings.helpdesk.timezone)
        renderer.check()
    except FileRefused as exc:
        problems.append(f"{exc.filename}: cannot read: {exc}")
    except ConfigError as exc:  # every template problem, each with its file
        problems.extend(exc.problems)
    except Exception as exc:  # a template that does not compile
        problems.append(f"{templates}: {type(exc).__name__}: {exc}")
    if problems or rules is None or renderer is None:
        raise ConfigError(problems)
    identity = Identity(
        settings.helpdesk.address, settings.helpdesk.name, settings.helpdesk.tag_prefix, key
    )
    return Runtime(
        settings=settings,
        rules=rules,
        composer=Composer(identity, renderer),
        record_pages=_RecordPages(),
    )


@dataclass(slots=True)
class TickReport:
    spooled: int = 0
    imap: dict[str, PollReport] = field(default_factory=dict)
    processed: list[tuple[int, Outcome]] = field(default_factory=list)
    jobs: dict[str, int] = field(default_factory=dict)
    sent: SendReport = field(default_factory=SendReport)
    stopped: bool = False  # asked to stop (Ctrl-C): what was left stays due


class App:
    def __init__(
        self,
        settings: Settings,
        clock: Clock | None = None,
        store: SqlStore | None = None,
        rules: rules_mod.Rules | None = None,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.store = store or SqlStore.open(
            settings.database.url, busy_timeout_ms=settings.database.busy_timeout_ms
        )
        try:
            self.key = self.store.signing_key()
            self._runtime = load_runtime(settings, self.key, rules)
        except BaseException:
            if store is None:  # ours: do not leave its connections behind
                self.store.close()
            raise
        self._lock = threading.Lock()
        self.pipeline = Pipeline(lambda: self.runtime, self.key)
        self.inbound = InboundWorker(self.store, self.pipeline, self.clock)
        self.sender = OutboxSender(
            self.store,
            self.transport,
            self.clock,
            settings.helpdesk.address,
            lambda: self.runtime,
            retry_for=timedelta(hours=settings.outgoing.retry_for_hours),
            lease=timedelta(seconds=2 * settings.outgoing.timeout_seconds),
        )

    @property
    def runtime(self) -> Runtime:
        return self._runtime

    def reload(self, settings: Settings | None = None) -> None:
        """Swap in new rules and templates; on any error keep the old ones."""
        runtime = load_runtime(settings or self.settings, self.key)
        with self._lock:
            self._runtime = runtime
        log.info("rules and templates reloaded", extra={"rules_version": runtime.rules.version})

    def transport(self) -> Transport:
        out = self.settings.outgoing
        if out.transport == "smtp":
            from daemon.adapters.relay import SmtpTransport  # smtplib only here

            return SmtpTransport(out, local_hostname=self.settings.helpdesk.domain)
        return MaildirTransport(out.maildir)

    #: Spooled files moved into the queue per import: the daemon imports a
    #: share each round, `tick` share after share until the spool is empty.
    SPOOL_SHARE = 500

    def import_spool(self, paths: Sequence[Path] | None = None) -> int:
        """A share of the spool into the inbound queue: the oldest files, or
        those of `paths` (a listing taken earlier)."""
        return import_spool(
            self.settings.paths.spool,
            self.store,
            self.clock.now,
            limit=self.SPOOL_SHARE,
            max_bytes=self.settings.smtp.max_message_size,
            on_refused=lambda path, size: log.error(
                "spooled message over smtp.max_message_size set aside unread",
                extra={"path": str(path), "bytes": size},
            ),
            paths=paths,
        )

    def mailbox_intakes(
        self, on_processed: Callable[[], None] = lambda: None
    ) -> list[MailboxIntake]:
        """One IMAP intake per enabled mailbox, reaching the pipeline through
        a callback (adapters never import the application). Imported here:
        IMAP (imapclient, ssl) is for the daemon, not every command."""
        from daemon.adapters.imap.intake import MailboxIntake

        return [
            MailboxIntake(
                mailbox,
                self.store,
                self.clock.now,
                self.process_outcome,
                on_processed=on_processed,
            )
            for mailbox in self.settings.imap
            if mailbox.enabled
        ]

    def process_outcome(self, item_id: int) -> str:
        """Run one queued item through the pipeline; its outcome word."""
        return self.inbound.process_item(item_id).outcome

    def tick(
        self,
        jobs: Callable[[datetime], dict[str, int]] | None = None,
        stop: threading.Event | None = None,
    ) -> TickReport:
        """Everything due once: spool (all of it), mailboxes (one poll each,
        no IDLE), inbound queue, scheduled jobs, outbox.

        Once `stop` is set, the step in progress finishes its batch (its
        commit made, mail it leased sent and recorded) and nothing more
        starts: what is left stays due for the next tick, nothing leased.
        `jobs` is given the same stop by its maker."""
        stop = stop or threading.Event()
        report = TickReport()
        # All that is spooled now (mail piped in while nothing ran), a share
        # at a time so the queue never holds more; not what arrives
        # meanwhile: a flood of piped mail must not hold off the sweeps and
        # the sending below. One listing: a share is a slice of it.
        backlog = spooled(self.settings.paths.spool)
        share = self.SPOOL_SHARE
        shares = [backlog[i : i + share] for i in range(0, len(backlog), share)]
        report.spooled = self.import_spool(shares[0]) if shares else 0
        for intake in self.mailbox_intakes():
            if stop.is_set():
                break
            report.imap[intake.mailbox.name] = intake.poll_once(stop)
        if not stop.is_set():
            report.processed = self.inbound.drain(stop=stop.is_set)
        for rest in shares[1:]:
            if stop.is_set():
                break
            report.spooled += self.import_spool(rest)
            report.processed += self.inbound.drain(stop=stop.is_set)
        if jobs is not None and not stop.is_set():
            report.jobs = jobs(self.clock.now())
        if not stop.is_set():
            report.sent = self.sender.send_due(stop=stop.is_set)
        report.stopped = stop.is_set()
        return report

    def close(self) -> None:
        self.store.close()
