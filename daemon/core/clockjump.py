"""Whether the wall clock can be trusted for a sweep.

Escalations, reassignments and status updates are driven by the wall clock.
A clock set far forward by mistake (and set back later) would fire them all
and move every next update past it. The monotonic clock cannot jump, so a
wall reading far ahead of the monotonic time elapsed since the last sweep is a
jump: that sweep is skipped. The next reading is compared with the jumped one,
so a jump that stays (a real correction) is acted on one sweep later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

#: Forward drift between two sweeps beyond which the wall clock is not trusted.
JUMP_LIMIT = timedelta(hours=1)


@dataclass(slots=True)
class JumpGuard:
    limit: timedelta = JUMP_LIMIT
    _last: tuple[datetime, float] | None = None

    def jump(self, wall: datetime, monotonic: float) -> timedelta | None:
        """The forward jump since the last reading when it exceeds the limit
        (do not act on this one), else None (act)."""
        last, self._last = self._last, (wall, monotonic)
        if last is None:
            return None
        ahead = wall - last[0] - timedelta(seconds=monotonic - last[1])
        return ahead if ahead > self.limit else None
