"""A message made ready ahead of its transaction: parsed, sanitised, and the
rules' decision taken for it when it looks like a new request.

Kept apart from the pipeline so a parsing helper loads only what parsing
and the rules need: batch ingest forks its helpers before the rest of spocd
(the database layer, templates, the pipeline's stages) is loaded, and they
parse the first batches on the second core while this process loads.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from daemon.core.domain import Channel, ParsedMessage
from daemon.core.errors import NotMail
from daemon.rules import ruleset as rules


@dataclass(frozen=True, slots=True)
class Prepared:
    """A message parsed, and the rules' decision for it as a requester's new
    mail, ahead of its transaction: batch ingest does both in a second
    process. The decision counts only under the same rules version, and only
    where the pipeline would decide the same (no escalation, no thread)."""

    msg: ParsedMessage | NotMail
    decision: rules.Decision | None = None
    rules_version: str = ""


def prepare_many(
    raws: list[bytes],
    max_attachment_bytes: int,
    ruleset: rules.Rules | None,
    max_parse_seconds: float | None = None,
) -> list[Prepared]:
    """Parse a batch, and decide for the mail that looks like a new request
    (a reply's decision would go unused). Parsing (mail-parser) loads at
    the first batch: a batch ingest's own process never parses, its helpers do."""
    from daemon.mail.parsing import PARSE_SECONDS, parse_many

    seconds = PARSE_SECONDS if max_parse_seconds is None else max_parse_seconds
    return [
        decide_ahead(parsed, ruleset) for parsed in parse_many(raws, max_attachment_bytes, seconds)
    ]


def decide_ahead(parsed: ParsedMessage | NotMail, ruleset: rules.Rules | None) -> Prepared:
    decision = None
    if (
        ruleset is not None
        and isinstance(parsed, ParsedMessage)
        and not (parsed.in_reply_to or parsed.references)
    ):
        try:
            # Without the trace: only `spocd rules test` shows it, and it
            # is most of what would cross back from the parser process.
            decision = replace(rules.decide(ruleset, parsed, str(Channel.EMAIL)), trace=())
        except Exception:  # decided again in the transaction, where it is recorded
            decision = None
    return Prepared(parsed, decision, ruleset.version if ruleset else "")
