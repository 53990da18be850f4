"""What the parsers are given of a message: every header bounded before
anything decodes it, and mail-parser's own view of the message.

The standard library's RFC 2047 decoder and mail-parser's readings of
headers are quadratic in a header's length (a Subject of 100,000 encoded
words took 30 s), and a parse cannot be stopped half-way. So the values are
cut first (`bound_headers`), and mail-parser, which decodes every header it
is given though spocd reads only its addresses, bodies and defects, gets a
view with only those (`for_mail_parser`).
"""

from __future__ import annotations

import copy
import email.message
import re

import mailparser.const as mailparser_const

from daemon.mail.headers import RAW_HEADER_LIMIT, cut_raw

_ADDRESS_HEADERS = frozenset(
    mailparser_const.ADDRESSES_HEADERS | {"sender", "resent-from", "resent-to", "resent-cc"}
)

#: The top-level headers mail-parser is read for (addresses, and the MIME
#: headers and dates its bodies and defects come from). It decodes every
#: header it is given, with the stdlib's quadratic RFC 2047 decoder, and
#: nothing reads its copy of the others: ours are in `headers`.
_MAIL_PARSER_HEADERS = frozenset(
    mailparser_const.ADDRESSES_HEADERS
    | {
        "date",
        "resent-date",
        "content-type",
        "content-transfer-encoding",
        "content-disposition",
        "content-id",
        "mime-version",
    }
)
#: What mail-parser sees of each of those: the first occurrences of a name,
#: and of a non-address header its first characters, so its decoding stays
#: bounded (an address list is parsed by its own linear scanner).
_MAIL_PARSER_OCCURRENCES = 10
_MAIL_PARSER_VALUE = 1024


def bound_headers(msg: email.message.Message) -> None:
    """Cut every top-level header value to RAW_HEADER_LIMIT characters before
    anything decodes it, so no header costs more than its first part.

    An address list is cut between addresses, other values at whitespace:
    what is kept of a hostile header stays whole words. (`_headers` is the
    email package's own list; rebuilding it through `del msg[name]` would
    cost a scan of every header per name.)
    """
    if all(len(str(value)) <= RAW_HEADER_LIMIT for _, value in msg.raw_items()):
        return
    msg._headers = [  # type: ignore[attr-defined]
        (name, _cut_header(name, value)) for name, value in msg.raw_items()
    ]


def _cut_header(name: str, value: object) -> object:
    if not isinstance(value, str) or len(value) <= RAW_HEADER_LIMIT:
        return value
    if name.lower() in _ADDRESS_HEADERS:
        return _cut_addresses(value)
    return cut_raw(value)


def _cut_addresses(value: str) -> str:
    """An address list cut between addresses; when its first address alone
    is too long, that address's last `<addr-spec>` without the name, so a
    megabyte display name does not cost the sender's address."""
    if len(value) <= RAW_HEADER_LIMIT:
        return value
    comma = value.rfind(",", 0, RAW_HEADER_LIMIT + 1)
    if comma > 0:
        return value[:comma]
    first = value.split(",", 1)[0]
    angle = first.rfind("<")
    if angle >= 0 and len(first) - angle <= RAW_HEADER_LIMIT:
        return first[angle:]
    return value[:RAW_HEADER_LIMIT]


def for_mail_parser(msg: email.message.Message) -> email.message.Message:
    """The message as mail-parser is given it: the same parts, and only the
    top-level headers it is read for (`_MAIL_PARSER_HEADERS`), bounded."""
    view = copy.copy(msg)
    seen: dict[str, int] = {}
    kept = []
    for name, value in msg.raw_items():
        key = name.lower()
        if key not in _MAIL_PARSER_HEADERS:
            continue
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > _MAIL_PARSER_OCCURRENCES:
            continue
        if key not in mailparser_const.ADDRESSES_HEADERS and isinstance(value, str):
            value = cut_raw(value, _MAIL_PARSER_VALUE)
        kept.append((name, value))
    view._headers = kept  # type: ignore[attr-defined]
    if msg.is_multipart():
        view._payload = [_part_view(p) for p in msg.get_payload()]  # type: ignore[attr-defined]
    return view


def _part_view(part: email.message.Message) -> email.message.Message:
    """A part as mail-parser is given it: a long or encoded-word parameter
    header in a plain form (`_plain_parameters`). mail-parser decodes every
    part's filename with the stdlib's quadratic decoder, though it only asks
    whether there is one: 100 parts named with 16 KB of unclosed encoded
    words took 24 s. (Our own reading of names, `parts`, is linear.)"""
    view = copy.copy(part)
    view._headers = [  # type: ignore[attr-defined]
        (name, _plain_parameters(name, value)) for name, value in part.raw_items()
    ]
    if part.is_multipart():
        view._payload = [_part_view(p) for p in part.get_payload()]  # type: ignore[attr-defined]
    return view


#: A parameter header up to this long, without encoded words, is left as it is.
_PLAIN_PARAMETERS = 256
_CHARSET_PARAM = re.compile(r"""charset\s*=\s*"?([\w.:+-]{1,40})""", re.IGNORECASE)
_BOUNDARY_PARAM = re.compile(r"""boundary\s*=\s*"?([^";\r\n]{1,200})""", re.IGNORECASE)
_NAME_PARAM = re.compile(r"name\*?[0-9]*\*?\s*=", re.IGNORECASE)


def _plain_parameters(name: str, value: object) -> object:
    """Content-Type or Content-Disposition as mail-parser needs it: the type,
    the charset and boundary, and whether the part is named (as "file")."""
    key = name.lower()
    if key not in ("content-type", "content-disposition") or not isinstance(value, str):
        return value
    if len(value) <= _PLAIN_PARAMETERS and "=?" not in value:
        return value
    kept = [value.split(";", 1)[0].strip()[:100]]
    for pattern, param in ((_CHARSET_PARAM, "charset"), (_BOUNDARY_PARAM, "boundary")):
        found = pattern.search(value)
        if found:
            kept.append(f'{param}="{found.group(1)}"')
    if _NAME_PARAM.search(value):
        kept.append('filename="file"' if key == "content-disposition" else 'name="file"')
    return "; ".join(kept)
