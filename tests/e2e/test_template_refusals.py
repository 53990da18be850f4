"""A broken included template refuses the desk at load, as a real process
(fuzzing report F15): every command exits 78 naming the file and line, and
`spocd rules check` finds it too (65, as for a broken rules.yaml)."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import ROOT, write_config
from tests.support.proc import spocd


def broken_footer(tmp_path: Path) -> tuple[Path, Path]:
    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", templates)
    footer = templates / "en" / "footer.txt"
    footer.write_text("Kind regards,\n{{ }}\n", encoding="utf-8")
    return templates, footer


def test_a_syntax_error_in_an_included_file_refuses_every_command_with_78(
    tmp_path: Path, sqlite_url: str
) -> None:
    templates, footer = broken_footer(tmp_path)
    config = write_config(tmp_path, sqlite_url, paths={"templates": str(templates)})
    result = spocd("tickets", config=config)
    err = result.stderr.decode()
    assert result.returncode == 78, err
    assert "configuration refused" in err and f"{footer}:2: Expected an expression" in err
    assert "Traceback" not in err


def test_rules_check_reports_a_missing_layout_and_exits_65(tmp_path: Path, sqlite_url: str) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", templates)
    (templates / "en" / "layout.html").unlink()
    config = write_config(tmp_path, sqlite_url, paths={"templates": str(templates)})
    result = spocd("rules", "check", config=config)
    err = result.stderr.decode()
    assert result.returncode == 65, err
    assert f"{templates / 'en' / 'ack.html'}:1: extends 'layout.html', which is not in en/" in err
    assert f"{templates}: " in err and "templates refused" in err
    assert b"rules.yaml: ok" in result.stdout


def test_rules_check_passes_the_shipped_templates(tmp_path: Path, sqlite_url: str) -> None:
    result = spocd("rules", "check", config=write_config(tmp_path, sqlite_url))
    assert result.returncode == 0, result.stderr
    assert f"{ROOT / 'templates'}: ok".encode() in result.stdout
