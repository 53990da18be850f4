"""How a text ends, read as agents and requesters sign their mail."""

from __future__ import annotations

import pytest

from daemon.mail.signoff import Ending, closing_name, ending, signer_name

SIGNED = Ending(closing=True, named=True)
CLOSING_ONLY = Ending(closing=True, named=False)
UNSIGNED = Ending(closing=False, named=False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Proszę zrestartować komputer.\n\nPozdrawiam serdecznie,\nAnna Zielińska", SIGNED),
        ("Proszę zrestartować komputer.\n\nPozdrawiam\nAnna", SIGNED),
        ("Proszę zrestartować komputer.\n\nZ poważaniem\nAnna Zielińska\nDział IT", SIGNED),
        ("Proszę sprawdzić.\n\nZ powazaniem,\nAnna", SIGNED),  # no Polish letters
        ("Proszę sprawdzić.\n\nŁączę pozdrowienia\nAnna", SIGNED),
        ("Please restart the PC.\n\nKind regards,\nTom Baker", SIGNED),
        ("Please restart the PC.\n\nRegards, Tom", SIGNED),  # the name beside it
        ("Please restart the PC.\n\nBest,\nTom\nService Desk\n+48 22 123 45 67", SIGNED),
        ("Please restart the PC.\n\n-- \nTom Baker\nSecond line", SIGNED),  # a client's block
        ("Proszę zrestartować komputer.\n\nPozdrawiam", CLOSING_ONLY),
        ("Please restart the PC.\nCheers!", CLOSING_ONLY),
        ("Proszę zrestartować komputer i dać znać, czy pomogło.", UNSIGNED),
        ("Best way is to restart the PC.", UNSIGNED),  # a sentence that starts like one
        ("Regards, it works now and I close this.", UNSIGNED),
        ("", UNSIGNED),
    ],
)
def test_how_a_reply_ends(text: str, expected: Ending) -> None:
    assert ending(text) == expected


def test_a_closing_quoted_higher_up_is_not_the_end() -> None:
    text = (
        "Anna wrote to the vendor:\nKind regards,\nAnna\n\n"
        + "They answered that the licence server was moved to a new address last week, "
        "so every client needs the new address in its settings before it can start."
    )
    assert ending(text) == UNSIGNED


def test_the_name_beside_a_closing() -> None:
    assert closing_name("Regards, Tom Baker") == "Tom Baker"
    assert closing_name("Pozdrawiam,") == ""
    assert closing_name("Thanks for the quick fix") is None


@pytest.mark.timeout(5)
def test_a_line_built_to_make_the_pattern_backtrack_is_not_read() -> None:
    """The formula may be followed by free text: a 10 MB line that starts like
    a closing would cost the pattern seconds of backtracking (0.1 s for each
    100 KB); it is not a closing, by its length alone."""
    hostile = "pozdrawiam" + "a" * 10_000_000 + "." + "b" * 100
    assert ending("Proszę sprawdzić.\n" + hostile) == UNSIGNED
    assert closing_name(hostile) is None


@pytest.mark.parametrize(
    ("display", "name"),
    [
        ("Piotr Wiśniewski", "Piotr Wiśniewski"),
        ('"Wiśniewski, Piotr"', "Wiśniewski, Piotr"),
        ("  Piotr \n  Wiśniewski ", "Piotr Wiśniewski"),  # one line
        ("piotr@example.com", ""),  # an address is no name
        ("", ""),
        ("---", ""),
        ("P" * 65, ""),
    ],
)
def test_the_name_an_agent_signs_with_comes_from_their_from_header(display: str, name: str) -> None:
    assert signer_name(display) == name
