"""Generated and mutated mail through the parser and the whole pipeline.

Two sources of input: MIME trees built from parts that may be broken on
purpose (boundaries missing, wrong or unterminated; unknown or lying
encodings and charsets; nesting; hostile file names and headers), and the
real messages in tests/data cut, spliced with random bytes, NUL bytes, odd
line ends, very long lines and headers. The promises (SPEC §6): never a
traceback; every input ends as a message on a ticket or a quarantine entry
with its raw bytes kept.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.config import load_settings
from daemon.core.domain import ParsedMessage
from daemon.core.errors import NotMail
from daemon.mail.parsing import parse_message
from daemon.service.wiring import App
from tests.conftest import DATA, T0, write_config
from tests.support.clock import ManualClock
from tests.support.flow import ingest

SEEDS = [p.read_bytes() for p in sorted(DATA.rglob("*.eml"))] + [
    (DATA / "parsing" / "garbage.bin").read_bytes()
]
FINAL = {"created", "appended", "duplicate", "ignored", "quarantined", "bounce"}

# --- generated MIME ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Leaf:
    ctype: str
    cte: str
    charset: str
    body: bytes
    filename: str | None


@dataclass(frozen=True)
class Multi:
    subtype: str
    boundary: str
    parts: tuple[Leaf | Multi, ...]
    fault: str  # "" | "unterminated" | "no-boundary-param" | "wrong-boundary" | "no-preamble-line"


_text_body = st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass"))
_leaf = st.builds(
    Leaf,
    ctype=st.sampled_from(
        [
            "text/plain",
            "text/html",
            "application/octet-stream",
            "message/rfc822",
            "message/delivery-status",
            "multipart/mixed",  # a multipart with no parts: broken on purpose
            "text/x-unknown",
            "garbage",
            "",
        ]
    ),
    cte=st.sampled_from(["", "7bit", "8bit", "base64", "quoted-printable", "x-uuencode", "bogus"]),
    charset=st.sampled_from(["", "utf-8", "iso-8859-2", "windows-1250", "x-unknown", "utf-7"]),
    body=st.one_of(st.binary(max_size=300), _text_body),
    filename=st.one_of(
        st.none(),
        st.text(max_size=40),
        st.sampled_from(["../../etc/passwd", "..\\..\\x.bat", "/abs/path", ".hidden", "a\r\nb"]),
    ),
)
_boundary = st.text(
    alphabet="abcXYZ0189'()+_,-./:=? ", min_size=1, max_size=75
)  # RFC 2046 bchars, space too
_tree = st.recursive(
    _leaf,
    lambda children: st.builds(
        Multi,
        subtype=st.sampled_from(["mixed", "alternative", "related", "report", "signed", "digest"]),
        boundary=_boundary,
        parts=st.lists(children, max_size=5).map(tuple),
        fault=st.sampled_from(["", "", "unterminated", "no-boundary-param", "wrong-boundary"]),
    ),
    max_leaves=25,
)
_header_value = st.one_of(
    st.text(max_size=120),
    st.binary(max_size=80).map(lambda b: b.decode("latin-1")),
    st.text(max_size=60).map(
        lambda t: (
            "=?utf-8?b?" + base64.b64encode(t.encode("utf-8", "surrogatepass")).decode() + "?="
        )
    ),
    st.sampled_from(
        ["=?utf-8?q?=0D=0ABcc:_x@evil.example?=", "=?bogus?x?abc?=", "=?utf-8?b?!!!?="]
    ),
)
_headers = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "From",
                "To",
                "Cc",
                "Subject",
                "Message-ID",
                "In-Reply-To",
                "References",
                "Date",
                "Reply-To",
                "Sender",
                "Return-Path",
                "Auto-Submitted",
                "Precedence",
                "X-Spocd-Loop",
                "List-Id",
                "Authentication-Results",
            ]
        ),
        _header_value,
    ),
    max_size=12,
)


def _encode(leaf: Leaf) -> bytes:
    body = leaf.body
    if leaf.cte == "base64":
        body = base64.encodebytes(body)
    return body


def render(node: Leaf | Multi) -> bytes:
    """A part (headers and body) as bytes; faults are rendered as asked."""
    if isinstance(node, Leaf):
        ctype = node.ctype + (f'; charset="{node.charset}"' if node.charset else "")
        lines = [f"Content-Type: {ctype}".encode()]
        if node.cte:
            lines.append(f"Content-Transfer-Encoding: {node.cte}".encode())
        if node.filename is not None:
            name = node.filename.replace('"', "")
            lines.append(
                f'Content-Disposition: attachment; filename="{name}"'.encode("utf-8", "replace")
            )
        return b"\r\n".join(lines) + b"\r\n\r\n" + _encode(node) + b"\r\n"
    param = "" if node.fault == "no-boundary-param" else f'; boundary="{node.boundary}"'
    used = node.boundary + "x" if node.fault == "wrong-boundary" else node.boundary
    out = [f"Content-Type: multipart/{node.subtype}{param}\r\n\r\n".encode()]
    for part in node.parts:
        out.append(f"--{used}\r\n".encode() + render(part))
    if node.fault != "unterminated":
        out.append(f"--{used}--\r\n".encode())
    return b"".join(out)


def message(headers: list[tuple[str, str]], tree: Leaf | Multi) -> bytes:
    head = b"".join(
        f"{name}: {value}".encode("utf-8", "surrogateescape").replace(b"\n", b" ") + b"\r\n"
        for name, value in headers
    )
    return b"MIME-Version: 1.0\r\n" + head + render(tree)


generated = st.builds(message, _headers, _tree)

# --- mutated real mail ---------------------------------------------------------------------

_where = st.floats(min_value=0, max_value=1)
_mutation = st.one_of(
    st.tuples(st.just("truncate"), _where),
    st.tuples(st.just("splice"), _where, st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("delete"), _where, st.integers(1, 500)),
    st.tuples(st.just("duplicate"), _where, st.integers(1, 2000)),
    st.tuples(st.just("nul"), _where, st.integers(1, 50)),
    st.tuples(st.just("line-ends"), st.sampled_from([b"\n", b"\r", b"\r\r\n", b"\n\r"])),
    st.tuples(st.just("long-line"), _where, st.integers(1000, 200_000)),
    st.tuples(
        st.just("long-header"),
        st.sampled_from(["Subject", "References", "From", "To", "Content-Type"]),
        st.integers(1000, 100_000),
    ),
    st.tuples(st.just("boundary"), st.binary(min_size=0, max_size=10)),
)


def mutate(seed: bytes, mutations: list[tuple]) -> bytes:  # type: ignore[type-arg]
    raw = seed
    for kind, *args in mutations:
        at = int(args[0] * len(raw)) if args and isinstance(args[0], float) else 0
        if kind == "truncate":
            raw = raw[:at]
        elif kind == "splice":
            raw = raw[:at] + args[1] + raw[at:]
        elif kind == "delete":
            raw = raw[:at] + raw[at + args[1] :]
        elif kind == "duplicate":
            raw = raw[:at] + raw[at : at + args[1]] * 2 + raw[at + args[1] :]
        elif kind == "nul":
            raw = raw[:at] + b"\0" * args[1] + raw[at:]
        elif kind == "line-ends":
            raw = re.sub(rb"\r?\n", lambda _, end=args[0]: end, raw)
        elif kind == "long-line":
            raw = raw[:at] + b"A" * args[1] + raw[at:]
        elif kind == "long-header":
            value = " ".join(f"<id{n}@example.org>" for n in range(args[1] // 20))
            raw = f"{args[0]}: {value[: args[1]]}\r\n".encode() + raw
        elif kind == "boundary":  # every boundary line's marker replaced
            raw = re.sub(rb"\n--", lambda _, mark=b"\n" + args[0]: mark, raw)
    return raw


mutated = st.builds(mutate, st.sampled_from(SEEDS), st.lists(_mutation, min_size=1, max_size=4))
hostile = st.one_of(generated, mutated)

# --- the parser -------------------------------------------------------------------------------


def check_parsed(parsed: ParsedMessage) -> None:
    assert parsed.message_id
    for values in parsed.headers.values():
        for value in values:
            assert "\r" not in value and "\n" not in value
    assert "\r" not in parsed.subject and "\n" not in parsed.subject
    for attachment in parsed.attachments:
        assert "/" not in attachment.filename and "\\" not in attachment.filename
        assert not attachment.filename.startswith(".")
    if parsed.html is not None:
        assert "<script" not in parsed.html.lower()


def read_or_refuse(raw: bytes) -> None:
    try:
        parsed = parse_message(raw)
    except NotMail as refused:
        assert str(refused)
        return
    check_parsed(parsed)


@settings(max_examples=150, deadline=None)
@given(generated)
def test_the_parser_reads_or_refuses_generated_mime(raw: bytes) -> None:
    read_or_refuse(raw)


@settings(max_examples=150, deadline=None)
@given(mutated)
def test_the_parser_reads_or_refuses_mutated_real_mail(raw: bytes) -> None:
    read_or_refuse(raw)


# --- the pipeline -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """One desk for every example: what earlier examples stored (tickets,
    Message-IDs, failing addresses) is part of the input of later ones."""
    folder = tmp_path_factory.mktemp("desk")
    config = write_config(folder, f"sqlite:///{folder / 'spocd.db'}")
    app = App(load_settings(config), ManualClock(T0))
    yield app
    app.close()


def ends_well(app: App, raw: bytes, escalation: bool = False) -> str:
    outcome = ingest(app, raw, escalation=escalation)
    assert outcome.outcome in FINAL, outcome
    with app.store.reading() as tx:
        entry = tx.inbound.entries(["done", "quarantined", "failed", "queued"], 1)[0]
        assert tx.inbound.raw(entry.id) == raw  # the original is kept
        if entry.state == "quarantined":
            assert entry.outcome == "quarantined" and entry.reason
        else:
            assert entry.state == "done", entry
            assert entry.outcome == outcome.outcome
            if outcome.outcome in ("created", "appended"):
                assert outcome.message_id and tx.messages.exists(outcome.message_id)
                assert entry.ticket_number == outcome.ticket
    return outcome.outcome


@settings(max_examples=120, deadline=None)
@given(hostile, st.booleans())
def test_every_hostile_message_ends_on_a_ticket_or_in_quarantine(
    desk: App, raw: bytes, escalation: bool
) -> None:
    ends_well(desk, raw, escalation)  # an escalation's attached incident is parsed too


def deep(levels: int) -> bytes:
    head = b"From: jan@example.org\r\nSubject: deep\r\nMIME-Version: 1.0\r\n"
    opening = b"".join(
        f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n'.encode()
        for i in range(levels)
    )
    closing = b"".join(f"--b{i}--\r\n".encode() for i in reversed(range(levels)))
    return head + opening + b"Content-Type: text/plain\r\n\r\nhello\r\n" + closing


def many_parts(count: int) -> bytes:
    parts = b"".join(
        f"--B\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Disposition: attachment; filename=f{n}.bin\r\n\r\nx{n}\r\n".encode()
        for n in range(count)
    )
    return (
        b"From: jan@example.org\r\nSubject: many parts\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n' + parts + b"--B--\r\n"
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(deep(20), "created", id="nested-20"),
        pytest.param(deep(150), "quarantined", id="nested-150"),
        pytest.param(deep(5000), "quarantined", id="nested-5000-past-the-stack"),
        pytest.param(many_parts(3000), "created", id="3000-parts"),
        pytest.param(b"\0" * 5000, "quarantined", id="nul-bytes"),
        pytest.param(b"From: jan@example.org\r\n\r\n" + b"A" * 500_000, "created", id="500k-line"),
        pytest.param(
            b"From: jan@example.org\r\nSubject: " + b"S" * 200_000 + b"\r\n\r\nbody\r\n",
            "created",
            id="200k-header",
        ),
        pytest.param(b"From: jan@example.org\r\n", "created", id="headers-only"),
        pytest.param(b"no colon here\r\n\r\nbody", "quarantined", id="no-header"),
    ],
)
def test_named_extremes_end_on_a_ticket_or_in_quarantine(
    desk: App, raw: bytes, expected: str
) -> None:
    assert ends_well(desk, raw) == expected
    if expected == "created" and raw.startswith(b"From: jan@example.org\r\nSubject: many"):
        with desk.store.reading() as tx:
            number = max(t.number for t in tx.tickets.listing(None))
            # the first 100 as rows; all 3,000 stay in the stored raw message
            assert len(tx.messages.attachments_of(number)) == 100  # type: ignore[attr-defined]
