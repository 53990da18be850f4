"""The command line's parser: a command line builds its own command's parser
only, and reads exactly as it would with all of them."""

from __future__ import annotations

import pytest

from daemon.cli.main import _PARSERS, build_parser

#: One command line per command, with its options.
COMMAND_LINES = [
    ["run", "-c", "desk.toml"],
    ["init", "/srv/desk", "--force"],
    ["ingest", "a.eml", "b.mbox", "--escalation", "--json", "--now", "2026-12-01T09:00"],
    ["tick", "--now", "2026-12-01T09:00Z", "--force"],
    ["tickets", "--status", "all", "--json"],
    ["show", "HD-3"],
    ["ticket", "HD-3", "resolve", "--code", "fixed", "--note", "done", "--as", "anna@example.com"],
    ["record", "HD-3", "--format", "html", "--client"],
    ["attachment", "HD-3", "7", "--output", "out.pdf"],
    ["report", "--contract", "kancelaria", "--mail", "--since", "2026-11-01"],
    ["contracts", "--json"],
    ["db", "copy", "sqlite:///a.db", "postgresql://b"],
    ["rules", "test", "m.eml", "--escalation", "--json"],
    ["bench"],
    ["passwd", "anna", "--scheme", "pbkdf2_sha256"],
    ["status", "--json"],
    ["queue", "retry", "3", "4", "--state", "failed"],
]


def test_every_command_has_a_command_line_here() -> None:
    assert sorted(words[0] for words in COMMAND_LINES) == sorted(_PARSERS)


@pytest.mark.parametrize("words", COMMAND_LINES, ids=lambda words: words[0])
def test_a_command_alone_reads_its_line_as_the_whole_parser_does(words: list[str]) -> None:
    alone = build_parser(words[0])
    assert alone.parse_args(words) == build_parser().parse_args(words)


def test_a_command_line_builds_only_its_own_command() -> None:
    def commands(parser: object) -> list[str]:
        [sub] = [a for a in parser._actions if a.dest == "command"]  # type: ignore[attr-defined]
        return list(sub.choices)

    assert commands(build_parser("ingest")) == ["ingest"]
    assert commands(build_parser()) == list(_PARSERS)
    assert commands(build_parser("inges")) == list(_PARSERS)  # to list them in the error


def test_a_misspelt_command_is_refused_with_every_command_listed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser("inges").parse_args(["inges"])
    assert exit_.value.code == 64
    assert "choose from 'run', 'init', 'ingest'" in capsys.readouterr().err
