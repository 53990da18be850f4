"""HTML bodies: how deep they nest, sanitised, and rendered as text.

Its own module because HTML is the one part of a message that reaches
C code (nh3) and a browser: its limits and sanitising are kept in one place.
"""

from __future__ import annotations

import re

import html2text
import nh3

#: HTML nested deeper than this is not handed to nh3: html5ever's cost grows
#: with the depth (200,000 nested <div>s took 188 s, 1,000 take milliseconds)
#: and C code cannot be stopped half-way, so the depth is checked before.
MAX_HTML_DEPTH = 1000
#: Elements that never nest: void, or closed by the next of their kind.
_FLAT_ELEMENTS = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "colgroup",
        "dd",
        "dt",
        "embed",
        "hr",
        "img",
        "input",
        "li",
        "link",
        "meta",
        "option",
        "optgroup",
        "p",
        "param",
        "rb",
        "rp",
        "rt",
        "rtc",
        "source",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "track",
        "wbr",
    ]
)
_TAG_RE = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]*+)[^<>]*+>")  # possessive: linear


def html_to_text(html: str) -> str:
    """A readable plain-text rendering of an HTML-only body."""
    converter = html2text.HTML2Text()
    converter.body_width = 0
    converter.ignore_images = True
    converter.ignore_emphasis = True
    converter.ignore_links = False
    try:
        return converter.handle(html).strip()
    except Exception:  # html2text on hostile markup: fall back to stripped tags
        return re.sub(r"<[^>]*>", " ", html)


def html_depth(html: str) -> int:
    """How deep the elements of `html` nest, counted in one pass over its
    tags (elements that cannot nest are left out); an upper bound of what
    an HTML parser builds."""
    depth = deepest = 0
    for match in _TAG_RE.finditer(html):
        if match.group(2).lower() in _FLAT_ELEMENTS or match.group(0).endswith("/>"):
            continue
        if match.group(1):
            depth = max(depth - 1, 0)
        else:
            depth += 1
            deepest = max(deepest, depth)
    return deepest


def sanitize_html(html: str) -> str:
    """HTML safe to show or forward: no scripts, handlers, or remote tricks.
    `cid:` links stay: they name a part of the same message (an inline image
    that must stay inline when the mail is passed on)."""
    return nh3.clean(html, url_schemes=_URL_SCHEMES)


_URL_SCHEMES = nh3.ALLOWED_URL_SCHEMES | {"cid"}
