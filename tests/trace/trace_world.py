"""The trace tests' simulated world, as a type the tests can name."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class World:
    """A simulated workspace and its ground truth."""

    home: Path
    truth: dict[str, Any]

    def scenario(self, name: str) -> dict[str, Any]:
        """The truth of one scenario."""
        found: dict[str, Any] = next(s for s in self.truth["scenarios"] if s["scenario"] == name)
        return found

    def customers(self, client: str) -> dict[int, dict[str, str]]:
        """A client's customer file (the simulator's plaintext copy), by customer id."""
        path = self.home / "sim" / f"customers-{client.removeprefix('org-')}.csv"
        with path.open(encoding="utf-8", newline="") as handle:
            return {int(r["customer_id"]): r for r in csv.DictReader(handle)}


def reaped(pid: int) -> bool:
    """Whether a worker this process forked is gone and reaped (no zombie left behind)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False
