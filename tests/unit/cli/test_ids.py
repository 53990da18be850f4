"""Ticket and row ids as people type them on the command line: what names a
ticket is read, anything else is a usage error, never a database fault."""

from __future__ import annotations

import argparse

import pytest

from daemon.cli.main import UsageError, row_id, ticket_number


@pytest.mark.parametrize(
    ("text", "number"),
    [("HD-42", 42), ("hd-42", 42), ("[HD-42]", 42), ("42", 42), ("HD-000042", 42),
     ("HD-999999999999", 999_999_999_999)],
)  # fmt: skip
def test_a_ticket_id_names_its_number(text: str, number: int) -> None:
    assert ticket_number(text, "HD") == number


@pytest.mark.parametrize(
    "text",
    [
        "HD-0",
        "HD-1000000000000",  # thirteen digits: no ticket has one
        "99999999999999999999",  # past 2**63: SQLite raised OverflowError on it
        "HD-" + "9" * 5000,  # past int()'s 4,300 digits
        "HD-4²",  # a digit, but not a decimal one: int() raised ValueError
        "HD-1_000",  # int() reads the underscore
        "HD--5",
        "SD-42",
    ],
)
def test_what_names_no_ticket_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError):
        ticket_number(text, "HD")


def test_a_row_id_is_a_positive_64_bit_integer() -> None:
    assert row_id("17") == 17
    assert row_id(str(2**63 - 1)) == 2**63 - 1
    for text in ("0", "-3", str(2**63), "9" * 5000, "x", "1_0"):
        with pytest.raises(argparse.ArgumentTypeError):
            row_id(text)
