"""`spocd ingest`: queue each message durably, process it, send what results.

Sources: an .eml file, `-` (stdin, the MTA pipe), an mbox file, a Maildir.
One line per message names the ticket it went to, or why none.
"""

from __future__ import annotations

import concurrent.futures
import json
import mailbox
import multiprocessing
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from daemon.domain import Intake
from daemon.pipeline import Prepared, prepare_many
from daemon.ports import QueuedRaw
from daemon.rules import Rules
from daemon.service import App
from daemon.worker import BackgroundDelivery

EX_OK, EX_DATAERR, EX_TEMPFAIL = 0, 65, 75
BATCH = 200


def read_sources(paths: Sequence[str]) -> Iterator[tuple[str, bytes | None, str]]:
    """(label, raw bytes or None, problem) for every message in the sources."""
    for path in paths:
        if path == "-":
            yield "-", sys.stdin.buffer.read(), ""
            continue
        p = Path(path)
        if p.is_dir():
            if not all((p / sub).is_dir() for sub in ("cur", "new", "tmp")):
                yield path, None, "a folder that is not a Maildir (no cur/new/tmp)"
                continue
            box = mailbox.Maildir(str(p), factory=None, create=False)
            try:
                for key in sorted(box.keys()):
                    yield f"{path}/{key}", box.get_bytes(key), ""
            finally:
                box.close()
            continue
        try:
            with open(p, "rb") as fh:
                head = fh.read(5)
        except OSError as exc:
            yield path, None, f"cannot read: {exc.strerror or exc}"
            continue
        if head == b"From ":
            box_m = mailbox.mbox(str(p), factory=None, create=False)
            try:
                for index, key in enumerate(box_m.keys(), start=1):
                    yield f"{path}#{index}", box_m.get_bytes(key), ""
            finally:
                box_m.close()
            continue
        yield path, p.read_bytes(), ""


#: The rules the parser process decides by: set before it forks, inherited
#: (compiled rules do not pickle, and need not: the child has them).
_RULES: Rules | None = None


def _prepare(raws: list[bytes], limit: int) -> list[Prepared]:
    return prepare_many(raws, limit, _RULES)


class _Parser:
    """Parses the next batch, and decides the rules for its new requests, in
    a second process while this one stores the current batch: a machine with
    two cores then does both at once. Small runs (a pipe, one file) parse in
    process, with no pool to start."""

    POOL_FROM = 50

    def __init__(self, max_attachment_bytes: int, rules: Rules) -> None:
        self.limit = max_attachment_bytes
        self.rules = rules
        self.pool: concurrent.futures.ProcessPoolExecutor | None = None

    def submit(self, raws: list[bytes]) -> concurrent.futures.Future[list[Any]]:
        if len(raws) < self.POOL_FROM:
            done: concurrent.futures.Future[list[Any]] = concurrent.futures.Future()
            done.set_result(prepare_many(raws, self.limit, self.rules))
            return done
        if self.pool is None:
            global _RULES
            _RULES = self.rules
            context = multiprocessing.get_context("fork")
            self.pool = concurrent.futures.ProcessPoolExecutor(1, mp_context=context)
        return self.pool.submit(_prepare, raws, self.limit)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()


def ingest(app: App, paths: Sequence[str], *, escalation: bool, as_json: bool) -> int:
    code = EX_OK
    results: list[dict[str, object]] = []
    parser = _Parser(app.settings.limits.max_attachment_bytes, app.runtime.rules)
    delivery = BackgroundDelivery(app.sender)
    waiting: tuple[list[tuple[str, int | None]], Any] | None = None  # queued, being parsed

    def queue(batch: list[tuple[str, bytes]]) -> tuple[list[tuple[str, int | None]], Any] | None:
        nonlocal code
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
        future = parser.submit([raw for _, raw in batch])
        return [(label, item_id) for (label, _), item_id in zip(batch, ids, strict=True)], future

    def process(queued: tuple[list[tuple[str, int | None]], Any] | None) -> None:
        nonlocal code
        if queued is None:
            return
        entries, future = queued
        ids = [item_id for _, item_id in entries if item_id is not None]
        parsed = dict(zip(ids, future.result(), strict=True))
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
    try:
        for label, raw, problem in read_sources(paths):
            if raw is None:
                results.append({"source": label, "outcome": "unreadable", "detail": problem})
                code = EX_DATAERR if code == EX_OK else code
                continue
            if not raw.strip():
                results.append(
                    {"source": label, "outcome": "empty", "detail": "0 bytes: nothing to queue"}
                )
                code = EX_DATAERR if code == EX_OK else code
                continue
            batch.append((label, raw))
            if len(batch) >= BATCH:
                queued, batch = queue(batch), []
                process(waiting)  # the previous batch, while this one is parsed
                waiting = queued
        if batch:
            queued = queue(batch)
            process(waiting)
            waiting = queued
        process(waiting)
        sent = delivery.finish()
    finally:
        delivery.close()
        parser.close()
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
