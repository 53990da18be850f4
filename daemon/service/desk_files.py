"""Where a desk's rules and templates are, and its rules read and compiled.

Apart from the wiring so a command can read the rules before the database
layer and the templates load: batch ingest hands them to helpers that parse
while the rest of spocd is still loading, and `spocd rules check` needs
nothing else.
"""

from __future__ import annotations

from pathlib import Path

from daemon.config import Settings
from daemon.config.files import read_config_file
from daemon.core.errors import ConfigError
from daemon.rules import ruleset as rules_mod


def starter_root() -> Path:
    """Where the starter rules.yaml and templates live: inside the installed
    package (a wheel), or at the top of the source tree (editable install)."""
    package = Path(__file__).resolve().parents[1]
    packaged = package / "starter"
    return packaged if packaged.is_dir() else package.parent


def resolve_paths(settings: Settings) -> tuple[Path, Path]:
    """rules.yaml and templates/ to use; without a config file, a missing
    ./rules.yaml or ./templates falls back to the starter copies, so
    `spocd run` works on a fresh machine."""
    rules_path, templates = settings.paths.rules, settings.paths.templates
    if settings.source is None:
        if not rules_path.is_file():
            rules_path = starter_root() / "rules.yaml"
        if not (templates / "en").is_dir():
            templates = starter_root() / "templates"
    return rules_path, templates


def load_rules_file(path: Path) -> rules_mod.Rules:
    try:
        text = read_config_file(path)
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc}"]) from exc
    try:
        return rules_mod.load_rules(text, str(path))
    except rules_mod.RulesError as exc:
        raise ConfigError([str(issue) for issue in exc.issues]) from exc
