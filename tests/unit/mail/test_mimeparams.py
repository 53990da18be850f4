"""MIME parameters split as the email package splits them, in linear time."""

from __future__ import annotations

import email
import email.message
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.mail.mimeparams import STDLIB_PARSEPARAM, parse_parameters

_PIECES = st.lists(
    st.sampled_from(['"', "\\", ";", "=", " ", "a", "name", "*0*", "utf-8''x", "\t", "b=c"]),
    max_size=30,
).map("".join)


@settings(max_examples=1000, deadline=None)
@given(st.one_of(_PIECES, st.text(max_size=40)))
def test_the_same_pieces_as_the_email_package(value: str) -> None:
    assert parse_parameters(value) == STDLIB_PARSEPARAM(value)


def test_ordinary_headers_split_as_before() -> None:
    for value in (
        'text/plain; charset="utf-8"; format=flowed',
        "attachment; filename*0*=utf-8''za%C5%BC; filename*1*=%C3%B3%C5%82%C4%87.pdf",
        'multipart/mixed; boundary="=_a;b"; x="q\\"uote;d"',
    ):
        assert parse_parameters(value) == STDLIB_PARSEPARAM(value)


def test_a_quote_that_never_closes_costs_one_pass() -> None:
    value = 'text/plain; charset="' + ";a" * 500_000  # 1 MB: hours for the original
    started = time.process_time()
    assert parse_parameters(value) == ["text/plain", 'charset="' + ";a" * 500_000]
    assert time.process_time() - started < 1.0


def test_the_email_package_reads_parameters_through_it() -> None:
    import daemon.mail.parsing  # noqa: F401  (spocd's parser installs it)

    assert email.message._parseparam is parse_parameters  # type: ignore[attr-defined]
    raw = (
        'Content-Type: multipart/mixed; x="' + ";a" * 200_000 + '"; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b--\r\n"
    ).encode()
    started = time.process_time()
    msg = email.message_from_bytes(raw)  # its own boundary lookup: 20 s before
    assert msg.get_boundary() == "b" and msg.get_payload(0).get_payload() == "hello"
    assert time.process_time() - started < 1.0
