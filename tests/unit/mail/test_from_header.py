"""A From whose encoded display name decodes to CR/LF keeps its address (issue 12.10)."""

from __future__ import annotations

import pytest

from daemon.mail.parsing import parse_message


def mail(from_: bytes) -> bytes:
    return (
        b"From: " + from_ + b"\r\nTo: helpdesk@example.com\r\nSubject: Printer\r\n"
        b"Message-ID: <m1@example.org>\r\n\r\nThe printer is jammed.\r\n"
    )


@pytest.mark.parametrize(
    ("header", "name"),
    [
        (b"=?utf-8?q?Jan=0D=0ABcc:_x@evil.example?= <jan@example.org>", "Jan Bcc: x@evil.example"),
        (b"=?utf-8?q?Kowalski=2C_Jan?= <jan@example.org>", "Kowalski, Jan"),
        (b"=?utf-8?b?SmFu?= =?utf-8?q?_Kowalski?= <jan@example.org>", "Jan Kowalski"),
        (
            b"=?utf-8?q?Jan_=22K=22_=3Cx@evil.example=3E?= <jan@example.org>",
            'Jan "K" <x@evil.example>',
        ),
    ],
)
def test_the_address_is_taken_and_the_name_neutralised(header: bytes, name: str) -> None:
    sender = parse_message(mail(header)).sender
    assert sender.addr == "jan@example.org"
    assert sender.name == name
    assert "\r" not in sender.name and "\n" not in sender.name
