"""Periodic progress lines with rate and time left, for logs as well as terminals."""

from __future__ import annotations

import time

from absl import logging


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """``update(n)`` as work completes; a line at most every ``every`` seconds."""

    def __init__(self, what: str, total: int, unit: str, every: float = 5.0):
        self.what, self.total, self.unit, self.every = what, total, unit, every
        self.done = 0
        self.start = self._last = time.monotonic()

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._last >= self.every or self.done == self.total:
            self._last = now
            logging.info("%s", self.line())

    @property
    def rate(self) -> float:
        return self.done / max(time.monotonic() - self.start, 1e-9)

    def line(self) -> str:
        left = (self.total - self.done) / self.rate if self.rate > 0 else 0.0
        pct = 100.0 * self.done / max(self.total, 1)
        return (
            f"{self.what}: {self.done}/{self.total} {self.unit} ({pct:.1f}%), "
            f"{self.rate:.1f} {self.unit}/s, elapsed {_duration(time.monotonic() - self.start)}, "
            f"left {_duration(left)}"
        )
