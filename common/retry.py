"""Waiting between attempts: one doubling backoff for every retry loop.

notify's deliveries, the forwarder's reconnects and its look-ups of
FORWARD_HOST all wait the same way: a first step, doubled after each failure
up to a cap, and (for deliveries, which many destinations may retry at once)
spread at random over the upper half of the step.
"""

from __future__ import annotations


def backoff(attempt: int, first: float, cap: float, rand: float | None = None) -> float:
    """The wait before retry number attempt (1-based): first, doubling, capped.

    rand in [0, 1) spreads the wait over the upper half of the step, so that
    clients that failed together do not retry in lockstep.
    """
    step = min(cap, first * 2.0 ** min(attempt - 1, 60))
    return step if rand is None else step / 2 + step / 2 * rand


class Backoff:
    """The waits of one retry loop: next() after a failure, reset() on success."""

    def __init__(self, first: float, cap: float) -> None:
        self.first = first
        self.cap = cap
        self.failures = 0

    def next(self) -> float:
        self.failures += 1
        return backoff(self.failures, self.first, self.cap)

    def reset(self) -> None:
        self.failures = 0
