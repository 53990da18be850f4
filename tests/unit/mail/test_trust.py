"""Commands are obeyed only from agents whose mail proves who sent it."""

from __future__ import annotations

import pytest

from daemon.core.domain import Address, ParsedMessage
from daemon.mail.trust import check

TRUSTED = ("mx.example.com",)


def msg(sender: str, *results: str) -> ParsedMessage:
    return ParsedMessage(
        message_id="m@x",
        subject="s",
        sender=Address(sender),
        headers={"authentication-results": tuple(results)},
    )


@pytest.mark.parametrize(
    ("results", "trusted"),
    [
        (["mx.example.com; dkim=pass header.d=example.com; spf=pass"], True),
        (["mx.example.com; dkim=pass header.i=@example.com"], True),
        (["mx.example.com; dmarc=pass (p=reject) header.from=example.com"], True),
        (
            ["mx.example.com; dkim=fail header.d=example.com; dmarc=fail header.from=example.com"],
            False,
        ),
        (["mx.example.com; spf=pass smtp.mailfrom=example.com"], False),  # SPF alone: no
        (["mx.example.com; dkim=pass header.d=evil.example"], False),  # another domain signed
        (["mx.attacker.example; dkim=pass header.d=example.com"], False),  # untrusted server
        ([], False),
        (["mx.example.com; ;; garbage ==="], False),
        # The topmost trusted header decides; a forged pass below it does not help.
        (
            [
                "mx.example.com; dkim=fail header.d=example.com",
                "mx.example.com; dkim=pass header.d=example.com",
            ],
            False,
        ),
    ],
)
def test_authentication_results_decide(results: list[str], trusted: bool) -> None:
    verdict = check(msg("anna@example.com", *results), "authentication-results", TRUSTED)
    assert verdict.trusted is trusted, verdict.reason


FORGED_PASS = "mx.example.com; dkim=pass header.d=example.com"


@pytest.mark.parametrize(
    ("real", "why"),
    [
        # The MX copies what the sender chose (MAIL FROM, HELO) into its header;
        # authres cannot parse either, and the forged pass below must not count.
        ("mx.example.com; spf=pass smtp.mailfrom=ü@evil.example", "ü@evil.example"),
        ("mx.example.com; spf=none smtp.helo=[203.0.113.5]", "[203.0.113.5]"),
        ("mx.example.com (a comment; with a semicolon) 1; spf=pass smtp.helo=[203.0.113.5]", ""),
        ("(unreadable id; spf=pass smtp.mailfrom=ü@evil.example", ""),
    ],
)
def test_an_unparsable_trusted_header_makes_the_mail_untrusted(real: str, why: str) -> None:
    verdict = check(msg("anna@example.com", real, FORGED_PASS), "authentication-results", TRUSTED)
    assert not verdict.trusted
    assert "cannot be parsed" in verdict.reason and why in verdict.reason


def test_an_unparsable_header_of_another_server_above_is_passed_over() -> None:
    verdict = check(
        msg("anna@example.com", "filter.internal; spf=pass smtp.helo=[10.0.0.1]", FORGED_PASS),
        "authentication-results",
        TRUSTED,
    )
    assert verdict.trusted, verdict.reason


def test_a_subdomain_sender_aligns_with_a_parent_signature() -> None:
    verdict = check(
        msg("anna@it.example.com", "mx.example.com; dkim=pass header.d=example.com"),
        "authentication-results",
        TRUSTED,
    )
    assert verdict.trusted


def test_trust_none_believes_from() -> None:
    assert check(msg("anna@example.com"), "none", TRUSTED).trusted
