"""The TCP sender: RFC 6587 octet-counted frames over a reconnecting connection.

Each payload becomes one frame, ``MSG-LEN SP MSG``, with the payload's bytes
unchanged (a trailing newline stays part of the message). Frames wait in a
bounded in-memory backlog until the socket takes them; while the target is
away the backlog fills, and once it holds ``buffer_messages`` frames (or
``BUFFER_MAX_BYTES``) each new frame is dropped and counted: the newest go,
as on RouterOS, so the target later gets one unbroken run from the start of
the outage and a single gap.

A frame the kernel accepted counts as forwarded. TCP has no receipts, so when a
connection breaks what sat in the kernel's buffers is lost; a frame cut in two
by the break is sent again whole on the next connection, never half.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections import deque

import zmq

from alertik.common.retry import Backoff
from alertik.common.throttle import Throttled
from alertik.forwarder.resolve import Address, Target, describe_error

log = logging.getLogger(__name__)

# A cap on the backlog's memory besides ALERTIK_FORWARD_BUFFER's count: with
# messages of up to 64 KiB, 10,000 of them could otherwise take 640 MB.
BUFFER_MAX_BYTES = 64 * 1024 * 1024
# Frames are joined into writes of about this size: one system call for many
# small messages, without copying a large backlog at once.
WRITE_CHUNK_BYTES = 64 * 1024
# A connect that neither succeeds nor fails (packets dropped on the way) is
# given up after this long.
CONNECT_TIMEOUT_SECONDS = 10.0
# Reconnect backoff: the first retry comes quickly (a receiver restarting),
# then the wait doubles up to the cap.
RECONNECT_MIN_SECONDS = 0.1
RECONNECT_MAX_SECONDS = 30.0
# A connection that lived this long was healthy: the backoff starts over.
STABLE_SECONDS = 5.0
# Bytes read (and discarded) at a time from the target, which has nothing to
# say in syslog; reading is only how a close or a reset is noticed.
READ_BYTES = 4096


def frame(payload: bytes) -> bytes:
    """One RFC 6587 octet-counted frame: the length, a space, the bytes."""
    return b"%d %b" % (len(payload), payload)


class Backlog:
    """Frames waiting for the socket, bounded; when full, the newest is refused."""

    def __init__(self, max_messages: int, max_bytes: int = BUFFER_MAX_BYTES) -> None:
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.bytes = 0
        self.offset = 0  # bytes of the first frame already written
        self._frames: deque[bytes] = deque()

    def __len__(self) -> int:
        return len(self._frames)

    def push(self, data: bytes) -> bool:
        """Queue a frame; False if the backlog is full (the frame is dropped)."""
        if len(self._frames) >= self.max_messages:
            return False
        # One frame larger than the byte cap is still taken into an empty backlog.
        if self._frames and self.bytes + len(data) > self.max_bytes:
            return False
        self._frames.append(data)
        self.bytes += len(data)
        return True

    def chunk(self, limit: int = WRITE_CHUNK_BYTES) -> bytes | memoryview:
        """The next bytes to write: the unwritten rest of the frames, up to limit."""
        if not self._frames:
            return b""
        first = memoryview(self._frames[0])[self.offset :]
        if len(first) >= limit or len(self._frames) == 1:
            return first
        parts: list[bytes | memoryview] = [first]
        size = len(first)
        for i in range(1, len(self._frames)):
            if size >= limit:
                break
            data = self._frames[i]
            parts.append(data)
            size += len(data)
        return b"".join(parts)

    def consume(self, written: int) -> int:
        """Mark written bytes as sent; the number of frames now complete."""
        done = 0
        written += self.offset
        while self._frames and written >= len(self._frames[0]):
            data = self._frames.popleft()
            written -= len(data)
            self.bytes -= len(data)
            done += 1
        self.offset = written
        return done

    def rewind(self) -> None:
        """A new connection: a frame cut by the old one is sent again whole."""
        self.offset = 0


class TcpSender:
    """Keeps one TCP connection to FORWARD_HOST and writes framed payloads to it."""

    def __init__(self, target: Target, buffer_messages: int) -> None:
        self.target = target
        self.backlog = Backlog(buffer_messages)
        self.forwarded = 0
        self.dropped = 0
        self.refused = 0
        self._sock: socket.socket | None = None
        self._address: Address | None = None
        self._connected = False
        self._connected_at = 0.0
        self._connect_deadline = 0.0
        self._retry_at = 0.0
        self._backoff = Backoff(RECONNECT_MIN_SECONDS, RECONNECT_MAX_SECONDS)
        self._next = 0  # index of the address the next attempt uses
        self._tried = 0  # attempts since the last connection or the last backoff
        self._overflow = Throttled(
            log,
            f"frames dropped because the TCP backlog is full "
            f"({buffer_messages} messages)",
        )
        self._empty = Throttled(
            log, "empty messages dropped (an octet-counted frame cannot be empty)"
        )
        self._failures = Throttled(log, f"TCP connects to {target.name} failed")

    @property
    def pending(self) -> int:
        """Frames accepted but not yet written."""
        return len(self.backlog)

    def watch(self) -> tuple[int, int] | None:
        """The fd and poll events the loop should wait for, if any."""
        if self._sock is None:
            return None
        if not self._connected:
            return self._sock.fileno(), zmq.POLLOUT
        if self.backlog:
            return self._sock.fileno(), zmq.POLLIN | zmq.POLLOUT
        return self._sock.fileno(), zmq.POLLIN

    def due_in(self, now: float) -> float | None:
        """Seconds until service() has timed work to do (a retry or a timeout)."""
        if self._sock is None:
            return max(0.0, self._retry_at - now) if self.target.addresses else None
        if not self._connected:
            return max(0.0, self._connect_deadline - now)
        return None

    def send(self, payload: bytes) -> bool:
        """Queue one payload as a frame; False (counted) if it was dropped."""
        if not payload:
            self.dropped += 1
            self._empty.hit()
            return False
        if not self.backlog.push(frame(payload)):
            self.dropped += 1
            self._overflow.hit(f"{len(self.backlog)} frames waiting")
            return False
        return True

    def service(self, now: float, revents: int = 0) -> None:
        """Advance the connection (connect, read, write) by what is ready now."""
        if (
            self.target.service(now)
            and self._address is not None
            and self._address not in self.target.addresses
        ):
            log.warning(
                "leaving %s: %s no longer resolves to it",
                self._address,
                self.target.name,
            )
            self._next = 0
            self._tried = 0
            self._disconnect(now, retry=0.0)
        if self._sock is not None and not self._connected:
            if revents:
                self._finish_connect(now)
            elif now >= self._connect_deadline:
                self._attempt_failed(now, "no answer to connect", refused=False)
        if self._connected and revents & (zmq.POLLIN | zmq.POLLERR):
            self._read(now)
        if self._connected and self.backlog:
            self._write(now)
        if self._sock is None and now >= self._retry_at and self.target.addresses:
            self._connect(now)

    def _connect(self, now: float) -> None:
        addresses = self.target.addresses
        address = addresses[self._next % len(addresses)]
        self._next += 1
        self._tried += 1
        sock = socket.socket(address.family, socket.SOCK_STREAM)
        self._sock = sock
        self._address = address
        sock.setblocking(False)
        # We join frames into large writes ourselves; Nagle would only add delay.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # A target that vanished without a reset is noticed eventually.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        code = sock.connect_ex(address.sockaddr)
        if code == 0:
            self._established(now)
        elif code in (errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK):
            self._connect_deadline = now + CONNECT_TIMEOUT_SECONDS
        else:
            text = describe_error(OSError(code, errno.errorcode.get(code, str(code))))
            self._attempt_failed(now, text, refused=code == errno.ECONNREFUSED)

    def _finish_connect(self, now: float) -> None:
        assert self._sock is not None
        code = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code == 0:
            self._established(now)
        else:
            text = describe_error(OSError(code, errno.errorcode.get(code, str(code))))
            self._attempt_failed(now, text, refused=code == errno.ECONNREFUSED)

    def _established(self, now: float) -> None:
        self._connected = True
        self._connected_at = now
        self._tried = 0
        self._next -= 1  # stay with this address next time
        self.backlog.rewind()
        self._failures.flush()
        log.info(
            "connected over TCP to %s; %d frames waiting", self._address, self.pending
        )

    def _attempt_failed(self, now: float, reason: str, *, refused: bool) -> None:
        if refused:
            self.refused += 1
        self._failures.hit(f"{reason} from {self._address}")
        self._close()
        if self._tried >= len(self.target.addresses):
            # Every address failed once: wait, and look the name up again.
            self._tried = 0
            self._retry_at = now + self._backoff.next()
            self.target.hurry(now)
        else:
            self._retry_at = now  # the next address, at once

    def _read(self, now: float) -> None:
        assert self._sock is not None
        try:
            data = self._sock.recv(READ_BYTES)
        except BlockingIOError:
            return
        except OSError as exc:
            self._lost(now, describe_error(exc))
            return
        if not data:
            self._lost(now, "closed by the target")

    def _write(self, now: float) -> None:
        assert self._sock is not None
        while self.backlog:
            try:
                written = self._sock.send(self.backlog.chunk())
            except BlockingIOError:
                return
            except OSError as exc:
                self._lost(now, describe_error(exc))
                return
            self.forwarded += self.backlog.consume(written)

    def _lost(self, now: float, reason: str) -> None:
        log.warning(
            "TCP connection to %s lost: %s; %d frames waiting",
            self._address,
            reason,
            self.pending,
        )
        if now - self._connected_at >= STABLE_SECONDS:
            self._backoff.reset()
        self._disconnect(now, retry=self._backoff.next())
        self.target.hurry(now)

    def _disconnect(self, now: float, retry: float) -> None:
        self._close()
        self._retry_at = now + retry

    def _close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock = None
        self._connected = False
        self.backlog.rewind()

    def flush(self) -> None:
        """Log the pending counts now (at stop)."""
        self._overflow.flush()
        self._empty.flush()
        self._failures.flush()
        self.target.flush()

    def close(self) -> None:
        """Close the connection; the kernel still delivers what it has taken."""
        self._close()
