"""One logged-in IMAP connection's poll: take every message of a mailbox
folder into the inbound queue exactly once, then move it out of the way.

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
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from imapclient import IMAPClient

from daemon.adapters.imap.connect import DEFAULT_MAX_MESSAGE_SIZE
from daemon.adapters.imap.fetch import fetch_batches
from daemon.adapters.imap.folders import ensure_folder, hierarchy
from daemon.adapters.imap.guard import guard
from daemon.adapters.imap.notes import Notebook
from daemon.core.domain import Intake
from daemon.mail.imap_plan import (
    chunks,
    destination,
    message_identity,
    partition,
    server_folder,
    source_key,
)
from daemon.ports import QueuedRaw

if TYPE_CHECKING:
    from daemon.adapters.imap.intake import MailboxIntake

log = logging.getLogger("spocd.imap")

#: UIDs whose sizes are asked for in one FETCH (sizes are a few bytes each).
SIZE_CHUNK = 1000
DELETED = rb"\Deleted"


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


class Session:
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
        delimiter, prefix = hierarchy(client)
        self.folder = server_folder(self.m.folder, delimiter, prefix)
        self.targets = {
            "processed": server_folder(self.m.processed_folder, delimiter, prefix),
            "failed": server_folder(self.m.failed_folder, delimiter, prefix),
        }
        for target in self.targets.values():
            ensure_folder(client, target, intake._fields)
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
