"""Delivery to one destination: retries, pacing, and bounded HTTP requests.

The policy is made of pure functions (``classify``, ``backoff``,
``server_wait``, ``scrub``, ``excerpt``) and a ``Pacer`` driven by an explicit
clock, so it is tested without a network; what is particular to one service
comes from its entry in ``notify/services.py``. ``Courier`` applies the
policy: it sends one message until it is delivered, fails for good, or the
caller stops it. ``HttpTransport`` makes the requests: one
``requests.Session`` per destination, at most ``MAX_BODY`` bytes of any answer
read, and a deadline on each whole request.

Webhook URLs and the Telegram token are credentials: nothing this module logs,
returns or raises contains them, in any encoding (requests puts the URL in its
exception text; a service may echo it in an error body; ``scrub`` takes it
out).
"""

from __future__ import annotations

import contextlib
import dataclasses
import email.utils
import functools
import logging
import random
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import msgspec
import requests
import requests.adapters
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from alertik.common.config import NotifyConfig
from alertik.common.destinations import Destination
from alertik.common.retry import backoff
from alertik.notify.services import (
    SERVICES,
    Attempt,
    Service,
    Transport,
    Verdict,
    seconds,
    service_of,
)

log = logging.getLogger(__name__)

# First retry delay; it doubles per attempt up to ALERTIK_RETRY_MAX_DELAY.
BACKOFF_BASE = 1.0
# A server's "retry after" beyond this is taken as a mistake, not a plan.
MAX_SERVER_WAIT = 3600.0
# How much of a refusal's body goes into the log: enough for the service's
# error text, not a whole HTML error page.
BODY_EXCERPT = 300
# The most of any answer that is read: error texts and 429 details are small;
# a service that answers with megabytes gets its connection closed instead.
MAX_BODY = 16 * 1024
READ_CHUNK = 4096
# One destination's retries are logged at most this often (the tap still
# reports every one); the warning says how many it left out.
RETRY_LOG_EVERY = 10.0
USER_AGENT = "alertik"


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


# --- secrets ------------------------------------------------------------------


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
            found.update(_token_pieces(piece[3:] if piece.startswith("bot") else piece))
            found.add(piece)
    if parts.password:
        found.add(parts.password)
    return sorted(found, key=len, reverse=True)


def _token_pieces(token: str) -> list[str]:
    """A token, and its part after a colon (a bot token without the bot's id)."""
    pieces = [token]
    secret = token.rpartition(":")[2]
    if secret != token and len(secret) >= 6:
        pieces.append(secret)
    return pieces


def secrets_for(dest: Destination) -> list[str]:
    """Everything about dest that must be scrubbed, longest first."""
    found: set[str] = set()
    values = dest.secrets()
    service = service_of(dest)
    if service.request is not None:
        req = service.request(dest, "", "")
        values.append(req.url)
        # Basic authentication carries user:password in base64.
        auth = next(
            (v for k, v in req.headers.items() if k.lower() == "authorization"), ""
        )
        if auth.startswith("Basic "):
            values.append(auth[len("Basic ") :])
    for value in values:
        found.update(secrets_of(value) if "://" in value else _token_pieces(value))
    return sorted(found, key=len, reverse=True)


def _hex(byte: int) -> str:
    """A byte as two hex digits, either case."""
    return "".join(f"[{c}{c.upper()}]" if c.isalpha() else c for c in f"{byte:02x}")


def _encodings(char: str) -> str:
    """A pattern for char in each encoding a URL takes in practice."""
    code = ord(char)
    forms = [re.escape(char)]
    # Percent-encoded, also twice (%253A).
    forms.append("".join(f"%(?:25)?{_hex(b)}" for b in char.encode("utf-8")))
    if code < 0x10000:
        # JSON's \u escape, and HTML's numeric character references.
        forms.append(rf"\\u{_hex(code >> 8)}{_hex(code & 0xFF)}")
        forms.append(
            rf"&#0{{0,3}}{code};|&#[xX]0{{0,3}}{code:x};|&#[xX]0{{0,3}}{code:X};"
        )
    if char == "&":
        forms.append("&amp;")
    # JSON escapes "/" as "\/"; a JSON text inside a JSON string doubles it.
    return r"(?:\\{0,2}(?:" + "|".join(forms) + "))"


# A secret that reached the end of what was read may be cut short there and
# go unrecognised: that many characters per character of the longest secret
# are dropped from the end of a body that was not read whole.
_MAX_ENCODED = 24


@functools.lru_cache(maxsize=64)
def _pattern(secrets: tuple[str, ...]) -> re.Pattern[str] | None:
    alternatives = [
        "".join(_encodings(c) for c in s)
        for s in sorted(secrets, key=len, reverse=True)
        if s
    ]
    return re.compile("|".join(alternatives)) if alternatives else None


def scrub(text: str, secrets: list[str]) -> str:
    """Text with every secret, however encoded, replaced by ``<redacted>``."""
    pattern = _pattern(tuple(secrets))
    if pattern is not None:
        text = pattern.sub("<redacted>", text)
    return re.sub(r"(with url: )\S+", r"\1<redacted>", text)


def excerpt(body: bytes, secrets: list[str], truncated: bool = False) -> str:
    """A short, one-line, scrubbed piece of a response body for the log.

    The whole body read is scrubbed before anything is cut from it, so a
    secret is never cut in two and half of it shown.
    """
    text = scrub(body.decode("utf-8", "replace"), secrets)
    if truncated and secrets:
        text = text[: max(0, len(text) - _MAX_ENCODED * max(map(len, secrets)))]
    text = " ".join(text.split())
    if len(text) > BODY_EXCERPT:
        text = text[:BODY_EXCERPT] + "..."
    return text


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


# --- HTTP -----------------------------------------------------------------------


class _Cutter:
    """Cuts the connection of a request that is still running at its deadline.

    The timeouts of the HTTP library bound each read, not a whole request: an
    answer trickled one byte at a time never ends. A connection tells the
    cutter when it sends a request; a thread of the cutter's own shuts that
    connection's socket down if the request is still running at its deadline,
    and the blocked read returns at once.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._conn: Any = None
        self._due: float | None = None
        self._closed = False
        self._thread: threading.Thread | None = None
        self.fired = False

    def using(self, conn: object) -> None:
        """The connection of the request now starting."""
        with self._lock:
            self._conn = conn

    def arm(self, seconds: float) -> None:
        """A request starts now and must be over within seconds."""
        with self._lock:
            self.fired = False
            self._conn = None
            self._due = time.monotonic() + seconds
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"deadline-{self._name}", daemon=True
                )
                self._thread.start()
            self._changed.notify()

    def disarm(self) -> None:
        """The request is over."""
        with self._lock:
            self._due = None
            self._conn = None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._changed.notify()

    def _run(self) -> None:
        with self._lock:
            while not self._closed:
                if self._due is None:
                    self._changed.wait()
                    continue
                left = self._due - time.monotonic()
                if left > 0:
                    self._changed.wait(left)
                    continue
                self._due = None
                self.fired = True
                sock = getattr(self._conn, "sock", None)
                if sock is not None:
                    # The plain socket's shutdown, also under TLS: it wakes
                    # the reading thread, which then fails.
                    with contextlib.suppress(OSError):
                        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _pool_classes(cutter: _Cutter) -> dict[str, type[HTTPConnectionPool]]:
    """Connection pools whose connections report to cutter."""

    class Connection(HTTPConnection):
        def request(self, *args: Any, **kwargs: Any) -> None:
            cutter.using(self)
            super().request(*args, **kwargs)

    class TLSConnection(HTTPSConnection):
        def request(self, *args: Any, **kwargs: Any) -> None:
            cutter.using(self)
            super().request(*args, **kwargs)

    class Pool(HTTPConnectionPool):
        ConnectionCls = Connection

    class TLSPool(HTTPSConnectionPool):
        ConnectionCls = TLSConnection

    return {"http": Pool, "https": TLSPool}


class _Adapter(requests.adapters.HTTPAdapter):
    """requests' adapter, with connections that a _Cutter can cut."""

    def __init__(self, cutter: _Cutter) -> None:
        self._cutter = cutter
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _pool_classes(self._cutter)

    def proxy_manager_for(self, *args: Any, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(*args, **kwargs)
        manager.pool_classes_by_scheme = _pool_classes(self._cutter)
        return manager


def make_session(
    dest: Destination, adapter: requests.adapters.HTTPAdapter | None = None
) -> requests.Session:
    """A session for one destination: keep-alive, TLS verified unless opted out."""
    # urllib3 logs request paths at DEBUG, and a path holds the token or the
    # webhook secret: keep its chatter out even when ALERTIK_LOG_LEVEL=DEBUG.
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    session = requests.Session()
    if adapter is not None:
        session.mount("http://", adapter)
        session.mount("https://", adapter)
    # Proxies (HTTPS_PROXY, NO_PROXY) and a CA bundle (REQUESTS_CA_BUNDLE) from
    # the environment are read once here: left to requests, every request
    # scans the environment again, which cost a third of notify's time.
    # A router's own certificate: checked against its CA file, not the
    # system's authorities.
    verify: bool | str = dest.verify_tls
    ca_file = getattr(dest, "ca_file", "")
    if verify and ca_file:
        verify = ca_file
    found = session.merge_environment_settings(dest.endpoint, {}, None, verify, None)
    session.trust_env = False
    session.proxies.update(found["proxies"])
    session.verify = found["verify"]
    session.headers["User-Agent"] = USER_AGENT
    session.headers["Accept"] = "application/json"
    # A compressed answer can unpack to far more than MAX_BODY in one read.
    session.headers["Accept-Encoding"] = "identity"
    return session


class HttpTransport:
    """Sends one destination's HTTP requests, each bounded in size and time.

    A request must be over within connect + read timeout (ALERTIK_HTTP_*),
    however slowly the service answers; of its answer at most MAX_BODY bytes
    are read. Once the status is known it stands: a 2xx whose body is cut
    short still counts as delivered.
    """

    def __init__(
        self,
        dest: Destination,
        service: Service[Any],
        cfg: NotifyConfig,
        secrets: list[str],
    ) -> None:
        if service.request is None:
            raise ValueError(f"{service.kind} is not an HTTP service")
        self._dest = dest
        self._build = service.request
        self._timeout = (cfg.connect_timeout, cfg.read_timeout)
        self.deadline = cfg.connect_timeout + cfg.read_timeout
        self._secrets = secrets
        self._cutter = _Cutter(dest.name)
        self._session = make_session(dest, _Adapter(self._cutter))

    def close(self) -> None:
        """Close the session's connections."""
        self._cutter.close()
        self._session.close()

    def attempt(self, text: str, key: str) -> Attempt:
        """One request carrying text; never raises for network trouble."""
        req = self._build(self._dest, text, key)
        started = time.monotonic()
        self._cutter.arm(self.deadline)
        try:
            resp = self._session.request(
                req.method,
                req.url,
                data=req.body,
                headers=dict(req.headers),
                timeout=self._timeout,
                allow_redirects=False,
                stream=True,
            )
        except requests.RequestException as exc:
            self._cutter.disarm()
            if self._cutter.fired:
                error = f"Timeout: no complete answer within {self.deadline:g} s"
            else:
                # str(exc) names the URL, token included: scrub it.
                error = scrub(f"{type(exc).__name__}: {exc}", self._secrets)
            return Attempt(None, {}, b"", error, time.monotonic() - started)
        except Exception as exc:
            # Not a network problem: a bug, so crash, but without the URL in
            # the message or in a chained exception's message.
            self._cutter.disarm()
            error = scrub(f"{type(exc).__name__}: {exc}", self._secrets)
            raise RuntimeError(f"{self._dest.shown()}: {error}") from None
        try:
            body, truncated = self._read(resp)
        finally:
            self._cutter.disarm()
            resp.close()
        return Attempt(
            resp.status_code,
            dict(resp.headers),
            body,
            "",
            time.monotonic() - started,
            truncated,
        )

    @staticmethod
    def _read(resp: requests.Response) -> tuple[bytes, bool]:
        """At most MAX_BODY bytes of the answer, and whether there was more."""
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in resp.iter_content(READ_CHUNK):
                room = MAX_BODY - size
                if len(chunk) > room:
                    chunks.append(chunk[:room])
                    return b"".join(chunks), True
                chunks.append(chunk)
                size += len(chunk)
        except requests.RequestException:
            # Cut at the deadline, or the connection failed: the status
            # stands, with what came of the body.
            return b"".join(chunks), True
        return b"".join(chunks), False


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
