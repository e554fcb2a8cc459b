"""A counter that logs a summary at most once per interval."""

from __future__ import annotations

import logging
import time


class Throttled:
    """Counts occurrences and logs one summary line at most every interval."""

    def __init__(self, logger: logging.Logger, what: str, interval: float = 10.0):
        self.logger = logger
        self.what = what
        self.interval = interval
        self.total = 0
        self._pending = 0
        self._last = 0.0
        self._example = ""

    def hit(self, example: str = "", n: int = 1) -> None:
        self.total += n
        self._pending += n
        if example:
            self._example = example
        now = time.monotonic()
        if now - self._last >= self.interval:
            self.flush(now)

    def flush(self, now: float | None = None) -> None:
        if self._pending:
            extra = f" (last: {self._example})" if self._example else ""
            self.logger.warning(
                "%s: %d in the last period, %d in all%s",
                self.what,
                self._pending,
                self.total,
                extra,
            )
            self._pending = 0
        self._last = time.monotonic() if now is None else now
