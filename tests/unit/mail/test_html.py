"""HTML bodies: the depth and cost guard before nh3, sanitising, and text."""

from __future__ import annotations

import time

import nh3
import pytest

from daemon.mail.html import MAX_ATTRIBUTES, MAX_TEXT_HTML, html_to_text, sanitize_html
from daemon.mail.htmltree import MAX_HTML_DEPTH, html_depth


@pytest.mark.parametrize(
    ("html", "depth"),
    [
        ("<div><p>text</div>", 2),
        ("<ul><li>one<li>two</ul>", 2),  # an <li> closes the one before
        ("<p>one<p>two<div>three</div>", 1),  # a block closes the open <p>
        ("<div><span>unclosed</div><div>next</div>", 2),
        ("<table><tr><td>cell</table>", 4),  # with the <tbody> html5ever adds
        ("<table><td>a<td>b<tr><td>c</table>", 4),
        ("<b><i>both</b></i>", 2),
        ("<img><br><hr><input>", 1),  # void elements never stay open
        ("<style>p { color: red } </div></style><div>", 1),  # style is text
        ("<title><div><div></title>", 1),
        ("<!-- <div><div> --><div>", 1),
        ("<script><!--<script></script></script><div>", 1),  # the tokenizer's escapes
        ("<div>" * 5 + "<p>" * 9 + "</div>" * 5, 6),
    ],
)
def test_depth_is_the_one_html5ever_builds(html: str, depth: int) -> None:
    assert html_depth(html) == depth


@pytest.mark.parametrize(
    "unit",
    [
        "<div></i>",  # an end tag for an element that is not open is ignored
        '<div title="<">',  # a quoted < does not end the tag
        "<div title='</div>'>",  # nor is a quoted end tag one
        "<div/>",  # "/>" closes nothing but void and foreign elements
        "<span><div></span>",  # a stray end tag stops at a special element
        "<div><style></div></style>",  # inside <style> an end tag is text
        "<b><div></b>x",  # the adoption agency keeps the block open
    ],
)
def test_markup_that_hides_its_nesting_from_a_tag_count_is_refused(unit: str) -> None:
    assert html_depth(unit * 2000) > MAX_HTML_DEPTH


def test_closed_formatting_elements_reopened_by_text_count() -> None:
    # <b> closed by </div> opens again at the next text, inside the last one
    html = "".join(f"<div><b id={n}></div>x" for n in range(2000))
    assert html_depth(html) > MAX_HTML_DEPTH


def test_the_guard_is_linear_on_hostile_markup_at_the_size_limit() -> None:
    for unit in ("<div></i>", '<div title="<">', "<p><b>", "<a><div></a>"):
        started = time.process_time()
        assert html_depth((unit * 400_000)[:2_000_000]) > MAX_HTML_DEPTH
        # linear: 1-3 s for the slowest, by the machine (twice that beside a
        # busy suite); nh3 took 25-45 s on the first
        assert time.process_time() - started < 15.0


def test_shallow_markup_that_would_cost_the_tree_builder_much_is_refused() -> None:
    # 900 levels are allowed, but each stray end tag makes html5ever walk all
    # 900 open elements: 4 s in nh3. The guard counts those steps.
    html = "<span>" * 900 + "</x>" * 400_000
    started = time.process_time()
    assert html_depth(html) > MAX_HTML_DEPTH
    assert time.process_time() - started < 6.0  # 0.2 s here


def test_a_tag_keeps_only_its_first_attributes_for_nh3() -> None:
    many = " ".join(f"data-a{n}" for n in range(200_000))
    html = f'<a href="https://example.com/" {many} title="last">link</a>'
    started = time.process_time()
    clean = sanitize_html(html)
    assert time.process_time() - started < 1.0  # html5ever's duplicate check: 12 s
    assert 'href="https://example.com/"' in clean and "last" not in clean
    assert ">link</a>" in clean
    kept = " ".join(f"data-a{n}" for n in range(MAX_ATTRIBUTES - 2))
    assert 'title="kept"' in sanitize_html(f'<a href="x" {kept} title="kept">y</a>')


def test_ordinary_html_is_sanitised_exactly_as_nh3_does() -> None:
    html = (
        "<html><head><style><!-- p {margin:0} --></style></head><body>"
        '<div class="x"><p>Dzień dobry,<br>drukarka <b>nie drukuje</b>.</p>'
        '<table border=1><tr><td><a href="https://example.com/a?b=c">link</a>'
        '<td><img src="cid:logo@x" alt=logo></table>'
        "<!--[if mso]><o:p></o:p><![endif]--><script>alert(1)</script></div>"
        "</body></html>"
    )
    assert sanitize_html(html) == nh3.clean(html, url_schemes=nh3.ALLOWED_URL_SCHEMES | {"cid"})


def test_svg_math_and_select_keep_their_text_but_parse_as_plain_elements() -> None:
    html = "<p>a<select><option>b</option></select><svg><text>c</text></svg><math>d</math>"
    assert sanitize_html(html) == "<p>abd</p>"
    # inside svg, <style> is no raw-text element; once renamed it is, and the
    # guard's model and html5ever agree on it
    assert html_depth("<svg><style><b>x</b></style></svg>") == 2


def test_text_of_a_huge_html_only_body_is_made_from_its_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # html2text takes about a second a megabyte: it is given only the start.
    import html2text

    given: list[int] = []
    handle = html2text.HTML2Text.handle

    def measured(self: html2text.HTML2Text, data: str) -> str:
        given.append(len(data))
        return handle(self, data)

    monkeypatch.setattr(html2text.HTML2Text, "handle", measured)
    html = "<p>para</p>" * 200_000
    text = html_to_text(html)
    assert given == [MAX_TEXT_HTML] and len(html) > 4 * MAX_TEXT_HTML
    assert text.startswith("para") and len(text) < MAX_TEXT_HTML
