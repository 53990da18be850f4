"""The bench's scratch-desk config reads back as written, whatever the folder is called."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.cli.bench.load import write_config
from daemon.config import load_settings


@pytest.mark.parametrize(
    "name",
    ['quote"and\\backslash', "ząb 🦷 emoji", "del\x7fand\ttab"],
    ids=["quote", "astral", "del"],
)
def test_the_config_reads_back_whatever_the_folder_is_called(tmp_path: Path, name: str) -> None:
    folder = tmp_path / name
    folder.mkdir()
    settings = load_settings(write_config(folder, None))
    assert settings.database.url == f"sqlite:///{folder / 'spocd.db'}"
    assert Path(settings.outgoing.maildir) == folder / "sent"
    assert Path(settings.paths.rules) == folder / "rules.yaml"
