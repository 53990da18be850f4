"""May this message's commands be obeyed? (`[agents] trust`)

With "authentication-results", the topmost Authentication-Results header
from a trusted authserv-id must say dkim=pass for the From domain (or a
parent of it, RFC 6376 alignment) or dmarc=pass for it. Only the topmost
trusted header counts: the receiving MX adds its own above the rest, and a
sender can forge any header below it (RFC 8601 §5). So a header that cannot
be parsed is not skipped: if it is (or may be) the trusted server's, the mail
is untrusted, because what the MX writes carries sender-controlled values
(`smtp.mailfrom=ü@evil.example`, `smtp.helo=[203.0.113.5]`) that can break
the parse on purpose and leave only the forged header below to be read. The
header is parsed by the `authres` package.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import authres

from daemon.core.domain import ParsedMessage


@dataclass(frozen=True, slots=True)
class Verdict:
    trusted: bool
    reason: str


def _aligned(domain: str, signer: str) -> bool:
    domain, signer = domain.lower().rstrip("."), signer.lower().lstrip("@").rstrip(".")
    return domain == signer or domain.endswith("." + signer)


def check(msg: ParsedMessage, mode: str, trusted_ids: Sequence[str]) -> Verdict:
    """Whether the sender's identity is proven enough to obey commands."""
    if msg.sender is None:
        return Verdict(False, "no sender")
    if mode == "none":
        return Verdict(True, "trust = none: From alone")
    domain = msg.sender.domain
    ids = {i.lower() for i in trusted_ids}
    for value in msg.header_all("authentication-results"):
        try:
            header = _parse(value)
        except Exception as exc:  # authres raises its own SyntaxError and others on junk
            authserv_id = _authserv_id(value)
            if authserv_id is not None and authserv_id not in ids:
                continue  # another server's header, above the trusted one: not ours to read
            return Verdict(
                False,
                f"the topmost Authentication-Results header from "
                f"{authserv_id or 'an unreadable authserv-id'} cannot be parsed "
                f"({_first_line(exc)}): {value[:200]!r}",
            )
        if (header.authserv_id or "").lower() not in ids:
            continue
        return _judge(header, domain)
    return Verdict(False, "no Authentication-Results header from a trusted server")


#: How many `;` an unparsable header's authserv-id is looked for before: the
#: id comes first, so a hostile header with thousands of them costs no more.
_ID_TRIES = 5


def _parse(value: str) -> authres.AuthenticationResultsHeader:
    return authres.AuthenticationResultsHeader.parse(f"Authentication-Results: {value}")


def _authserv_id(value: str) -> str | None:
    """The authserv-id of a header whose results do not parse, or None.

    The id (with its comments and version) is everything before some `;`; a
    comment may hold one, so each cut is offered to authres with no results.
    """
    cut = -1
    for _ in range(_ID_TRIES):
        cut = value.find(";", cut + 1)
        if cut == -1:
            return None
        try:
            return (_parse(f"{value[:cut]}; none").authserv_id or "").lower() or None
        except Exception:  # the cut fell inside a comment, or the id itself is junk
            continue
    return None


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]


def _judge(header: authres.AuthenticationResultsHeader, domain: str) -> Verdict:
    for result in header.results:
        props = {(p.type, p.name): str(p.value) for p in result.properties}
        if result.method == "dkim" and result.result == "pass":
            signer = props.get(("header", "d")) or props.get(("header", "i"), "")
            if signer and _aligned(domain, signer.rpartition("@")[2] or signer):
                return Verdict(True, f"dkim=pass for {signer} ({header.authserv_id})")
        if result.method == "dmarc" and result.result == "pass":
            from_domain = props.get(("header", "from"), "")
            if from_domain.lower() == domain:
                return Verdict(True, f"dmarc=pass for {domain} ({header.authserv_id})")
    return Verdict(False, f"{header.authserv_id} reports no dkim or dmarc pass for {domain}")
