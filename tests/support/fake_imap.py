"""A small IMAP4rev1 server that lies on cue, for the intake's fault tests.

It speaks just enough for imapclient (CAPABILITY, LOGIN, LIST, CREATE,
SUBSCRIBE, SELECT/EXAMINE, UID SEARCH/FETCH/COPY/MOVE/STORE/EXPUNGE, IDLE,
NOOP, LOGOUT) on 127.0.0.1, port 0, in a thread of its own. `Script` says
how it misbehaves: sizes it under-reports, a literal it declares huge and
trickles, UIDs it never delivers or swaps, STORE or MOVE answered NO,
UIDVALIDITY that changes at every SELECT, an endless flood of untagged
EXISTS. The honest cases run against a real Dovecot instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

DELIMITER = "/"


@dataclass
class Script:
    """How the server misbehaves; every default is honest."""

    capabilities: tuple[str, ...] = ("IMAP4rev1", "IDLE", "UIDPLUS", "MOVE")
    reported_size: int | None = None  # RFC822.SIZE for every message (a lie)
    declared_literal: int | None = None  # the BODY[] literal's announced size
    trickle_bytes_per_second: float | None = None  # how the declared literal is sent
    withhold: frozenset[int] = frozenset()  # UIDs whose FETCH sends no body
    swap: dict[int, int] = field(default_factory=dict)  # asked UID -> UID it answers as
    store_answer: str = "OK"  # UID STORE: "OK" or "NO"
    move_answer: str = "OK"  # UID MOVE: "OK" or "NO"
    new_uidvalidity_every_select: bool = False
    flood_exists_on: str | None = None  # "SELECT" or "IDLE": endless "* 1 EXISTS"
    drop_on_idle: bool = False  # hang up at IDLE, right after a good poll
    idle_greeting: bytes = b""  # untagged lines sent in the same write as "+ idling"
    trickle_login: bool = False  # answer LOGIN a byte a second, for ever


@dataclass
class Message:
    uid: int
    raw: bytes
    flags: set[str] = field(default_factory=set)


class FakeImap:
    """The server; `folders` holds what it stores, `log` the commands seen."""

    def __init__(self, script: Script | None = None) -> None:
        self.script = script or Script()
        self.folders: dict[str, list[Message]] = {"INBOX": []}
        self.next_uid: dict[str, int] = {"INBOX": 1}
        self.uidvalidity = 1000
        self.log: list[str] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None

    # --- control from the test ------------------------------------------------------

    def add(self, raws: list[bytes], folder: str = "INBOX") -> None:
        for raw in raws:
            self._store(folder, raw)

    def count(self, folder: str = "INBOX") -> int:
        return sum(1 for m in self.folders.get(folder, []) if "\\Deleted" not in m.flags)

    def commands(self, verb: str) -> list[str]:
        """Commands seen of this verb (UID commands by their second word)."""
        found = []
        for line in self.log:
            words = line.upper().split(" ")
            if (words[1:2] if words[0] == "UID" else words[:1]) == [verb.upper()]:
                found.append(line)
        return found

    def start(self) -> FakeImap:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        future.result(timeout=10)
        return self

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.run_until_complete(asyncio.sleep(0))  # let cancelled tasks end
        self._loop.close()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    # --- one connection -----------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        selected: str | None = None
        writer.write(b"* OK fake IMAP ready\r\n")
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                text = line.decode("utf-8", "replace").rstrip("\r\n")
                self.log.append(text.split(" ", 1)[1] if " " in text else text)
                tag, _, rest = text.partition(" ")
                words = _split(rest)
                if not words:
                    writer.write(f"{tag} BAD empty\r\n".encode())
                    continue
                verb = words[0].upper()
                if verb == "UID" and len(words) > 1:
                    await self._uid(tag, words[1].upper(), words[2:], selected, writer)
                elif verb in ("SELECT", "EXAMINE"):
                    selected = words[1]
                    await self._select(tag, verb, selected, writer)
                elif verb == "IDLE":
                    await self._idle(tag, reader, writer)
                elif verb == "LOGIN" and self.script.trickle_login:
                    await _trickle(writer, f"{tag} OK ".encode())
                elif verb == "LOGOUT":
                    writer.write(f"* BYE bye\r\n{tag} OK LOGOUT done\r\n".encode())
                    await writer.drain()
                    return
                else:
                    writer.write(self._simple(tag, verb, words[1:]))
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            writer.close()

    def _simple(self, tag: str, verb: str, args: list[str]) -> bytes:
        if verb == "CAPABILITY":
            return (
                f"* CAPABILITY {' '.join(self.script.capabilities)}\r\n{tag} OK done\r\n".encode()
            )
        if verb == "LIST":
            pattern = args[1] if len(args) > 1 else ""
            if pattern == "":
                return f'* LIST (\\Noselect) "{DELIMITER}" ""\r\n{tag} OK done\r\n'.encode()
            found = [name for name in self.folders if name == pattern]
            lines = "".join(f'* LIST () "{DELIMITER}" "{name}"\r\n' for name in found)
            return f"{lines}{tag} OK done\r\n".encode()
        if verb == "CREATE":
            self.folders.setdefault(args[0], [])
            self.next_uid.setdefault(args[0], 1)
            return f"{tag} OK created\r\n".encode()
        if verb in ("LOGIN", "SUBSCRIBE", "NOOP", "CHECK", "CLOSE"):
            return f"{tag} OK {verb} done\r\n".encode()
        return f"{tag} BAD unknown command {verb}\r\n".encode()

    async def _select(self, tag: str, verb: str, folder: str, writer: asyncio.StreamWriter) -> None:
        if self.script.new_uidvalidity_every_select:
            self.uidvalidity += 1
        if self.script.flood_exists_on == "SELECT":
            await _flood(writer)
        messages = self.folders.get(folder, [])
        mode = "READ-ONLY" if verb == "EXAMINE" else "READ-WRITE"
        writer.write(
            (
                f"* {len(messages)} EXISTS\r\n* 0 RECENT\r\n"
                "* FLAGS (\\Seen \\Deleted)\r\n"
                f"* OK [UIDVALIDITY {self.uidvalidity}] ok\r\n"
                f"* OK [UIDNEXT {self.next_uid.get(folder, 1)}] ok\r\n"
                f"{tag} OK [{mode}] {verb} done\r\n"
            ).encode()
        )

    async def _idle(
        self, tag: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if self.script.drop_on_idle:
            raise ConnectionResetError("scripted hang-up")
        writer.write(b"+ idling\r\n" + self.script.idle_greeting)
        await writer.drain()
        if self.script.flood_exists_on == "IDLE":
            await _flood(writer)
        await reader.readline()  # DONE
        writer.write(f"{tag} OK IDLE done\r\n".encode())

    async def _uid(
        self, tag: str, verb: str, args: list[str], folder: str | None, writer: asyncio.StreamWriter
    ) -> None:
        messages = self.folders.get(folder or "", [])
        if verb == "SEARCH":
            uids = " ".join(str(m.uid) for m in messages if "\\Deleted" not in m.flags)
            writer.write(f"* SEARCH {uids}\r\n{tag} OK done\r\n".encode())
            return
        wanted = _uid_set(args[0], messages)
        chosen = [m for m in messages if m.uid in wanted]
        if verb == "FETCH":
            for m in chosen:
                await self._fetch(m, args[1].upper(), messages, writer)
            writer.write(f"{tag} OK FETCH done\r\n".encode())
        elif verb in ("COPY", "MOVE"):
            if verb == "MOVE" and self.script.move_answer != "OK":
                writer.write(f"{tag} NO [SERVERBUG] MOVE failed\r\n".encode())
                return
            for m in chosen:
                self._store(args[1], m.raw)
            if verb == "MOVE":
                self.folders[folder or ""] = [m for m in messages if m.uid not in wanted]
            writer.write(f"{tag} OK {verb} done\r\n".encode())
        elif verb == "STORE":
            if self.script.store_answer != "OK":
                writer.write(f"{tag} NO [SERVERBUG] STORE failed\r\n".encode())
                return
            for m in chosen:
                m.flags.add("\\Deleted")
            writer.write(f"{tag} OK STORE done\r\n".encode())
        elif verb == "EXPUNGE":
            self.folders[folder or ""] = [
                m for m in messages if not (m.uid in wanted and "\\Deleted" in m.flags)
            ]
            writer.write(f"{tag} OK EXPUNGE done\r\n".encode())
        else:
            writer.write(f"{tag} BAD unknown UID command\r\n".encode())

    async def _fetch(
        self, m: Message, items: str, messages: list[Message], writer: asyncio.StreamWriter
    ) -> None:
        seq = messages.index(m) + 1
        if "RFC822.SIZE" in items:
            size = self.script.reported_size or len(m.raw)
            writer.write(f"* {seq} FETCH (UID {m.uid} RFC822.SIZE {size})\r\n".encode())
            return
        if m.uid in self.script.withhold:
            return
        declared = self.script.declared_literal
        head = f"* {seq} FETCH (UID {self.script.swap.get(m.uid, m.uid)} BODY[] "
        if declared is None:
            writer.write(f"{head}{{{len(m.raw)}}}\r\n".encode() + m.raw + b")\r\n")
            return
        writer.write(f"{head}{{{declared}}}\r\n".encode())
        rate = self.script.trickle_bytes_per_second
        chunk = b"x" * (int(rate) if rate else 65536)
        sent = 0
        while sent < declared:
            piece = chunk[: declared - sent]
            writer.write(piece)
            await writer.drain()
            sent += len(piece)
            if rate:
                await asyncio.sleep(1)
        writer.write(b")\r\n")

    def _store(self, folder: str, raw: bytes) -> None:
        uid = self.next_uid.setdefault(folder, 1)
        self.next_uid[folder] = uid + 1
        self.folders.setdefault(folder, []).append(Message(uid, raw))


async def _flood(writer: asyncio.StreamWriter) -> None:
    """Untagged EXISTS for ever (until the client hangs up)."""
    line = b"* 1 EXISTS\r\n" * 1000
    while True:
        writer.write(line)
        await writer.drain()


async def _trickle(writer: asyncio.StreamWriter, start: bytes) -> None:
    """A line that never ends, a byte a second."""
    writer.write(start)
    while True:
        await writer.drain()
        await asyncio.sleep(1)
        writer.write(b"x")


def _split(text: str) -> list[str]:
    """Words of a command line; quoted strings lose their quotes."""
    return [a if a else b for a, b in re.findall(r'"((?:[^"\\]|\\.)*)"|(\S+)', text)]


def _uid_set(spec: str, messages: list[Message]) -> set[int]:
    top = max((m.uid for m in messages), default=0)
    uids: set[int] = set()
    for part in spec.split(","):
        low, _, high = part.partition(":")
        start = top if low == "*" else int(low)
        end = start if not high else (top if high == "*" else int(high))
        uids.update(range(min(start, end), max(start, end) + 1))
    return uids


@contextlib.contextmanager
def fake_imap(script: Script | None = None) -> Iterator[FakeImap]:
    server = FakeImap(script).start()
    try:
        yield server
    finally:
        server.stop()
