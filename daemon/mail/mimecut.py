"""Cut large MIME leaf bodies out of raw bytes before the email parser runs.

The standard library's parser holds about eight times a message's size while
it splits it into lines, so a 25 MB attachment would cost 200 MB. Large leaf
bodies are found here by walking the MIME structure (only the boundaries its
containers declare, each searched for once over its own container), measured
(decoded size, SHA-256) straight from the raw bytes, and replaced by a short
token; the raw message keeps every byte, and the parser only sees the small
skeleton. The walk is linear in the message per level: a `boundary=` written
in a body is text, not structure, and costs nothing.

A message's own text body (not a part: the single part of a plain mail, or
of a forwarded one) is its text, so it is not cut out; past `BODY_BYTES` it
is shortened instead, at a line's end: parsing keeps 2,000,000 characters of
text at most, and 20 MB of blank lines cost the email parser 300 MB and 5 s.
A message's own body that is not text (a scan sent as the whole message) is
a file, and is cut out as a part is.
"""

from __future__ import annotations

import binascii
import email.parser
import email.policy
import hashlib
import itertools
import quopri
import re
from collections.abc import Iterator
from dataclasses import dataclass

from daemon.mail import mimeparams

mimeparams.install()  # before any header here or in the parser is read for parameters

TOKEN_PREFIX = "SPOCD-ELIDED-PART-"
_HEADER_END_RE = re.compile(rb"\r?\n\r?\n")
#: Containers nested deeper than this are not walked into (their parts stay
#: in the skeleton; the parser's own depth limit judges such mail).
MAX_DEPTH = 20
_HEADERS = email.parser.BytesHeaderParser(policy=email.policy.compat32)
#: The encoded bytes of a message's own text body the parser is given: 2 MB
#: are 2,000,000 characters of plain text, 1.5 MB of base64-encoded bytes.
BODY_BYTES = 2_000_000


@dataclass(frozen=True, slots=True)
class CutPart:
    """What was cut: its decoded size and hash, and its bytes when small enough."""

    size: int
    sha256: str
    content: bytes | None


@dataclass(slots=True)
class _Cutter:
    raw: bytes
    threshold: int
    keep_limit: int
    cuts: list[tuple[int, int, CutPart | None]]  # None: shortened, no token

    def entity(self, start: int, end: int, depth: int, part: bool = False) -> None:
        """One MIME entity (headers, blank line, body) in raw[start:end]; a
        `part` of a multipart is cut, and a message's own body only when it is
        not text (its text is read, and only shortened)."""
        if self.raw.startswith((b"\r\n", b"\n"), start):  # no header fields
            headers, body_start = _HEADERS.parsebytes(b""), start
        else:
            header_end = _HEADER_END_RE.search(self.raw, start, end)
            if header_end is None:
                return
            headers = _HEADERS.parsebytes(self.raw[start : header_end.start()])
            body_start = header_end.end()
        ctype = headers.get_content_type()
        if ctype.startswith("multipart/"):
            boundary = headers.get_param("boundary")
            if isinstance(boundary, str) and boundary and depth < MAX_DEPTH:
                self.multipart(boundary.encode("utf-8", "surrogateescape"), body_start, end, depth)
            return
        if ctype.startswith("message/"):
            if depth < MAX_DEPTH:
                self.entity(body_start, end, depth + 1)
            return
        if (part or not ctype.startswith("text/")) and end - body_start > self.threshold:
            cte = str(headers.get("content-transfer-encoding", "")).strip().lower()
            self.cuts.append(
                (body_start, end, _measure(self.raw, body_start, end, cte, self.keep_limit))
            )
        elif not part and ctype.startswith("text/") and end - body_start > BODY_BYTES:
            self.cuts.append((_shorten_at(self.raw, body_start), end, None))

    def multipart(self, boundary: bytes, start: int, end: int, depth: int) -> None:
        """The parts between this container's own delimiter lines."""
        marks = list(_delimiters(self.raw, b"--" + boundary, start, end))
        for (_, part_start, closing), (next_start, _, _) in itertools.pairwise(marks):
            if closing:
                break
            self.entity(part_start, next_start, depth + 1, part=True)


def cut_large_parts(
    raw: bytes, threshold: int, keep_limit: int
) -> tuple[bytes, dict[str, CutPart]]:
    """The skeleton of `raw` and the parts cut from it, keyed by token."""
    if len(raw) <= threshold:
        return raw, {}
    cutter = _Cutter(raw, threshold, keep_limit, [])
    cutter.entity(0, len(raw), 0)
    if not cutter.cuts:
        return raw, {}
    pieces: list[bytes] = []
    cut: dict[str, CutPart] = {}
    position = 0
    for body_start, body_end, part in sorted(cutter.cuts, key=lambda c: c[0]):
        pieces.append(raw[position:body_start])
        if part is not None:
            token = f"{TOKEN_PREFIX}{len(cut)}"
            cut[token] = part
            pieces.append(token.encode() + b"\r\n")
        position = body_end
    pieces.append(raw[position:])
    return b"".join(pieces), cut


def _shorten_at(raw: bytes, body_start: int) -> int:
    """Where a body starting at `body_start` ends once shortened: after the
    last line end within BODY_BYTES (whole base64 quanta, whole characters),
    else after BODY_BYTES, a multiple of 4."""
    at = body_start + BODY_BYTES
    newline = raw.rfind(b"\n", body_start + BODY_BYTES // 2, at)
    return newline + 1 if newline >= 0 else at


def _delimiters(raw: bytes, dashed: bytes, start: int, end: int) -> Iterator[tuple[int, int, bool]]:
    """(line start, next line start, closing?) of each delimiter line in
    raw[start:end]: `--boundary` at a line's start, then optional `--` and
    blanks. One left-to-right search: linear in the region."""
    at = start
    while True:
        found = raw.find(dashed, at, end)
        if found < 0:
            return
        at = found + len(dashed)
        if found != start and raw[found - 1 : found] != b"\n":
            continue
        line_end = raw.find(b"\n", at, end)
        line_end = end if line_end < 0 else line_end
        rest = raw[at:line_end].rstrip(b"\r")
        closing = rest.startswith(b"--")
        if rest[2 if closing else 0 :].strip(b" \t"):
            continue  # a longer boundary that starts with this one
        line_start = found - 1 if found != start else found
        if line_start > start and raw[line_start - 1 : line_start] == b"\r":
            line_start -= 1
        yield line_start, min(line_end + 1, end), closing
        at = line_end


def _measure(raw: bytes, start: int, end: int, cte: str, keep_limit: int) -> CutPart:
    body = memoryview(raw)[start:end]
    try:
        if cte == "base64":
            data = binascii.a2b_base64(body)
        elif cte == "quoted-printable":
            data = quopri.decodestring(bytes(body))
        else:
            data = bytes(body)
    except (binascii.Error, ValueError):
        data = bytes(body)
    return CutPart(
        len(data), hashlib.sha256(data).hexdigest(), data if len(data) <= keep_limit else None
    )
