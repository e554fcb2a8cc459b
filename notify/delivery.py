"""HTTP delivery to one destination: session, timeouts, retries and pacing.

The policy is made of pure functions (``classify``, ``backoff``,
``server_wait``, ``bucket_wait``, ``scrub``) and a ``Pacer`` driven by an
explicit clock, so it is tested without a network. ``Courier`` applies it: it
owns one ``requests.Session`` per destination and sends one message until it
is delivered, fails for good, or the caller stops it.

Webhook URLs and the Telegram token are credentials: nothing this module logs,
returns or raises contains them (requests puts the URL in its exception text;
``scrub`` takes it out).
"""

from __future__ import annotations

import email.utils
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote, urlsplit

import msgspec
import requests

from alertik.common.config import Destination, NotifyConfig, redact_url
from alertik.notify import render

log = logging.getLogger(__name__)

# First retry delay; it doubles per attempt up to ALERTIK_RETRY_MAX_DELAY.
BACKOFF_BASE = 1.0
# A server's "retry after" beyond this is taken as a mistake, not a plan.
MAX_SERVER_WAIT = 3600.0
# Minimum gap between two requests to one destination, from each service's
# documented limits: Slack 1 message/s; Teams throttles above 4 requests/s;
# Telegram about 1 message/s in a private chat and 20/minute in a group or
# channel (a chat_id starting with "-" or "@"). Discord answers with bucket
# headers instead (see bucket_wait); generic webhooks set no limit.
PACE_SECONDS = {"slack": 1.0, "teams": 0.25, "discord": 0.0, "generic": 0.0}
TELEGRAM_PRIVATE_PACE = 1.0
TELEGRAM_GROUP_PACE = 3.0
# How much of a refusal's body goes into the log: enough for the service's
# error text, not a whole HTML error page.
BODY_EXCERPT = 300
USER_AGENT = "alertik"

Action = Literal["delivered", "retry", "failed", "disabled"]


@dataclass(frozen=True)
class Verdict:
    """What to do after one attempt."""

    action: Action
    wait: float | None = None  # seconds the service asked us to wait, if any
    reason: str = ""


@dataclass(frozen=True)
class Attempt:
    """The result of one HTTP request: an answer, or an error without one."""

    status: int | None
    headers: Mapping[str, str]
    body: bytes
    error: str = ""  # already scrubbed
    elapsed: float = 0.0


@dataclass(frozen=True)
class Outcome:
    """Where sending one message ended up."""

    result: Literal["delivered", "failed", "disabled", "stopped", "timeout"]
    attempts: int
    status: int | None = None
    detail: str = ""  # scrubbed; for failures the reason and a body excerpt


def pace_seconds(dest: Destination) -> float:
    """The minimum gap between two requests to dest."""
    if dest.kind == "telegram":
        private = dest.chat_id.isdigit()
        return TELEGRAM_PRIVATE_PACE if private else TELEGRAM_GROUP_PACE
    return PACE_SECONDS[dest.kind]


def backoff(attempt: int, cap: float, rand: float) -> float:
    """Delay before retry number attempt (1-based): doubling, capped, jittered.

    rand in [0, 1) spreads the delay over the upper half of the step, so
    destinations that failed together do not retry in lockstep.
    """
    step = min(cap, BACKOFF_BASE * 2.0 ** min(attempt - 1, 30))
    return step / 2 + step / 2 * rand


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _seconds(raw: object) -> float | None:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    if value != value or value < 0:  # NaN or negative
        return None
    return min(value, MAX_SERVER_WAIT)


def _json(body: bytes) -> object:
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None


def server_wait(
    kind: str, headers: Mapping[str, str], body: bytes, now: float | None = None
) -> float | None:
    """Seconds a 429 (or 503) answer asks us to wait, or None if it does not say.

    Telegram puts it in ``parameters.retry_after``, Discord in a JSON
    ``retry_after`` (fractional, more precise than its header); everyone may
    send a ``Retry-After`` header in seconds or as an HTTP date.
    """
    data = _json(body) if body[:1] == b"{" else None
    if isinstance(data, dict):
        if kind == "telegram":
            params = data.get("parameters")
            if isinstance(params, dict):
                wait = _seconds(params.get("retry_after"))
                if wait is not None:
                    return wait
        if kind == "discord":
            wait = _seconds(data.get("retry_after"))
            if wait is not None:
                return wait
    raw = _header(headers, "retry-after")
    if raw is None:
        return None
    wait = _seconds(raw.strip())
    if wait is not None:
        return wait
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    now = time.time() if now is None else now
    return min(max(when.timestamp() - now, 0.0), MAX_SERVER_WAIT)


def bucket_wait(headers: Mapping[str, str]) -> float | None:
    """Discord: seconds until its rate-limit bucket refills, when it is empty."""
    remaining = _header(headers, "x-ratelimit-remaining")
    if remaining is None or remaining.strip() != "0":
        return None
    return _seconds((_header(headers, "x-ratelimit-reset-after") or "").strip())


def classify(kind: str, attempt: Attempt, now: float | None = None) -> Verdict:
    """Decide what follows one attempt, by each service's documented rules."""
    status = attempt.status
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
    if kind == "discord" and status == 404:
        # Discord: a webhook that answers 404 was deleted; stop using it.
        return Verdict("disabled", reason="HTTP 404: the webhook no longer exists")
    if 300 <= status < 400:
        return Verdict("failed", reason=f"HTTP {status}: redirects are not followed")
    return Verdict("failed", reason=f"HTTP {status}")


def secrets_of(url: str) -> list[str]:
    """The parts of a URL that must never be shown, longest first."""
    parts = urlsplit(url)
    found = {url, url.split("://", 1)[-1]}
    tail = parts.path + (f"?{parts.query}" if parts.query else "")
    for piece in (tail, parts.path, parts.query, unquote(parts.path)):
        if len(piece) > 1:
            found.add(piece)
    # Each path segment and query value on its own: a token or webhook id may
    # show up alone (Telegram's "bot<token>" segment, Slack's secret part).
    for piece in re.split(r"[/?&=]", unquote(tail)):
        if len(piece) >= 6:
            found.add(piece)
            if piece.startswith("bot"):
                found.add(piece[3:])
    if parts.password:
        found.add(parts.password)
    return sorted(found, key=len, reverse=True)


def scrub(text: str, secrets: list[str]) -> str:
    """Text with every secret replaced by ``<redacted>``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<redacted>")
    return re.sub(r"(with url: )\S+", r"\1<redacted>", text)


def excerpt(body: bytes, secrets: list[str]) -> str:
    """A short, one-line, scrubbed piece of a response body for the log."""
    text = body[: BODY_EXCERPT * 4].decode("utf-8", "replace")
    text = " ".join(text.split())
    if len(text) > BODY_EXCERPT:
        text = text[:BODY_EXCERPT] + "..."
    return scrub(text, secrets)


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


def make_session(dest: Destination) -> requests.Session:
    """A session for one destination: keep-alive, TLS verified unless opted out."""
    # urllib3 logs request paths at DEBUG, and a path holds the token or the
    # webhook secret: keep its chatter out even when ALERTIK_LOG_LEVEL=DEBUG.
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    session = requests.Session()
    # Proxies (HTTPS_PROXY, NO_PROXY) and a CA bundle (REQUESTS_CA_BUNDLE) from
    # the environment are read once here: left to requests, every request
    # scans the environment again, which cost a third of notify's time.
    found = session.merge_environment_settings(
        dest.url, {}, None, dest.verify_tls, None
    )
    session.trust_env = False
    session.proxies.update(found["proxies"])
    session.verify = found["verify"]
    session.headers["User-Agent"] = USER_AGENT
    session.headers["Content-Type"] = "application/json"
    session.headers["Accept"] = "application/json"
    return session


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
        self.name = f"{dest.notifier} ({redact_url(dest.url)})"
        self._cfg = cfg
        self._halt = halt
        self._rand = rand
        self._clock = clock
        self._secrets = secrets_of(dest.url)
        self._session = make_session(dest)
        self.pacer = Pacer(pace_seconds(dest))

    def close(self) -> None:
        """Close the session's connections."""
        self._session.close()

    def post(self, body: bytes) -> Attempt:
        """One POST of body; never raises for network trouble."""
        started = self._clock()
        try:
            resp = self._session.post(
                self.dest.url,
                data=body,
                timeout=(self._cfg.connect_timeout, self._cfg.read_timeout),
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            # str(exc) names the URL, token included: scrub before keeping it.
            error = scrub(f"{type(exc).__name__}: {exc}", self._secrets)
            return Attempt(None, {}, b"", error, self._clock() - started)
        except Exception as exc:
            # Not a network problem: a bug, so crash, but without the URL in
            # the message or in a chained exception's message.
            error = scrub(f"{type(exc).__name__}: {exc}", self._secrets)
            raise RuntimeError(f"{self.name}: {error}") from None
        with resp:
            content = resp.content
        return Attempt(
            resp.status_code, dict(resp.headers), content, "", self._clock() - started
        )

    def _sleep(self, seconds: float, deadline: float | None) -> bool:
        """Wait; False if halted or the deadline would pass first."""
        if deadline is not None and self._clock() + seconds > deadline:
            return False
        if seconds <= 0:
            return not self._halt.is_set()
        return not self._halt.wait(seconds)

    def send(
        self,
        text: str,
        *,
        deadline: float | None = None,
        on_retry: Callable[[int, Verdict], None] | None = None,
    ) -> Outcome:
        """Deliver one message: retry transient trouble until halted or deadline."""
        body = render.encode(self.dest, text)
        attempts = 0
        last: Attempt | None = None
        while True:
            wait = self.pacer.delay(self._clock())
            if wait and not self._sleep(wait, deadline):
                return self._gave_up(attempts, last)
            if self._halt.is_set() and attempts:
                return self._gave_up(attempts, last)
            now = self._clock()
            self.pacer.sent(now)
            attempt = self.post(body)
            attempts += 1
            last = attempt
            bucket = (
                bucket_wait(attempt.headers) if self.dest.kind == "discord" else None
            )
            if bucket is not None:
                self.pacer.hold(self._clock(), bucket)
            verdict = classify(self.dest.kind, attempt)
            if verdict.action == "delivered":
                return Outcome("delivered", attempts, attempt.status)
            if verdict.action in ("failed", "disabled"):
                detail = verdict.reason
                if attempt.body:
                    detail += ": " + excerpt(attempt.body, self._secrets)
                return Outcome(verdict.action, attempts, attempt.status, detail)
            delay = backoff(attempts, self._cfg.retry_max_seconds, self._rand())
            if verdict.wait is not None:
                delay = verdict.wait
                self.pacer.hold(self._clock(), delay)
            # The pace holds for retries too; say how long we really wait.
            delay = max(delay, self.pacer.delay(self._clock()))
            reason = verdict.reason or "no answer"
            if attempt.body:
                reason += ": " + excerpt(attempt.body, self._secrets)
            log.warning(
                "%s: %s; retry %d in %.1f s", self.name, reason, attempts, delay
            )
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
        detail = last.error or f"HTTP {last.status}"
        if last.body:
            detail += ": " + excerpt(last.body, self._secrets)
        return Outcome(result, attempts, last.status, detail)
