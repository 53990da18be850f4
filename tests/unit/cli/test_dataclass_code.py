"""Dataclasses' generated code kept between processes (`dataclass_code`).

Each case runs in a fresh interpreter whose temporary directory is the
test's own, as a command would: install, then define classes."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.support.fresh import kept_file, run_fresh

#: Defines classes of every kind `dataclasses` generates code for, with the
#: cache installed or not, and prints what they do and how many texts the
#: texts of `dataclasses` the process compiled (audit events of `compile`).
PROBE = r"""
import json, sys
compiled = []
def counted(event, args):
    if event == "compile":
        source = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
        if source.startswith("def __create_fn__("):
            compiled.append(1)
sys.addaudithook(counted)
if sys.argv[1] == "cached":
    from daemon.cli import dataclass_code
    dataclass_code.install()
import dataclasses, inspect
from dataclasses import dataclass, field, FrozenInstanceError

@dataclass(frozen=True, slots=True)
class Point:
    x: int
    y: int = 0
    tags: tuple = ()

@dataclass(kw_only=True, order=True)
class Item:
    name: str
    size: int = field(default=1)
    parts: list = field(default_factory=list)

p, q = Point(1), Point(1, 0)
try:
    p.x = 2
    frozen = "no"
except FrozenInstanceError as exc:
    frozen = type(exc).__name__
item = Item(name="a", parts=[1])
out = {
    "repr": [repr(p), repr(item)],
    "eq": [p == q, hash(p) == hash(q), Item(name="a") < Item(name="b")],
    "frozen": frozen,
    "init": str(inspect.signature(Item)),
    "annotations": sorted(f"{k}={v!r}" for k, v in Point.__init__.__annotations__.items()),
    "compiled": len(compiled),
}
print(json.dumps(out))
"""


def _probe(tmp: Path, mode: str) -> dict[str, object]:
    return json.loads(run_fresh(tmp, PROBE, mode))  # type: ignore[no-any-return]


def test_classes_built_from_kept_code_behave_as_compiled_ones(tmp_path: Path) -> None:
    plain = _probe(tmp_path, "plain")
    first = _probe(tmp_path, "cached")
    second = _probe(tmp_path, "cached")
    for result in (first, second):
        assert {k: v for k, v in result.items() if k != "compiled"} == {
            k: v for k, v in plain.items() if k != "compiled"
        }
    # annotations are objects, not the strings this module's own
    # `from __future__ import annotations` would have made them
    assert "x=<class 'int'>" in plain["annotations"]  # type: ignore[operator]
    assert first["compiled"] == plain["compiled"] > 5
    assert second["compiled"] == 0


def test_a_broken_kept_file_is_compiled_over(tmp_path: Path) -> None:
    _probe(tmp_path, "cached")
    kept = kept_file(tmp_path, "dataclasses")
    whole = kept.read_bytes()
    flipped = whole[:-40] + bytes([whole[-40] ^ 1]) + whole[-39:]  # one bit damaged
    for junk in (b"", b"\x00garbage", whole[:100], b"\xe9\x01\x00\x00\x00", flipped):
        kept.write_bytes(junk)
        result = _probe(tmp_path, "cached")
        assert result["frozen"] == "FrozenInstanceError"
        assert result["compiled"] > 5
    assert _probe(tmp_path, "cached")["compiled"] == 0  # written whole again


def test_kept_code_is_taken_only_from_a_folder_of_the_user_alone(tmp_path: Path) -> None:
    folder = tmp_path / f"spocd-code-{os.getuid()}"
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)
    assert _probe(tmp_path, "cached")["compiled"] > 5
    assert _probe(tmp_path, "cached")["compiled"] > 5
    assert list(folder.iterdir()) == []


def test_a_file_it_cannot_read_or_replace_leaves_classes_compiled(tmp_path: Path) -> None:
    _probe(tmp_path, "cached")
    kept = kept_file(tmp_path, "dataclasses")
    kept.unlink()
    kept.mkdir()  # neither read nor replaced: a directory in the file's place
    assert _probe(tmp_path, "cached")["compiled"] > 5
    assert _probe(tmp_path, "cached")["compiled"] > 5
    assert list(kept.parent.iterdir()) == [kept]


def test_a_command_that_makes_no_class_reads_no_file(tmp_path: Path) -> None:
    _probe(tmp_path, "cached")  # the file exists
    idle = (
        "import sys\n"
        "opened = []\n"
        "sys.addaudithook(lambda e, a: opened.append(str(a[0]))"
        " if e == 'open' and 'spocd-code' in str(a[0]) else None)\n"
        "from daemon.cli import dataclass_code\n"
        "dataclass_code.install()\n"
        "import atexit\n"
        "atexit.register(lambda: print(len(opened)))\n"
    )
    assert run_fresh(tmp_path, idle).strip() == "0"
