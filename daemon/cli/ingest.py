"""`spocd ingest`: queue each message durably, process it, send what results.

Sources: an .eml file, `-` (stdin, the MTA pipe), an mbox file, a Maildir.
One line per message names the ticket it went to, or why none. Past the
first few dozen messages two forked helpers join: one parses ahead, one
writes the outgoing mail, while this process runs the pipeline.

The helpers are forked before the database layer, the templates and the
pipeline's stages are loaded (this module needs only the rules): they load
mail-parser and parse the first batches on the second core while this
process loads the rest, where that core stood idle before. This process
never parses in a run the helpers take, so it never loads mail-parser.
"""

from __future__ import annotations

import concurrent.futures
import json
import mailbox
import multiprocessing
import os
import sys
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from daemon.app.prepare import Prepared, prepare_many
from daemon.cli.interrupt import StopAsked
from daemon.cli.mbox import mbox_messages
from daemon.config import Settings
from daemon.core.domain import Intake
from daemon.core.errors import ConfigError
from daemon.ports import QueuedRaw
from daemon.rules.ruleset import Rules
from daemon.service.children import init_child
from daemon.service.desk_files import load_rules_file, resolve_paths
from daemon.service.handoff import maildir_job

if TYPE_CHECKING:
    from daemon.service.delivery import BackgroundDelivery
    from daemon.service.wiring import App

EX_OK, EX_DATAERR, EX_TEMPFAIL = 0, 65, 75
BATCH = 200


TOO_LARGE = "too-large"


def _bounded(fh: BinaryIO, limit: int) -> bytes | None:
    """At most `limit` bytes of `fh`, or None when there is more: memory never
    holds more than one message of the intake limit."""
    raw = fh.read(limit + 1)
    return None if len(raw) > limit else raw


def read_sources(paths: Sequence[str], limit: int) -> Iterator[tuple[str, bytes | None, str, str]]:
    """(label, raw bytes or None, outcome, problem) for every message in the
    sources; a message over `limit` bytes is refused unread past the limit."""
    too_large = f"larger than smtp.max_message_size ({limit} bytes); not kept"

    def taken(label: str, raw: bytes | None) -> tuple[str, bytes | None, str, str]:
        return (label, raw, "", "") if raw is not None else (label, None, TOO_LARGE, too_large)

    def one(label: str, fh: BinaryIO) -> tuple[str, bytes | None, str, str]:
        return taken(label, _bounded(fh, limit))

    for path in paths:
        if path == "-":
            yield one("-", sys.stdin.buffer)
            continue
        p = Path(path)
        if p.is_dir():
            if not all((p / sub).is_dir() for sub in ("cur", "new", "tmp")):
                yield path, None, "unreadable", "a folder that is not a Maildir (no cur/new/tmp)"
                continue
            box = mailbox.Maildir(str(p), factory=None, create=False)
            try:
                for key in sorted(box.keys()):
                    with box.get_file(key) as fh:
                        yield one(f"{path}/{key}", fh)
            finally:
                box.close()
            continue
        # A read that fails part of the way through an mbox (a disk error, a
        # file truncated under us) ends that source with its reason; the
        # messages before it are taken, the other sources read.
        try:
            with open(p, "rb") as fh:
                if fh.read(5) != b"From ":
                    fh.seek(0)
                    yield one(path, fh)
                    continue
                fh.seek(0)
                for index, raw in enumerate(mbox_messages(fh, limit), start=1):
                    yield taken(f"{path}#{index}", raw)
        except OSError as exc:
            yield path, None, "unreadable", f"cannot read: {exc.strerror or exc}"


#: The rules a forked helper decides with: set before it forks, inherited
#: (compiled rules do not pickle, and need not).
_RULES: Rules | None = None


def _prepare(raws: list[bytes], limit: int, max_parse_seconds: float) -> list[Prepared]:
    return prepare_many(raws, limit, _RULES, max_parse_seconds)


def early_rules(settings: Settings) -> Rules | None:
    """The desk's rules, read before the rest of spocd loads so the helpers
    can decide with them; None when they cannot be read, and opening the app
    then says why (with every other problem of the rules and templates)."""
    try:
        return load_rules_file(resolve_paths(settings)[0])
    except ConfigError:
        return None


class _Helpers:
    """Two processes beside this one: one parses the next batch (and decides
    the rules for its new requests) while this one stores the current batch,
    the other writes the mail already made to the Maildir outbox. A machine
    with two cores then does all three at once. Small runs (a pipe, one
    file) do everything in process, with no helper to start."""

    POOL_FROM = 50

    def __init__(self, settings: Settings, rules: Rules | None) -> None:
        self.settings = settings
        self.rules = rules
        self.limit = settings.limits.max_attachment_bytes
        self.max_parse_seconds = settings.limits.max_parse_seconds
        self.pool: concurrent.futures.ProcessPoolExecutor | None = None
        self.failed = False

    def parse(self, raws: list[bytes]) -> concurrent.futures.Future[list[Prepared]]:
        if len(raws) >= self.POOL_FROM and not self.failed:
            try:
                return self.start().submit(_prepare, raws, self.limit, self.max_parse_seconds)
            except Exception as exc:  # the pool broke: a helper died
                self.fail(exc)
        done: concurrent.futures.Future[list[Prepared]] = concurrent.futures.Future()
        done.set_result(self.parse_here(raws))
        return done

    def parse_here(self, raws: list[bytes]) -> list[Prepared]:
        return prepare_many(raws, self.limit, self.rules, self.max_parse_seconds)

    def fail(self, exc: BaseException) -> None:
        """A helper died (the OOM killer, a signal): the work goes on here."""
        if not self.failed:
            print(
                f"spocd ingest: a helper process died ({exc or type(exc).__name__}); "
                "continuing in this process",
                file=sys.stderr,
            )
        self.failed = True

    def start(self) -> concurrent.futures.ProcessPoolExecutor:
        if self.pool is None:
            global _RULES
            _RULES = self.rules
            context = multiprocessing.get_context("fork")
            self.pool = concurrent.futures.ProcessPoolExecutor(
                2, mp_context=context, initializer=init_child, initargs=(os.getpid(),)
            )
        return self.pool

    def deliver(self, delivery: BackgroundDelivery) -> None:
        """The Maildir's files written by the helpers from now on (taken
        only for the Maildir transport); a run without helpers writes them
        in line."""
        if self.pool is not None and not self.failed:
            job = maildir_job(self.settings.outgoing.maildir, self.settings.helpdesk.address)
            delivery.hand_off(self.pool, job)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None


Batch = list[tuple[str, bytes]]


class _Reading:
    """The sources read a batch at a time: small at first (the first batch
    is parsed while nothing else runs), doubling to `BATCH`. What cannot be
    queued (over the size limit, empty, unreadable) is noted as it is met."""

    def __init__(self, sources: Iterator[tuple[str, bytes | None, str, str]]) -> None:
        self.sources = sources
        self.size = _Helpers.POOL_FROM
        self.results: list[dict[str, object]] = []
        self.refused = False
        self.done = False

    def next_batch(self) -> Batch:
        batch: Batch = []
        while not self.done and len(batch) < self.size:
            item = next(self.sources, None)
            if item is None:
                self.done = True
                break
            label, raw, refused, problem = item
            if raw is None:
                self.results.append({"source": label, "outcome": refused, "detail": problem})
                self.refused = True
            elif not raw.strip():
                self.results.append(
                    {"source": label, "outcome": "empty", "detail": "0 bytes: nothing to queue"}
                )
                self.refused = True
            else:
                batch.append((label, raw))
        if len(batch) >= self.size:
            self.size = min(2 * self.size, BATCH)
        return batch


#: Batches read and parsing before the app is open: 50 + 100 + 200 messages,
#: while this process loads the database layer and the templates (or fewer,
#: once they hold `EARLY_BYTES`).
EARLY_BATCHES = 3
EARLY_BYTES = 32 * 1024 * 1024

Parsing = tuple[Batch, concurrent.futures.Future[list[Prepared]]]


def _read_ahead(reading: _Reading, helpers: _Helpers, ahead: deque[Parsing]) -> int:
    """The next batch read and its parse started; its size in bytes (0 at the end)."""
    batch = reading.next_batch()
    if batch:
        ahead.append((batch, helpers.parse([raw for _, raw in batch])))
    return sum(len(raw) for _, raw in batch)


def ingest(
    settings: Settings,
    rules: Rules | None,
    paths: Sequence[str],
    open_app: Callable[[], App],
    *,
    escalation: bool,
    as_json: bool,
) -> int:
    """`open_app` is called once the first batches are parsing; `rules` are
    what it will use (read from the same file, a moment before)."""
    helpers = _Helpers(settings, rules)
    reading = _Reading(read_sources(paths, settings.smtp.max_message_size))
    ahead: deque[Parsing] = deque()
    try:
        held = 0
        while len(ahead) < EARLY_BATCHES and held < EARLY_BYTES:
            read = _read_ahead(reading, helpers, ahead)
            if not read:
                break
            held += read
        app = open_app()
        try:
            return _ingest(app, helpers, reading, ahead, escalation=escalation, as_json=as_json)
        finally:
            app.close()
    finally:
        helpers.close()


def _ingest(
    app: App,
    helpers: _Helpers,
    reading: _Reading,
    ahead: deque[Parsing],
    *,
    escalation: bool,
    as_json: bool,
) -> int:
    from daemon.service.delivery import BackgroundDelivery

    results = reading.results
    code = EX_OK
    delivery = BackgroundDelivery(app.sender)  # in line until the helpers start
    handed_off = False
    stop = StopAsked()
    # (label, inbound id) per message, their raw bytes, the parse under way
    Queued = tuple[list[tuple[str, int | None]], list[bytes], Any]
    waiting: Queued | None = None

    def queue(parsing: Parsing) -> Queued | None:
        nonlocal code
        batch, future = parsing
        stop.arm()  # from the first write on, Ctrl-C or SIGTERM waits for the end of a batch
        try:
            now = app.clock.now()
            with app.store.transaction() as tx:
                ids = [
                    tx.inbound.add(
                        QueuedRaw(raw=raw, intake=Intake.INGEST, escalation=escalation), now
                    )
                    for _, raw in batch
                ]
        except Exception as exc:
            for label, _ in batch:
                results.append({"source": label, "outcome": "not-queued", "detail": str(exc)})
            code = EX_TEMPFAIL
            future.cancel()
            return None
        raws = [raw for _, raw in batch]
        entries = [(label, item_id) for (label, _), item_id in zip(batch, ids, strict=True)]
        return entries, raws, future

    def process(queued: Queued | None) -> None:
        nonlocal code
        if queued is None:
            return
        entries, raws, future = queued
        ids = [item_id for _, item_id in entries if item_id is not None]
        try:
            prepared = future.result()
        except Exception as exc:  # the parser helper died with this batch
            helpers.fail(exc)
            prepared = helpers.parse_here(raws)
        parsed = dict(zip(ids, prepared, strict=True))
        outcomes = app.inbound.process_items(ids, parsed=parsed)
        for (label, item_id), outcome in zip(entries, outcomes, strict=True):
            if outcome.outcome == "quarantined" and outcome.detail.startswith("not mail"):
                code = max(code, EX_DATAERR) if code != EX_TEMPFAIL else code
            if outcome.outcome == "failed":
                code = EX_TEMPFAIL
            results.append(
                {
                    "source": label,
                    "inbound": item_id,
                    "outcome": outcome.outcome,
                    "ticket": f"{app.runtime.prefix}-{outcome.ticket}" if outcome.ticket else None,
                    "message_id": outcome.message_id,
                    "detail": outcome.detail,
                }
            )
        delivery.pump()

    cut_short = False
    with stop:
        while ahead:
            queued = queue(ahead.popleft())
            if helpers.pool is not None and not handed_off:
                helpers.deliver(delivery)
                handed_off = True
            process(waiting)  # the previous batch, while this one is parsed
            waiting = queued
            if stop.asked:  # Ctrl-C: finish what is queued, read no more
                cut_short = True
                break
            if not ahead:  # one batch parsing while the next is stored, as before the fork
                _read_ahead(reading, helpers, ahead)
        process(waiting)
        sent = delivery.finish()
    helpers.close()  # before the report: a batch read ahead of a stop may still be parsing
    if reading.refused and code == EX_OK:
        code = EX_DATAERR
    for line in results:
        if as_json:
            print(json.dumps(line, ensure_ascii=False))
        else:
            print(_line(line))
    if sent.deferred or sent.failed:
        print(
            f"outbox: {sent.sent} sent, {sent.deferred} deferred, {sent.failed} failed",
            file=sys.stderr,
        )
    if cut_short:
        print(
            f"spocd ingest: {stop.said}: {len(results)} messages taken (listed above), "
            "the rest not read; ingesting the same source again takes the rest and skips "
            "what is already in",
            file=sys.stderr,
        )
        return stop.exit_code
    return code


def _line(r: dict[str, object]) -> str:
    outcome = r["outcome"]
    ticket = r.get("ticket")
    detail = r.get("detail") or ""
    if outcome in ("created", "appended") and ticket:
        verb = "new ticket" if outcome == "created" else "added to"
        return f"{r['source']}: {verb} {ticket}"
    if outcome == "duplicate":
        return f"{r['source']}: duplicate of a message on {ticket or 'no ticket'}; nothing changed"
    if outcome == "bounce":
        return (
            f"{r['source']}: bounce recorded on {ticket}"
            if ticket
            else (f"{r['source']}: bounce matching no ticket; kept in the queue")
        )
    return f"{r['source']}: {outcome}" + (f": {detail}" if detail else "")
