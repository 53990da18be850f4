"""Header values of spocd's own mail: non-ASCII text as RFC 2047 words that
every reader decodes back, within the line length mail clients expect."""

from __future__ import annotations

import base64
import email
import email.policy
import re

import pytest

from daemon.app.notify import build_mime

SUBJECTS = [
    "Ł",
    "Zażółć gęślą jaźń",
    "[HD-12] Drukarka na drugim piętrze nie drukuje – proszę o pilną pomoc, księgowość czeka",
    "Сервер не отвечает 🙁 " * 6,
    "a" * 40 + "ż" * 120,
]


def subject_of(raw: bytes) -> tuple[str, list[str]]:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    lines = re.search(r"^Subject: .*?(?=\r\n\S)", head, re.S | re.M)
    assert lines is not None
    return str(msg["Subject"]), lines.group(0).split("\r\n")


@pytest.mark.parametrize("subject", SUBJECTS)
def test_a_non_ascii_subject_reads_back_whole_in_lines_of_78(subject: str) -> None:
    raw = build_mime([("Subject", subject)], "text", "<p>html</p>")
    decoded, lines = subject_of(raw)
    assert decoded == subject
    assert all(len(line) <= 78 for line in lines)
    assert all(line.startswith(" ") for line in lines[1:])


@pytest.mark.parametrize("subject", SUBJECTS)
def test_every_word_is_whole_utf8_on_its_own(subject: str) -> None:
    """A reader that decodes word by word (many do) never sees half a character."""
    raw = build_mime([("Subject", subject)], "text", "<p>html</p>")
    _, lines = subject_of(raw)
    words = re.findall(r"=\?utf-8\?b\?([A-Za-z0-9+/=]*)\?=", "".join(lines))
    assert words
    assert "".join(base64.b64decode(w).decode("utf-8") for w in words) == subject
    assert all(len(f"=?utf-8?b?{w}?=") <= 75 for w in words)


def test_ascii_stays_as_it_is() -> None:
    raw = build_mime([("Subject", "[HD-3] Printer")], "text", "<p>html</p>")
    assert b"\r\nSubject: [HD-3] Printer\r\n" in b"\r\n" + raw
