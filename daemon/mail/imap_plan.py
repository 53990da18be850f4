"""Pure decisions of the IMAP intake, kept apart from the socket work.

The adapter (`adapters/imap/`) asks these functions what to call a folder on
this server, how to cut a backlog into batches, where a processed message
goes, how long to wait after a fault and whether a mailbox is healthy; each
answer depends only on its arguments, so they are table-tested without a
server (the way imapclient keeps its parsing pieces apart from its I/O).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.parser import BytesHeaderParser
from email.policy import compat32

#: Outcomes of the pipeline whose message goes to `failed_folder`; every other
#: outcome (created, appended, duplicate, ignored, bounce) goes to
#: `processed_folder`.
FAILED_OUTCOMES = frozenset({"quarantined", "failed"})

#: IDLE is ended and re-issued before servers drop it (RFC 2177 asks clients
#: to re-issue it at least every 29 minutes).
IDLE_RENEW_SECONDS = 28 * 60

#: A batch is closed once this many bytes of mail have been received (counted
#: as they arrive, never taken from the server's word), whatever batch_size
#: says, so a folder of large messages stays within bounded memory.
MAX_BATCH_BYTES = 32 * 1024 * 1024

#: A mailbox is healthy when its last success is at most this many poll
#: intervals old (`spocd status`).
HEALTHY_INTERVALS = 3


#: The inbound queue's source_key column is this long.
SOURCE_KEY_LIMIT = 400


def source_key(mailbox: str, account: str, folder: str, uidvalidity: int, uid: int) -> str:
    """The inbound queue's idempotence key of one message on one server.

    getmail6's idea: (UIDVALIDITY, UID) names a message for good, so taking
    it again (a crash before the move, a second instance) queues nothing new.
    The account (user@host:port) is part of it: a mailbox re-pointed to
    another account, whose folder may well have the same UIDVALIDITY, must
    not mistake that account's messages for ones already taken.
    """
    key = f"imap:{mailbox}:{account}:{folder}:{uidvalidity}:{uid}"
    if len(key) <= SOURCE_KEY_LIMIT:
        return key
    digest = hashlib.sha256(f"{account}\0{folder}".encode()).hexdigest()
    return f"imap:{mailbox[:200]}:{digest}:{uidvalidity}:{uid}"


def destination(outcome: str) -> str:
    """ "processed" or "failed": which folder a message goes to after the pipeline."""
    return "failed" if outcome in FAILED_OUTCOMES else "processed"


def server_folder(name: str, delimiter: str | None, prefix: str = "") -> str:
    """A configured folder name ("spocd/processed") as this server spells it.

    The configuration always separates levels with "/"; servers use their own
    hierarchy delimiter (Dovecot's Maildir "."; Exchange and Gmail "/") and
    some keep personal folders under a namespace prefix ("INBOX." on Courier
    and Cyrus). INBOX is never prefixed.
    """
    name = (delimiter or "/").join(p for p in name.split("/") if p)
    if not prefix or name.upper() == "INBOX" or name.upper().startswith(prefix.upper()):
        return name
    return prefix + name


def partition(uids: Iterable[int], last_uid: int) -> tuple[list[int], list[int]]:
    """(left over, new): messages at or below the stored high-water mark are
    already in the queue (a crash or a failed move kept them in the folder);
    the others have not been taken yet."""
    left, new = [], []
    for uid in sorted(set(uids)):
        (left if uid <= last_uid else new).append(uid)
    return left, new


def chunks(items: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


#: A UID the server does not deliver when asked is asked again this many
#: times (one FETCH per poll), then given up and shown by `spocd status`.
MAX_MISSES = 3

#: A poll takes new messages for at most this many command timeouts; the
#: rest waits for the next poll (a server slow on purpose cannot hold one).
POLL_TIMEOUTS = 30


def message_identity(account: str, folder: str, raw: bytes) -> str:
    """Names one message in one account's folder whatever its UID: by its
    Message-ID, or by its bytes when it has none. A UIDVALIDITY change renames
    every UID; this name stays, so the message is not stored twice."""
    head = raw[:262144]
    ends = [i for i in (head.find(b"\r\n\r\n"), head.find(b"\n\n")) if i >= 0]
    if ends:
        head = head[: min(ends)]
    message_id = BytesHeaderParser(policy=compat32).parsebytes(head).get("Message-ID")
    basis = str(message_id).strip() if message_id else ""
    if not basis:
        basis = "sha256:" + hashlib.sha256(raw).hexdigest()
    return hashlib.sha256(f"{account}\0{folder}\0{basis}".encode()).hexdigest()


@dataclass(slots=True)
class Backoff:
    """Exponential delay between reconnection attempts: 1 s, 2 s, 4 s ... cap.

    A connection must stay up `settle` seconds (the cap unless given) after a
    good poll before the delay starts again from the beginning: a server that
    drops every connection a moment after a poll gets slower retries, not a
    reconnect a second.
    """

    initial: float = 1.0
    cap: float = 60.0
    failures: int = 0
    settle: float | None = None

    @property
    def settle_seconds(self) -> float:
        return self.cap if self.settle is None else self.settle

    def next_delay(self) -> float:
        delay = min(self.cap, self.initial * 2**self.failures)
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0


#: Faults of the transport are one family: a server restart shows as a
#: dropped connection, then refused connects, then maybe a timeout, and is
#: still one outage. Login, token, TLS, storage and internal faults each
#: need a different fix, so each is a family of its own.
FAULT_FAMILIES = {"connection": "transport", "network": "transport", "timeout": "transport"}


@dataclass(slots=True)
class FaultLog:
    """Decides which faults are worth a log line: the first of each streak.

    A streak is a run of failures of one family until a success; a mailbox
    that stays unreachable for a night logs one error, not one per retry.
    A failure of another family (the server is back but refuses the login)
    starts a new streak and is logged.
    """

    family: str | None = None
    count: int = 0
    total: int = 0

    def failed(self, kind: str) -> bool:
        """Record a failure; True when it should be logged."""
        family = FAULT_FAMILIES.get(kind, kind)
        first = family != self.family
        self.family = family
        self.count = 1 if first else self.count + 1
        self.total += 1
        return first

    def recovered(self) -> int:
        """Record a success; returns how many failures it ends (0: none)."""
        total = self.total
        self.family, self.count, self.total = None, 0, 0
        return total


@dataclass(frozen=True, slots=True)
class Token:
    """An OAuth2 access token and, when known, when it expires."""

    value: str
    expires_at: datetime | None = None

    def fresh_at(self, now: datetime, margin: timedelta = timedelta(minutes=5)) -> bool:
        return self.expires_at is None or self.expires_at - margin > now


def parse_token(text: str, now: datetime) -> Token:
    """Read what a token file or command gives: the bare token, or JSON with
    `access_token` and `expires_at` (epoch seconds or ISO 8601) or
    `expires_in` (seconds from now), as OAuth2 token endpoints answer."""
    stripped = text.strip()
    if not stripped:
        raise ValueError("no token: the file or command gave nothing")
    if not stripped.startswith("{"):
        return Token(stripped.splitlines()[0].strip())
    try:
        data = json.loads(stripped)
    except json.JSONDecodeError as exc:
        raise ValueError(f"token JSON does not parse: {exc.msg}") from exc
    value = data.get("access_token") if isinstance(data, dict) else None
    if not isinstance(value, str) or not value.strip():
        raise ValueError('token JSON has no "access_token" string')
    return Token(value.strip(), _expiry(data, now))


def _expiry(data: dict[str, object], now: datetime) -> datetime | None:
    expires_at = data.get("expires_at")
    if isinstance(expires_at, (int, float)) and not isinstance(expires_at, bool):
        return datetime.fromtimestamp(expires_at, UTC)
    if isinstance(expires_at, str):
        try:
            moment = datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(f"token expires_at is not a moment: {expires_at!r}") from exc
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    expires_in = data.get("expires_in")
    if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool):
        return now + timedelta(seconds=expires_in)
    return None


def healthy(last_success: datetime | None, poll_seconds: int, now: datetime) -> bool:
    """A mailbox is healthy when it succeeded within 3 poll intervals."""
    if last_success is None:
        return False
    return now - last_success <= timedelta(seconds=HEALTHY_INTERVALS * poll_seconds)


def idle_cycle(poll_seconds: int) -> float:
    """How long one IDLE lasts before it is ended, the folder searched (which
    also proves the connection alive and records a success) and IDLE
    re-issued: the poll interval, and never beyond the 29-minute limit."""
    return float(min(poll_seconds, IDLE_RENEW_SECONDS))
