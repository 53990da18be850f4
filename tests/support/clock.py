"""A clock the test moves by hand: time never passes by itself."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass
class ManualClock:
    moment: datetime

    def now(self) -> datetime:
        return self.moment

    def set(self, moment: datetime) -> None:
        self.moment = moment

    def advance(self, delta: timedelta) -> datetime:
        self.moment += delta
        return self.moment
