"""What a detector finds: a person, a window of days, a severity and its explanation."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

# Days between two firings of one detector that still make one episode (one alert).
EPISODE_GAP_DAYS = 3


class Severity(enum.StrEnum):
    """How urgent a finding is; each level weighs more in the risk score."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def weight(self) -> float:
        """The finding's contribution to a person's risk on its day."""
        return {"low": 1.0, "medium": 4.0, "high": 12.0, "critical": 30.0}[self.value]


@dataclass(frozen=True)
class Detector:
    """A detector's identity: what analysts see in the alert list."""

    id: str
    severity: Severity
    description: str


@dataclass(frozen=True)
class Finding:
    """One detector firing for one person on one day, with its numbers in words."""

    detector: Detector
    person: str
    day: dt.date
    explanation: str
    weight: float = 1.0  # multiplies the severity's weight (how far past the bar)
    via: str | None = None  # the shared account it was seen on, when passed to a holder
    accounts: tuple[str, ...] = ()  # shared accounts whose use this finding pins on the person

    @property
    def score(self) -> float:
        """The risk this finding adds on its day."""
        return self.detector.severity.weight * self.weight
