"""Delivery to one destination: retries and pacing.

The policy is made of pure functions (``classify``, ``backoff``,
``server_wait``) and a ``Pacer`` driven by an explicit clock, so it is tested
without a network; what is particular to one service comes from its entry in
``notify/services.py``. ``Courier`` applies the policy: it sends one message
until it is delivered, fails for good, or the caller stops it, through the
service's transport (``transport.py``'s ``HttpTransport`` for HTTP).

Webhook URLs and the Telegram token are credentials: nothing this module logs,
returns or raises contains them, in any encoding (``scrub.py`` takes them out
of errors and answers' bodies).
"""

from __future__ import annotations

import dataclasses
import email.utils
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import msgspec

from alertik.common.config import NotifyConfig
from alertik.common.destinations import Destination
from alertik.common.retry import backoff
from alertik.notify.scrub import excerpt, scrub, secrets_for
from alertik.notify.services import (
    SERVICES,
    Attempt,
    Transport,
    Verdict,
    seconds,
    service_of,
)
from alertik.notify.transport import HttpTransport

log = logging.getLogger(__name__)

# First retry delay; it doubles per attempt up to ALERTIK_RETRY_MAX_DELAY.
BACKOFF_BASE = 1.0
# A server's "retry after" beyond this is taken as a mistake, not a plan.
MAX_SERVER_WAIT = 3600.0
# One destination's retries are logged at most this often (the tap still
# reports every one); the warning says how many it left out.
RETRY_LOG_EVERY = 10.0


@dataclass(frozen=True)
class Outcome:
    """Where sending one message ended up."""

    result: Literal["delivered", "failed", "disabled", "skipped", "stopped", "timeout"]
    attempts: int
    status: int | None = None
    # Scrubbed; for failures the reason and a body excerpt, for a delivery
    # or a skip what the service or the action said (may be empty).
    detail: str = ""


def _json(body: bytes) -> object:
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None


def server_wait(
    kind: str, headers: Mapping[str, str], body: bytes, now: float | None = None
) -> float | None:
    """Seconds a 429 (or 503) answer asks us to wait, or None if it does not say.

    The service's own place comes first (Telegram's ``parameters.retry_after``,
    Discord's fractional ``retry_after``); then the ``Retry-After`` header, in
    seconds or as an HTTP date, which any service may send.
    """
    if body[:1] == b"{":
        wait = SERVICES[kind].body_wait(_json(body))
        if wait is not None:
            return min(wait, MAX_SERVER_WAIT)
    raw = None
    for key, value in headers.items():
        if key.lower() == "retry-after":
            raw = value
    if raw is None:
        return None
    wait = seconds(raw.strip())
    if wait is not None:
        return min(wait, MAX_SERVER_WAIT)
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    now = time.time() if now is None else now
    return min(max(when.timestamp() - now, 0.0), MAX_SERVER_WAIT)


def classify(kind: str, attempt: Attempt, now: float | None = None) -> Verdict:
    """Decide what follows one attempt, by each service's documented rules."""
    if attempt.verdict is not None:
        return attempt.verdict
    status = attempt.status
    service = SERVICES[kind]
    if service.answer is not None:
        special = service.answer(attempt)
        if special is not None:
            return special
    if status is None:
        # Timeouts, refused and reset connections: the service may come back.
        return Verdict("retry", reason=attempt.error)
    if 200 <= status < 300:
        return Verdict("delivered")
    wait = server_wait(kind, attempt.headers, attempt.body, now)
    if status == 429:
        return Verdict("retry", wait, "HTTP 429 (rate limited)")
    if status >= 500 or status in (408, 425):
        return Verdict("retry", wait if status == 503 else None, f"HTTP {status}")
    if 300 <= status < 400:
        return Verdict("failed", reason=f"HTTP {status}: redirects are not followed")
    return Verdict("failed", reason=f"HTTP {status}")


# --- pacing ---------------------------------------------------------------------


class Pacer:
    """When the next request to one destination may start (monotonic seconds)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._next = 0.0

    def delay(self, now: float) -> float:
        """Seconds to wait from now before the next request."""
        return max(0.0, self._next - now)

    def sent(self, now: float) -> None:
        """Record a request started at now."""
        self._next = max(self._next, now + self.interval)

    def hold(self, now: float, seconds: float) -> None:
        """Allow no request for seconds from now (a 429 or an empty bucket)."""
        self._next = max(self._next, now + seconds)


# --- the courier ------------------------------------------------------------------


class Courier:
    """Sends messages to one destination, following its service's rules."""

    def __init__(
        self,
        dest: Destination,
        cfg: NotifyConfig,
        halt: threading.Event,
        *,
        rand: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.dest = dest
        self.service = service_of(dest)
        self.name = dest.shown()
        self._cfg = cfg
        self._halt = halt
        self._rand = rand
        self._clock = clock
        self._secrets = secrets_for(dest)
        self._transport = self._open(dest)
        self._moved = False
        self.pacer = Pacer(self.service.pace(dest))
        self._warned_at = -RETRY_LOG_EVERY
        self._unlogged = 0

    def _open(self, dest: Destination) -> Transport:
        """The transport that carries this destination's messages."""
        if self.service.transport is not None:
            return self.service.transport(dest, self._cfg, self._secrets)
        return HttpTransport(dest, self.service, self._cfg, self._secrets)

    def close(self) -> None:
        """Close the transport's connections."""
        self._transport.close()

    def _move(self, verdict: Verdict) -> bool:
        """Follow a service's new address for this destination, once per run."""
        if self._moved or not verdict.change:
            return False
        self._moved = True
        old = self.dest
        self.dest = msgspec.structs.replace(old, **verdict.change)
        self._transport.close()
        self._transport = self._open(self.dest)
        changes = ", ".join(f"{k} = {v!r}" for k, v in verdict.change.items())
        log.error(
            "%s: %s. NOW SENDING THERE until notify restarts; to keep it, set "
            "%s in this destination's configuration",
            self.name,
            verdict.reason,
            changes,
        )
        return True

    def _sleep(self, seconds: float, deadline: float | None) -> bool:
        """Wait; False if halted or the deadline would pass first."""
        if deadline is not None and self._clock() + seconds > deadline:
            return False
        if seconds <= 0:
            return not self._halt.is_set()
        return not self._halt.wait(seconds)

    def _detail(self, attempt: Attempt, reason: str) -> str:
        """reason, with a scrubbed excerpt of the answer's body if it has one."""
        if not attempt.body:
            return reason
        return f"{reason}: {excerpt(attempt.body, self._secrets, attempt.truncated)}"

    def _warn(self, reason: str, attempts: int, delay: float) -> None:
        """Log a retry, at most once per RETRY_LOG_EVERY for this destination."""
        now = self._clock()
        if now - self._warned_at < RETRY_LOG_EVERY:
            self._unlogged += 1
            return
        more = (
            f" ({self._unlogged} more retries since the last warning)"
            if self._unlogged
            else ""
        )
        log.warning(
            "%s: %s; retry %d in %.1f s%s", self.name, reason, attempts, delay, more
        )
        self._warned_at = now
        self._unlogged = 0

    def send(
        self,
        text: str,
        *,
        key: str = "",
        deadline: float | None = None,
        on_retry: Callable[[int, Verdict], None] | None = None,
    ) -> Outcome:
        """Deliver one message: retry transient trouble until halted or deadline.

        key is the message's idempotency key, the same for every retry of it
        (and after a restart); without one, one is made for this call.
        """
        key = key or uuid.uuid4().hex
        attempts = 0
        last: Attempt | None = None
        while True:
            wait = self.pacer.delay(self._clock())
            if wait and not self._sleep(wait, deadline):
                return self._gave_up(attempts, last)
            if self._halt.is_set() and attempts:
                return self._gave_up(attempts, last)
            self.pacer.sent(self._clock())
            attempt = self._transport.attempt(text, key)
            attempt = dataclasses.replace(
                attempt, error=scrub(attempt.error, self._secrets)
            )
            attempts += 1
            last = attempt
            if self.service.rate_bucket is not None:
                bucket = self.service.rate_bucket(attempt.headers)
                if bucket is not None:
                    self.pacer.hold(self._clock(), min(bucket, MAX_SERVER_WAIT))
            verdict = classify(self.service.kind, attempt)
            if verdict.action == "moved":
                if self._move(verdict):
                    continue
                verdict = Verdict("failed", reason=f"{verdict.reason}, again")
            if verdict.action in ("delivered", "skipped"):
                detail = scrub(verdict.reason, self._secrets)
                return Outcome(verdict.action, attempts, attempt.status, detail)
            if verdict.action in ("failed", "disabled"):
                detail = self._detail(attempt, verdict.reason)
                return Outcome(verdict.action, attempts, attempt.status, detail)
            # Never sooner than our own backoff: a "Retry-After: 0" (or a date
            # in the past) would otherwise retry as fast as the service answers.
            delay = backoff(
                attempts, BACKOFF_BASE, self._cfg.retry_max_seconds, self._rand()
            )
            if verdict.wait is not None:
                delay = max(delay, verdict.wait)
                self.pacer.hold(self._clock(), delay)
            # The pace holds for retries too; say how long we really wait.
            delay = max(delay, self.pacer.delay(self._clock()))
            reason = self._detail(attempt, verdict.reason or "no answer")
            self._warn(reason, attempts, delay)
            if on_retry is not None:
                on_retry(attempts, Verdict("retry", verdict.wait, reason))
            if not self._sleep(delay, deadline):
                return self._gave_up(attempts, last)

    def _gave_up(self, attempts: int, last: Attempt | None) -> Outcome:
        result: Literal["stopped", "timeout"] = (
            "stopped" if self._halt.is_set() else "timeout"
        )
        if last is None:
            return Outcome(result, attempts)
        status = f"{self.service.protocol} {last.status}"
        detail = self._detail(last, last.error or status)
        return Outcome(result, attempts, last.status, detail)
