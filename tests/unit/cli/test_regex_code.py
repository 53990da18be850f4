"""Regular expressions compiled as modules load, kept between processes
(`regex_code`).

Each case runs in a fresh interpreter whose temporary directory is the
test's own, as a command would: install, then load a module of patterns."""

from __future__ import annotations

import json
import marshal
from pathlib import Path

from daemon.cli import kept_code
from tests.support.fresh import kept_file, run_fresh

#: A module of patterns of every kind `re` compiles: text and bytes, flags
#: in the call and in the pattern, named and numbered groups, look-arounds,
#: classes, repeats, Unicode, and one that refers to a group by name.
PATTERNS = r'''
import re
TEXT = [
    re.compile(r"\[\s*HD\s*-\s*0*(\d{1,12})\s*\]"),
    re.compile(r"(?P<user>[\w.+-]+)@(?P<domain>[\w-]+(?:\.[\w-]+)+)", re.IGNORECASE),
    re.compile(r"""
        ^(?:re|odp|aw|fwd?)\s*:\s*   # reply and forward prefixes
        (?P<rest>.*)$
    """, re.VERBOSE | re.IGNORECASE | re.MULTILINE),
    re.compile(r"(?<![\d:])(\d{1,2})(?![\d:])"),
    re.compile(r"zażółć\s+gęślą|(?i:jaźń)"),
    re.compile(r"(?P<q>['\"])(.*?)(?P=q)", re.DOTALL),
    re.compile(r"[^\W\d_]+|\s{2,}|\x00-\x1f"),
    re.compile(r"(a|b)*c{2,5}?d+"),
]
BYTES = [re.compile(rb"^From \S+ (?P<date>.+)$", re.MULTILINE), re.compile(rb"[\x80-\xff]+")]
# enough more that a process compiling them all writes the file (`MIN_NEW`)
MORE = [re.compile(rf"label{n}:\s*(\S+)") for n in range(12)]
'''

SAMPLES = [
    "Re: [HD - 0042] Drukarka\nodp: zażółć  gęślą JAŹŃ 'ab\ncd' \"x\" 12:30 7 1",
    "Jan.Kowalski+it@Firma.example.PL wrote: aacccdd abccd",
]

PROBE = r"""
import json, re, sys
from re import _parser
parsed = []
plain_parse = _parser.parse
def counted(pattern, flags=0, *rest):
    parsed.append(pattern)
    return plain_parse(pattern, flags, *rest)
_parser.parse = counted
if sys.argv[1] == "kept":
    from daemon.cli import regex_code
    regex_code.install()
sys.path.insert(0, sys.argv[2])
import kept_patterns
mine = {p.pattern for p in kept_patterns.TEXT + kept_patterns.BYTES}
samples = json.loads(sys.argv[3])
later = re.compile(r"--" + re.escape(sys.argv[4]) + r"(--)?$")  # made after loading
out = {
    "text": [
        [p.pattern, p.flags, p.groups, dict(p.groupindex)] + [p.findall(s) for s in samples]
        + [[m.span() for m in p.finditer(s)] for s in samples]
        for p in kept_patterns.TEXT
    ],
    "bytes": [
        [p.flags, p.groups] + [p.findall(s.encode()) for s in samples]
        for p in kept_patterns.BYTES
    ],
    "later": bool(later.match("--" + sys.argv[4] + "--")),
    "compiled": sum(1 for p in parsed if p in mine),
    "compiled_later": sum(1 for p in parsed if p == later.pattern),
}
print(json.dumps(out, default=repr))
"""


def _probe(tmp: Path, mode: str, boundary: str = "=_b1") -> dict[str, object]:
    modules = tmp / "modules"
    if not modules.is_dir():
        modules.mkdir()
        (modules / "kept_patterns.py").write_text(PATTERNS, encoding="utf-8")
    found = run_fresh(tmp, PROBE, mode, str(modules), json.dumps(SAMPLES), boundary)
    return json.loads(found)  # type: ignore[no-any-return]


def _behaviour(result: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in result.items() if not k.startswith("compiled")}


def test_patterns_built_from_kept_programs_behave_as_compiled_ones(tmp_path: Path) -> None:
    plain = _probe(tmp_path, "plain")
    first = _probe(tmp_path, "kept")
    second = _probe(tmp_path, "kept", boundary="=_b2")
    assert plain["compiled"] == 10
    assert _behaviour(first) == _behaviour(plain)
    assert _behaviour(second) == {**_behaviour(plain)}
    assert second["compiled"] == 0  # every pattern of the module came from the file


def test_a_pattern_made_after_loading_is_compiled_and_not_kept(tmp_path: Path) -> None:
    _probe(tmp_path, "kept", boundary="=_first")
    again = _probe(tmp_path, "kept", boundary="=_first")
    assert again["later"] is True
    assert again["compiled_later"] == 1
    assert not any("=_first" in key for key in kept_code.read(str(kept_file(tmp_path, "re"))))


def test_a_broken_kept_file_is_compiled_over(tmp_path: Path) -> None:
    plain = _probe(tmp_path, "plain")
    _probe(tmp_path, "kept")
    kept = kept_file(tmp_path, "re")
    whole = kept.read_bytes()
    flipped = whole[:-40] + bytes([whole[-40] ^ 1]) + whole[-39:]
    for junk in (b"", b"\x00garbage", whole[:100], flipped):
        kept.write_bytes(junk)
        result = _probe(tmp_path, "kept")
        assert _behaviour(result) == _behaviour(plain)
        assert result["compiled"] > 0
    assert _probe(tmp_path, "kept")["compiled"] == 0  # written whole again


def test_a_program_the_matcher_would_not_run_is_compiled_over(tmp_path: Path) -> None:
    """A file whose checksum holds but whose programs are wrong (another
    build's, or written by hand): `_sre` refuses each, and re compiles."""
    plain = _probe(tmp_path, "plain")
    _probe(tmp_path, "kept")
    kept = kept_file(tmp_path, "re")
    entries = kept_code.read(str(kept))
    for key in entries:
        flags, _, groups, groupindex, indexgroup = marshal.loads(entries[key])
        entries[key] = marshal.dumps((flags, [999_999, 1, 2], groups, groupindex, indexgroup))
    entries["s0:not a program"] = marshal.dumps(("flags", [], 0, {}, ()))
    kept_code.write(str(kept), entries)
    result = _probe(tmp_path, "kept")
    assert _behaviour(result) == _behaviour(plain)
    assert result["compiled"] >= plain["compiled"]  # each compiled, then kept right
    assert _probe(tmp_path, "kept")["compiled"] == 0


def test_a_bad_pattern_raises_as_before(tmp_path: Path) -> None:
    code = (
        "import re, sys\n"
        "from daemon.cli import regex_code\n"
        "regex_code.install()\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "try:\n"
        "    import bad_pattern\n"
        "except re.error as exc:\n"
        "    print(type(exc).__name__, exc.msg)\n"
    )
    (tmp_path / "bad_pattern.py").write_text("import re\nre.compile('(unclosed')\n")
    found = run_fresh(tmp_path, code, str(tmp_path))
    assert found.strip() == "error missing ), unterminated subpattern"


def test_spocd_installs_it_before_its_modules_load(tmp_path: Path) -> None:
    """`spocd init`: the patterns of the modules it loads (argparse's gettext
    among them) are kept for the next command."""
    code = (
        "import sys\n"
        "from daemon.cli.pipe import main\n"
        "sys.argv[1:] = ['init', sys.argv[1]]\n"
        "main()\n"
    )
    run_fresh(tmp_path, code, str(tmp_path / "desk"))
    kept = kept_code.read(str(kept_file(tmp_path, "re")))
    assert len(kept) >= 20
    assert any("(?P<WHITESPACES>" in key for key in kept)
    assert "s0:[!-9;-~]+" in kept  # daemon.rules.when's, a `re` pattern


def test_patterns_that_differ_in_every_process_do_not_rewrite_the_file(tmp_path: Path) -> None:
    """The email package's header parser builds eight patterns from sets:
    with hashes seeded anew, each process writes them in another order."""
    code = (
        "from daemon.cli import regex_code\n"
        "regex_code.install()\n"
        "import email._header_value_parser\n"
    )
    _probe(tmp_path, "kept")
    kept = kept_file(tmp_path, "re")
    before = kept_code.read(str(kept))
    for _ in range(3):
        run_fresh(tmp_path, code, PYTHONHASHSEED="random")
    assert kept_code.read(str(kept)) == before


#: The rules' patterns, compiled as `patterns.compile_regex` compiles them
#: (they are read after the modules load). It prints what each pattern finds
#: in the samples, and whether the `regex` package had to be loaded.
RULES_PROBE = r"""
import json, sys
if sys.argv[1] == "kept":
    from daemon.cli import regex_code
    regex_code.install()
from daemon.rules import pattern_compiler
samples = json.loads(sys.argv[2])
sources = json.loads(sys.argv[3])
patterns = [pattern_compiler.compile_pattern(source) for source in sources]
out = {
    "found": [[p.pattern, p.flags, p.groups, dict(p.groupindex)]
              + [[m.span() for m in p.finditer(s, timeout=1.0, concurrent=True)] for s in samples]
              for p in patterns],
    "package_loaded": "regex" in sys.modules,
}
import regex
out["one_type"] = all(type(p) is regex.Pattern for p in patterns)
out["replaced"] = patterns[0].sub("<\\g<0>>", samples[0])  # a template loads the package
print(json.dumps(out))
"""

RULES = [
    r"(?i)\b(?:vpn|zdaln\w*)\b",
    r"(?i)drukark[aię]|printer",
    r"(?P<ref>SD-\d{1,8})",
    r"(?i)(?<=pilne:\s*)\w+",
    r"\p{Lu}{3,}",
    r"(?i)(?:nie\s+)?działa",
    r"(?V1)[[a-z]--[aeiou]]+",
]


def _rules_probe(tmp: Path, mode: str) -> dict[str, object]:
    found = run_fresh(tmp, RULES_PROBE, mode, json.dumps(SAMPLES), json.dumps(RULES))
    return json.loads(found)  # type: ignore[no-any-return]


def test_rules_patterns_rebuilt_from_kept_data_behave_as_compiled_ones(tmp_path: Path) -> None:
    plain = _rules_probe(tmp_path, "plain")
    first = _rules_probe(tmp_path, "kept")
    second = _rules_probe(tmp_path, "kept")
    assert plain["package_loaded"] and first["package_loaded"]  # compiled by it
    assert not second["package_loaded"]  # rebuilt from the kept data alone
    for result in (first, second):
        assert result["found"] == plain["found"]
        assert result["replaced"] == plain["replaced"]
        assert result["one_type"]
    assert any(spans for row in plain["found"] for spans in row[4:])  # the samples do match


def test_rules_data_that_is_not_the_patterns_own_is_compiled_over(tmp_path: Path) -> None:
    plain = _rules_probe(tmp_path, "plain")
    _rules_probe(tmp_path, "kept")
    path = str(kept_file(tmp_path, "regex"))
    entries = kept_code.read(path)
    swapped = dict(zip(entries, reversed(list(entries.values())), strict=True))
    swapped[f"0:{RULES[0]}"] = marshal.dumps(("not", "the", "arguments"))
    kept_code.write(path, swapped)
    result = _rules_probe(tmp_path, "kept")
    assert result["found"] == plain["found"]
    assert result["package_loaded"]  # compiled over by the package


def test_a_compiled_half_that_will_not_load_leaves_the_patterns_to_the_package(
    tmp_path: Path,
) -> None:
    code = (
        "import importlib.machinery, importlib.util, sys\n"
        "from daemon.cli import regex_code\n"
        "regex_code.install()\n"
        "if len(sys.argv) > 1:  # a file that is no extension module\n"
        "    loader = importlib.machinery.ExtensionFileLoader('regex._regex', sys.argv[1])\n"
        "    regex_code._extension = importlib.util.spec_from_file_location(\n"
        "        'regex._regex', sys.argv[1], loader=loader)\n"
        "from daemon.rules import pattern_compiler\n"
        "pattern = pattern_compiler.compile_pattern(r'(?P<ref>SD-\\d{1,8})')\n"
        "print(pattern.search('see SD-42').group('ref'), 'regex' in sys.modules)\n"
    )
    assert run_fresh(tmp_path, code).split() == ["SD-42", "True"]  # compiled and kept
    broken = tmp_path / "_regex.cpython-311-x86_64-linux-gnu.so"
    broken.write_bytes(b"not a shared object")
    assert run_fresh(tmp_path, code, str(broken)).split() == ["SD-42", "True"]


def test_a_bad_rule_pattern_is_the_compilers_problem_as_before(tmp_path: Path) -> None:
    code = (
        "from daemon.cli import regex_code\n"
        "regex_code.install()\n"
        "from daemon.rules.ruleset import load_rules\n"
        "from daemon.rules.schema import RulesError\n"
        "from daemon.service.desk_files import starter_root\n"
        "text = (starter_root() / 'rules.yaml').read_text()\n"
        "text = text.replace(r\"'\\b(SD-\\d+)\\b'\", \"'(SD-'\")\n"
        "try:\n"
        "    load_rules(text)\n"
        "except RulesError as exc:\n"
        "    print(exc.issues[0].message)\n"
    )
    for _ in range(2):  # the second with every other pattern kept
        found = run_fresh(tmp_path, code)
        assert found.startswith("bad regex: missing ) at position 4")


def test_a_command_whose_rule_patterns_are_all_kept_does_not_load_the_regex_package(
    tmp_path: Path,
) -> None:
    code = (
        "import sys\n"
        "from daemon.cli import regex_code\n"
        "regex_code.install()\n"
        "from daemon.rules.ruleset import load_rules\n"
        "from daemon.service.desk_files import starter_root\n"
        "rules = load_rules((starter_root() / 'rules.yaml').read_text())\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'regex'))\n"
        "print(rules.find_external_ref('Re: drukarka nie drukuje [SD-42]'))\n"
    )
    first = run_fresh(tmp_path, code).splitlines()
    second = run_fresh(tmp_path, code).splitlines()
    assert "'regex._regex_core'" in first[0]
    assert second == ["['regex._regex']", "SD-42"]
    assert first[1] == "SD-42"


def test_a_process_that_does_not_write_the_file_compiles_each_pattern_once(
    tmp_path: Path,
) -> None:
    """Fewer new patterns than `MIN_NEW`: each is compiled by `re` alone, and
    no program is made for a file that will not be written."""
    (tmp_path / "few_patterns.py").write_text(
        "import re\nPATTERNS = [re.compile(rf'few{n}:(\\d+)') for n in range(5)]\n"
    )
    code = (
        "import atexit, sys\n"
        "from re import _parser\n"
        "parsed = []\n"
        "plain = _parser.parse\n"
        "def counted(pattern, *rest):\n"
        "    parsed.append(str(pattern))\n"
        "    return plain(pattern, *rest)\n"
        "_parser.parse = counted\n"
        "atexit.register(lambda: print(sum(p.startswith('few') for p in parsed)))\n"
        "from daemon.cli import regex_code\n"
        "regex_code.install()\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "import few_patterns\n"
    )
    assert run_fresh(tmp_path, code, str(tmp_path)).strip() == "5"  # counted after the exit's work
    assert not list(tmp_path.glob("spocd-code-*/re-*"))
