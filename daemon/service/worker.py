"""The inbound loop: queued messages through the pipeline, one transaction at a time.

It commits; nothing below it does. It runs until the queue is empty and then
returns, so the daemon, `spocd tick` and the tests share it. The sending side
is in `sender` (and batch ingest's background delivery in `delivery`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from jinja2 import TemplateError

from daemon.app.pipeline import Outcome, Pipeline, StageError
from daemon.core.domain import InboundItem
from daemon.ports import Clock, Store, Tx

log = logging.getLogger("spocd.worker")

#: Delays before the 1st, 2nd, ... retry of a message whose processing failed.
PROCESS_RETRIES = (timedelta(seconds=30), timedelta(minutes=5), timedelta(minutes=30))


class InboundWorker:
    """Takes queued messages through the pipeline, a group per commit.

    Each message runs inside its own savepoint, so a failure rolls back that
    message alone (and is recorded); the group shares one commit, which is
    what makes a busy queue cheap on SQLite's fsync-per-commit.
    """

    GROUP = 25
    #: Given items (batch ingest) commit in larger groups: no SMTP client
    #: waits on them, and each commit is an fsync.
    ITEMS_GROUP = 200
    #: Raw bytes one group may hold in memory: a burst of 25 MB messages is
    #: taken a few at a time, not 25 at once.
    GROUP_BYTES = 64 * 1024 * 1024

    def __init__(
        self,
        store: Store,
        pipeline: Pipeline,
        clock: Clock,
        observer: Callable[[InboundItem, Outcome, datetime], None] | None = None,
        group_bytes: int = GROUP_BYTES,
    ) -> None:
        self.store = store
        self.pipeline = pipeline
        self.clock = clock
        self.observer = observer  # metrics: called after the commit, per message
        self.group_bytes = group_bytes
        #: Prepares a group's raw messages elsewhere (the daemon's parser
        #: process); None, or None returned, prepares them here.
        self.preparer: Callable[[list[bytes]], list[Any] | None] | None = None

    def process_group(
        self,
        item_ids: Sequence[int] | None = None,
        limit: int = GROUP,
        parsed: Mapping[int, Any] | None = None,
    ) -> list[tuple[int, Outcome]]:
        """Process the oldest due messages (or the given ones) in one commit;
        `parsed` holds messages already parsed elsewhere, by item id."""
        now = self.clock.now()
        results: list[tuple[int, Outcome]] = []
        if parsed is None:
            parsed = self._prepare(item_ids, limit, now)
        with self.store.transaction() as tx:
            if item_ids is None:
                items = tx.inbound.claim(now, limit, self.group_bytes, without_raw=parsed or ())
            else:
                items = []
                found = tx.inbound.get_items(item_ids, for_update=True, without_raw=parsed or ())
                for item_id in item_ids:
                    item = found.get(item_id)
                    if item is not None and item.state == "queued":
                        items.append(item)
                        continue
                    entry = tx.inbound.entry(item_id)  # another worker took it first
                    results.append(
                        (
                            item_id,
                            Outcome("failed", detail=f"no item {item_id}")
                            if entry is None
                            else Outcome(
                                entry.outcome or entry.state,
                                entry.ticket_number,
                                entry.message_id,
                                entry.reason or "",
                            ),
                        )
                    )
            parsed = parsed or {}
            processed = [
                (item, self._process(tx, item, now, parsed.get(item.id))) for item in items
            ]
        results.extend((item.id, outcome) for item, outcome in processed)
        if item_ids is not None:  # in the order asked for
            order = {item_id: n for n, item_id in enumerate(item_ids)}
            results.sort(key=lambda pair: order[pair[0]])
        if self.observer is not None:
            for item, outcome in processed:
                self.observer(item, outcome, now)
        for item_id, outcome in results:
            log.info(
                "processed",
                extra={
                    "inbound": item_id,
                    "outcome": outcome.outcome,
                    "ticket": outcome.ticket,
                    "message_id": outcome.message_id,
                },
            )
        return results

    def _prepare(self, item_ids: Sequence[int] | None, limit: int, now: datetime) -> dict[int, Any]:
        """Parse, sanitise and decide for the messages about to be processed
        before the write transaction (they are read in a short read one), so
        the write lock is held only for the writing. A message another worker
        takes meanwhile goes unused; one that became due meanwhile is parsed
        in the transaction as before."""
        with self.store.reading() as tx:
            if item_ids is None:
                items = tx.inbound.claim(now, limit, self.group_bytes)
            else:
                found = tx.inbound.get_items(item_ids)
                items = [found[i] for i in item_ids if i in found and found[i].state == "queued"]
        raws = [item.raw for item in items]
        prepared = self.preparer(raws) if self.preparer is not None and raws else None
        if prepared is None or len(prepared) != len(items):
            prepared = [self.pipeline.prepare(raw) for raw in raws]
        return {item.id: one for item, one in zip(items, prepared, strict=True)}

    def _process(self, tx: Tx, item: InboundItem, now: datetime, parsed: Any = None) -> Outcome:
        try:
            with tx.savepoint():
                return self.pipeline.process(tx, item, now, parsed)
        except StageError as exc:
            retries = PROCESS_RETRIES
            retry_at = now + retries[item.attempts] if item.attempts < len(retries) else None
            log.error(
                "processing failed",
                extra={
                    "inbound": item.id,
                    "stage": exc.stage,
                    "error": str(exc),
                    "retry_at": retry_at,
                },
                # A template's fault is the admin's to fix and says where
                # (file, line, bound): its message is the whole story.
                exc_info=None if isinstance(exc.cause, TemplateError) else exc.cause,
            )
            tx.inbound.fail(item.id, stage=exc.stage, reason=str(exc), now=now, retry_at=retry_at)
            return Outcome("failed", detail=str(exc))

    def process_item(self, item_id: int) -> Outcome:
        """Process one given queued message (or report what became of it)."""
        [(_, outcome)] = self.process_group([item_id])
        return outcome

    def process_items(
        self, item_ids: Sequence[int], parsed: Mapping[int, Any] | None = None
    ) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for start in range(0, len(item_ids), self.ITEMS_GROUP):
            group = item_ids[start : start + self.ITEMS_GROUP]
            outcomes.extend(o for _, o in self.process_group(group, parsed=parsed))
        return outcomes

    def drain(
        self, limit: int | None = None, stop: Callable[[], bool] = lambda: False
    ) -> list[tuple[int, Outcome]]:
        """Process until the queue has nothing due (or `stop()` says so)."""
        done: list[tuple[int, Outcome]] = []
        while (limit is None or len(done) < limit) and not stop():
            size = self.GROUP if limit is None else min(self.GROUP, limit - len(done))
            group = self.process_group(limit=size)
            if not group:
                break
            done.extend(group)
        return done
