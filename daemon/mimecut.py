"""Cut large MIME leaf bodies out of raw bytes before the email parser runs.

The standard library's parser holds about eight times a message's size while
it splits it into lines, so a 25 MB attachment would cost 200 MB. Large leaf
bodies are found here by their boundaries, measured (decoded size, SHA-256)
straight from the raw bytes, and replaced by a short token; the raw message
keeps every byte, and the parser only sees the small skeleton.
"""

from __future__ import annotations

import binascii
import hashlib
import itertools
import quopri
import re
from dataclasses import dataclass

TOKEN_PREFIX = "SPOCD-ELIDED-PART-"
_BOUNDARY_RE = re.compile(rb'boundary\s*=\s*(?:"([^"\r\n]{1,200})"|([^\s;"\r\n]{1,200}))', re.I)
_HEADER_END_RE = re.compile(rb"\r?\n\r?\n")
_CTE_RE = re.compile(rb"^content-transfer-encoding\s*:\s*([\w-]+)", re.I | re.M)


@dataclass(frozen=True, slots=True)
class CutPart:
    """What was cut: its decoded size and hash, and its bytes when small enough."""

    size: int
    sha256: str
    content: bytes | None


def cut_large_parts(
    raw: bytes, threshold: int, keep_limit: int
) -> tuple[bytes, dict[str, CutPart]]:
    """The skeleton of `raw` and the parts cut from it, keyed by token."""
    if len(raw) <= threshold:
        return raw, {}
    boundaries = {m.group(1) or m.group(2) for m in _BOUNDARY_RE.finditer(_head_region(raw))}
    if not boundaries:
        return raw, {}
    lines = re.compile(
        rb"^--("
        + b"|".join(re.escape(b) for b in sorted(boundaries, key=len, reverse=True))
        + rb")(--)?[ \t]*\r?$",
        re.M,
    )
    marks = [(m.start(), m.end()) for m in lines.finditer(raw)]
    pieces: list[bytes] = []
    cut: dict[str, CutPart] = {}
    position = 0
    for (_, end), (next_start, _) in itertools.pairwise(marks):
        part_start = end + (2 if raw[end : end + 2] == b"\r\n" else 1)
        header_end = _HEADER_END_RE.search(raw, part_start, next_start)
        if header_end is None:
            continue
        body_start, body_end = header_end.end(), next_start
        if body_end - body_start <= threshold:
            continue
        headers = raw[part_start : header_end.start()]
        lowered = headers.lower()
        if b"multipart/" in lowered or b"message/" in lowered:
            continue  # containers are walked into, never cut
        token = f"{TOKEN_PREFIX}{len(cut)}"
        cut[token] = _measure(raw, body_start, body_end, headers, keep_limit)
        pieces.append(raw[position:body_start])
        pieces.append(token.encode() + b"\r\n")
        position = body_end
    if not cut:
        return raw, {}
    pieces.append(raw[position:])
    return b"".join(pieces), cut


def _head_region(raw: bytes) -> bytes:
    """Boundary declarations live in headers: scan only lines that look like
    header continuations of Content-Type (cheap on a large base64 body)."""
    found = []
    for match in re.finditer(rb"(?im)^content-type:[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*", raw):
        found.append(match.group(0))
    return b"\n".join(found)


def _measure(raw: bytes, start: int, end: int, headers: bytes, keep_limit: int) -> CutPart:
    body = memoryview(raw)[start:end]
    cte_match = _CTE_RE.search(headers)
    cte = cte_match.group(1).lower() if cte_match else b""
    try:
        if cte == b"base64":
            data = binascii.a2b_base64(body)
        elif cte == b"quoted-printable":
            data = quopri.decodestring(bytes(body))
        else:
            data = bytes(body)
    except (binascii.Error, ValueError):
        data = bytes(body)
    return CutPart(
        len(data), hashlib.sha256(data).hexdigest(), data if len(data) <= keep_limit else None
    )
