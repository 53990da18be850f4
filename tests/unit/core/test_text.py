"""The author's own words in a reply (the answers they hold: test_answers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemon.core import text as text_module
from daemon.core.text import first_own_line, own_text

REPLIES = Path(__file__).resolve().parents[2] / "data" / "replies"


def reply(name: str) -> str:
    return (REPLIES / name).read_text(encoding="utf-8")


# --- own_text on replies as real clients write them ------------------------------------

# (fixture, own text)
CLIENT_REPLIES = [
    (
        "outlook_en.txt",  # top-posted, header block, no "-- ": the sign-off is text
        "Hi,\n\nIt works now, thank you.\n\nBest regards,\nJohn Smith\n"
        "IT Department | Contoso Ltd.",
    ),
    (
        "outlook_pl.txt",  # Od:/Wysłano:/Do:/DW:/Temat:
        "Dzień dobry,\n\ntak, drukarka działa.\n\nPozdrawiam\nJan Kowalski\nDział Księgowości",
    ),
    (
        "outlook_original_message_en.txt",
        "Not fixed, the same error appears after a restart.",
    ),
    (
        "outlook_original_message_pl.txt",
        "Nie, VPN nadal się rozłącza.\nZałączam zrzut ekranu.",
    ),
    (
        "outlook_web_en.txt",  # "____" separator right under the text
        "OK, thanks - confirmed, Teams starts again.\n\nKind regards\nMary",
    ),
    ("outlook_html2text_en.txt", "Yes, it is fixed.\n\nThanks,\nTom"),  # **From:**
    ("outlook_android_en.txt", "Still broken, sorry."),  # "Get Outlook for Android<...>"
    (
        "outlook_android_pl.txt",  # "Pobierz Outlook dla Android<...>", Wysłane:
        "Potwierdzam, poczta na telefonie działa.",
    ),
    ("gmail_en.txt", "Yes, confirmed. Thanks!"),  # attribution wrapped over two lines
    (
        "gmail_pl.txt",  # "pon., 3 lis 2026 o 10:00 ... napisał(a):"
        'Nie, dalej nie działa. Drukarka pokazuje ten sam błąd "Paper jam".',
    ),
    ("gmail_forward_en.txt", "Please have a look, this one came from our supplier."),
    ("gmail_forward_pl.txt", "Przesyłam, bo to chyba do Was."),
    ("thunderbird_en.txt", "OK, it works again."),  # bottom-posted, "-- " signature
    ("thunderbird_pl.txt", "Tak, działa. Dziękuję za pomoc!"),  # "W dniu ... pisze:"
    # "Dnia ... napisał(a):"
    ("thunderbird_dnia_pl.txt", "Nie wiem jeszcze, sprawdzę jutro rano."),
    (
        "thunderbird_inline_en.txt",  # answers between the quotes are all kept
        "The one next to room 3.12, HP LaserJet.\n\nSince Monday morning.\n\nYes, twice.",
    ),
    ("apple_mail_en.txt", "Yes"),  # "Sent from my iPhone", quoted attribution
    ("apple_mail_pl.txt", "Tak, działa."),  # "Wysłane z iPhone'a"
    (
        "apple_mail_desktop_pl.txt",  # "Wiadomość napisana przez ..." with unquoted history
        "Dzień dobry,\nniestety problem wrócił po restarcie.",
    ),
    (
        "plain_en.txt",  # nothing to cut; the author's trailing spaces inside stay
        'Hello,\n\nthe projector in meeting room B shows "No signal" again.   \n'
        "It worked yesterday.",
    ),
    (
        "agent_resolve_en.txt",
        "#resolve fixed\n#priority P3\n\nReplaced the toner cartridge and cleared the paper"
        " path.\nThe printer prints test pages again.",
    ),
    (
        "agent_internal_pl.txt",  # "Wysłano z aplikacji Outlook dla systemu iOS"
        "#internal\n#assign piotr@example.com\n\n"
        "Piotrze, przejmij proszę, to sprawa dla telefonii.\n\nPozdrawiam,\nAnna",
    ),
]


@pytest.mark.parametrize(("name", "own"), CLIENT_REPLIES, ids=lambda v: str(v)[:30])
def test_client_reply(name: str, own: str) -> None:
    assert own_text(reply(name)) == own


def test_every_fixture_is_in_the_table() -> None:
    assert {p.name for p in REPLIES.glob("*.txt")} == {row[0] for row in CLIENT_REPLIES}


@pytest.mark.parametrize("name", [row[0] for row in CLIENT_REPLIES])
def test_crlf_bodies_give_the_same_text(name: str) -> None:
    body = reply(name)
    assert own_text(body.replace("\n", "\r\n")) == own_text(body)


# --- own_text: one rule per row -------------------------------------------------------

OWN_TEXT_CASES = [
    # (body, own text, why)
    ("", "", "empty body"),
    ("\n\n  \n", "", "only blank lines"),
    ("Works.\n\n\n", "Works.", "trailing blank lines go"),
    ("\n\nWorks.", "Works.", "leading blank lines go"),
    ("  indented first line\nsecond", "  indented first line\nsecond", "indentation stays"),
    ("> all quoted\n> nothing else", "", "only a quote"),
    ("Top.\n> quoted\n> more", "Top.", "top-posted over a bare quote"),
    ("> quoted\nBottom.", "Bottom.", "bottom-posted under a bare quote"),
    ("  > indented quote\nText", "Text", "quote marker after spaces"),
    ("a1\n\n> q\n\n\n\na2", "a1\n\na2", "a removed quote leaves one blank line"),
    (
        "Fine now.\nOn Mon, 3 Nov 2026 at 10:00, Jan Kowalski <jan@x.pl> wrote:\n> q",
        "Fine now.",
        "attribution right under the text",
    ),
    (
        "Fine.\n\nOn Mon, Nov 3, 2026 at 10:00 AM Jan Kowalski <\njan@x.pl> wrote:\n\n> q",
        "Fine.",
        "Gmail wraps the address",
    ),
    (
        "Fine.\n\nOn Mon, 3 Nov 2026 at 10:00, Jan Kowalski <jan@x.pl> wrote:\n\nquoted as text",
        "Fine.",
        "attribution without > (HTML reply turned to text): the rest is history",
    ),
    (
        "Jan Kowalski wrote:\n> q\n\nAgreed.",
        "Agreed.",
        "attribution without date, before a quote",
    ),
    (
        "The log wrote:\nERROR 42 disk full\nPlease help.",
        "The log wrote:\nERROR 42 disk full\nPlease help.",
        "own sentence ending in wrote: with no quote after it stays",
    ),
    (
        "I checked it.\nMy colleague wrote:\nit fails for her too",
        "I checked it.\nMy colleague wrote:\nit fails for her too",
        "text line above a 'wrote:' line is never taken as a wrapped attribution",
    ),
    (
        "Działa.\n\nW dniu 3.11.2026 o 10:00, Jan Kowalski pisze:\n> q",
        "Działa.",
        "Thunderbird PL",
    ),
    (
        "Działa.\n\nDnia 3 listopada 2026 10:00 Jan <jan@x.pl> napisał:\n> q",
        "Działa.",
        "napisał",
    ),
    (
        "Działa.\n\npt., 3 lis 2026 o 10:00 Jan Kowalski <jan@x.pl>\nnapisał(a):\n\n> q",
        "Działa.",
        "Gmail PL wrapped",
    ),
    ("Body\n-- \nJan", "Body", "signature delimiter"),
    ("Body\n--\nJan", "Body", "signature delimiter without its space"),
    ("Body\n--\u00a0\nJan", "Body", "signature delimiter with a non-breaking space"),
    ("Body\n--- \nnot a delimiter", "Body\n--- \nnot a delimiter", "three dashes are text"),
    ("Body\n-- not a sig", "Body\n-- not a sig", "dash-dash with text is text"),
    ("Body\n\nSent from my iPad", "Body", "iPad footer"),
    ("Body\n\nSent from my Samsung Galaxy smartphone.", "Body", "Samsung footer"),
    ("Body\nSent from Outlook for iOS", "Body", "Outlook iOS footer"),
    ("Body\nGet Outlook for iOS<https://aka.ms/o0ukef>", "Body", "Outlook link footer"),
    ("Body\nSent from Mail for Windows", "Body", "Windows Mail footer"),
    ("Body\nWysłane z mojego iPhone’a", "Body", "PL iPhone footer, typographic apostrophe"),
    ("Body\nWysłano z mojego smartfona Samsung Galaxy.", "Body", "PL Samsung footer"),
    ("Body\nWysłane z aplikacji Poczta dla systemu Windows", "Body", "PL Windows footer"),
    (
        "Sent from my home PC, the laptop is broken.\nHelp!",
        "Sent from my home PC, the laptop is broken.\nHelp!",
        "a sentence starting like a footer stays",
    ),
    (
        "Wysłano z pracy, bo w domu nie działa.",
        "Wysłano z pracy, bo w domu nie działa.",
        "PL sentence starting like a footer stays",
    ),
    ("Body\n-----Original Message-----\nold", "Body", "Outlook separator"),
    ("Body\n-----Wiadomość oryginalna-----\nold", "Body", "Outlook PL separator"),
    ("Body\n-------- Original Message --------\nold", "Body", "Thunderbird separator"),
    ("Body\n-------- Forwarded Message --------\nold", "Body", "Thunderbird forward"),
    ("Body\n-------- Przekazana wiadomość --------\nold", "Body", "Thunderbird PL forward"),
    ("Body\n\nBegin forwarded message:\n\nFrom: x", "Body", "Apple Mail forward"),
    ("Body\n\nPoczątek przekazywanej wiadomości:\n\nOd: x", "Body", "Apple Mail PL forward"),
    ("Body\n" + "_" * 32 + "\nold", "Body", "Outlook web underscores"),
    ("Body\nFrom: A\nSent: B\nTo: C\nSubject: D\n\nold", "Body", "Outlook header block"),
    ("Body\nFrom: A\n\nDate: B\n\nSubject: D\n\nold", "Body", "header block with blank lines"),
    ("Body\nOd: A\nData: B\nDo: C\nTemat: D\n\nold", "Body", "Polish header block"),
    ("Body\n*From:* A\n*Sent:* B\n\nold", "Body", "bolded header labels"),
    (
        "From: my home office\nthe VPN drops every hour.",
        "From: my home office\nthe VPN drops every hour.",
        "a From: line without a date line under it is text",
    ),
    (
        "Thanks\n> q1\nOn x wrote: inline\n-- \nsig\n> q2",
        "Thanks\n\nOn x wrote: inline",
        "cuts stop at the first signature, even with quotes after it",
    ),
]


@pytest.mark.parametrize(("body", "own", "why"), OWN_TEXT_CASES, ids=[c[2] for c in OWN_TEXT_CASES])
def test_own_text(body: str, own: str, why: str) -> None:
    assert own_text(body) == own


@pytest.mark.parametrize(
    ("body", "line"),
    [
        ("", ""),
        ("\n\n   Yes, works   \nmore", "Yes, works"),
        ("> quoted\n\nTak", "Tak"),
        ("-- \nsig only", ""),
        ("On 03/11/2026 10:00, Jan wrote:\n> q\n\n  OK  \n", "OK"),
    ],
)
def test_first_own_line(body: str, line: str) -> None:
    assert first_own_line(body) == line


# --- properties -----------------------------------------------------------------------

_LINES = st.sampled_from(
    [
        "",
        " ",
        "> quoted",
        ">",
        "-- ",
        "--",
        "Sent from my iPhone",
        "On Mon, 3 Nov 2026 at 10:00, Jan <jan@x.pl> wrote:",
        "On Mon, 3 Nov 2026 at 10:00, Jan <",
        "jan@x.pl> wrote:",
        "W dniu 3.11.2026 o 10:00, Jan pisze:",
        "From: A",
        "Sent: B",
        "Od: A",
        "_" * 20,
        "-----Original Message-----",
        "Hi,",
        "yes",
        "Tak, działa",
        "text",
    ]
)
_BODIES = st.one_of(
    st.text(),
    st.lists(st.one_of(_LINES, st.text(max_size=20)), max_size=30).map("\n".join),
    st.lists(_LINES, max_size=30).map("\r\n".join),
)


@given(_BODIES)
def test_own_text_never_raises_nor_grows(body: str) -> None:
    own = own_text(body)
    assert len(own) <= len(body)
    assert own == own.rstrip()
    # every line it returns is a line of the body (or a blank left where a quote was)
    body_lines = {line.rstrip() for line in body.replace("\r", "\n").split("\n")}
    assert all(line.rstrip() in body_lines or not line for line in own.split("\n"))


def _attribution_length_in_full(lines: list[str], i: int) -> int:
    """`_attribution_length` as it read before its shortcut: every length
    tried, every check made."""
    m = text_module
    for length in range(1, m._ATTRIBUTION_MAX_LINES + 1):
        part = lines[i : i + length]
        if len(part) < length or any(m._blank(line) or m._QUOTED.match(line) for line in part):
            return 0
        joined = " ".join(line.strip() for line in part)
        opener = bool(m._ATTRIBUTION_OPENER.match(joined))
        if m._is_apple_pl_attribution(joined):
            return length
        if m._ATTRIBUTION_VERB.search(joined):
            after = m._next_nonblank(lines, i + length)
            quoted_next = after < len(lines) and bool(m._QUOTED.match(lines[after]))
            return length if opener or quoted_next else 0
        if not opener:
            return 0
    return 0


@given(_BODIES)
def test_the_attribution_shortcut_finds_what_the_full_checks_find(body: str) -> None:
    """Most lines neither end in a colon nor open an attribution, and are
    passed over at once; every line gets the length the full checks give."""
    lines = body.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for i in range(len(lines) + 1):
        assert text_module._attribution_length(lines, i) == _attribution_length_in_full(lines, i)
