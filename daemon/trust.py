"""May this message's commands be obeyed? (`[agents] trust`)

With "authentication-results", the topmost Authentication-Results header
from a trusted authserv-id must say dkim=pass for the From domain (or a
parent of it, RFC 6376 alignment) or dmarc=pass for it. Only the topmost
trusted header counts: the receiving MX adds its own above the rest, and a
sender can forge any header below it (RFC 8601 §5). The header is parsed by
the `authres` package.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import authres

from daemon.domain import ParsedMessage


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
            header = authres.AuthenticationResultsHeader.parse(f"Authentication-Results: {value}")
        except Exception:  # authres raises its own SyntaxError and others on junk
            continue
        if (header.authserv_id or "").lower() not in ids:
            continue
        return _judge(header, domain)
    return Verdict(False, "no Authentication-Results header from a trusted server")


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
