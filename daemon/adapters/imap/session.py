"""IMAP intake: take every message of a mailbox folder into the inbound queue
exactly once, then move it out of the way.

One cycle: SELECT the folder (its UIDVALIDITY checked against the stored
one), UID SEARCH for what is still there, FETCH new messages one UID at a
time with BODY.PEEK[] (the server marks nothing) into batches measured by the
bytes received, store the raw bytes with a source key of (mailbox, folder,
UIDVALIDITY, UID) and the new high-water UID in one commit, hand each stored
item to the pipeline through the `process` callback, and only then MOVE each
message to `processed_folder`, or to `failed_folder` when the pipeline
quarantined it or failed, or it is larger than `max_message_size`. A message
still in the folder at or below the high-water mark was stored before a crash
or a failed move: it is looked up by its key, not fetched or queued again; one
fetched again under a new UIDVALIDITY is known by its Message-ID.

Every command has a total deadline and a poll one too (`ReadGuard`). What a
step could not finish is noted by source key (`imap_notes`): a UID the server
does not deliver is asked for `MAX_MISSES` times, then given up; a message
whose COPY succeeded is not copied again when deleting the original failed.
A poll with such a step is not a success, and `spocd status` shows them.

Between cycles the folder is watched with IDLE where the server offers it
(ended and re-issued every poll interval, so a dead connection is noticed
and the mailbox's health recorded), else polled every `poll_seconds`. Any
fault ends the connection; `run` reconnects with exponential backoff and
logs the first failure of each streak (a streak ends when a connection has
stayed up for a while after a good poll). This adapter reaches the pipeline
only through the callback that `service.py` passes in.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from daemon.adapters.imap.connect import (
    DEFAULT_MAX_MESSAGE_SIZE,
    Connector,
    TlsRequired,
    TokenError,
)
from daemon.adapters.imap.fetch import fetch_batches
from daemon.adapters.imap.guard import ServerMisbehaves, guard
from daemon.adapters.imap.notes import Notebook
from daemon.config import ImapMailbox
from daemon.core.domain import Intake
from daemon.mail.imap_plan import (
    MAX_BATCH_BYTES,
    POLL_TIMEOUTS,
    Backoff,
    FaultLog,
    chunks,
    destination,
    idle_cycle,
    message_identity,
    partition,
    server_folder,
    source_key,
)
from daemon.ports import QueuedRaw, Store

log = logging.getLogger("spocd.imap")

#: How long one IDLE wait lasts before the stop flag is looked at again:
#: SIGTERM ends an IDLE within about this time.
IDLE_CHECK_SECONDS = 1.0
#: UIDs whose sizes are asked for in one FETCH (sizes are a few bytes each).
SIZE_CHUNK = 1000
DELETED = rb"\Deleted"

Process = Callable[[int], str]  # queued item id -> the pipeline's outcome


class ConnectionLost(Exception):
    """The server said BYE or closed the connection."""


@dataclass(slots=True)
class PollReport:
    """What one cycle (or `poll_once`) did, for `spocd tick` and the log."""

    taken: int = 0  # newly queued
    processed: int = 0  # moved to processed_folder
    failed: int = 0  # moved to failed_folder
    error: str | None = None
    outcomes: dict[str, int] = field(default_factory=dict)

    def add(self, other: PollReport) -> None:
        self.taken += other.taken
        self.processed += other.processed
        self.failed += other.failed
        for key, count in other.outcomes.items():
            self.outcomes[key] = self.outcomes.get(key, 0) + count


def fault_kind(exc: BaseException) -> str:
    """A short name for a failure, so streaks of the same fault log once."""
    if isinstance(exc, TlsRequired | ssl.SSLError):
        return "tls"
    if isinstance(exc, LoginError):
        return "login"
    if isinstance(exc, TokenError):
        return "token"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ServerMisbehaves):
        return "protocol"
    if isinstance(exc, ConnectionLost | IMAPClient.AbortError):
        return "connection"
    if isinstance(exc, IMAPClient.Error):
        return "server"
    if isinstance(exc, OSError):
        return "network"
    if type(exc).__module__.startswith(("sqlalchemy", "psycopg", "sqlite3")):
        return "storage"
    return "internal"


class MailboxIntake:
    """Keeps one mailbox folder drained into the inbound queue."""

    def __init__(
        self,
        mailbox: ImapMailbox,
        store: Store,
        now: Callable[[], datetime],
        process: Process,
        *,
        connector: Connector | None = None,
        on_processed: Callable[[], None] = lambda: None,
        backoff: Backoff | None = None,
    ) -> None:
        self.mailbox = mailbox
        self.store = store
        self.now = now
        self.process = process
        self.connector = connector or Connector(mailbox)
        self.on_processed = on_processed
        self.backoff = backoff or Backoff()
        self.faults = FaultLog()
        #: How long one poll takes new messages before leaving the rest.
        self.poll_seconds_limit = float(POLL_TIMEOUTS * mailbox.timeout_seconds)
        #: Bytes of mail fetched before they are stored and moved.
        self.batch_bytes = MAX_BATCH_BYTES
        self._fields = {"mailbox": mailbox.name, "folder": mailbox.folder, "host": mailbox.host}

    # --- entry points --------------------------------------------------------------

    def poll_once(self, stop: threading.Event | None = None) -> PollReport:
        """Connect, take everything waiting, disconnect (`spocd tick`)."""
        stop = stop or threading.Event()
        client = None
        try:
            client = self.connector.open()
            session = _Session(self, client)
            report = session.cycle(stop)
        except Exception as exc:
            self._fault(exc, retrying=False)
            return PollReport(error=f"{type(exc).__name__}: {exc}")
        finally:
            if client is not None:
                _logout(client)
            self._record(lambda tx: tx.mailboxes.disconnected(self.mailbox.name, self.folder))
        return report

    def run(self, stop: threading.Event) -> None:
        """Until `stop` is set: connect, drain, wait for mail (IDLE or poll),
        drain again; on any fault back off and reconnect."""
        self._warn_plain_text()
        while not stop.is_set():
            client = None
            try:
                client = self.connector.open()
                session = _Session(self, client)
                while not stop.is_set():
                    session.cycle(stop)
                    self._settle(session)
                    session.wait(stop)
            except Exception as exc:
                self._fault(exc)
                if client is not None:
                    _shutdown(client)
                    client = None
                stop.wait(self.backoff.next_delay())
            finally:
                if client is not None:
                    _logout(client)
        self._record(lambda tx: tx.mailboxes.disconnected(self.mailbox.name, self.folder))
        log.info("imap stopped", extra=self._fields)

    @property
    def folder(self) -> str:
        return self.mailbox.folder

    # --- health --------------------------------------------------------------------

    def _settle(self, session: _Session) -> None:
        """End the fault streak once the connection has held for a while
        after a good poll; a drop a moment after a poll stays in the streak."""
        if session.good and time.monotonic() - session.opened >= self.backoff.settle_seconds:
            self._recovered()

    def _recovered(self) -> None:
        self.backoff.reset()
        failures = self.faults.recovered()
        if failures:
            log.info("imap recovered", extra={**self._fields, "failures": failures})

    def _fault(self, exc: BaseException, *, retrying: bool = True) -> None:
        kind = fault_kind(exc)
        text = f"{kind}: {type(exc).__name__}: {exc}"
        self._record(
            lambda tx: tx.mailboxes.errored(
                self.mailbox.name, self.folder, error=text, now=self.now()
            )
        )
        if self.faults.failed(kind):
            fields = {**self._fields, "fault": kind, "error": f"{type(exc).__name__}: {exc}"}
            if retrying:
                fields["retry"] = "with backoff; not logged again until it recovers"
            log.error(
                "imap login refused" if kind == "login" else "imap mailbox unavailable",
                extra=fields,
                exc_info=exc if kind == "internal" else None,
            )
        else:
            log.debug("imap still failing", extra={**self._fields, "fault": kind})

    def _record(self, action: Callable[[Any], None]) -> None:
        """Write health state; a database fault is logged, never raised here."""
        try:
            with self.store.transaction() as tx:
                action(tx)
        except Exception as exc:
            log.debug("imap state not recorded", extra={**self._fields, "error": str(exc)})

    def _warn_plain_text(self) -> None:
        m = self.mailbox
        if m.tls == "none" and m.host not in ("127.0.0.1", "::1", "localhost"):
            log.warning(
                "imap without TLS: credentials cross the network in clear", extra=self._fields
            )
        if m.tls != "none" and not m.verify_certificate:
            log.warning("imap certificate checking is off", extra=self._fields)


class _Session:
    """One logged-in connection with the folder selected."""

    def __init__(self, intake: MailboxIntake, client: Any) -> None:
        self.intake = intake
        self.client = client
        self.m = intake.mailbox
        self.opened = time.monotonic()
        self.good = False  # the last poll succeeded in every step
        self.max_size = self.m.max_message_size or DEFAULT_MAX_MESSAGE_SIZE
        self.guard = guard(client, timeout=float(self.m.timeout_seconds), max_literal=self.max_size)
        self.notes = Notebook(intake.store, self.m.name, self.m.folder, intake.now)
        self.clean = True
        caps = set(client.capabilities())
        self.can_move = b"MOVE" in caps
        self.can_uidplus = b"UIDPLUS" in caps
        self.can_idle = b"IDLE" in caps
        delimiter, prefix = self._hierarchy()
        self.folder = server_folder(self.m.folder, delimiter, prefix)
        self.targets = {
            "processed": server_folder(self.m.processed_folder, delimiter, prefix),
            "failed": server_folder(self.m.failed_folder, delimiter, prefix),
        }
        for target in self.targets.values():
            self._ensure_folder(target)
        self.uidvalidity = 0
        self.last_uid = 0
        self._select(first=True)
        intake._record(
            lambda tx: tx.mailboxes.connected(
                self.m.name, self.m.folder, poll_seconds=self.m.poll_seconds, now=intake.now()
            )
        )
        log.info(
            "imap connected",
            extra={
                **intake._fields,
                "uidvalidity": self.uidvalidity,
                "last_uid": self.last_uid,
                "idle": self.can_idle and self.m.idle,
                "move": self.can_move,
            },
        )

    # --- folders ---------------------------------------------------------------------

    def _hierarchy(self) -> tuple[str | None, str]:
        """The server's hierarchy delimiter and personal namespace prefix."""
        prefix, delimiter = "", None
        if self.client.has_capability("NAMESPACE"):
            personal = self.client.namespace().personal
            if personal:
                prefix, sep = personal[0]
                delimiter = sep if sep else None
        if delimiter is None:
            listed = self.client.list_folders("", "")
            if listed and listed[0][1]:
                delimiter = listed[0][1]
        if isinstance(delimiter, bytes):
            delimiter = delimiter.decode()
        return delimiter, prefix or ""

    def _ensure_folder(self, name: str) -> None:
        if self.client.folder_exists(name):
            return
        try:
            self.client.create_folder(name)
        except IMAPClient.Error:
            if not self.client.folder_exists(name):  # another instance made it
                raise
        try:
            self.client.subscribe_folder(name)  # so mail clients show it
        except IMAPClient.Error:
            log.debug("could not subscribe %s", name)
        log.info("imap folder created", extra={**self.intake._fields, "new_folder": name})

    def _select(self, first: bool = False) -> None:
        """SELECT (again) and compare UIDVALIDITY with the stored position.

        Re-selecting every cycle also clears what imaplib keeps of unsolicited
        responses, so a connection that lives for weeks does not grow.
        """
        response = self.client.select_folder(self.folder)
        uidvalidity = int(response[b"UIDVALIDITY"])
        if not first and uidvalidity == self.uidvalidity:
            return
        with self.intake.store.reading() as tx:
            state = tx.mailboxes.get(self.m.name, self.m.folder)
        self.uidvalidity = uidvalidity
        self.last_uid = state.last_uid if state else 0
        if state is not None and state.uidvalidity not in (None, uidvalidity):
            log.warning(
                "imap UIDVALIDITY changed: re-reading the folder "
                "(Message-ID de-duplication keeps tickets single)",
                extra={**self.intake._fields, "was": state.uidvalidity, "now": uidvalidity},
            )
            self.last_uid = 0
            with self.intake.store.transaction() as tx:
                tx.mailboxes.advance(
                    self.m.name,
                    self.m.folder,
                    uidvalidity=uidvalidity,
                    last_uid=0,
                    taken=0,
                    now=self.intake.now(),
                )

    # --- one cycle ---------------------------------------------------------------------

    def cycle(self, stop: threading.Event) -> PollReport:
        """Take everything now in the folder; a success only if every step was."""
        self.clean = True
        self.good = False
        limit = time.monotonic() + self.intake.poll_seconds_limit
        self.guard.poll_deadline = limit + self.m.timeout_seconds
        try:
            report = self._cycle(stop, limit)
        finally:
            self.guard.poll_deadline = None
        self.good = self.clean
        return report

    def _cycle(self, stop: threading.Event, limit: float) -> PollReport:
        self._select()
        report = PollReport()
        waiting = self.client.search(["NOT", "DELETED"])
        self.notes.load([self._key(u) for u in waiting])
        given_up = {u for u in waiting if self.notes.get(self._key(u)).kind == "untaken"}
        left, new = partition([u for u in waiting if u not in given_up], self.last_uid)
        if left:
            report.add(self._leftovers(left, new, stop))
        if len(new) > self.m.batch_size:
            log.info("imap backlog", extra={**self.intake._fields, "waiting": len(new)})

        def go_on() -> bool:
            if stop.is_set():
                return False
            if time.monotonic() < limit:
                return True
            log.warning(
                "imap poll took its time limit; the rest waits for the next poll",
                extra={**self.intake._fields, "limit_seconds": self.intake.poll_seconds_limit},
            )
            return False

        done = 0
        too_large: list[tuple[int, int]] = []
        for chunk in chunks(new, SIZE_CHUNK):
            if not go_on():
                break
            sizes = self.client.fetch(chunk, ["RFC822.SIZE"])
            wanted = []
            for uid in chunk:
                size = int(sizes.get(uid, {}).get(b"RFC822.SIZE", 0))
                if size > self.max_size:
                    too_large.append((uid, size))
                else:
                    wanted.append(uid)
            del sizes
            batches = fetch_batches(
                self.client,
                self.guard,
                wanted,
                max_count=self.m.batch_size,
                max_bytes=self.intake.batch_bytes,
                go_on=go_on,
            )
            for bodies, troubles in batches:
                too_large += [(t.uid, t.too_large) for t in troubles if t.too_large]
                missed = [(self._key(t.uid), t) for t in troubles if t.missing]
                if missed:
                    self.clean = False
                    self.notes.missed(missed, self.intake._fields)
                report.add(self._take(bodies, stop))
                done += len(bodies) + len(troubles)
                del bodies
                if len(new) > self.m.batch_size:
                    log.info(
                        "imap progress",
                        extra={**self.intake._fields, "done": done, "waiting": len(new)},
                    )
        if too_large and not stop.is_set():
            report.failed += self._too_large(too_large)
        self._record_cycle(report)
        return report

    def _record_cycle(self, report: PollReport) -> None:
        now = self.intake.now()
        if self.clean:
            self.intake._record(
                lambda tx: tx.mailboxes.succeeded(
                    self.m.name, self.m.folder, failed=report.failed, now=now
                )
            )
        elif report.failed:
            self.intake._record(
                lambda tx: tx.mailboxes.add_failed(self.m.name, self.m.folder, report.failed)
            )
        if report.taken or report.processed or report.failed:
            log.info(
                "imap taken",
                extra={
                    **self.intake._fields,
                    "taken": report.taken,
                    "processed": report.processed,
                    "failed": report.failed,
                },
            )

    def _leftovers(self, left: list[int], new: list[int], stop: threading.Event) -> PollReport:
        """Messages stored before but still here: finish them without fetching."""
        keys = {uid: self._key(uid) for uid in left}
        with self.intake.store.reading() as tx:
            known = tx.inbound.ids_by_source(list(keys.values()))
        pairs = [(uid, known[key]) for uid, key in keys.items() if key in known]
        unknown = [uid for uid, key in keys.items() if key not in known]
        new[:0] = unknown  # not queued under this key (a restored database, a miss): take them
        if pairs:
            log.info(
                "imap finishing messages stored earlier",
                extra={**self.intake._fields, "count": len(pairs)},
            )
        return self._finish(pairs, stop)

    def _take(self, bodies: list[tuple[int, bytes]], stop: threading.Event) -> PollReport:
        """Store and commit one batch; then process and move it. A message
        already stored under another UIDVALIDITY is not stored again."""
        if not bodies:
            return PollReport()
        now = self.intake.now()
        pairs: list[tuple[int, int]] = []
        taken = 0
        with self.intake.store.transaction() as tx:
            for uid, raw in bodies:
                key = self._key(uid)
                identity = message_identity(self._account(), self.m.folder, raw)
                item_id = tx.mailboxes.item_of(identity)
                if item_id is None:
                    item_id = tx.inbound.add(
                        QueuedRaw(
                            raw=raw,
                            intake=Intake.IMAP,
                            escalation=self.m.escalation,
                            source_key=key,
                            mailbox=self.m.name,
                        ),
                        now,
                    )
                    if item_id is None:  # queued before (another instance, or a retry)
                        item_id = tx.inbound.ids_by_source([key])[key]
                    else:
                        taken += 1
                    tx.mailboxes.remember(identity, item_id)
                pairs.append((uid, item_id))
            self.last_uid = max(self.last_uid, *(uid for uid, _ in bodies))
            tx.mailboxes.advance(
                self.m.name,
                self.m.folder,
                uidvalidity=self.uidvalidity,
                last_uid=self.last_uid,
                taken=taken,
                now=now,
            )
        report = self._finish(pairs, stop)
        report.taken += taken
        return report

    def _finish(self, pairs: Sequence[tuple[int, int]], stop: threading.Event) -> PollReport:
        """Process stored items, then move their messages; a stop request
        leaves the rest stored and in the folder for the next start."""
        report = PollReport()
        moves: dict[str, list[int]] = {"processed": [], "failed": []}
        for uid, item_id in pairs:
            if stop.is_set():
                break
            outcome = self.intake.process(item_id)
            report.outcomes[outcome] = report.outcomes.get(outcome, 0) + 1
            moves[destination(outcome)].append(uid)
        for where, uids in moves.items():
            self._move(uids, self.targets[where])
        report.processed = len(moves["processed"])
        report.failed = len(moves["failed"])
        if pairs:
            self.intake.on_processed()
        return report

    def _too_large(self, messages: list[tuple[int, int]]) -> int:
        """Messages over the size cap go to the failed folder, not fetched."""
        for uid, size in messages:
            log.warning(
                "imap message too large: moved to the failed folder",
                extra={
                    **self.intake._fields,
                    "uid": uid,
                    "size": size,
                    "max_message_size": self.max_size,
                },
            )
        self._move([uid for uid, _ in messages], self.targets["failed"])
        return len(messages)

    # --- moving, and what could not be done ---------------------------------------------

    def _move(self, uids: list[int], target: str) -> None:
        """MOVE; without it COPY, flag \\Deleted and UID EXPUNGE exactly these
        UIDs (never a plain EXPUNGE, which would take others' deletions too).
        A copy made is noted first, so a failure after it never copies again;
        a failure is noted and the poll is not a success, but goes on."""
        if not uids:
            return
        try:
            if self.can_move:
                self.client.move(uids, target)
            else:
                copy = [u for u in uids if self.notes.get(self._key(u)).copied_to != target]
                if copy:
                    self.client.copy(copy, target)
                    self.notes.copied([self._key(u) for u in copy], target)
                self.client.add_flags(uids, [DELETED], silent=True)
                if self.can_uidplus:
                    self.client.uid_expunge(uids)
                # Without UIDPLUS the copies stay flagged \Deleted here; the
                # search skips them and the next expunge by a mail client
                # removes them.
        except IMAPClient.AbortError:
            raise
        except IMAPClient.Error as exc:
            self.clean = False
            problem = f"moving to {target} failed: {exc}"
            log.warning(
                "imap messages not moved",
                extra={**self.intake._fields, "count": len(uids), "error": str(exc)},
            )
            self.notes.unmoved([self._key(u) for u in uids], problem)
            return
        self.notes.moved([self._key(u) for u in uids])

    def _account(self) -> str:
        return f"{self.m.username}@{self.m.host}:{self.m.port}"

    def _key(self, uid: int) -> str:
        return source_key(self.m.name, self._account(), self.m.folder, self.uidvalidity, uid)

    # --- waiting ---------------------------------------------------------------------

    def wait(self, stop: threading.Event) -> None:
        """Until new mail may be there: IDLE, or a sleep of poll_seconds."""
        if not (self.m.idle and self.can_idle):
            end = time.monotonic() + self.m.poll_seconds
            while not stop.is_set() and (left := end - time.monotonic()) > 0:
                stop.wait(min(left, IDLE_CHECK_SECONDS))
                self.intake._settle(self)
            return
        cycle = idle_cycle(self.m.poll_seconds)
        self.client.idle()
        self.guard.extend(cycle)
        self._idle(stop, time.monotonic() + cycle)
        self.client.idle_done()

    def _idle(self, stop: threading.Event, deadline: float) -> None:
        quiet_returns = 0
        while not stop.is_set():
            self.intake._settle(self)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            timeout = min(IDLE_CHECK_SECONDS, remaining)
            started = time.monotonic()
            responses = self.client.idle_check(timeout=timeout)
            if any(_is_bye(r) for r in responses):
                raise ConnectionLost("the server said BYE during IDLE")
            if any(_is_new_mail(r) for r in responses):
                return
            # At EOF the socket polls readable at once and yields nothing, for
            # ever: a few such returns in a row mean the connection is gone.
            if not responses and time.monotonic() - started < timeout / 2:
                quiet_returns += 1
                if quiet_returns >= 3:
                    raise ConnectionLost("the connection closed during IDLE")
            else:
                quiet_returns = 0


def _is_new_mail(response: Any) -> bool:
    return (
        isinstance(response, tuple)
        and len(response) >= 2
        and isinstance(response[0], int)
        and response[1] in (b"EXISTS", b"RECENT")
    )


def _is_bye(response: Any) -> bool:
    return isinstance(response, tuple) and bool(response) and response[0] == b"BYE"


def _logout(client: Any) -> None:
    try:
        client.logout()
    except Exception:
        _shutdown(client)


def _shutdown(client: Any) -> None:
    try:
        client.shutdown()
    except Exception:
        log.debug("closing an imap connection failed", exc_info=True)
