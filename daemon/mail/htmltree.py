"""How html5ever builds a tree from HTML, followed in one linear pass, so
that what it would cost nh3 is known before nh3 is called.

html5ever's tree builder walks the stack of open elements (and the list of
active formatting elements) for many tokens, so its cost is the number of
tags times how deep they stand. C code cannot be stopped half-way, so
`html_depth` follows html5ever's tokenizer and tree builder rule for rule and
counts how deep the stack grows and how many steps the walks would take. A
tag count would not do: stray end tags, quoted `<`, raw text and misnested
formatting all nest differently from how they look.
"""

from __future__ import annotations

import bisect
import html as html_entities
import re
from collections.abc import Iterator

#: HTML nested deeper than this is not handed to nh3: html5ever's cost grows
#: with the depth (200,000 nested <div>s took 188 s, 1,000 take milliseconds)
#: and C code cannot be stopped half-way, so the depth is checked before.
MAX_HTML_DEPTH = 1000
#: Nor HTML whose tree building takes more steps than this (a step: one
#: element looked at in html5ever's stack or formatting list, ~10 ns): what
#: it costs is the steps per tag times the tags, and 1,000 open <span>s and
#: 500,000 stray end tags took 3-4 s although 1,000 levels is allowed.
MAX_HTML_WORK = 100_000_000
#: The weight of a step that is also a turn of a Python loop here.
_LOOP = 100

_WS = "\t\n\f\r "
_ATTRIBUTE = (  # one attribute as the tokenizer reads it; possessive: linear
    rf"[^{_WS}/>][^{_WS}/=>]*+"
    rf"(?:[{_WS}]*+=[{_WS}]*+(?:\"[^\"]*+(?:\"|\Z)|'[^']*+(?:'|\Z)|[^{_WS}>]*+))?+"
)
#: One token of html5ever's data state. A tag runs to its `>` whatever its
#: quoted values hold, or to the end of the input (which ends the parse).
_TOKEN_RE = re.compile(
    r"<!--(?:-?>|[\s\S]*?(?:--!?>|\Z))"  # comment
    r"|<[!?][^>]*+>?"  # doctype, bogus comment, <![CDATA[ outside svg/math
    r"|</(?![A-Za-z])[^>]*+>?"  # `</>` and other bogus end tags
    rf"|<(/?)([A-Za-z][^{_WS}/>]*+)((?:[{_WS}]++|/(?!>)|{_ATTRIBUTE})*+)(/?)(>|\Z)"
)
ATTRIBUTE_RE = re.compile(_ATTRIBUTE)
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

# Foreign content (svg, math) and <select> change how html5ever tokenizes
# and builds; `html.sanitize_html` renames them to plain unknown elements
# before nh3 (`html.FOREIGN_RE`), so the one model below holds.

# Element kinds of the HTML standard's tree construction as html5ever has them
# (checked against nh3: <search> closes a <p> but is not special, <isindex> is).
_VOID = frozenset(
    [
        "area",
        "base",
        "basefont",
        "bgsound",
        "br",
        "col",
        "embed",
        "hr",
        "image",
        "img",
        "input",
        "keygen",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    ]
)
_IGNORED_IN_BODY = frozenset(
    ["body", "caption", "col", "colgroup", "frame", "frameset", "head", "html"]
)
_RCDATA = frozenset(["title", "textarea"])
_RAWTEXT = frozenset(["style", "xmp", "iframe", "noembed", "noframes", "noscript"])
_TEXT_ONLY = _RCDATA | _RAWTEXT | {"script", "plaintext"}  # opened, text, closed
_FORMATTING = frozenset(
    [
        "a",
        "b",
        "big",
        "code",
        "em",
        "font",
        "i",
        "nobr",
        "s",
        "small",
        "strike",
        "strong",
        "tt",
        "u",
    ]
)
_SPECIAL = frozenset(
    [
        "address",
        "applet",
        "area",
        "article",
        "aside",
        "base",
        "basefont",
        "bgsound",
        "blockquote",
        "body",
        "br",
        "button",
        "caption",
        "center",
        "col",
        "colgroup",
        "dd",
        "details",
        "dir",
        "div",
        "dl",
        "dt",
        "embed",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "frame",
        "frameset",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "head",
        "header",
        "hgroup",
        "hr",
        "html",
        "iframe",
        "img",
        "input",
        "isindex",
        "keygen",
        "li",
        "link",
        "listing",
        "main",
        "marquee",
        "menu",
        "meta",
        "nav",
        "noembed",
        "noframes",
        "noscript",
        "object",
        "ol",
        "p",
        "param",
        "plaintext",
        "pre",
        "script",
        "section",
        "source",
        "style",
        "summary",
        "table",
        "tbody",
        "td",
        "template",
        "textarea",
        "tfoot",
        "th",
        "thead",
        "title",
        "tr",
        "track",
        "ul",
        "wbr",
        "xmp",
    ]
)
_SCOPE = frozenset(
    ["applet", "caption", "html", "table", "td", "th", "marquee", "object", "template"]
)
_IMPLIED = frozenset(["dd", "dt", "li", "optgroup", "option", "p", "rb", "rp", "rt", "rtc"])
_HEADINGS = frozenset(["h1", "h2", "h3", "h4", "h5", "h6"])
_SECTIONS = frozenset(["tbody", "thead", "tfoot"])
_CELLS = frozenset(["td", "th"])
_TABLE_PARTS = frozenset(
    ["caption", "col", "colgroup", "tbody", "td", "tfoot", "th", "thead", "tr"]
)
#: Start tags that first close an open <p> (in button scope).
_CLOSES_P = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "center",
        "details",
        "dialog",
        "dir",
        "div",
        "dl",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "header",
        "hgroup",
        "main",
        "menu",
        "nav",
        "ol",
        "p",
        "search",
        "section",
        "summary",
        "ul",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "pre",
        "listing",
        "table",
        "hr",
        "xmp",
        "plaintext",
    ]
)
#: End tags that pop to their element when it is in (default) scope.
_BLOCK_ENDS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "button",
        "center",
        "details",
        "dialog",
        "dir",
        "div",
        "dl",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "header",
        "hgroup",
        "listing",
        "main",
        "menu",
        "nav",
        "ol",
        "pre",
        "search",
        "section",
        "summary",
        "ul",
    ]
)
#: Elements that decide the insertion mode, topmost first (reset the insertion mode).
_MODES = {
    "td": "cell",
    "th": "cell",
    "tr": "row",
    "tbody": "section",
    "thead": "section",
    "tfoot": "section",
    "caption": "caption",
    "colgroup": "colgroup",
    "table": "table",
    "template": "template",
}
_RECONSTRUCTING_VOIDS = frozenset(["area", "br", "embed", "image", "img", "input", "keygen", "wbr"])
_IN_HEAD = frozenset(
    [
        "base",
        "basefont",
        "bgsound",
        "link",
        "meta",
        "noframes",
        "script",
        "style",
        "template",
        "title",
    ]
)
_TABLE_TEXT_PARENTS = frozenset(["table", "tbody", "template", "tfoot", "thead", "tr"])
_WHITESPACE_TEXT = re.compile(
    r"(?:[\t\n\f\r \0]|&#0*(?:9|10|12|13|32)(?![0-9]);?"
    r"|&#[xX]0*(?:9|[aA]|[cC]|[dD]|20)(?![0-9A-Fa-f]);?|&(?:Tab|NewLine);)*+\Z"
)
_KINDS: dict[str, tuple[str, ...]] = {}
#: End tags that do more than pop their element when it is the current node.
_CLOSED_WITH_MORE = frozenset(["applet", "marquee", "object", "form", "template"])
#: Start tags with a rule of their own in the "in body" insertion mode.
_BODY_START = {
    **dict.fromkeys(_IGNORED_IN_BODY | _TABLE_PARTS, "_ignore"),
    **dict.fromkeys(_VOID | _TEXT_ONLY, "_void"),
    **dict.fromkeys(_CLOSES_P, "_block"),
    **dict.fromkeys(_FORMATTING, "_formatting"),
    **dict.fromkeys(["li", "dd", "dt"], "_item"),
    **dict.fromkeys(["option", "optgroup"], "_option"),
    **dict.fromkeys(["rb", "rtc", "rp", "rt"], "_ruby"),
    **dict.fromkeys(["applet", "marquee", "object"], "_with_marker"),
    "template": "_template",
    "form": "_form",
    "button": "_button",
    "a": "_a",
    "nobr": "_nobr",
}


def _kinds(name: str) -> tuple[str, ...]:
    """The index lists an element is entered in: its name, and each kind the
    tree builder asks about ("nearest open X", "nearest scope boundary")."""
    if (known := _KINDS.get(name)) is not None:
        return known
    kinds = [name]
    if name in _SCOPE:
        kinds += ["#scope", "#button", "#list"]
    elif name == "button":
        kinds.append("#button")
    elif name in ("ol", "ul"):
        kinds.append("#list")
    if name in ("html", "table", "template"):
        kinds.append("#table")
    if name in _SPECIAL:
        kinds.append("#special")
        if name not in ("address", "div", "p"):
            kinds.append("#item-stop")
    if name in _CELLS:
        kinds.append("#cell")
    if name in _HEADINGS:
        kinds.append("#heading")
    if name in _SECTIONS:
        kinds.append("#section")
    if name in _MODES:
        kinds.append("#mode")
    if name in ("dd", "dt"):
        kinds.append("#ddt")
    _KINDS[name] = found = tuple(kinds)
    return found


class _Active:
    """An entry of the list of active formatting elements."""

    __slots__ = ("key", "name", "open")

    def __init__(self, name: str, key: str) -> None:
        self.name, self.key, self.open = name, key, True


class _TooCostly(Exception):
    """The tree builder would do more work than MAX_HTML_WORK."""


class _Builder:
    """html5ever's tree builder reduced to what sets its cost: the stack of
    open elements, the list of active formatting elements and the insertion
    mode, kept rule for rule (a fragment in a <div>, scripting on, as nh3
    parses). Lookups that html5ever makes by walking the stack are O(1) here
    (an index per element kind), and `work` adds up the steps html5ever's
    walks take; the rare operations that reshape the middle of the stack
    (the adoption agency) rebuild the index, also counted."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.refs: list[object] = []  # its _Active, the form pointer's mark, or None
        self.index: dict[str, list[int]] = {}
        self.active: list[_Active | None] = []  # None: a marker
        self.mode = "body"
        self.template_modes: list[str] = []
        self.form: object | None = None
        self.deepest = 0
        self.work = 0
        self.starts = {
            mode: getattr(self, f"start_in_{mode}")
            for mode in (
                "body",
                "table",
                "caption",
                "colgroup",
                "section",
                "row",
                "cell",
                "template",
            )
        }
        self.ends = {mode: getattr(self, f"end_in_{mode}") for mode in self.starts}
        self.body_starts = {name: getattr(self, rule) for name, rule in _BODY_START.items()}

    # -- the stack ------------------------------------------------------------

    def charge(self, steps: int, weight: int = 1) -> None:
        """Count `steps` of html5ever's work (checked after each token);
        `weight`: each is also a turn of a Python loop here, which costs as
        much as many of html5ever's steps."""
        self.work += steps * weight

    def nearest(self, kind: str) -> int:
        found = self.index.get(kind)
        return found[-1] if found else -1

    def top(self) -> str:
        return self.names[-1] if self.names else ""

    def push(self, name: str, ref: object = None) -> None:
        at = len(self.names)
        self.names.append(name)
        self.refs.append(ref)
        index = self.index
        for kind in _KINDS.get(name) or _kinds(name):
            if (found := index.get(kind)) is None:
                index[kind] = [at]
            else:
                found.append(at)
        if at >= self.deepest:
            self.deepest = at + 1

    def touch(self) -> None:
        """An element pushed and popped at once (void, or read as text only)."""
        self.deepest = max(self.deepest, len(self.names) + 1)

    def pop(self) -> str:
        name = self.names.pop()
        ref = self.refs.pop()
        index = self.index
        for kind in _KINDS[name]:
            index[kind].pop()
        if isinstance(ref, _Active):
            ref.open = False
        return name

    def pop_to(self, at: int) -> None:
        """Pop down to and including index `at`."""
        names, refs, index = self.names, self.refs, self.index
        self.work += len(names) - at
        while len(names) > at:
            for kind in _KINDS[names.pop()]:
                index[kind].pop()
            ref = refs.pop()
            if isinstance(ref, _Active):
                ref.open = False

    def pop_until(self, kind: str) -> None:
        self.pop_to(self.nearest(kind))

    def pop_while(self, names: frozenset[str], keep: str = "") -> None:
        stack = self.names
        while stack and stack[-1] in names and stack[-1] != keep:
            self.pop()

    def implied_ends(self, keep: str = "") -> None:
        self.pop_while(_IMPLIED, keep)

    def clear_to(self, names: frozenset[str]) -> None:
        """Pop until the current node is one of `names` (or the stack is empty)."""
        while self.names and self.names[-1] not in names:
            self.charge(1)
            self.pop()

    def in_scope(self, kind: str, boundary: str = "#scope") -> bool:
        at = self.nearest(kind)
        self.charge(len(self.names) - max(at, self.nearest(boundary), 0))
        return at >= 0 and at >= self.nearest(boundary)

    def reshape(self, names: list[str], refs: list[object]) -> None:
        """Replace the stack (the adoption agency moved elements in its middle)."""
        self.charge(len(names), _LOOP)
        self.names, self.refs, self.index = [], [], {}
        for name, ref in zip(names, refs, strict=True):
            self.push(name, ref)

    # -- active formatting elements ---------------------------------------------

    def last_active(self, name: str) -> _Active | None:
        for at in range(len(self.active) - 1, -1, -1):
            entry = self.active[at]
            if entry is None:
                break
            if entry.name == name:
                self.charge(len(self.active) - at, _LOOP)
                return entry
        self.charge(len(self.active), _LOOP)
        return None

    def push_formatting(self, name: str, key: str) -> None:
        active = self.active
        alike, first, at = 0, -1, len(active)
        while at > 0 and (entry := active[at - 1]) is not None:
            at -= 1
            if entry.name == name and entry.key == key:
                alike, first = alike + 1, at
        self.work += (len(active) - at) * _LOOP
        if alike >= 3:  # the "Noah's Ark" clause: the earliest of three goes
            del active[first]
        entry = _Active(name, key)
        active.append(entry)
        self.push(name, entry)

    def clear_to_marker(self) -> None:
        while self.active:
            self.charge(1)
            if self.active.pop() is None:
                break

    def reconstruct(self) -> None:
        """Reopen the active formatting elements closed since the last marker."""
        if not self.active or (last := self.active[-1]) is None or last.open:
            return
        at = len(self.active)
        while at > 0 and (entry := self.active[at - 1]) is not None and not entry.open:
            at -= 1
            self.charge(len(self.names))  # html5ever looks for each in the stack
        self.charge(len(self.active) - at, _LOOP)
        for index in range(at, len(self.active)):
            old = self.active[index]
            assert old is not None
            entry = _Active(old.name, old.key)
            self.active[index] = entry
            self.push(old.name, entry)

    def adoption_agency(self, name: str) -> None:
        if self.top() == name and self.refs[-1] not in self.active:
            self.charge(len(self.active))
            self.pop()
            return
        for _ in range(8):
            entry = self.last_active(name)
            if entry is None:
                self.any_other_end(name)
                return
            if not entry.open:
                self.active.remove(entry)
                return
            self.charge(len(self.names))
            at = self.refs.index(entry)
            if at < self.nearest("#scope"):
                return  # not in scope: ignored
            specials = self.index.get("#special", [])
            after = bisect.bisect_right(specials, at)
            furthest = specials[after] if after < len(specials) else -1
            if furthest < 0:
                self.pop_to(at)
                self.active.remove(entry)
                return
            names, refs = list(self.names), list(self.refs)
            bookmark = self.active.index(entry)
            kept: list[int] = []
            for count, node in enumerate(range(furthest - 1, at, -1), 1):
                self.charge(len(self.active) + _LOOP)
                ref = refs[node]
                if count > 3 and isinstance(ref, _Active) and ref in self.active:
                    self.active.remove(ref)
                if isinstance(ref, _Active) and ref in self.active:
                    clone = _Active(ref.name, ref.key)
                    place = self.active.index(ref)
                    self.active[place] = clone
                    refs[node] = clone
                    if not kept:
                        bookmark = place + 1
                    kept.append(node)
                else:
                    if isinstance(ref, _Active):
                        ref.open = False
                    names[node] = ""  # removed from the stack
            clone = _Active(entry.name, entry.key)
            bookmark -= self.active.index(entry) < bookmark
            self.active.remove(entry)
            self.active.insert(bookmark, clone)
            entry.open = False
            names[at] = ""
            names.insert(furthest + 1, name)
            refs.insert(furthest + 1, clone)
            self.charge(len(self.active))
            self.reshape(
                [n for n in names if n], [r for n, r in zip(names, refs, strict=True) if n]
            )

    # -- tokens -----------------------------------------------------------------

    def text(self, text: str) -> None:
        if self.mode == "colgroup":
            if _WHITESPACE_TEXT.match(text):
                return
            if self.top() != "colgroup":
                return
            self.pop()
            self.mode = "table"
        if (
            self.mode in ("table", "section", "row")
            and self.top() in _TABLE_TEXT_PARENTS
            and _WHITESPACE_TEXT.match(text)
        ):
            return
        if self.mode not in ("table", "section", "row") and not text.strip("\0"):
            return
        self.reconstruct()

    def reset_mode(self) -> None:
        at = self.nearest("#mode")
        self.charge(len(self.names) - max(at, 0))
        if at < 0:
            self.mode = "body"
        elif self.names[at] == "template":
            self.mode = self.template_modes[-1] if self.template_modes else "body"
        else:
            self.mode = _MODES[self.names[at]]

    def start(self, name: str, key: str) -> None:
        self.starts[self.mode](name, key)

    def end(self, name: str) -> None:
        self.ends[self.mode](name)

    def close_p(self) -> None:
        """Close a <p> if one is open in button scope (before a block opens)."""
        index = self.index
        boundary = index.get("#button")
        floor = boundary[-1] if boundary else -1
        found = index.get("p")
        at = found[-1] if found else -1
        top = len(self.names) - 1
        if at == top and at >= 0:
            self.pop()
        elif at >= 0 and at >= floor:
            self.work += top - at
            self.implied_ends("p")
            self.pop_to(at)
        else:
            self.work += top - max(floor, 0)

    def start_in_body(self, name: str, key: str) -> None:
        rule = self.body_starts.get(name)
        if rule is None:  # any other start tag
            self.reconstruct()
            self.push(name)
        else:
            rule(name, key)

    def _ignore(self, name: str, key: str) -> None:
        return

    def _template(self, name: str, key: str) -> None:
        self.push(name)
        self.active.append(None)
        self.template_modes.append("template")
        self.mode = "template"

    def _block(self, name: str, key: str) -> None:
        self.close_p()
        if name in _HEADINGS and self.top() in _HEADINGS:
            self.pop()
        if name == "hr" or name == "plaintext":
            self.touch()
        elif name == "xmp":
            self.reconstruct()
            self.touch()
        else:
            self.push(name)
            if name == "table":
                self.mode = "table"

    def _form(self, name: str, key: str) -> None:
        if self.form is not None and not self.index.get("template"):
            return
        self.close_p()
        mark = object()
        if not self.index.get("template"):
            self.form = mark
        self.push(name, mark)

    def _item(self, name: str, key: str) -> None:
        """<li>, <dd>, <dt>: close the open one unless a special element is above it."""
        index = self.index
        found = index.get("li" if name == "li" else "#ddt")
        at = found[-1] if found else -1
        stops = index.get("#item-stop")
        stop = stops[-1] if stops else -1
        self.work += len(self.names) - max(stop, 0)
        if at >= 0 and at == len(self.names) - 1:
            self.pop()
        elif at >= 0 and at >= stop:
            self.implied_ends(self.names[at])
            self.pop_to(at)
        self.close_p()
        self.push(name)

    def _button(self, name: str, key: str) -> None:
        if self.in_scope("button"):
            self.implied_ends()
            self.pop_until("button")
        self.reconstruct()
        self.push(name)

    def _a(self, name: str, key: str) -> None:
        entry = self.last_active("a")
        if entry is not None and self.refs[-1:] == [entry] and self.active[-1] is entry:
            self.pop()  # the adoption agency, when the open <a> is the current node
            self.active.pop()
        elif entry is not None:
            self.adoption_agency("a")
            if entry in self.active:
                self.active.remove(entry)
            if entry.open:
                self.charge(len(self.names))
                at = self.refs.index(entry)
                names, refs = list(self.names), list(self.refs)
                del names[at], refs[at]
                entry.open = False
                self.reshape(names, refs)
        self.reconstruct()
        self.push_formatting(name, key)

    def _nobr(self, name: str, key: str) -> None:
        self.reconstruct()
        if self.in_scope("nobr"):
            self.adoption_agency("nobr")
            self.reconstruct()
        self.push_formatting(name, key)

    def _formatting(self, name: str, key: str) -> None:
        self.reconstruct()
        self.push_formatting(name, key)

    def _option(self, name: str, key: str) -> None:
        if self.top() == "option":
            self.pop()
        self.reconstruct()
        self.push(name)

    def _ruby(self, name: str, key: str) -> None:
        if self.in_scope("ruby"):
            self.implied_ends("rtc" if name in ("rp", "rt") else "")
        self.push(name)

    def _void(self, name: str, key: str) -> None:
        """Inserted and popped at once, or holding only text (a raw-text element)."""
        if name in _RECONSTRUCTING_VOIDS:
            self.reconstruct()
        self.touch()

    def _with_marker(self, name: str, key: str) -> None:
        self.reconstruct()
        self.push(name)
        self.active.append(None)

    def end_in_body(self, name: str) -> None:
        names = self.names
        if names and names[-1] == name:  # the current node: popped, by whichever rule
            if name not in _FORMATTING and name not in _CLOSED_WITH_MORE:
                self.pop()
                return
            if name in _FORMATTING and self.active and self.refs[-1] is self.active[-1]:
                self.pop()
                self.active.pop()
                return
        if name == "template":
            self.end_template()
        elif name in _BLOCK_ENDS or name in ("applet", "marquee", "object"):
            if self.in_scope(name):
                self.implied_ends()
                self.pop_until(name)
                if name in ("applet", "marquee", "object"):
                    self.clear_to_marker()
        elif name == "form":
            if not self.index.get("template"):
                mark, self.form = self.form, None
                self.charge(len(self.names))
                if mark is None or mark not in self.refs:
                    return
                at = self.refs.index(mark)
                if at < self.nearest("#scope"):
                    return
                self.implied_ends()
                names, refs = list(self.names), list(self.refs)
                del names[at], refs[at]
                self.reshape(names, refs)
            elif self.in_scope("form"):
                self.implied_ends()
                self.pop_until("form")
        elif name == "p":
            if not self.in_scope("p", "#button"):
                self.touch()
            else:
                self.implied_ends("p")
                self.pop_until("p")
        elif name == "li" or name in ("dd", "dt"):
            if self.in_scope(name, "#list" if name == "li" else "#scope"):
                self.implied_ends(name)
                self.pop_until(name)
        elif name in _HEADINGS:
            if self.in_scope("#heading"):
                self.implied_ends()
                self.pop_until("#heading")
        elif name in _FORMATTING:
            self.adoption_agency(name)
        elif name == "br":
            self.reconstruct()
            self.touch()
        elif name in ("body", "html"):
            return
        else:
            self.any_other_end(name)

    def any_other_end(self, name: str) -> None:
        at = self.nearest(name)
        special = self.nearest("#special")
        self.charge(len(self.names) - max(at, special, 0))
        if at >= 0 and at >= special:
            self.implied_ends(name)
            self.pop_to(at)

    def end_template(self) -> None:
        if not self.index.get("template"):
            return
        self.pop_while(
            _IMPLIED | {"caption", "colgroup", "tbody", "td", "tfoot", "th"} | {"thead", "tr"}
        )
        self.pop_until("template")
        self.clear_to_marker()
        if self.template_modes:
            self.template_modes.pop()
        self.reset_mode()

    # table modes ------------------------------------------------------------

    def start_in_table(self, name: str, key: str) -> None:
        if name in _TABLE_PARTS:
            self.clear_to(frozenset(["table", "template", "html"]))
            if name == "caption":
                self.push(name)
                self.active.append(None)
                self.mode = "caption"
            elif name in ("colgroup", "col"):
                self.push("colgroup")
                self.mode = "colgroup"
                if name == "col":
                    self.touch()
            elif name in _SECTIONS:
                self.push(name)
                self.mode = "section"
            else:
                self.push("tbody")
                self.mode = "section"
                self.start_in_section(name, key)
        elif name == "table":
            if self.in_scope("table", "#table"):
                self.pop_until("table")
                self.reset_mode()
                self.start(name, key)
        elif name == "template" or name in ("style", "script"):
            self.start_in_body(name, key)
        elif name == "input" and _hidden(key):
            self.touch()
        elif name == "form":
            if not self.index.get("template") and self.form is None:
                self.form = object()
                self.touch()
        else:
            self.start_in_body(name, key)

    def end_in_table(self, name: str) -> None:
        if name == "table":
            if self.in_scope("table", "#table"):
                self.pop_until("table")
                self.reset_mode()
        elif name in _TABLE_PARTS or name in ("body", "html"):
            return
        else:
            self.end_in_body(name)

    def start_in_caption(self, name: str, key: str) -> None:
        if name in _TABLE_PARTS:
            if self.close_caption():
                self.start(name, key)
        else:
            self.start_in_body(name, key)

    def end_in_caption(self, name: str) -> None:
        if name == "caption":
            self.close_caption()
        elif name == "table":
            if self.close_caption():
                self.end(name)
        elif name in _TABLE_PARTS or name in ("body", "html"):
            return
        else:
            self.end_in_body(name)

    def close_caption(self) -> bool:
        if not self.in_scope("caption", "#table"):
            return False
        self.implied_ends()
        self.pop_until("caption")
        self.clear_to_marker()
        self.mode = "table"
        return True

    def start_in_colgroup(self, name: str, key: str) -> None:
        if name == "col":
            self.touch()
        elif name == "template":
            self.start_in_body(name, key)
        elif self.top() == "colgroup":
            self.pop()
            self.mode = "table"
            self.start(name, key)

    def end_in_colgroup(self, name: str) -> None:
        if name == "template":
            self.end_template()
        elif name == "col":
            return
        elif self.top() == "colgroup":
            self.pop()
            self.mode = "table"
            if name != "colgroup":
                self.end(name)

    _SECTION_CONTEXT = frozenset(["tbody", "tfoot", "thead", "template", "html"])
    _ROW_CONTEXT = frozenset(["tr", "template", "html"])

    def start_in_section(self, name: str, key: str) -> None:
        if name in ("tr", "td", "th"):
            self.clear_to(self._SECTION_CONTEXT)
            self.push("tr")
            self.mode = "row"
            if name != "tr":
                self.start_in_row(name, key)
        elif name in _TABLE_PARTS:
            if self.in_scope("#section", "#table"):
                self.clear_to(self._SECTION_CONTEXT)
                self.pop()
                self.mode = "table"
                self.start(name, key)
        else:
            self.start_in_table(name, key)

    def end_in_section(self, name: str) -> None:
        if name in _SECTIONS:
            if self.in_scope(name, "#table"):
                self.clear_to(self._SECTION_CONTEXT)
                self.pop()
                self.mode = "table"
        elif name == "table":
            if self.in_scope("#section", "#table"):
                self.clear_to(self._SECTION_CONTEXT)
                self.pop()
                self.mode = "table"
                self.end(name)
        elif name in _TABLE_PARTS or name in ("body", "html"):
            return
        else:
            self.end_in_table(name)

    def close_row(self) -> bool:
        if not self.in_scope("tr", "#table"):
            return False
        self.clear_to(self._ROW_CONTEXT)
        self.pop()
        self.mode = "section"
        return True

    def start_in_row(self, name: str, key: str) -> None:
        if name in _CELLS:
            self.clear_to(self._ROW_CONTEXT)
            self.push(name)
            self.active.append(None)
            self.mode = "cell"
        elif name in _TABLE_PARTS:
            if self.close_row():
                self.start(name, key)
        else:
            self.start_in_table(name, key)

    def end_in_row(self, name: str) -> None:
        if name == "tr":
            self.close_row()
        elif name == "table":
            if self.close_row():
                self.end(name)
        elif name in _SECTIONS:
            if self.in_scope(name, "#table") and self.close_row():
                self.end(name)
        elif name in _TABLE_PARTS or name in ("body", "html"):
            return
        else:
            self.end_in_table(name)

    def close_cell(self) -> None:
        self.implied_ends()
        self.pop_until("#cell")
        self.clear_to_marker()
        self.mode = "row"

    def start_in_cell(self, name: str, key: str) -> None:
        if name in _TABLE_PARTS:
            if self.in_scope("#cell", "#table"):
                self.close_cell()
                self.start(name, key)
        else:
            self.start_in_body(name, key)

    def end_in_cell(self, name: str) -> None:
        if name in _CELLS:
            if self.in_scope(name, "#table"):
                self.implied_ends()
                self.pop_until(name)
                self.clear_to_marker()
                self.mode = "row"
        elif name in ("table", "tr") or name in _SECTIONS:
            if self.in_scope(name, "#table"):
                self.close_cell()
                self.end(name)
        elif name in ("caption", "col", "colgroup", "body", "html"):
            return
        else:
            self.end_in_body(name)

    def start_in_template(self, name: str, key: str) -> None:
        if name in _IN_HEAD:
            self.start_in_body(name, key)
            return
        mode = {
            "caption": "table",
            "colgroup": "table",
            "tbody": "table",
            "tfoot": "table",
            "thead": "table",
            "col": "colgroup",
            "tr": "section",
            "td": "row",
            "th": "row",
        }.get(name, "body")
        self.template_modes[-1:] = [mode]
        self.mode = mode
        self.start(name, key)

    def end_in_template(self, name: str) -> None:
        if name == "template":
            self.end_template()


def _hidden(attributes: str) -> bool:
    """Whether a tag's attributes make it <input type=hidden> (the first `type` counts)."""
    for match in ATTRIBUTE_RE.finditer(attributes):
        name, _, value = match.group().partition("=")
        if name.strip(_WS).translate(_ASCII_LOWER) == "type":
            value = html_entities.unescape(value.strip(_WS).strip("\"'"))
            return value.translate(_ASCII_LOWER) == "hidden"
    return False


_END_TAGS = {name: re.compile(rf"</{name}[{_WS}/>]", re.IGNORECASE) for name in _RCDATA | _RAWTEXT}


def tokens(html: str) -> Iterator[tuple[re.Match[str], str]]:
    """The tokens of `html` as html5ever's tokenizer cuts them, each with its
    tag name in lower case ("" if not a tag), text between them left out, in
    one linear pass: raw-text elements (<style>, <script>, ...) are skipped."""
    at = 0
    while at is not None:
        start, at = at, None
        for match in _TOKEN_RE.finditer(html, start):
            name = match.group(2)
            if name is None:
                yield match, ""
                continue
            if not name.islower():
                name = name.translate(_ASCII_LOWER)
            yield match, name
            if name in _TEXT_ONLY and not match.group(1):
                if name == "script":
                    end = _script_end(html, match.end())
                elif name == "plaintext":
                    end = None
                else:
                    end = _END_TAGS[name].search(html, match.end())
                if end is not None:  # else the rest is text
                    at = end.start()
                break


_SCRIPT_RE = re.compile(rf"<!--|-->|</?script[{_WS}/>]", re.IGNORECASE)
_DASHES_GT = re.compile(r"-*>")


def _script_end(html: str, at: int) -> re.Match[str] | None:
    """Where a <script> element's text ends, with the tokenizer's <!-- escapes."""
    state = 0  # 0: script data, 1: escaped (<!--), 2: double escaped (<!--<script>)
    for match in _SCRIPT_RE.finditer(html, at):
        token = match.group().lower()
        if token == "<!--":
            if state == 0 and not _DASHES_GT.match(html, match.end()):
                state = 1
        elif token == "-->":
            state = 0
        elif token.startswith("</"):
            if state != 2:
                return match
            state = 1
        elif state == 1:
            state = 2
    return None


def html_depth(html: str) -> int:
    """How deep html5ever nests the elements of `html` (as `sanitize_html`
    hands it to nh3), found in one linear pass by following its tree
    builder; more than MAX_HTML_DEPTH also when building the tree would
    cost more than MAX_HTML_WORK steps (counting stops there)."""
    builder = _Builder()
    try:
        _build(builder, html)
    except _TooCostly:
        return max(builder.deepest, MAX_HTML_DEPTH + 1)
    return builder.deepest


def _build(builder: _Builder, html: str) -> None:
    """Feed `html`'s tokens to `builder` (the hot loop: kept flat, for speed)."""
    at = 0
    after = ""  # the start tag just read, if its text is special
    body_starts, body_end, starts, ends = (
        builder.body_starts,
        builder.end_in_body,
        builder.starts,
        builder.ends,
    )
    for match, name in tokens(html):
        start = match.start()
        if start > at and after not in _TEXT_ONLY:
            active = builder.active
            if builder.mode == "colgroup" or (
                active and (last := active[-1]) is not None and not last.open
            ):
                text = html[at:start]
                if after in ("pre", "listing"):  # a newline right after is dropped
                    text = text[2:] if text.startswith("\r\n") else text[1:]
                if text:
                    builder.text(text)
        at = match.end()
        after = ""
        if not name:
            continue
        slash, attributes, close = match.group(1, 3, 5)
        if not close:
            return  # the input ends inside the tag: it is never emitted
        if slash:
            if builder.mode == "body":
                body_end(name)
            else:
                ends[builder.mode](name)
        else:
            if name == "image":
                name = "img"
            if builder.mode != "body":
                starts[builder.mode](name, attributes)
            elif (rule := body_starts.get(name)) is not None:
                rule(name, attributes)
            else:  # any other start tag, the most common
                builder.reconstruct()
                builder.push(name)
            after = name
        if builder.work > MAX_HTML_WORK:
            raise _TooCostly
    if at < len(html) and after not in _TEXT_ONLY:
        builder.text(html[at:])
