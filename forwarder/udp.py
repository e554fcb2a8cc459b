"""The UDP sender: each payload becomes one datagram, byte for byte.

Like alertik, it sends to the first address of FORWARD_HOST that works. Unlike
alertik, it connects its socket to that address, so the kernel reports an ICMP
"port unreachable" (the target is down) as ECONNREFUSED on the *next* send.
Such a reported error is about an earlier datagram, and the send that reported
it did not go out, so that send is tried once more; the refusal is counted,
logged throttled, the next address (if any) is tried, and the name is looked
up again soon. Nothing is buffered: UDP syslog loses what is sent while the
target is away, as it always has.
"""

from __future__ import annotations

import errno
import logging
import select
import socket
import time

from alertik.common.throttle import Throttled
from alertik.forwarder.resolve import Address, Target, describe_error

log = logging.getLogger(__name__)

# Errors that report what happened to an earlier datagram (an ICMP message came
# back); the send that returned one did not go out, so it is tried once more.
ASYNC_ERRORS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.EHOSTDOWN,
    }
)
# How long a send may wait for room in the socket's send buffer: past that, the
# link is slower than the input and the datagram is dropped instead.
SEND_TIMEOUT_SECONDS = 1.0
# Room for bursts in the kernel before a send has to wait (the kernel caps it
# at net.core.wmem_max).
SEND_BUFFER_BYTES = 1 << 20


class UdpSender:
    """Sends each payload as one datagram to FORWARD_HOST's current address."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.forwarded = 0
        self.dropped = 0
        self.refused = 0
        self._sock: socket.socket | None = None
        self._address: Address | None = None
        self._index = 0  # which of the target's addresses is in use
        self._announce = True  # log the next address opened (a new answer)
        self._failures = Throttled(
            log, f"UDP sends to {target.name} failed (target down or unreachable?)"
        )
        self._unresolved = Throttled(
            log, f"datagrams dropped because {target.name} has no address"
        )

    @property
    def pending(self) -> int:
        """Payloads accepted but not yet sent: UDP keeps none."""
        return 0

    def watch(self) -> tuple[int, int] | None:
        """The fd and poll events the loop should wait for: none for UDP."""
        return None

    def due_in(self, now: float) -> float | None:
        """Seconds until service() has timed work to do: none for UDP."""
        return None

    def service(self, now: float, revents: int = 0) -> None:
        """Keep the address fresh; a changed answer is used from the next send."""
        if self.target.service(now):
            self._index = 0
            self._announce = True
            self._close()

    def send(self, payload: bytes) -> bool:
        """Send one datagram; False (counted, logged throttled) if it was not sent."""
        for attempt in (1, 2):
            sock = self._sock if self._sock is not None else self._open()
            if sock is None:
                self.dropped += 1
                if not self.target.addresses:
                    self._unresolved.hit(self.target.error)
                return False
            try:
                sock.send(payload)
            except BlockingIOError:
                if self._send_when_writable(sock, payload):
                    break
                return False
            except OSError as exc:
                self._failures.hit(f"{describe_error(exc)} from {self._address}")
                if attempt == 1 and exc.errno in ASYNC_ERRORS:
                    self._reported(exc)
                    continue
                self.dropped += 1
                return False
            break
        self.forwarded += 1
        return True

    def _send_when_writable(self, sock: socket.socket, payload: bytes) -> bool:
        """The send buffer is full: wait for room, briefly, then send or drop."""
        poller = select.poll()
        poller.register(sock, select.POLLOUT)
        if poller.poll(SEND_TIMEOUT_SECONDS * 1000):
            try:
                sock.send(payload)
                return True
            except OSError as exc:
                self._failures.hit(f"{describe_error(exc)} from {self._address}")
        else:
            self._failures.hit(f"send buffer full for {SEND_TIMEOUT_SECONDS:g} s")
        self.dropped += 1
        return False

    def _reported(self, exc: OSError) -> None:
        """An ICMP error came back: count it, move on, look the name up again."""
        if exc.errno == errno.ECONNREFUSED:
            self.refused += 1
        self.target.hurry(time.monotonic())
        if len(self.target.addresses) > 1:
            self._index += 1
            self._close()

    def _open(self) -> socket.socket | None:
        """A socket connected to the first address, from _index on, that takes it."""
        addresses = self.target.addresses
        for step in range(len(addresses)):
            index = (self._index + step) % len(addresses)
            address = addresses[index]
            sock = socket.socket(address.family, socket.SOCK_DGRAM)
            try:
                sock.setblocking(False)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
                sock.connect(address.sockaddr)
            except OSError as exc:
                sock.close()
                self._failures.hit(f"{describe_error(exc)} from {address}")
                continue
            # Rotating between the addresses of a dead target is not news.
            level = logging.INFO if self._announce else logging.DEBUG
            log.log(level, "forwarding over UDP to %s", address)
            self._announce = False
            self._index = index
            self._sock = sock
            self._address = address
            return sock
        return None

    def _close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def flush(self) -> None:
        """Log the pending counts now (at stop)."""
        self._failures.flush()
        self._unresolved.flush()
        self.target.flush()

    def close(self) -> None:
        """Close the socket."""
        self._close()
