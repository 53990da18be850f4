"""HTML bodies: sanitised, and rendered as text.

Its own module because HTML is the one part of a message that reaches
C code (nh3) and a browser: its limits and sanitising are kept in one place.
Before nh3 is called, `htmltree.html_depth` bounds what building the tree
would cost (the caller refuses HTML over its limits), and `sanitize_html`
cuts each tag to its first attributes: html5ever compares each attribute of
a tag with the ones before it.
"""

from __future__ import annotations

import re

import nh3

#: HTML up to this size goes to nh3 unguarded: its worst case there (3,000
#: nested <div>s) is about 30 ms, less than the guard's own pass over such
#: tag soup, and the guard's cost on every ordinary message is saved.
GUARD_FROM = 16_384
#: Attributes kept per tag: html5ever checks each new attribute against the
#: tag's earlier ones (229,000 attributes on one <div> took 12 s). Real mail
#: has a few dozen at most; the rest are dropped before nh3 sees them.
MAX_ATTRIBUTES = 256
#: What html_to_text is given at most: html2text costs ~1 s per MB of tags
#: in pure Python, and a text rendering longer than this is not read anyway.
MAX_TEXT_HTML = 500_000

#: Foreign content (svg, math) and <select> change how html5ever tokenizes
#: and builds (no raw text, CDATA, self-closing tags; most tags ignored), and
#: html5ever's <select> rules are newer than most: they are renamed to plain
#: unknown elements before nh3, which drops all three and keeps their text
#: either way, so the tree model of `htmltree` holds for all that nh3 parses.
FOREIGN_RE = re.compile(r"<(/?)(svg|math|select)(?=[\t\n\f\r />])", re.IGNORECASE)


def _bound_attributes(html: str) -> str:
    """`html` with every tag cut to its first MAX_ATTRIBUTES attributes."""
    # Imported here: the tree model costs 13 ms to import, and only HTML over
    # GUARD_FROM needs it (a process that never sees such mail never loads it).
    from daemon.mail.htmltree import ATTRIBUTE_RE, tokens

    cuts: list[tuple[int, int]] = []
    for match, name in tokens(html):
        if not name:
            continue
        start, end = match.span(3)
        if end - start <= 2 * MAX_ATTRIBUTES:  # an attribute takes 2 characters or more
            continue
        for count, attribute in enumerate(ATTRIBUTE_RE.finditer(html, start, end), 1):
            if count == MAX_ATTRIBUTES:
                cuts.append((attribute.end(), end))
                break
    if not cuts:
        return html
    kept: list[str] = []
    at = 0
    for start, end in cuts:
        kept += [html[at:start]]
        at = end
    return "".join(kept) + html[at:]


def html_to_text(html: str) -> str:
    """A readable plain-text rendering of an HTML-only body."""
    # Imported here: most mail has a text part, and html2text costs 4-5 ms
    # to import in every process that would otherwise never use it.
    import html2text

    html = html[:MAX_TEXT_HTML]
    converter = html2text.HTML2Text()
    converter.body_width = 0
    converter.ignore_images = True
    converter.ignore_emphasis = True
    converter.ignore_links = False
    try:
        return converter.handle(html).strip()
    except Exception:  # html2text on hostile markup: fall back to stripped tags
        return re.sub(r"<[^>]*>", " ", html)


def sanitize_html(html: str) -> str:
    """HTML safe to show or forward: no scripts, handlers, or remote tricks.
    `cid:` links stay: they name a part of the same message (an inline image
    that must stay inline when the mail is passed on)."""
    html = FOREIGN_RE.sub(r"<\1x-\2", html)
    if len(html) > GUARD_FROM:  # below, a few thousand attributes cost nh3 milliseconds
        html = _bound_attributes(html)
    return nh3.clean(html, url_schemes=_URL_SCHEMES)


_URL_SCHEMES = nh3.ALLOWED_URL_SCHEMES | {"cid"}
