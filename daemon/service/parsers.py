"""The daemon's parser process: parsing, sanitising and the rules' decision
for new requests, done beside `spocd run` rather than in it.

The daemon accepts mail on an asyncio loop, writes the queue, runs the
pipeline and sends, all in one process under one GIL. Parsing and the rules'
decision are about half of the pipeline thread's work, and every slice of it
was a slice the SMTP loop waited for. A spawned process (not forked: the
daemon has threads) does that work now. It reads the rules file itself and
follows the daemon's rules version; a decision made under another version
is made again in the pipeline (`Pipeline.process` checks), so a reload is
never half applied. When the helper dies or hangs with a group, each of its
messages is tried alone in a fresh helper, and the one it dies on is
quarantined: a message that crashes the parser stops nothing else. When
the helper cannot answer at all (it could not start) the group is parsed in
the daemon, as before, and the helper is tried again a little later.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from daemon.app.prepare import Prepared, prepare_many
from daemon.config.files import read_config_file
from daemon.config.settings import LimitsSettings
from daemon.core.errors import NotMail
from daemon.rules import ruleset as rules_mod
from daemon.service.children import spawn_pool, stop_pool

log = logging.getLogger("spocd.worker")

#: After a failure, parse in the daemon this long before trying a helper again.
RETRY_SECONDS = 30.0


class ParserProcess:
    """One helper process that turns raw messages into `Prepared` ones."""

    def __init__(
        self,
        retry_seconds: float = RETRY_SECONDS,
        slack_seconds: float = 30.0,
        job: Callable[..., list[Prepared]] | None = None,
    ) -> None:
        self.retry_seconds = retry_seconds
        #: Time a helper gets beyond the messages' parse budgets.
        self.slack_seconds = slack_seconds
        #: What the helper runs (`_prepare`; a test gives one that crashes).
        self.job = job or _prepare
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._resume_at = 0.0
        # The inbound worker and each IMAP intake thread prepare through it.
        self._lock = threading.Lock()

    def start(self) -> None:
        """Spawn the helper now (it imports and reads the rules while the
        daemon starts), not when the first message arrives."""
        try:
            self._executor().submit(_ready)
        except Exception as exc:  # no processes allowed here: parse in the daemon
            self._failed(exc)

    def prepare(
        self, raws: list[bytes], rules_path: Path, rules_version: str, limits: LimitsSettings
    ) -> list[Prepared] | None:
        """The messages prepared by the helper under the rules of
        `rules_version` (read from `rules_path`), or None when it cannot (the
        caller parses them itself)."""
        if not raws or time.monotonic() < self._resume_at:
            return None
        args = (str(rules_path.absolute()), rules_version, limits)
        # Each message has its own parse budget; the rest is slack for a
        # helper that is still starting.
        timeout = 2 * self.slack_seconds + limits.max_parse_seconds * len(raws)
        try:
            return self._run(raws, args, timeout)
        except (BrokenProcessPool, TimeoutError):
            return self._one_by_one(raws, args)
        except Exception as exc:  # could not be reached, or answered nonsense
            self._failed(exc)
            return None

    def _run(self, raws: list[bytes], args: tuple[str, str, LimitsSettings], timeout: float) -> Any:
        rules_path, rules_version, limits = args
        try:
            future = self._executor().submit(
                self.job,
                raws,
                rules_path,
                rules_version,
                limits.max_attachment_bytes,
                limits.max_parse_seconds,
            )
            return future.result(timeout=timeout)
        except BaseException:
            self.close()  # a helper that hangs is killed, one that died is gone
            raise

    def _one_by_one(
        self, raws: list[bytes], args: tuple[str, str, LimitsSettings]
    ) -> list[Prepared] | None:
        """The helper died or hung with a group: each message again alone,
        in a helper that first answers. A message it dies or hangs on alone
        is answered as unreadable, so the pipeline quarantines it with the
        reason, instead of parsing it in the daemon, where it would take the
        daemon down with it, again after every restart. A helper that does
        not even answer is a failure of its own: the daemon parses."""
        out: list[Prepared] = []
        limit = args[2].max_parse_seconds
        for raw in raws:
            try:
                self._executor().submit(_ready).result(timeout=60.0)
            except Exception as exc:
                self._failed(exc)
                return None
            try:
                [one] = self._run([raw], args, limit + self.slack_seconds)
            except (BrokenProcessPool, TimeoutError) as exc:
                why = "hung" if isinstance(exc, TimeoutError) else "died"
                log.error(
                    f"the parser process {why} reading one message; it is quarantined",
                    extra={"bytes": len(raw)},
                )
                one = Prepared(NotMail(f"the parser process {why} reading this message"))
            except Exception as exc:
                self._failed(exc)
                return None
            out.append(one)
        return out

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            stop_pool(pool)

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = spawn_pool()
            return self._pool

    def _failed(self, exc: BaseException) -> None:
        log.warning(
            "parser process failed; parsing in the daemon for now",
            extra={"error": str(exc) or type(exc).__name__, "retry_in_s": self.retry_seconds},
        )
        self.close()
        self._resume_at = time.monotonic() + self.retry_seconds


# --- in the helper -----------------------------------------------------------------------

#: The rules the helper decides with, and the version it last loaded for.
_RULES: rules_mod.Rules | None = None
_ASKED: str | None = None


def _ready() -> bool:
    return True


def _prepare(
    raws: list[bytes],
    rules_path: str,
    rules_version: str,
    max_attachment_bytes: int,
    max_parse_seconds: float,
) -> list[Prepared]:
    global _RULES, _ASKED
    if rules_version != _ASKED:
        # Read once per version the daemon asks for: a file changed again
        # since gives another version, whose decisions the daemon ignores.
        _ASKED = rules_version
        try:
            _RULES = rules_mod.load_rules(read_config_file(rules_path), rules_path)
        except Exception:  # unreadable or invalid: the daemon decides itself
            _RULES = None
    return prepare_many(raws, max_attachment_bytes, _RULES, max_parse_seconds)
