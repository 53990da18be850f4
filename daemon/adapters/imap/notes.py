"""What the IMAP intake remembers of messages it could not finish.

A UID the server did not deliver is counted and, at `MAX_MISSES`, given up
(`spocd status` shows it); a COPY that succeeded is noted before the
original is flagged, so a refused STORE never makes the next poll copy
again; a failed move is noted as unmoved. Notes are written at once, each
in a transaction of its own, and dropped when their message has left the
folder.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from daemon.adapters.imap.fetch import Fetched
from daemon.mail.imap_plan import MAX_MISSES
from daemon.ports import ImapNote, Store

log = logging.getLogger("spocd.imap")


class Notebook:
    """The notes of one mailbox folder, as loaded at the start of a poll."""

    def __init__(
        self, store: Store, mailbox: str, folder: str, now: Callable[[], datetime]
    ) -> None:
        self.store = store
        self.mailbox = mailbox
        self.folder = folder
        self.now = now
        self.notes: dict[str, ImapNote] = {}

    def load(self, keys: Sequence[str]) -> None:
        """The notes of the messages now in the folder; the others are dropped."""

        def load(tx: Any) -> None:
            tx.mailboxes.prune_notes(self.mailbox, self.folder, keys)
            self.notes = tx.mailboxes.notes(list(keys))

        with self.store.transaction() as tx:
            load(tx)

    def get(self, key: str) -> ImapNote:
        return self.notes.get(key) or ImapNote(key)

    def save(self, notes: Sequence[ImapNote]) -> None:
        """Written at once: a crash right after a COPY must still know of it."""
        now = self.now()
        with self.store.transaction() as tx:
            for note in notes:
                tx.mailboxes.note(self.mailbox, self.folder, note, now)
        for note in notes:
            self.notes[note.source_key] = note

    def copied(self, keys: Sequence[str], target: str) -> None:
        self.save([replace(self.get(k), copied_to=target) for k in keys])

    def unmoved(self, keys: Sequence[str], problem: str) -> None:
        self.save([replace(self.get(k), kind="unmoved", problem=problem) for k in keys])

    def moved(self, keys: Sequence[str]) -> None:
        gone = [k for k in keys if k in self.notes]
        if not gone:
            return
        with self.store.transaction() as tx:
            tx.mailboxes.drop_notes(gone)
        for key in gone:
            del self.notes[key]

    def missed(self, troubles: Sequence[tuple[str, Fetched]], fields: dict[str, Any]) -> None:
        """UIDs asked for and not delivered: counted; given up at MAX_MISSES."""
        notes = []
        for key, t in troubles:
            note = self.get(key)
            misses = note.misses + 1
            extra = {**fields, "uid": t.uid, "misses": misses}
            if t.answered:
                extra["answered_for"] = ",".join(map(str, t.answered))
            if misses >= MAX_MISSES:
                problem = f"the server did not deliver UID {t.uid} in {misses} FETCHes"
                log.error("imap message not delivered: given up", extra=extra)
                notes.append(replace(note, misses=misses, kind="untaken", problem=problem))
            else:
                log.warning("imap message not delivered: will ask again", extra=extra)
                notes.append(replace(note, misses=misses))
        self.save(notes)
