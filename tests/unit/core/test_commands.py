"""Agent command lines at the top of a reply: arguments, block boundary, conflicts."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemon.core.commands import COMMAND_NAMES, Command, CommandBlock, is_command_like, parse
from daemon.core.text import own_text

REPLIES = Path(__file__).resolve().parents[2] / "data" / "replies"
NOTE = "\n\nThe note or reply text."


# --- each command with good arguments ---------------------------------------------------

GOOD = [
    # (line as written, name, normalised argument)
    ("#assign me", "assign", "me"),
    ("#assign ME", "assign", "me"),
    ("#assign anna@example.com", "assign", "anna@example.com"),
    ("#assign Anna@Example.COM", "assign", "anna@example.com"),
    ("#assign Anna Kowalczyk <anna@example.com>", "assign", "anna@example.com"),
    ("#assign anna@example.com <mailto:anna@example.com>", "assign", "anna@example.com"),
    ("#assign anna@example.com.", "assign", "anna@example.com"),
    ("#status new", "status", "new"),
    ("#status assigned", "status", "assigned"),
    ("#status in_progress", "status", "in_progress"),
    ("#status In Progress", "status", "in_progress"),
    ("#status in-progress", "status", "in_progress"),
    ("#status pending", "status", "pending"),
    ("#status RESOLVED", "status", "resolved"),
    ("#status closed", "status", "closed"),
    ("#status cancelled", "status", "cancelled"),
    ("#status canceled", "status", "cancelled"),
    ("#status=pending", "status", "pending"),
    ("#priority P1", "priority", "P1"),
    ("#priority p2", "priority", "P2"),
    ("#priority 3", "priority", "P3"),
    ("#priority P 4", "priority", "P4"),
    ("#priority: P5", "priority", "P5"),
    ("#PRIORITY p1", "priority", "P1"),
    ("#impact H", "impact", "high"),
    ("#impact m", "impact", "medium"),
    ("#impact L", "impact", "low"),
    ("#impact High", "impact", "high"),
    ("#impact medium", "impact", "medium"),
    ("#impact LOW", "impact", "low"),
    ("#impact wysoki", "impact", "high"),
    ("#impact średni", "impact", "medium"),
    ("#impact sredni", "impact", "medium"),
    ("#impact niski", "impact", "low"),
    ("#urgency h", "urgency", "high"),
    ("#urgency wysoka", "urgency", "high"),
    ("#urgency Średnia", "urgency", "medium"),
    ("#urgency srednia", "urgency", "medium"),
    ("#urgency niska", "urgency", "low"),
    ("#urgency low", "urgency", "low"),
    ("#category printer", "category", "printer"),
    ("#category  network   printer ", "category", "network printer"),
    ("#category Drukarki sieciowe", "category", "Drukarki sieciowe"),
    ("#group telephony", "group", "telephony"),
    ("#group second-line", "group", "second-line"),
    ("#pending", "pending", None),
    ("#internal", "internal", None),
    ("#close", "close", None),
    ("#Close", "close", None),
    ("#cancel", "cancel", None),
    ("#reopen", "reopen", None),
    ("#REOPEN", "reopen", None),
    ("#resolve fixed", "resolve", "fixed"),
    ("#resolve no-fault-found", "resolve", "no-fault-found"),
    ("#resolve: workaround", "resolve", "workaround"),
    ("#merge HD-42", "merge", "42"),
    ("#merge hd-0042", "merge", "42"),
    ("#merge 42", "merge", "42"),
    ("#merge [HD-42]", "merge", "42"),
    ("#merge HD42", "merge", "42"),
    ("#merge [hd-7]", "merge", "7"),
    ("#workaround", "workaround", None),
    ("#Workaround", "workaround", None),
    ("#link HD-7", "link", "7"),
    ("#link hd-007", "link", "7"),
    ("#link [HD-7]", "link", "7"),
    ("#Link 7", "link", "7"),
    ("#unlink", "unlink", None),
]


@pytest.mark.parametrize(("line", "name", "arg"), GOOD)
def test_good_argument(line: str, name: str, arg: str | None) -> None:
    block = parse(line + NOTE)
    assert block.errors == ()
    assert block.commands == (Command(name, arg, 1, line.strip()),)
    assert block.rest == NOTE.lstrip("\n")


def test_every_command_has_a_good_example() -> None:
    assert (
        {name for _, name, _ in GOOD}
        == COMMAND_NAMES
        == {
            "assign",
            "status",
            "priority",
            "impact",
            "urgency",
            "category",
            "group",
            "pending",
            "internal",
            "resolve",
            "close",
            "cancel",
            "reopen",
            "merge",
            "workaround",
            "link",
            "unlink",
        }
    )


# --- each command with a missing or bad argument ----------------------------------------

BAD = [
    # (line as written, error code, the reason given to the agent)
    ("#assign", "missing_argument", "#assign needs an agent's address or 'me'"),
    (
        "#assign anna",
        "bad_argument",
        "#assign needs an address like anna@example.com or 'me', not 'anna'",
    ),
    (
        "#assign anna@example.com piotr@example.com",
        "bad_argument",
        "#assign needs one address only",
    ),
    ("#status", "missing_argument", "#status needs a state"),
    (
        "#status frozen",
        "bad_argument",
        "#status needs one of new, assigned, in_progress, pending, resolved, closed, cancelled;"
        " not 'frozen'",
    ),
    (
        "#status open",
        "bad_argument",
        "#status needs one of new, assigned, in_progress, pending, resolved, closed, cancelled;"
        " not 'open'",
    ),
    ("#priority", "missing_argument", "#priority needs a priority P1..P5"),
    ("#priority P9", "bad_argument", "#priority needs P1, P2, P3, P4 or P5, not 'P9'"),
    ("#priority P0", "bad_argument", "#priority needs P1, P2, P3, P4 or P5, not 'P0'"),
    ("#priority 12", "bad_argument", "#priority needs P1, P2, P3, P4 or P5, not '12'"),
    ("#priority high", "bad_argument", "#priority needs P1, P2, P3, P4 or P5, not 'high'"),
    ("#impact", "missing_argument", "#impact needs H, M or L"),
    (
        "#impact x",
        "bad_argument",
        "#impact needs H, M or L (high, medium, low; wysoki, średni, niski), not 'x'",
    ),
    (
        "#urgency bardzo",
        "bad_argument",
        "#urgency needs H, M or L (high, medium, low; wysoki, średni, niski), not 'bardzo'",
    ),
    ("#urgency", "missing_argument", "#urgency needs H, M or L"),
    ("#category", "missing_argument", "#category needs a category name"),
    ("#group", "missing_argument", "#group needs a group name"),
    (
        "#pending now",
        "unexpected_argument",
        "#pending takes no argument; write any note below the commands",
    ),
    (
        "#internal note",
        "unexpected_argument",
        "#internal takes no argument; write any note below the commands",
    ),
    (
        "#close thanks",
        "unexpected_argument",
        "#close takes no argument; write any note below the commands",
    ),
    (
        "#close.",
        "unexpected_argument",
        "#close takes no argument; write any note below the commands",
    ),
    (
        "#cancel duplicate of HD-41",
        "unexpected_argument",
        "#cancel takes no argument; write any note below the commands",
    ),
    (
        "#reopen please",
        "unexpected_argument",
        "#reopen takes no argument; write any note below the commands",
    ),
    ("#resolve", "missing_argument", "#resolve needs a resolution code (like #resolve fixed)"),
    (
        "#resolve fixed the printer",
        "bad_argument",
        "#resolve needs one resolution code word (like #resolve fixed), not 'fixed the printer';"
        " write the resolution note below the commands",
    ),
    ("#merge", "missing_argument", "#merge needs the ticket that stays"),
    ("#merge 42x", "bad_argument", "#merge needs the ticket that stays, like HD-42, not '42x'"),
    ("#merge SD-42", "bad_argument", "#merge needs the ticket that stays, like HD-42, not 'SD-42'"),
    ("#merge HD-0", "bad_argument", "#merge needs the ticket that stays, like HD-42, not 'HD-0'"),
    (
        "#merge HD-42 HD-43",
        "bad_argument",
        "#merge needs the ticket that stays, like HD-42, not 'HD-42 HD-43'",
    ),
    (  # past twelve digits a number names no ticket (nor fits the database's integer)
        "#merge HD-99999999999999999999",
        "bad_argument",
        "#merge needs the ticket that stays, like HD-42, not 'HD-99999999999999999999'",
    ),
    ("#link", "missing_argument", "#link needs the major incident's ticket (like #link HD-7)"),
    (
        "#link HD-1000000000000",
        "bad_argument",
        "#link needs the major incident's ticket, like HD-7, not 'HD-1000000000000'",
    ),
    (
        "#link SD-7",
        "bad_argument",
        "#link needs the major incident's ticket, like HD-7, not 'SD-7'",
    ),
    ("#unlink HD-7", "unexpected_argument", "#unlink takes no argument"),
    ("#foo", "unknown", "unknown command #foo"),
    ("#zamknij", "unknown", "unknown command #zamknij"),
    ("#assignme", "unknown", "unknown command #assignme"),
    ("#priority2", "unknown", "unknown command #priority2"),
]


@pytest.mark.parametrize(("line", "code", "reason"), BAD)
def test_bad_argument(line: str, code: str, reason: str) -> None:
    block = parse(line + NOTE)
    assert block.commands == ()
    assert not block.ok
    [error] = block.errors
    assert (error.line, error.raw, error.code) == (1, line, code)
    assert error.reason.startswith(reason)
    assert block.rest == NOTE.lstrip("\n")  # the text is found even when commands are bad


def test_unknown_command_names_the_known_ones() -> None:
    [error] = parse("#frobnicate").errors
    assert "#assign" in error.reason and "#merge" in error.reason


# --- where the block ends ---------------------------------------------------------------

BOUNDARY = [
    # (body, commands as "name arg", rest, why)
    ("", [], "", "empty body"),
    ("Hello\n#close", [], "Hello\n#close", "commands only count at the top"),
    ("\n\n#close\nThanks", ["close"], "Thanks", "leading blank lines are skipped"),
    (
        "#assign me\n\n#pending\n\nCould you send a screenshot?",
        ["assign me", "pending"],
        "Could you send a screenshot?",
        "blank lines between commands (HTML paragraphs) do not end the block",
    ),
    ("#1 printer is fixed\n#close", [], "#1 printer is fixed\n#close", "# + digit is text"),
    ("# Summary\ntext", [], "# Summary\ntext", "# + space (a heading) is text"),
    ("#\ntext", [], "#\ntext", "a lone # is text"),
    ("##close", [], "##close", "## is text"),
    ("  #close\nDone", ["close"], "Done", "indented command line"),
    ("\ufeff#close\nDone", ["close"], "Done", "byte order mark before the command"),
    ("\u00a0#pending\n\u00a0\nQuestion?", ["pending"], "Question?", "non-breaking spaces"),
    ("#close\r\n\r\nThanks\r\n", ["close"], "Thanks\n", "CRLF body"),
    (
        "#internal\nCalled the user.\n#close",
        ["internal"],
        "Called the user.\n#close",
        "a command line after the text is text",
    ),
    ("#close", ["close"], "", "commands only"),
    ("#pending\n> quoted", ["pending"], "> quoted", "a quote ends the block"),
    (
        "#assign me\nHi John,\n\nlooking into it.\n\n",
        ["assign me"],
        "Hi John,\n\nlooking into it.\n\n",
        "the rest is kept as written",
    ),
    ("#priority P2 \t\nx", ["priority P2"], "x", "trailing whitespace on a command line"),
]


def _described(block: CommandBlock) -> list[str]:
    return [c.name if c.arg is None else f"{c.name} {c.arg}" for c in block.commands]


@pytest.mark.parametrize(
    ("body", "commands", "rest", "why"), BOUNDARY, ids=[row[3] for row in BOUNDARY]
)
def test_block_boundary(body: str, commands: list[str], rest: str, why: str) -> None:
    block = parse(body)
    assert block.errors == ()
    assert _described(block) == commands
    assert block.rest == rest


def test_line_numbers_count_in_the_body() -> None:
    block = parse("\n#assign me\n\n#priority P9\n#close\n\nDone.")
    assert [c.line for c in block.commands] == [2, 5]
    assert [(e.line, e.raw) for e in block.errors] == [(4, "#priority P9")]


# --- conflicts ---------------------------------------------------------------------------

CONFLICTS = [
    # (body, [(line, reason)] of the errors; [] when the block is fine)
    (
        "#resolve fixed\n#cancel" + NOTE,
        [(2, "#cancel conflicts with #resolve fixed on line 1: a reply changes the status once")],
    ),
    (
        "#status pending\n#status in_progress",
        [(2, "#status in_progress conflicts with #status pending on line 1: give one #status")],
    ),
    (
        "#priority P2\n#priority P3",
        [(2, "#priority P3 conflicts with #priority P2 on line 1: give one #priority")],
    ),
    ("#status pending\n#status pending", []),  # an exact repeat counts once
    ("#priority P2\n#priority p2", []),  # the same after normalising
    (
        "#assign me\n#assign anna@example.com",
        [(2, "#assign anna@example.com conflicts with #assign me on line 1: give one #assign")],
    ),
    ("#resolve fixed\n#close" + NOTE, []),  # verified by phone: resolve, then close
    ("#link HD-7\n#assign me" + NOTE, []),
    ("#link HD-7\n#resolve fixed" + NOTE, []),
    (
        "#link HD-7\n#unlink",
        [(2, "#unlink conflicts with #link 7 on line 1: link or unlink, not both")],
    ),
    (
        "#link HD-7\n#link HD-8",
        [(2, "#link 8 conflicts with #link 7 on line 1: give one #link")],
    ),
    ("#close\n#resolve fixed" + NOTE, []),
    (
        "#pending\n#resolve fixed" + NOTE,
        [(2, "#resolve fixed conflicts with #pending on line 1: a reply changes the status once")],
    ),
    (
        "#reopen\n#status pending",
        [(2, "#status pending conflicts with #reopen on line 1: a reply changes the status once")],
    ),
    (
        "#pending\n#status pending",
        [(2, "#status pending conflicts with #pending on line 1: a reply changes the status once")],
    ),
    (
        "#cancel\n#close",
        [(2, "#close conflicts with #cancel on line 1: a reply changes the status once")],
    ),
    (
        "#merge HD-41\n#priority P1",
        [
            (
                2,
                "#priority P1 conflicts with #merge 41 on line 1: "
                "#merge goes alone (only #internal may join it)",
            )
        ],
    ),
    (
        "#assign me\n#merge HD-41",
        [
            (
                2,
                "#merge 41 conflicts with #assign me on line 1: "
                "#merge goes alone (only #internal may join it)",
            )
        ],
    ),
    ("#internal\n#merge HD-41" + NOTE, []),
    (
        "#merge HD-41\n#merge HD-42",
        [(2, "#merge 42 conflicts with #merge 41 on line 1: give one #merge")],
    ),
    (
        "#internal\n#resolve fixed" + NOTE,
        [
            (
                2,
                "#resolve fixed conflicts with #internal on line 1: "
                "the text below is either an internal note or the resolution note",
            )
        ],
    ),
    (
        "#resolve fixed\n#cancel\n#reopen" + NOTE,
        [
            (2, "#cancel conflicts with #resolve fixed on line 1: a reply changes the status once"),
            (3, "#reopen conflicts with #resolve fixed on line 1: a reply changes the status once"),
        ],
    ),
    ("#assign me\n#group telephony\n#priority P1\n#impact H\n#urgency H\n#category voip", []),
    ("#priority P1\n#impact low", []),  # #priority is explicit: the caller keeps it
    ("#cancel\n#internal\n\nDuplicate of HD-41.", []),
    ("#close\n#internal\n\nCalled the requester, confirmed by phone.", []),
    ("#pending\n#internal\n\nWaiting for the vendor.", []),
    ("#assign me\n#pending\n#priority P2\n\nWhich room are you in?", []),
    ("#workaround\n#pending\n#priority P2\n#assign me" + NOTE, []),
    *(
        (
            f"#workaround\n{other}" + NOTE,
            [
                (
                    2,
                    f"{other} conflicts with #workaround on line 1: the text below is the "
                    "workaround mailed to the requester; #workaround keeps the ticket open "
                    "for the permanent fix",
                )
            ],
        )
        for other in ("#internal", "#resolve fixed", "#close", "#cancel", "#reopen", "#status new")
    ),
    (
        "#merge HD-4\n#workaround" + NOTE,
        [
            (
                2,
                "#workaround conflicts with #merge 4 on line 1: "
                "#merge goes alone (only #internal may join it)",
            )
        ],
    ),
]


@pytest.mark.parametrize(("body", "errors"), CONFLICTS)
def test_conflicts(body: str, errors: list[tuple[int, str]]) -> None:
    block = parse(body)
    assert [(e.line, e.reason) for e in block.errors] == errors
    assert all(e.code == "conflict" for e in block.errors)


def test_repeat_keeps_the_first() -> None:
    block = parse("#pending\n#PENDING\n\nStill waiting.")
    assert block.commands == (Command("pending", None, 1, "#pending"),)


@pytest.mark.parametrize(
    ("body", "ok"),
    [
        ("#workaround", False),
        ("#workaround\n\n", False),
        ("#workaround\n#pending\n\n-- \nAnna", False),  # a signature is no workaround
        ("#workaround\n\n> the requester's question", False),  # nor a quote
        ("#workaround\n\nUse the web mail at https://mail.example.com meanwhile.", True),
    ],
)
def test_workaround_needs_its_text(body: str, ok: bool) -> None:
    block = parse(body)
    assert block.ok == ok
    if not ok:
        [error] = block.errors
        assert (error.line, error.code) == (1, "missing_note")
        assert error.reason == (
            "#workaround needs the workaround below the commands: write what the "
            "requester should do to work again (it is mailed to them)"
        )


# --- the resolution note ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "ok"),
    [
        ("#resolve fixed", False),
        ("#resolve fixed\n\n", False),
        ("#resolve fixed\n\n-- \nAnna", False),  # a signature is no note
        ("#resolve fixed\n\n> the requester's question", False),  # nor a quote
        ("#resolve fixed\n#close\n\nReplaced the disk.", True),
        ("#resolve fixed\n\nReplaced the disk.\n\n-- \nAnna", True),
    ],
)
def test_resolve_needs_a_note(body: str, ok: bool) -> None:
    block = parse(body)
    assert block.ok == ok
    if not ok:
        [error] = block.errors
        assert (error.line, error.code) == (1, "missing_note")
        assert error.reason.startswith("#resolve needs a resolution note")


def test_every_error_at_once_in_line_order() -> None:
    body = "#assign nobody\n#priority P9\n#foo\n#resolve fixed\n#cancel\n#impact huge\n"
    block = parse(body)
    assert [(e.line, e.code) for e in block.errors] == [
        (1, "bad_argument"),
        (2, "bad_argument"),
        (3, "unknown"),
        (4, "missing_note"),
        (5, "conflict"),
        (6, "bad_argument"),
    ]
    assert _described(block) == ["resolve fixed", "cancel"]


# --- tag prefix, realistic replies, helpers -------------------------------------------------


@pytest.mark.parametrize(
    ("line", "prefix", "arg"),
    [
        ("#merge INC-42", "INC", "42"),
        ("#merge [inc-0042]", "INC", "42"),
        ("#merge 42", "INC", "42"),
        ("#merge HD-42", "INC", None),  # another desk's tag
        ("#merge H.D-42", "H.D", "42"),  # the prefix is literal text, not a pattern
        ("#merge HXD-42", "H.D", None),
    ],
)
def test_merge_uses_the_tag_prefix(line: str, prefix: str, arg: str | None) -> None:
    block = parse(line, tag_prefix=prefix)
    if arg is None:
        assert [e.code for e in block.errors] == ["bad_argument"]
        assert f"like {prefix}-42" in block.errors[0].reason
    else:
        assert block.commands == (Command("merge", arg, 1, line),)


def test_agent_resolve_reply() -> None:
    block = parse((REPLIES / "agent_resolve_en.txt").read_text(encoding="utf-8"))
    assert block.ok
    assert _described(block) == ["resolve fixed", "priority P3"]
    assert own_text(block.rest) == (
        "Replaced the toner cartridge and cleared the paper path.\n"
        "The printer prints test pages again."
    )


def test_agent_internal_reply_pl() -> None:
    block = parse((REPLIES / "agent_internal_pl.txt").read_text(encoding="utf-8"))
    assert block.ok
    assert block.has("internal") and not block.has("resolve")
    assert block.get("assign") == Command(
        "assign", "piotr@example.com", 2, "#assign piotr@example.com"
    )
    assert own_text(block.rest) == (
        "Piotrze, przejmij proszę, to sprawa dla telefonii.\n\nPozdrawiam,\nAnna"
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("#close", True),
        ("\n\n#assign me\nHi", True),
        ("  #PENDING", True),
        ("#foo\n#close", True),  # a known command in the block
        ("#priority P9", True),  # a bad argument is still a command attempt
        ("#hashtag", False),  # a requester's hashtag is just text
        ("#thanks for the help", False),
        ("Hello\n#close", False),
        ("# heading", False),
        ("#1 thing", False),
        ("", False),
        ("> #close", False),
    ],
)
def test_is_command_like(body: str, expected: bool) -> None:
    assert is_command_like(body) is expected


def test_a_number_of_thousands_of_digits_is_a_bad_argument_not_a_crash() -> None:
    # int() refuses strings of more than 4,300 digits: the pattern stops first.
    block = parse("#merge HD-" + "9" * 5000 + NOTE)
    assert block.commands == ()
    assert [e.code for e in block.errors] == ["bad_argument"]


# --- properties ---------------------------------------------------------------------------

_LINES = st.sampled_from(
    [
        "",
        " ",
        "#close",
        "#assign me",
        "#priority P9",
        "#foo",
        "#resolve fixed",
        "#merge HD-4",
        "#internal",
        "#status pending",
        "# x",
        "#1",
        "text",
        "> q",
        "-- ",
        "\ufeff#cancel",
    ]
)
_BODIES = st.one_of(
    st.text(), st.lists(st.one_of(_LINES, st.text(max_size=12)), max_size=12).map("\n".join)
)


@given(_BODIES)
def test_parse_never_raises_and_keeps_the_text(body: str) -> None:
    block = parse(body)
    normalised = body.replace("\r\n", "\n").replace("\r", "\n")
    assert normalised.endswith(block.rest)
    total = len(normalised.split("\n"))
    first_text_line = total - len(block.rest.split("\n")) + 1 if block.rest else total + 1
    numbers = [c.line for c in block.commands] + [e.line for e in block.errors]
    assert all(1 <= n < first_text_line for n in numbers)  # all from the block at the top
    assert [e.line for e in block.errors] == sorted(e.line for e in block.errors)
    if is_command_like(body):
        assert block.commands or block.errors
