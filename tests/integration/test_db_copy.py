"""Moving from SQLite to PostgreSQL with `spocd db copy`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import write_config
from tests.support.db import create_database, drop_database, require_postgres
from tests.support.mail import make_mail
from tests.support.proc import spocd


@pytest.mark.slow
def test_copy_moves_every_row_verifies_counts_and_numbering_goes_on(tmp_path: Path) -> None:
    server = require_postgres()
    sqlite_url = f"sqlite:///{tmp_path / 'old.db'}"
    old = write_config(tmp_path, sqlite_url)
    for n in range(3):
        assert spocd("ingest", "-", config=old, input=make_mail(subject=f"Old {n}")).returncode == 0
    assert spocd("ticket", "HD-2", "note", "kept", config=old).returncode == 0
    target = create_database(server)
    try:
        copied = spocd("db", "copy", sqlite_url, target)
        assert copied.returncode == 0, copied.stderr
        assert b"tickets                3 rows copied and verified" in copied.stdout
        again = spocd("db", "copy", sqlite_url, target)
        assert again.returncode == 65 and b"not empty" in again.stderr

        new_dir = tmp_path / "pg"
        new_dir.mkdir()
        new = write_config(new_dir, target)
        old_show = json.loads(spocd("show", "HD-2", "--json", config=old).stdout)
        new_show = json.loads(spocd("show", "HD-2", "--json", config=new).stdout)
        assert new_show["events"] == old_show["events"]
        assert [m["message_id"] for m in new_show["messages"]] == [
            m["message_id"] for m in old_show["messages"]
        ]
        result = spocd("ingest", "-", config=new, input=make_mail(subject="New on PostgreSQL"))
        assert result.stdout.decode().strip() == "-: new ticket HD-4"
        raw = spocd("queue", "raw", "1", config=new)
        assert b"Subject: Old 0" in raw.stdout  # the original bytes came along
    finally:
        drop_database(server, target)
