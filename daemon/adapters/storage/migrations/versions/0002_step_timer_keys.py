"""escalation step timers keyed by share

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 00:00:00

Timers of the escalation ladder were keyed by the step's position
(`resolution:1`); a step added in front of it made the next plan give that
key to another step, which then fired again. They are now keyed by share
(`resolution:100%`). Where an older ladder left two timers at one share, the
one that fired is kept.
"""

from __future__ import annotations

import json
import re
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_BY_POSITION = re.compile(r"^(response|resolution):(\d+)$")
_BY_SHARE = re.compile(r"^(response|resolution):([0-9.]+)%$")


def _detail(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else dict(value or {})


def _rekey(pattern: re.Pattern[str], new_key: Any) -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.text("SELECT id, ticket_id, key, detail, done_at FROM timers WHERE kind = 'sla'")
    ).fetchall()
    taken = {(r.ticket_id, r.key) for r in rows if not pattern.match(r.key)}
    moves: dict[tuple[int, str], Any] = {}
    for row in sorted(rows, key=lambda r: (r.done_at is None, r.id)):  # fired ones first
        match = pattern.match(row.key)
        if match is None:
            continue
        key = new_key(match.group(1), _detail(row.detail))
        if key is None or (row.ticket_id, key) in taken or (row.ticket_id, key) in moves:
            conn.execute(sa.text("DELETE FROM timers WHERE id = :id"), {"id": row.id})
            continue
        moves[(row.ticket_id, key)] = row.id
    for (_, key), row_id in moves.items():
        conn.execute(
            sa.text("UPDATE timers SET key = :key WHERE id = :id"), {"key": key, "id": row_id}
        )


def upgrade() -> None:
    def by_share(target: str, detail: dict[str, Any]) -> str | None:
        share = detail.get("share")
        return f"{target}:{float(share) * 100:g}%" if share is not None else None

    _rekey(_BY_POSITION, by_share)


def downgrade() -> None:
    def by_position(target: str, detail: dict[str, Any]) -> str | None:
        step = detail.get("step")
        return f"{target}:{int(step)}" if step is not None else None

    _rekey(_BY_SHARE, by_position)
