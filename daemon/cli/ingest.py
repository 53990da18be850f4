"""`spocd ingest`: queue each message durably, process it, send what results.

Sources: an .eml file, `-` (stdin, the MTA pipe), an mbox file, a Maildir.
One line per message names the ticket it went to, or why none. Past the
first few dozen messages two forked helpers join: one parses ahead, one
writes the outgoing mail, while this process runs the pipeline.
"""

from __future__ import annotations

import concurrent.futures
import json
import mailbox
import multiprocessing
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from daemon.app.pipeline import Prepared, prepare_many
from daemon.cli.interrupt import StopAsked
from daemon.cli.mbox import mbox_messages
from daemon.core.domain import Intake
from daemon.ports import QueuedRaw
from daemon.service.children import init_child
from daemon.service.delivery import BackgroundDelivery, maildir_job
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


#: The app the parsing helper works for: set before it forks, inherited
#: (compiled rules do not pickle, and need not).
_APP: App | None = None


def _prepare(raws: list[bytes], limit: int) -> list[Prepared]:
    assert _APP is not None
    return prepare_many(raws, limit, _APP.runtime.rules, _APP.settings.limits.max_parse_seconds)


class _Helpers:
    """Two processes beside this one: one parses the next batch (and decides
    the rules for its new requests) while this one stores the current batch,
    the other writes the mail already made to the Maildir outbox. A machine
    with two cores then does all three at once. Small runs (a pipe, one
    file) do everything in process, with no helper to start."""

    POOL_FROM = 50

    def __init__(self, app: App) -> None:
        self.app = app
        self.limit = app.settings.limits.max_attachment_bytes
        self.pool: concurrent.futures.ProcessPoolExecutor | None = None
        self.failed = False

    def parse(self, raws: list[bytes]) -> concurrent.futures.Future[list[Any]]:
        if len(raws) >= self.POOL_FROM and not self.failed:
            try:
                return self.start().submit(_prepare, raws, self.limit)
            except Exception as exc:  # the pool broke: a helper died
                self.fail(exc)
        done: concurrent.futures.Future[list[Any]] = concurrent.futures.Future()
        done.set_result(self.parse_here(raws))
        return done

    def parse_here(self, raws: list[bytes]) -> list[Prepared]:
        return prepare_many(
            raws, self.limit, self.app.runtime.rules, self.app.settings.limits.max_parse_seconds
        )

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
            global _APP
            _APP = self.app
            context = multiprocessing.get_context("fork")
            self.pool = concurrent.futures.ProcessPoolExecutor(
                2, mp_context=context, initializer=init_child, initargs=(os.getpid(),)
            )
        return self.pool

    def deliver(self, delivery: BackgroundDelivery) -> None:
        settings = self.app.settings
        job = maildir_job(settings.outgoing.maildir, settings.helpdesk.address)
        delivery.hand_off(self.start(), job)  # taken only for the Maildir transport

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)


def ingest(app: App, paths: Sequence[str], *, escalation: bool, as_json: bool) -> int:
    code = EX_OK
    results: list[dict[str, object]] = []
    helpers = _Helpers(app)
    delivery = BackgroundDelivery(app.sender)  # in line until the helpers start
    stop = StopAsked()
    # (label, inbound id) per message, their raw bytes, the parse under way
    Queued = tuple[list[tuple[str, int | None]], list[bytes], Any]
    waiting: Queued | None = None

    def queue(batch: list[tuple[str, bytes]]) -> Queued | None:
        nonlocal code
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
            return None
        raws = [raw for _, raw in batch]
        entries = [(label, item_id) for (label, _), item_id in zip(batch, ids, strict=True)]
        return entries, raws, helpers.parse(raws)

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

    batch: list[tuple[str, bytes]] = []
    limit = _Helpers.POOL_FROM  # small at first: the first batch is parsed while nothing else runs
    cut_short = False
    with stop:
        try:
            sources = read_sources(paths, app.settings.smtp.max_message_size)
            for label, raw, refused, problem in sources:
                if raw is None:
                    results.append({"source": label, "outcome": refused, "detail": problem})
                    code = EX_DATAERR if code == EX_OK else code
                    continue
                if not raw.strip():
                    results.append(
                        {"source": label, "outcome": "empty", "detail": "0 bytes: nothing to queue"}
                    )
                    code = EX_DATAERR if code == EX_OK else code
                    continue
                batch.append((label, raw))
                if len(batch) >= limit:
                    limit = min(2 * limit, BATCH)
                    if helpers.pool is None:
                        helpers.deliver(delivery)
                    queued, batch = queue(batch), []
                    process(waiting)  # the previous batch, while this one is parsed
                    waiting = queued
                    if stop.asked:  # Ctrl-C: finish what is read, read no more
                        cut_short = True
                        break
            if batch:
                queued = queue(batch)
                process(waiting)
                waiting = queued
            process(waiting)
            sent = delivery.finish()
        finally:
            helpers.close()
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
