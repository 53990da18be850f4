"""Alembic, driven from code: the migrations ship inside the package.

Every command brings the database to the newest schema first. Most starts
find it there already; they learn that from one query against HEAD, without
importing Alembic at all (a tenth of a second of every `spocd` process).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
#: The newest revision in `migrations/versions` (a test holds them equal).
HEAD = "0007"


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def head_revision(engine: Engine) -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(engine), revision)


def _stamped(engine: Engine) -> str | None:
    """The revision the database says it has; None when it has no table for it."""
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:
        return None


def ensure_head(engine: Engine) -> None:
    """Bring the database to the newest schema. Alembic checks again under
    its lock, so instances starting together apply each migration once."""
    if _stamped(engine) != HEAD:
        upgrade(engine)
