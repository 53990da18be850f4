"""Header values to text: RFC 2047 words in linear time, bad charset labels."""

from __future__ import annotations

import email.errors
import email.header
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.mail.headers import RAW_HEADER_LIMIT, cut_raw, decode_header_value, decode_words

# Pieces that make encoded words, broken ones, folds and odd line breaks.
_PIECES = (
    "=?", "?=", "?", "=", "q", "B", "utf-8", "iso-8859-2", " ", "\t", "\r\n ", "\r",
    "\u2028", "a", "_", "=C5=BC", "YWJj", "ż", "=?utf-8?q?", "=?utf-8?b?xb8=?=",
    " =?utf-8?Q?a?= ", "=?x?q?a",
)  # fmt: skip


def _stdlib(value: str) -> object:
    try:
        return email.header.decode_header(value)
    except email.errors.HeaderParseError:
        return "error"


def _ours(value: str) -> object:
    try:
        return decode_words(value)
    except email.errors.HeaderParseError:
        return "error"


@pytest.mark.parametrize(
    "value",
    [
        "plain subject",
        "=?utf-8?Q?Zg=C5=82oszenie?= nr 5",
        "Re: =?iso-8859-2?B?rPPzdw==?= =?iso-8859-2?Q?_i_=BF=F3=B3w?=",
        "=?utf-8?b?xbx=?=\r\n =?utf-8?b?w7M=?=",  # one character split across words
        "=?utf-8?q?a?=  =?utf-8?q?b?= c =?utf-8?q?d?=",
        "=?UTF-8?Q?a?==?utf-8?Q?b?=",
        "=?utf-8?b?YWJj?=",
        "=?utf-8?b?!!!?=",  # broken base64
        "=?utf-8?x?not a word?=",
    ],
)
def test_words_decode_exactly_as_the_email_package_decodes_them(value: str) -> None:
    assert _ours(value) == _stdlib(value)


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=14).map("".join))
def test_any_mix_of_word_pieces_decodes_as_the_email_package_does(value: str) -> None:
    # The documented difference: a word broken by a line break is no word.
    lines_have_words = any(email.header.ecre.search(line) for line in value.splitlines())
    if lines_have_words or not email.header.ecre.search(value):
        assert _ours(value) == _stdlib(value)


def test_many_encoded_words_decode_in_linear_time() -> None:
    # 20,000 words each opening a word that never closes: the stdlib rescans
    # the rest of the line from each of them (about 20 s); one pass is ~1 ms.
    unclosed = "=?x?q?a " * 20_000
    words = " ".join(["=?utf-8?Q?a?="] * 20_000)
    started = time.perf_counter()
    assert decode_words(unclosed) == [(unclosed, None)]
    assert decode_words(words) == [(b"a" * 20_000, "utf-8")]
    assert time.perf_counter() - started < 1.0


def test_a_huge_value_is_read_only_up_to_the_raw_limit() -> None:
    subject = " ".join(["=?utf-8?Q?a?="] * 100_000)  # 1.4 MB
    started = time.perf_counter()
    text = decode_header_value(subject)
    assert time.perf_counter() - started < 0.5
    # Whole words only, and more than the 3,992 characters a header keeps.
    assert set(text) == {"a"}
    assert 3992 < len(text) <= RAW_HEADER_LIMIT


def test_cut_raw_keeps_whole_words() -> None:
    assert cut_raw("short", 10) == "short"
    assert cut_raw("one two three", 10) == "one two"
    assert cut_raw("<a@x>, <b@y>, <c@z>", 15, separator=",") == "<a@x>, <b@y>"
    assert cut_raw("x" * 20, 10) == "x" * 10  # no separator: cut hard


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("=?undefined?Q?drukarka_nie_drukuje?=", "drukarka nie drukuje"),
        ("=?ascii\0?Q?drukarka?=", "drukarka"),
        ("=?x-unknown?Q?zg=C5=82oszenie?=", "zgłoszenie"),
    ],
)
def test_a_charset_label_no_codec_takes_falls_back_to_a_guess(value: str, text: str) -> None:
    assert decode_header_value(value) == text


def test_a_bad_hint_for_raw_8bit_bytes_is_passed_over() -> None:
    raw = "zg\udcc5\udc82oszenie"  # UTF-8 bytes, as compat32 carries them
    assert decode_header_value(raw, "undefined") == "zgłoszenie"
    assert decode_header_value("\udcbfaba", "ascii\0") == "żaba"  # cp1250
