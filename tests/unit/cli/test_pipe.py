"""The MTA pipe's fast path: which command lines it takes, and the settings
it reads agree with the full loader."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.cli import main, pipe
from daemon.config import Settings, load_settings, spool_only


def test_its_defaults_are_the_embedded_ones() -> None:
    assert (pipe.EX_OK, pipe.EX_DATAERR, pipe.EX_TEMPFAIL) == (
        main.EX_OK,
        main.EX_DATAERR,
        main.EX_TEMPFAIL,
    )
    defaults = Settings()
    assert Path(spool_only.DEFAULT_SPOOL) == defaults.paths.spool
    assert defaults.smtp.max_message_size == spool_only.DEFAULT_MAX_MESSAGE_SIZE


@pytest.mark.parametrize(
    ("argv", "taken"),
    [
        (["ingest", "--queue-only", "-"], (None, False)),
        (["-c", "x.toml", "ingest", "--queue-only", "-"], ("x.toml", False)),
        (["ingest", "-", "--queue-only", "--config", "x.toml"], ("x.toml", False)),
        (["ingest", "--queue-only", "--escalation", "-"], (None, True)),
        (["ingest", "--queue-only", "mail.eml"], None),  # a file: the full command
        (["ingest", "-"], None),  # processed now, not only queued
        (["tick"], None),
        (["-c", "a", "-c", "b", "ingest", "--queue-only", "-"], None),
        (["ingest", "--queue-only", "-", "-c"], None),
        ([], None),
    ],
)
def test_only_the_pipe_is_taken(argv: list[str], taken: object) -> None:
    assert pipe._pipe_arguments(argv) == taken


def test_the_spool_and_limit_are_the_full_loaders(tmp_path: Path) -> None:
    config = tmp_path / "etc" / "spocd.toml"
    config.parent.mkdir()
    config.write_text('[paths]\nspool = "q"\n[smtp]\nmax_message_size = 5000\n')
    full = load_settings(config)
    found = spool_only.spool_settings(str(config), {})
    assert found is not None
    spool, limit = found
    assert (Path(spool), limit) == (full.paths.spool, full.smtp.max_message_size)


def test_a_spool_path_is_taken_from_the_configs_own_folder_as_the_full_loader_takes_it(
    tmp_path: Path,
) -> None:
    """Relative to the real folder of spocd.toml (through a symlink), absolute
    as written, and the embedded default beside the working folder."""
    real = tmp_path / "real"
    real.mkdir()
    (real / "spocd.toml").write_text('[paths]\nspool = "q/in"\n')
    (tmp_path / "link.toml").symlink_to(real / "spocd.toml")
    for config in (real / "spocd.toml", tmp_path / "link.toml"):
        full = load_settings(config)
        assert spool_only.spool_settings(str(config), {}) == (str(real / "q" / "in"), 26_214_400)
        assert Path(str(real / "q" / "in")) == full.paths.spool
    (real / "abs.toml").write_text(f'[paths]\nspool = "{tmp_path / "abs"}"\n')
    assert spool_only.spool_settings(str(real / "abs.toml"), {}) == (
        str(tmp_path / "abs"),
        26_214_400,
    )


@pytest.mark.parametrize(
    "text",
    [
        "[paths]\nspool = 3\n",
        "[smtp]\nmax_message_size = -1\n",
        "[smtp]\nmax_message_size = true\n",
        "paths = 1\n",
        "not toml [",
    ],
)
def test_what_it_cannot_read_goes_to_the_full_command(tmp_path: Path, text: str) -> None:
    config = tmp_path / "spocd.toml"
    config.write_text(text)
    assert spool_only.spool_settings(str(config), {}) is None
    assert spool_only.spool_settings(str(tmp_path / "missing.toml"), {}) is None
