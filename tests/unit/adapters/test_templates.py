"""How requester mail reads (SPEC §4 "What requesters see", issue 14.5): the
Polish templates speak the polite „Państwo” form throughout, and dates read
the way people write them, in the desk's time zone."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from daemon.adapters.templates import TemplateRenderer

TEMPLATES = Path(__file__).resolve().parents[3] / "templates"
#: Informal (second person singular) forms a Polish requester must never read.
INFORMAL_PL = re.compile(
    r"\b(pozostaw|zostaw|odpisz|napisz|odpowiedz|kliknij|sprawdź|daj znać|dodaj|wyślij|"
    r"prześlij|potwierdź|skontaktuj się|zadzwoń|twój|twoja|twoje|twojego|twojej|twoim|"
    r"ciebie|tobą)\b|\bCi\b",
    re.IGNORECASE,
)
REQUESTER_TEMPLATES = sorted(
    [
        f"{kind}{suffix}"
        for kind in (
            "ack",
            "agent_reply",
            "status_update",
            "verification",
            "verification_reminder",
            "closed",
            "auto_closed",
        )
        for suffix in (".subject.txt", ".txt", ".html")
    ]
    + ["footer.txt", "layout.html", "names.txt"]
)


@pytest.mark.parametrize("name", REQUESTER_TEMPLATES)
def test_polish_requester_templates_use_no_informal_forms(name: str) -> None:
    source = (TEMPLATES / "pl" / name).read_text(encoding="utf-8")
    words = re.sub(r"\{[{%#].*?[}%#]\}", " ", source, flags=re.DOTALL)  # the text, not Jinja
    found = INFORMAL_PL.search(words)
    assert found is None, f"pl/{name}: informal {found and found.group(0)!r}"


def test_the_informal_list_catches_the_old_footer() -> None:
    assert INFORMAL_PL.search("Odpowiadając, pozostaw [HD-1] w temacie wiadomości.")
    assert not INFORMAL_PL.search("Odpowiadając, prosimy pozostawić [HD-1] w temacie.")
    assert not INFORMAL_PL.search("wystarczy odpowiedzieć; Państwa odpowiedź")


def test_the_when_filter_speaks_the_mail_language(tmp_path: Path) -> None:
    for language, text in (("en", "by {{ due | when }}"), ("pl", "do {{ due | when }}")):
        folder = tmp_path / language
        folder.mkdir()
        for suffix in (".subject.txt", ".txt", ".html"):
            (folder / f"probe{suffix}").write_text(text, encoding="utf-8")
    renderer = TemplateRenderer(tmp_path, "Europe/Warsaw")
    due = datetime(2026, 12, 7, 14, 35, tzinfo=UTC)
    assert renderer.render("pl", "probe", {"due": due}).text == "do 7 grudnia 2026 r., godz. 15:35"
    assert renderer.render("en", "probe", {"due": due}).html == "by Monday 7 December 2026, 15:35"


def test_a_context_key_is_data_and_the_sandbox_still_guards_everything_else(
    tmp_path: Path,
) -> None:
    """`ticket.id` reads the key; a key wins over a dict method of the same
    name; a dict literal's own method still works; anything that is not a key
    goes through the sandbox, which refuses internals."""
    from jinja2.exceptions import SecurityError

    folder = tmp_path / "en"
    folder.mkdir()
    probes = {
        "data": "{{ d.items }} {{ d.id }} {{ {'P1': 'urgent'}.get(d.priority) }}",
        "internals": "{{ d.__class__.__mro__ }}",
    }
    for name, text in probes.items():
        for suffix in (".subject.txt", ".txt", ".html"):
            (folder / f"{name}{suffix}").write_text(text, encoding="utf-8")
    renderer = TemplateRenderer(tmp_path)
    d = {"items": 3, "id": "HD-1", "priority": "P1"}
    assert renderer.render("en", "data", {"d": d}).text == "3 HD-1 urgent"
    with pytest.raises(SecurityError):
        renderer.render("en", "internals", {"d": d})


def test_macros_render_as_jinja_renders_them_and_other_calls_stay_checked(
    tmp_path: Path,
) -> None:
    """The templates' own macros are called directly (no sandbox probe per
    call): arguments, defaults, keywords, `caller()` and imported macros read
    exactly as a plain sandbox renders them; a callable from the data is still
    asked about, and one marked unsafe is refused."""
    from jinja2 import DictLoader
    from jinja2.exceptions import SecurityError
    from jinja2.sandbox import SandboxedEnvironment

    files = {
        "names.txt": "{% macro word(p, lang='en') %}{{ {'P1': 'urgent'}.get(p, p) }}/{{ lang }}"
        "{% endmacro %}",
        "probe.txt": "{% import 'names.txt' as n %}"
        "{% macro box(title) %}[{{ title }}: {{ caller() }}]{% endmacro %}"
        "{% macro twice(x) %}{{ x }}{{ x }}{% endmacro %}"
        "{{ n.word(p) }} {{ n.word('P4', lang='pl') }} {{ twice(p | lower) }} "
        "{% call box('Due') %}{{ twice(n.word(p)) }}{% endcall %} "
        "{% for i in range(2) %}{{ twice(i) }}{% endfor %}",
        "unsafe.txt": "{{ d.run() }}",
    }
    folder = tmp_path / "en"
    folder.mkdir()
    for name, text in files.items():
        for suffix in (".subject.txt", ".txt", ".html"):
            stem = name.removesuffix(".txt")
            (folder / f"{stem}{suffix}").write_text(text, encoding="utf-8")
    plain = SandboxedEnvironment(loader=DictLoader(files))
    expected = plain.get_template("probe.txt").render(p="P1")
    assert expected == "urgent/en P4/pl p1p1 [Due: urgent/enurgent/en] 0011"
    assert TemplateRenderer(tmp_path).render("en", "probe", {"p": "P1"}).text == expected

    def run() -> str:
        return "ran"

    run.unsafe_callable = True  # type: ignore[attr-defined]
    with pytest.raises(SecurityError):
        TemplateRenderer(tmp_path).render("en", "unsafe", {"d": {"run": run}})


def test_the_cache_of_loaded_templates_stays_bounded_whatever_names_a_template_includes(
    tmp_path: Path,
) -> None:
    """A template that includes a name it was given can reach one file by
    endless spellings ("./x.txt", "././x.txt", ...), each a cache entry of
    its own: the cache is emptied before it passes its capacity, and what is
    rendered does not change."""
    from daemon.adapters import templates

    folder = tmp_path / "en"
    folder.mkdir()
    (folder / "x.txt").write_text("included", encoding="utf-8")
    for suffix in (".subject.txt", ".txt", ".html"):
        (folder / f"probe{suffix}").write_text("{% include name %}", encoding="utf-8")
    renderer = TemplateRenderer(tmp_path)
    cache = renderer._envs["en"].cache
    assert cache is not None
    for n in range(templates._TemplateCache.capacity + 50):
        name = "./" * (n + 1) + "x.txt"
        assert renderer.render("en", "probe", {"name": name}).text == "included"
        assert len(cache) <= templates._TemplateCache.capacity


@pytest.fixture
def compiled(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """The names of the templates Jinja compiles from now on."""
    from jinja2 import Environment

    names: list[str | None] = []
    compile_ = Environment.compile

    def counting(self: Environment, source: str, name: str | None = None, *a: object) -> object:
        names.append(name)
        return compile_(self, source, name, *a)  # type: ignore[arg-type]

    monkeypatch.setattr(Environment, "compile", counting)
    return names


def test_compiled_templates_are_kept_and_an_edited_one_compiles_afresh(
    tmp_path: Path, compiled: list[str | None]
) -> None:
    """The second process (here: renderer) loads compiled templates instead of
    compiling them; a template edited since renders its new text."""
    import shutil

    shutil.copytree(TEMPLATES, tmp_path / "templates")
    TemplateRenderer(tmp_path / "templates").check()
    compiled.clear()
    TemplateRenderer(tmp_path / "templates").check()
    assert compiled == []  # every template came from the cache

    subject = tmp_path / "templates" / "en" / "ack.subject.txt"
    # text no earlier run has cached (entries are keyed by content)
    subject.write_text(f"{{# {tmp_path} #}}Edited {{{{ tag }}}}\n", encoding="utf-8")
    renderer = TemplateRenderer(tmp_path / "templates")
    renderer.check()
    assert compiled == ["ack.subject.txt"]
    edited = renderer._envs["en"].get_template("ack.subject.txt")
    assert edited.render(tag="[HD-1]") == "Edited [HD-1]\n"


def test_a_new_desk_with_the_same_templates_compiles_none_and_errors_name_its_own_files(
    tmp_path: Path, compiled: list[str | None]
) -> None:
    """`spocd init` copies the templates into each new desk: the copies load
    compiled from the first desk's entries (keyed by name and source, not
    path), and a template that fails while rendering is reported at its own
    path, not the first desk's."""
    import shutil
    import traceback

    first, second = tmp_path / "first", tmp_path / "second"
    for desk in (first, second):
        shutil.copytree(TEMPLATES, desk / "templates")
        (desk / "templates" / "en" / "broken.txt").write_text("{{ missing.attr }}\n")
    TemplateRenderer(first / "templates").check()
    TemplateRenderer(first / "templates")._envs["en"].get_template("broken.txt")
    compiled.clear()
    renderer = TemplateRenderer(second / "templates")
    renderer.check()
    broken = renderer._envs["en"].get_template("broken.txt")
    assert compiled == []
    with pytest.raises(Exception) as failed:
        broken.render()
    where = "".join(traceback.format_tb(failed.value.__traceback__))
    assert str(second / "templates" / "en" / "broken.txt") in where
    assert str(first) not in where


def test_code_compiled_under_other_settings_or_for_another_name_is_not_taken(
    tmp_path: Path,
) -> None:
    """The same source compiles differently as HTML (autoescaped) and as text,
    and under other syntax settings: neither may be served the other's code."""
    from jinja2 import DictLoader
    from jinja2.sandbox import SandboxedEnvironment

    from daemon.adapters.template_cache import QuietBytecodeCache

    source = "{{ name }}\n{% if true %}\n  x\n{% endif %}\n"
    cache = QuietBytecodeCache(directory=str(tmp_path))

    def env(**options: object) -> SandboxedEnvironment:
        return SandboxedEnvironment(
            loader=DictLoader({"a.txt": source, "a.html": source}),
            autoescape=lambda name: bool(name and name.endswith(".html")),
            bytecode_cache=cache,
            **options,  # type: ignore[arg-type]
        )

    name = "<b>"
    assert env().get_template("a.txt").render(name=name) == "<b>\n\n  x\n"
    assert env().get_template("a.html").render(name=name) == "&lt;b&gt;\n\n  x\n"
    assert env(trim_blocks=True).get_template("a.txt").render(name=name) == "<b>\n  x\n"
    assert env().get_template("a.txt").render(name=name) == "<b>\n\n  x\n"  # its own again


def test_a_cache_that_cannot_be_written_or_read_only_costs_the_compiling(tmp_path: Path) -> None:
    """A full or broken temporary disk must not stop templates from loading."""
    from jinja2 import DictLoader, Environment

    from daemon.adapters.template_cache import QuietBytecodeCache

    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    env = Environment(
        loader=DictLoader({"t.txt": "Hello {{ name }}"}),
        bytecode_cache=QuietBytecodeCache(directory=str(not_a_folder)),
    )
    assert env.get_template("t.txt").render(name="Ewa") == "Hello Ewa"


def test_cached_code_is_read_whole_and_a_damaged_file_is_compiled_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second environment takes the code from the cache without compiling;
    a cache file cut short, overwritten or of another source compiles afresh."""
    from jinja2 import DictLoader, Environment

    from daemon.adapters.template_cache import QuietBytecodeCache

    def env() -> Environment:
        return Environment(
            loader=DictLoader({"t.txt": "Dzień dobry, {{ name }}!"}),
            bytecode_cache=QuietBytecodeCache(directory=str(tmp_path)),
        )

    assert env().get_template("t.txt").render(name="Ewa") == "Dzień dobry, Ewa!"
    (cached,) = tmp_path.iterdir()
    whole = cached.read_bytes()
    compiled: list[str] = []
    real_compile = Environment.compile

    def counting(self: Environment, *args: object, **kwargs: object) -> object:
        compiled.append("x")
        return real_compile(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Environment, "compile", counting)
    assert env().get_template("t.txt").render(name="Jan") == "Dzień dobry, Jan!"
    assert compiled == []
    for damaged in (whole[:10], whole[:-5], b"junk" * 10, whole[:8] + b"\x80\x04X" + whole[11:]):
        cached.write_bytes(damaged)
        assert env().get_template("t.txt").render(name="Ola") == "Dzień dobry, Ola!"
    assert len(compiled) == 4
