"""The last hour, minute by minute, from counters that only ever grow. Pure.

Stages report totals since they started; the page wants "how many in each
of the last 60 minutes". ``Hourly`` takes a sample of totals now and then
and keeps the increase of each key per minute. A stage that restarted (its
pid changed, or a total went down) counts from 0 again; the first sample
only sets the baseline, so opening the page an hour into a run does not
show the whole run as one minute.
"""

from __future__ import annotations

MINUTES = 60
# Keys kept (routers: common/metrics.py bounds them at 200 and "other").
MAX_KEYS = 256


class Hourly:
    def __init__(self) -> None:
        self.previous: dict[str, float] = {}
        self.epoch: object = None
        self.slots: dict[str, list[float]] = {}
        self.stamps: dict[str, list[int]] = {}

    def observe(
        self, minute: int, totals: dict[str, float], epoch: object, fresh: bool
    ) -> None:
        """Totals as of now (minute: Unix time // 60) from the process epoch
        (its pid); fresh: it started after we did, so all it counted is news
        (otherwise its first totals are only the baseline)."""
        if epoch != self.epoch:
            self.epoch = epoch
            self.previous = {} if fresh else dict(totals)
        for key, value in totals.items():
            before = self.previous.get(key, 0.0)
            if value < before:  # a restart that kept the pid
                before = 0.0
            self.previous[key] = value
            if value > before:
                self._add(key, minute, value - before)

    def _add(self, key: str, minute: int, amount: float) -> None:
        slots = self.slots.get(key)
        if slots is None:
            if len(self.slots) >= MAX_KEYS:
                return
            slots = self.slots[key] = [0.0] * MINUTES
            self.stamps[key] = [-1] * MINUTES
        stamps = self.stamps[key]
        i = minute % MINUTES
        if stamps[i] != minute:
            stamps[i] = minute
            slots[i] = 0.0
        slots[i] += amount

    def last_hour(self, key: str, minute: int) -> list[float]:
        """Per minute, oldest first, ending with the current minute."""
        slots = self.slots.get(key)
        if slots is None:
            return [0.0] * MINUTES
        stamps = self.stamps[key]
        return [
            slots[m % MINUTES] if stamps[m % MINUTES] == m else 0.0
            for m in range(minute - MINUTES + 1, minute + 1)
        ]

    def keys(self) -> list[str]:
        return list(self.slots)
