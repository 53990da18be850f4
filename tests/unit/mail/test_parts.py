"""Attachment file names read from the raw MIME parameters."""

from __future__ import annotations

import email
import email.message

import pytest

from daemon.mail.parts import filename_of


def part(headers: str) -> email.message.Message:
    raw = headers.encode("utf-8") + b"\r\n\r\naGVsbG8=\r\n"
    return email.message_from_bytes(raw)


@pytest.mark.parametrize(
    ("headers", "name"),
    [
        # raw 8-bit UTF-8, as many clients send it
        (
            "Content-Type: application/pdf\r\n"
            'Content-Disposition: attachment; filename="zażółć gęślą.pdf"',
            "zażółć gęślą.pdf",
        ),
        ('Content-Type: application/pdf; name="faktura żółta.pdf"', "faktura żółta.pdf"),
        # RFC 2231 and plain ASCII names as before
        (
            "Content-Type: application/pdf\r\n"
            "Content-Disposition: attachment; filename*=utf-8''za%C5%BC%C3%B3%C5%82%C4%87.pdf",
            "zażółć.pdf",
        ),
        (
            "Content-Type: application/pdf\r\n"
            "Content-Disposition: attachment;\r\n filename*0*=utf-8''za%C5%BC;\r\n filename*1=.pdf",
            "zaż.pdf",
        ),
        ('Content-Disposition: attachment; filename="report.pdf"', "report.pdf"),
        ("Content-Type: text/plain", None),
    ],
)
def test_file_names_read_as_written(headers: str, name: str | None) -> None:
    assert filename_of(part(headers)) == name


def test_raw_8bit_name_in_another_charset_is_guessed() -> None:
    raw = b'Content-Disposition: attachment; filename="\xbfaba.txt"\r\n\r\nx\r\n'  # cp1250
    assert filename_of(email.message_from_bytes(raw)) == "żaba.txt"


@pytest.mark.parametrize("charset", ["undefined", "x-unknown"])
def test_rfc2231_name_in_a_charset_no_codec_takes_falls_back(charset: str) -> None:
    headers = f"Content-Disposition: attachment; filename*={charset}''report%2Epdf"
    assert filename_of(part(headers)) == "report.pdf"
