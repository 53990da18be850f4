"""Test databases: a SQLite file per test; one PostgreSQL database per run.

PostgreSQL runs when SPOCD_TEST_DATABASE_URL names a server (CI sets it); the
run creates a database of its own there and drops it at the end, so runs
never see each other's data. Tests on it start from empty tables.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

PG_ENV = "SPOCD_TEST_DATABASE_URL"


def postgres_server_url() -> str | None:
    return os.environ.get(PG_ENV) or None


def require_postgres() -> str:
    url = postgres_server_url()
    if url is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{PG_ENV} is not set in CI: .ci/run must provide PostgreSQL")
        pytest.skip(f"{PG_ENV} not set: no PostgreSQL server to test on")
    return url


def create_database(server_url: str) -> str:
    """A new empty database on the server; returns its URL."""
    url = make_url(server_url)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    name = f"spocd_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, db_url: str) -> None:
    url = make_url(server_url)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    name = make_url(db_url).database
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def truncate_all(db_url: str) -> None:
    from daemon.adapters.storage.models import METADATA

    engine = create_engine(db_url)
    names = ", ".join(f'"{t.name}"' for t in METADATA.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


def iter_pg_database() -> Iterator[str]:
    server = require_postgres()
    db_url = create_database(server)
    try:
        yield db_url
    finally:
        drop_database(server, db_url)
