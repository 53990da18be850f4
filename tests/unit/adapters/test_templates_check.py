"""Templates are checked whole at load (fuzzing report F15) and every
rendering is bounded (F16): an admin's mistake in an included file is refused
with its file and line before any mail is taken, and a template that would
loop for hours or render gigabytes stops at once with an error naming it."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from daemon.adapters.template_bounds import MAX_LOOP_STEPS, MAX_PART_CHARS, RenderLimitExceeded
from daemon.adapters.template_check import TemplateCheck, TemplateProblems
from daemon.adapters.template_verdict import MAX_BYTES
from daemon.adapters.templates import TemplateRenderer

SHIPPED = Path(__file__).resolve().parents[3] / "templates"


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    """A copy of the shipped templates, for a test to break one file."""
    folder = tmp_path / "templates"
    shutil.copytree(SHIPPED, folder)
    return folder


def problems(folder: Path) -> list[str]:
    return TemplateRenderer(folder).problems()


def test_the_shipped_templates_have_no_problems() -> None:
    assert problems(SHIPPED) == []
    TemplateRenderer(SHIPPED).check()


def test_a_syntax_error_in_an_included_footer_is_refused_with_its_file_and_line(
    templates: Path,
) -> None:
    footer = templates / "en" / "footer.txt"
    footer.write_text("Kind regards,\n{{ }}\n", encoding="utf-8")
    assert problems(templates) == [
        f"{footer}:2: Expected an expression, got 'end of print statement'"
    ]
    with pytest.raises(TemplateProblems) as refused:
        TemplateRenderer(templates).check()
    assert f"{footer}:2:" in str(refused.value)


def test_a_syntax_error_in_a_polish_layout_is_refused(templates: Path) -> None:
    layout = templates / "pl" / "layout.html"
    layout.write_text("{% block body %}\n", encoding="utf-8")
    [problem] = problems(templates)
    assert problem.startswith(f"{layout}:")


@pytest.mark.parametrize("missing", ["layout.html", "footer.txt", "ticket_facts.txt"])
def test_a_missing_english_include_is_named_with_every_template_that_needs_it(
    templates: Path, missing: str
) -> None:
    (templates / "en" / missing).unlink()
    found = problems(templates)
    assert found, "a missing include must be refused"
    assert all(f"'{missing}', which is not in en/" in p for p in found), found
    assert any(p.startswith(f"{templates / 'en'}/") for p in found)


def test_a_polish_include_missing_in_both_languages_is_refused(templates: Path) -> None:
    (templates / "pl" / "ack.txt").write_text('{% include "stopka.txt" %}\n', encoding="utf-8")
    assert problems(templates) == [
        f"{templates / 'pl' / 'ack.txt'}:1: includes 'stopka.txt', which is not in pl/ or en/"
    ]


def test_a_polish_include_found_in_english_is_no_problem(templates: Path) -> None:
    """As rendering finds it: a template Polish lacks is taken from English."""
    (templates / "pl" / "footer.txt").unlink()
    assert problems(templates) == []


def test_an_include_marked_ignore_missing_or_with_a_fallback_is_no_problem(
    templates: Path,
) -> None:
    (templates / "en" / "ack.txt").write_text(
        '{% include "extra.txt" ignore missing %}{% include ["mine.txt", "footer.txt"] %}\n',
        encoding="utf-8",
    )
    assert problems(templates) == []


def test_a_non_utf8_include_is_refused_as_unreadable(templates: Path) -> None:
    layout = templates / "en" / "layout.html"
    layout.write_bytes(b"\xff\xfe\x00")
    assert problems(templates) == [f"{layout}: cannot read: not UTF-8 text (byte 0)"]


def test_a_template_that_includes_itself_is_refused(templates: Path) -> None:
    ack = templates / "en" / "ack.txt"
    ack.write_text("x{% include 'ack.txt' %}\n", encoding="utf-8")
    assert problems(templates) == [f"{ack}:1: includes 'ack.txt' endlessly (ack.txt -> ack.txt)"]


def test_a_missing_english_kind_is_refused_and_a_missing_polish_one_falls_back(
    templates: Path,
) -> None:
    (templates / "pl" / "closed.txt").unlink()
    assert problems(templates) == []
    (templates / "en" / "closed.txt").unlink()
    assert problems(templates) == [
        f"{templates / 'en' / 'closed.txt'}: missing (every mail kind needs its English text)"
    ]


def test_a_file_included_by_nothing_is_compiled_too_but_an_editor_backup_is_not(
    templates: Path,
) -> None:
    (templates / "en" / ".footer.txt.swp").write_bytes(b"\x00\xff{% broken")
    (templates / "en" / "footer.txt~").write_text("{% broken", encoding="utf-8")
    assert problems(templates) == []
    unused = templates / "en" / "spare.txt"
    unused.write_text("{% if %}", encoding="utf-8")
    [problem] = problems(templates)
    assert problem.startswith(f"{unused}:1: ")


def test_references_are_noted_so_a_second_check_parses_nothing(templates: Path) -> None:
    """The second process takes the references it noted (same answer)."""
    (templates / "en" / "footer.txt").unlink()
    first = problems(templates)
    assert first == problems(templates)


# --- a check that passed is not done again for the same files -----------------------


def checks_run(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The folders a full check ran on, from now on."""
    ran: list[Path] = []
    full = TemplateCheck.problems

    def counted(self: TemplateCheck) -> list[str]:
        ran.append(self.root)
        return full(self)

    monkeypatch.setattr(TemplateCheck, "problems", counted)
    return ran


def unique(templates: Path) -> None:
    """Templates no check has seen yet (a verdict is shared by every folder
    with the same files, as the compiled code is)."""
    (templates / "en" / "note.txt").write_text(f"{{# {templates} #}}\n", encoding="utf-8")


def test_the_next_process_takes_the_verdict_of_a_check_that_passed(
    templates: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unique(templates)
    ran = checks_run(monkeypatch)
    TemplateRenderer(templates).check()
    TemplateRenderer(templates).check()
    TemplateRenderer(templates).check()
    assert ran == [templates]


def test_an_edit_after_a_passed_check_is_checked_and_refused(templates: Path) -> None:
    TemplateRenderer(templates).check()
    footer = templates / "pl" / "footer.txt"
    footer.write_text("Z poważaniem,\n{% if %}\n", encoding="utf-8")
    with pytest.raises(TemplateProblems) as refused:
        TemplateRenderer(templates).check()
    assert f"{footer}:2:" in str(refused.value)


def test_an_include_deleted_after_a_passed_check_is_refused(templates: Path) -> None:
    TemplateRenderer(templates).check()
    (templates / "en" / "ticket_facts.txt").unlink()
    with pytest.raises(TemplateProblems, match=r"ticket_facts\.txt"):
        TemplateRenderer(templates).check()


def test_a_new_hidden_file_or_folder_means_a_full_check(
    templates: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An include may name any file, hidden or not: each entry counts."""
    unique(templates)
    TemplateRenderer(templates).check()
    ran = checks_run(monkeypatch)
    (templates / "pl" / ".layout.html.swp").write_bytes(b"\x00\xff")
    TemplateRenderer(templates).check()
    (templates / "en" / "parts").mkdir()
    TemplateRenderer(templates).check()
    assert ran == [templates, templates]


def test_a_folder_of_large_files_is_checked_in_full_not_hashed_at_every_start(
    templates: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading 9 MB at every start to skip a 36 ms check would cost more
    (each file is under the 4 MiB any one file may have)."""
    for n in range(3):
        (templates / "en" / f"logo-{n}.png").write_bytes(b"\0" * (MAX_BYTES // 3 + 1))
    ran = checks_run(monkeypatch)
    TemplateRenderer(templates).check()
    TemplateRenderer(templates).check()
    assert ran == [templates, templates]


def test_a_fifo_among_the_templates_is_checked_in_full_without_blocking(
    templates: Path,
) -> None:
    TemplateRenderer(templates).check()
    fifo = templates / "en" / "footer.txt"
    fifo.unlink()
    os.mkfifo(fifo)  # no writer: reading it would block for ever
    with pytest.raises(TemplateProblems, match=r"footer\.txt: cannot read"):
        TemplateRenderer(templates).check()


def test_folders_changed_while_they_are_checked_leave_no_verdict(
    templates: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The verdict is of what was checked: an edit during the check (here a
    broken file written while it runs) must be checked by the next process."""
    unique(templates)
    full = TemplateCheck.problems
    spare = templates / "en" / "spare.txt"

    def edited_meanwhile(self: TemplateCheck) -> list[str]:
        found = full(self)
        spare.write_text("{% if %}", encoding="utf-8")
        return found

    monkeypatch.setattr(TemplateCheck, "problems", edited_meanwhile)
    TemplateRenderer(templates).check()
    monkeypatch.setattr(TemplateCheck, "problems", full)
    with pytest.raises(TemplateProblems, match=r"spare\.txt:1"):
        TemplateRenderer(templates).check()


# --- bounded rendering ----------------------------------------------------------------


def probe(tmp_path: Path, source: str) -> TemplateRenderer:
    """A renderer whose `probe` kind is `source` in every part."""
    folder = tmp_path / "probe" / "en"
    folder.mkdir(parents=True)
    for part in (".subject.txt", ".txt", ".html"):
        (folder / f"probe{part}").write_text(source, encoding="utf-8")
    return TemplateRenderer(folder.parent)


def rendering_stops(renderer: TemplateRenderer, match: str) -> float:
    started = time.monotonic()
    with pytest.raises(RenderLimitExceeded, match=match):
        renderer.render("en", "probe", {})
    return time.monotonic() - started


def test_nested_loops_stop_at_the_loop_bound_naming_the_template(tmp_path: Path) -> None:
    renderer = probe(
        tmp_path, "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}"
    )
    took = rendering_stops(renderer, rf"en/probe\.subject\.txt: more than {MAX_LOOP_STEPS:,} loop")
    assert took < 5


def test_nested_loops_over_data_count_too(tmp_path: Path) -> None:
    renderer = probe(tmp_path, "{% for a in rows %}{% for b in rows %}{% endfor %}{% endfor %}")
    with pytest.raises(RenderLimitExceeded, match="loop steps"):
        renderer.render("en", "probe", {"rows": list(range(1000))})


def test_a_loop_in_an_included_file_is_charged_to_the_mail_it_is_in(tmp_path: Path) -> None:
    renderer = probe(tmp_path, "{% for i in range(99999) %}{% include 'part.txt' %}{% endfor %}")
    (tmp_path / "probe" / "en" / "part.txt").write_text(
        "{% for j in range(20) %}{% endfor %}", encoding="utf-8"
    )
    rendering_stops(renderer, r"en/probe\.subject\.txt: more than")


def test_a_lead_digest_after_an_outage_is_within_the_bounds(tmp_path: Path) -> None:
    """20,000 rows of about 500 characters, as a digest's table has them."""
    row = "<tr><td>{{ i }}</td><td>" + "x" * 480 + "</td></tr>"
    renderer = probe(tmp_path, "{% for i in range(20000) %}" + row + "{% endfor %}")
    rendered = renderer.render("en", "probe", {})
    assert rendered.html.count("<tr>") == 20000


def test_huge_output_stops_at_the_size_bound_while_it_is_made(tmp_path: Path) -> None:
    renderer = probe(tmp_path, "{% for i in range(99999) %}{{ '%05000d' % i }}{% endfor %}")
    took = rendering_stops(renderer, f"more than {MAX_PART_CHARS:,} characters rendered")
    assert took < 5


@pytest.mark.parametrize(
    "source",
    [
        "{{ 'x' * 10**13 }}",
        "{{ '%0999999999d' % 1 }}",
        "{{ 7 ** 99999999 }}",
        "{% set ns = namespace(s='x') %}{% for i in range(60) %}"
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
        "{% set ns = namespace(s='x') %}{% for i in range(60) %}"
        "{% set ns.s = ns.s + ns.s %}{% endfor %}",
    ],
)
def test_a_value_too_large_to_make_is_refused_before_memory_runs_out(
    tmp_path: Path, source: str
) -> None:
    took = rendering_stops(probe(tmp_path, source), "too large|more than")
    assert took < 5


def test_ordinary_loops_and_arithmetic_render_as_before(tmp_path: Path) -> None:
    renderer = probe(
        tmp_path,
        "{% for row in rows %}{{ loop.index }}={{ row * 2 }}{% if not loop.last %},"
        "{% endif %}{% endfor %} {{ '%03d' % 7 }} {{ 'ab' * 2 }} {{ 2 ** 10 }} {{ 'a' ~ 'b' }}"
        " {{ range(3) | sum }}{% for x in [] %}x{% else %} none{% endfor %}",
    )
    assert renderer.render("en", "probe", {"rows": [1, 2, 3]}).text == (
        "1=2,2=4,3=6 007 abab 1024 ab 3 none"
    )
