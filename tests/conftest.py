"""Fixtures: databases (SQLite and PostgreSQL), settings, the app, a relay.

`db_url` is parametrised over both backends: a test that takes it (or `store`,
`app`) runs on SQLite always and on PostgreSQL when SPOCD_TEST_DATABASE_URL is
set; in CI a missing PostgreSQL is a failure, not a skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from daemon.config import Settings, load_settings
from tests.support.clock import ManualClock
from tests.support.db import iter_pg_database, truncate_all
from tests.support.relay import Relay

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
#: Wednesday, office hours in Europe/Warsaw.
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    yield from iter_pg_database()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'spocd.db'}"
    url = request.getfixturevalue("pg_database")
    from daemon.adapters.storage.engine import make_engine
    from daemon.adapters.storage.migrate import ensure_head

    engine = make_engine(url)
    ensure_head(engine)
    engine.dispose()
    truncate_all(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'spocd.db'}"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


def write_config(directory: Path, db_url: str, **sections: dict[str, object]) -> Path:
    """A spocd.toml in `directory` using the repository's rules and templates."""
    base: dict[str, dict[str, object]] = {
        "helpdesk": {"address": "helpdesk@example.com", "name": "IT Help Desk"},
        "database": {"url": db_url},
        "smtp": {"host": "127.0.0.1", "port": 0},
        "outgoing": {"transport": "maildir", "maildir": str(directory / "sent")},
        "paths": {
            "rules": str(ROOT / "rules.yaml"),
            "templates": str(ROOT / "templates"),
            "spool": str(directory / "spool"),
        },
        "agents": {"trust": "none"},
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    lines = []
    for name, values in base.items():
        lines.append(f"[{name}]")
        for key, value in values.items():
            lines.append(f"{key} = {_toml(value)}")
        lines.append("")
    path = directory / "spocd.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return load_settings(write_config(tmp_path, db_url))


@pytest.fixture
def relay() -> Iterator[Relay]:
    server = Relay().start()
    yield server
    server.stop()


@pytest.fixture
def app(settings: Settings, clock: ManualClock) -> Iterator[object]:
    from daemon.service.wiring import App

    application = App(settings, clock)
    yield application
    application.close()


@pytest.fixture
def relay_app(settings: Settings, clock: ManualClock, relay: Relay) -> Iterator[object]:
    """The app sending its mail through the test's relay over real SMTP."""
    from daemon.service.wiring import App

    smtp_settings = replace(
        settings,
        outgoing=replace(settings.outgoing, transport="smtp", host="127.0.0.1", port=relay.port),
    )
    application = App(smtp_settings, clock)
    yield application
    application.close()
