"""Where to forward: FORWARD_HOST's addresses, looked up off the loop and kept fresh.

``getaddrinfo`` blocks, for many seconds when a DNS server is down. Lookups run
on a daemon thread, one at a time, and the loop collects the answer when it
comes, so the forwarder keeps reading its input and notices SIGTERM. A lookup
that fails keeps the previous answer in use; a name that never resolved makes
the senders drop (UDP) or buffer (TCP) until it does.
"""

from __future__ import annotations

import errno
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from alertik.common.net import host_port
from alertik.common.retry import Backoff
from alertik.common.throttle import Throttled

log = logging.getLogger(__name__)

# First retry after a failed lookup; it doubles up to resolve_seconds. Short,
# so a name that appears (the DNS server starts after the router) is picked up
# within a second or two.
RETRY_MIN_SECONDS = 0.5
# How often a send error may trigger an early lookup: a dead target reports an
# error for nearly every datagram, and DNS must not see that rate.
HURRY_MIN_SECONDS = 1.0


class Address(NamedTuple):
    """One socket address from getaddrinfo: its family and sockaddr tuple."""

    family: int
    sockaddr: tuple[Any, ...]

    def __str__(self) -> str:
        return host_port(self.sockaddr[0], self.sockaddr[1])


Lookup = Callable[[], list[Address]]


def port_number(port: str, protocol: str) -> int:
    """FORWARD_PORT as a number; a service name is looked up for protocol, then udp.

    /etc/services lists ``syslog`` for udp only; over TCP the same number is
    the usual choice, so the udp entry is the fallback.
    """
    if port.isdigit():
        return int(port)
    for proto in (protocol, "udp"):
        try:
            return socket.getservbyname(port, proto)
        except OSError:
            continue
    raise ValueError(f"{port!r} is neither a port number nor a service name")


def getaddrinfo_lookup(host: str, port: int, socktype: int) -> Lookup:
    """A lookup of host:port with getaddrinfo (AF_UNSPEC), answers in its order."""

    def lookup() -> list[Address]:
        found: list[Address] = []
        for family, _, _, _, sockaddr in socket.getaddrinfo(
            host, port, socket.AF_UNSPEC, socktype
        ):
            if family not in (socket.AF_INET, socket.AF_INET6):
                continue
            address = Address(int(family), tuple(sockaddr))
            if address not in found:
                found.append(address)
        return found

    return lookup


def describe_error(exc: BaseException) -> str:
    """A short text for a network error: the errno name and message."""
    number = getattr(exc, "errno", None)
    name = errno.errorcode.get(number, "") if isinstance(number, int) else ""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return f"{name} ({text})" if name else str(text)


class Schedule:
    """When the next lookup is due: every `every` seconds, backing off on failure."""

    def __init__(self, every: float, retry_min: float = RETRY_MIN_SECONDS) -> None:
        self.every = every
        self.retry_min = min(retry_min, every)
        self._backoff = Backoff(self.retry_min, every)
        self._next = 0.0  # the first lookup is due at once
        self._last = float("-inf")

    def due(self, now: float) -> bool:
        """True when a lookup should start now."""
        return now >= self._next

    def succeeded(self, now: float) -> None:
        """A lookup answered: the next one in `every` seconds."""
        self._last = now
        self._next = now + self.every
        self._backoff.reset()

    def failed(self, now: float) -> None:
        """A lookup failed: retry sooner, doubling the wait up to `every`."""
        self._last = now
        self._next = now + self._backoff.next()

    def hurry(self, now: float, gap: float = HURRY_MIN_SECONDS) -> None:
        """A send failed: look again soon, but at most once per gap."""
        self._next = min(self._next, max(now, self._last + gap))


class BackgroundLookup:
    """Runs one lookup at a time on a daemon thread; poll() collects the answer."""

    def __init__(self, lookup: Lookup) -> None:
        self._lookup = lookup
        self._answers: queue.SimpleQueue[list[Address] | BaseException] = (
            queue.SimpleQueue()
        )
        self.busy = False

    def start(self) -> None:
        """Start a lookup unless one is already running."""
        if self.busy:
            return
        self.busy = True
        # Daemon: a lookup stuck on a dead DNS server must not hold up the exit.
        threading.Thread(target=self._work, name="forward-lookup", daemon=True).start()

    def _work(self) -> None:
        answer: list[Address] | BaseException
        try:
            answer = self._lookup()
        except Exception as exc:  # handed to the loop, which re-raises bugs
            answer = exc
        self._answers.put(answer)

    def poll(self, timeout: float = 0.0) -> list[Address] | BaseException | None:
        """The answer of the running lookup if it has finished, else None."""
        try:
            if timeout > 0:
                answer = self._answers.get(timeout=timeout)
            else:
                answer = self._answers.get_nowait()
        except queue.Empty:
            return None
        self.busy = False
        return answer


class Target:
    """FORWARD_HOST's current addresses, refreshed without ever blocking the loop."""

    def __init__(self, name: str, lookup: Lookup, every: float) -> None:
        self.name = name
        self.addresses: list[Address] = []
        self.error = "not looked up yet"
        self.schedule = Schedule(every)
        self._background = BackgroundLookup(lookup)
        self._failures = Throttled(log, f"lookups of {name} failed")

    def service(self, now: float, wait: float = 0.0) -> bool:
        """Take in a finished lookup, start a due one; True if the answer changed."""
        changed = False
        answer = self._background.poll(wait)
        if isinstance(answer, list) and answer:
            self.schedule.succeeded(now)
            if answer != self.addresses:
                if self.addresses:
                    log.warning(
                        "%s now resolves to %s (was %s)",
                        self.name,
                        _listing(answer),
                        _listing(self.addresses),
                    )
                else:
                    log.info("%s resolves to %s", self.name, _listing(answer))
                self.addresses = answer
                changed = True
        elif answer is not None:
            if not isinstance(answer, list | OSError | UnicodeError):
                raise answer  # a bug, not a lookup failure
            self.schedule.failed(now)
            if isinstance(answer, list):
                self.error = "no IPv4 or IPv6 address"
            else:
                self.error = describe_error(answer)
            using = _listing(self.addresses) if self.addresses else "no address"
            self._failures.hit(f"{self.error}; using {using}")
        if not self._background.busy and self.schedule.due(now):
            self._background.start()
        return changed

    def wait_first(self, timeout: float, stopped: Callable[[], bool]) -> None:
        """At start-up, wait up to timeout for the first answer (or a stop)."""
        deadline = time.monotonic() + timeout
        self.service(time.monotonic())
        while not self.addresses and not stopped():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._background.busy:
                return
            self.service(time.monotonic(), wait=min(remaining, 0.05))

    def hurry(self, now: float) -> None:
        """A send to the current address failed: look the name up again soon."""
        self.schedule.hurry(now)

    def flush(self) -> None:
        """Log the pending count of lookup failures now (at stop)."""
        self._failures.flush()


def _listing(addresses: list[Address]) -> str:
    return ", ".join(str(a) for a in addresses)
