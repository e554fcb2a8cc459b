"""Syslog over TCP: a non-blocking listener that the ingest poll loop drives.

``TcpListener`` owns a listening socket and every connection on it, all
registered in one private epoll (or kqueue) selector. The stage registers that
selector's single fd (``fileno()``, or ``register(poller)``) in its own
``zmq.Poller`` next to the UDP socket. When the poller reports it readable,
the stage calls ``handle_ready()``; it calls ``tick()`` about once per loop
turn for timeouts. No threads.

Per message it calls ``emit(raw, sender, sender_port, truncated)``; the sender
is shown as plain IPv4 when it came in through the dual-stack socket
(``::ffff:192.0.2.1`` becomes ``192.0.2.1``), like the UDP path.

Limits, each bounded whatever the peers do:

* connections: at most ``tcp_max_connections``; a new one over the cap, or
  from a sender the allow-list refuses, is accepted and closed at once, with a
  throttled warning;
* memory: each connection holds one ``Framer`` (about ``max_message_bytes``)
  and nothing else, so a slowloris client costs only that;
* time: one ``handle_ready()`` reads at most RECV_BYTES from each ready
  connection and READ_BUDGET_BYTES in all, then returns, so one flooding
  client cannot keep the loop from the UDP socket. Unread data stays in the
  kernel and the selector stays readable (level-triggered) for the next turn;
* idle: a connection silent for ``tcp_idle_seconds`` is closed (``tick``).

Framing is per connection (see ``framing``): octet counting or LF/CRLF/NUL;
for undelimited RouterOS streams, ``tick`` ends a held message after
TAIL_QUIET_SECONDS of silence.
"""

from __future__ import annotations

import errno
import logging
import selectors
import socket
import time
from collections.abc import Callable
from typing import Any, Protocol

import zmq

from alertik.common.config import IngestConfig
from alertik.common.net import unmapped
from alertik.common.throttle import Throttled
from alertik.ingest.framing import Frame, Framer
from alertik.ingest.listen import open_socket

log = logging.getLogger(__name__)

Emit = Callable[[bytes, str, int, bool], None]

# Bytes taken from one ready connection per handle_ready(): one recv() call.
# 64 KiB holds hundreds of RouterOS entries and is what a socket buffer
# typically hands over in one go.
RECV_BYTES = 64 * 1024
# Bytes read from all connections together per handle_ready(), so the stage
# gets back to its UDP socket after a bounded amount of work (~1 ms of parsing).
READ_BUDGET_BYTES = 1024 * 1024
# Connections accepted per handle_ready(); a connect storm waits in the
# kernel's backlog instead of holding up the loop.
ACCEPT_BUDGET = 64
# Silence after which an undelimited message (RouterOS default/syslog format
# over TCP, or CEF with an empty cef-event-delimiter) is taken as complete.
# Long against the gap between TCP segments of one message (microseconds to
# a round trip), short enough for an alert.
TAIL_QUIET_SECONDS = 1.0
# How often tick() looks at every connection; timeouts are this coarse.
TICK_SECONDS = 0.25
# Pause before accepting again when the process is out of file descriptors;
# without it the level-triggered listener would spin the loop.
ACCEPT_PAUSE_SECONDS = 1.0
# Pending handshakes the kernel queues for us (it caps this at somaxconn).
BACKLOG = socket.SOMAXCONN
_FD_EXHAUSTED = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class Poller(Protocol):
    """What register() needs: zmq.Poller fits."""

    def register(self, socket: Any, flags: int = ...) -> None: ...

    def unregister(self, socket: Any) -> None: ...


def open_tcp(bind: str, port: int) -> socket.socket:
    """A non-blocking listening socket; ``::`` is dual-stack, else 0.0.0.0."""
    sock = open_socket(bind, port, socket.SOCK_STREAM)
    sock.listen(BACKLOG)
    sock.setblocking(False)
    return sock


class _Connection:
    """One accepted client: its socket, address, framer and last activity."""

    __slots__ = ("sock", "host", "port", "framer", "last")

    def __init__(
        self, sock: socket.socket, host: str, port: int, limit: int, now: float
    ) -> None:
        self.sock = sock
        self.host = host
        self.port = port
        self.framer = Framer(limit)
        self.last = now


class TcpListener:
    """Accepts syslog-over-TCP clients and emits each framed message."""

    def __init__(
        self,
        bind: str,
        port: int,
        cfg: IngestConfig,
        emit: Emit,
        allowed: Callable[[str], bool],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._emit = emit
        self._allowed = allowed
        self._clock = clock
        self.limit = cfg.max_message_bytes
        self.max_connections = cfg.tcp_max_connections
        self.idle_seconds = cfg.tcp_idle_seconds
        self._conns: dict[int, _Connection] = {}
        self._sel = selectors.DefaultSelector()
        fileno = getattr(self._sel, "fileno", None)
        if fileno is None:
            self._sel.close()
            raise RuntimeError(
                "TcpListener needs a pollable selector (epoll or kqueue)"
            )
        self._sel_fd: int = fileno()
        try:
            self._sock = open_tcp(bind, port)
        except BaseException:
            self._sel.close()
            raise
        self._sel.register(self._sock, selectors.EVENT_READ, None)
        self._accepting = True
        self._accept_again = 0.0
        self._next_tick = 0.0
        self._closed = False
        self.accepted = 0
        self.messages = 0
        self.truncated = 0
        self.idle_closed = 0
        self.over_cap = Throttled(
            log, f"tcp connections closed: over the cap of {self.max_connections}"
        )
        self.refused = Throttled(log, "tcp connections refused: sender not allowed")
        self.accept_errors = Throttled(log, "tcp accept failed, pausing accepts")
        host, real_port = self.address
        shown = f"[{host}]" if ":" in host else host
        log.info("tcp listening on %s:%d", shown, real_port)

    # -- integration with the stage's poll loop ----------------------------

    def fileno(self) -> int:
        """The one fd to poll for readability: this listener's selector."""
        return self._sel_fd

    def register(self, poller: Poller) -> None:
        """Add this listener to a zmq.Poller (or anything alike) for POLLIN."""
        poller.register(self._sel_fd, zmq.POLLIN)

    def unregister(self, poller: Poller) -> None:
        """Remove this listener from the poller it was registered in."""
        poller.unregister(self._sel_fd)

    @property
    def address(self) -> tuple[str, int]:
        """The bound address and the real port (useful when port 0 was asked)."""
        name = self._sock.getsockname()
        return str(name[0]), int(name[1])

    @property
    def port(self) -> int:
        """The real TCP port."""
        return self.address[1]

    @property
    def connections(self) -> int:
        """Open client connections."""
        return len(self._conns)

    @property
    def buffered(self) -> int:
        """Bytes held in framers across all connections (for tests and metrics)."""
        return sum(c.framer.buffered for c in self._conns.values())

    def handle_ready(self) -> int:
        """Serve what is ready now, within the budgets; return messages emitted."""
        if self._closed:
            return 0
        before = self.messages
        budget = READ_BUDGET_BYTES
        for key, _ in self._sel.select(0):
            conn = key.data
            if conn is None:
                self._accept()
            elif isinstance(conn, _Connection):
                budget -= self._read(conn)
                if budget <= 0:
                    break
        return self.messages - before

    def tick(self, now: float | None = None) -> None:
        """Close idle connections and end quiet undelimited messages."""
        if self._closed:
            return
        now = self._clock() if now is None else now
        if now < self._next_tick:
            return
        self._next_tick = now + TICK_SECONDS
        if not self._accepting and now >= self._accept_again:
            self._sel.register(self._sock, selectors.EVENT_READ, None)
            self._accepting = True
        idle_before = now - self.idle_seconds
        quiet_before = now - TAIL_QUIET_SECONDS
        for conn in list(self._conns.values()):
            if conn.last <= idle_before:
                self.idle_closed += 1
                log.debug("tcp %s:%d idle, closing", conn.host, conn.port)
                self._drop(conn)
            elif conn.last <= quiet_before and conn.framer.buffered:
                self._deliver(conn, conn.framer.flush())

    def close(self, flush: bool = True) -> None:
        """Stop listening and close every connection, emitting held tails."""
        if self._closed:
            return
        for conn in list(self._conns.values()):
            self._drop(conn, flush=flush)
        if self._accepting:
            self._sel.unregister(self._sock)
        self._sock.close()
        self._sel.close()
        self._closed = True
        self.over_cap.flush()
        self.refused.flush()
        log.info(
            "tcp closed: connections=%d messages=%d truncated=%d idle_closed=%d "
            "over_cap=%d refused=%d",
            self.accepted,
            self.messages,
            self.truncated,
            self.idle_closed,
            self.over_cap.total,
            self.refused.total,
        )

    # -- internals -------------------------------------------------------

    def _accept(self) -> None:
        for _ in range(ACCEPT_BUDGET):
            try:
                sock, addr = self._sock.accept()
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno == errno.ECONNABORTED:
                    continue
                if exc.errno in _FD_EXHAUSTED:
                    self.accept_errors.hit(str(exc))
                    self._sel.unregister(self._sock)
                    self._accepting = False
                    self._accept_again = self._clock() + ACCEPT_PAUSE_SECONDS
                    self._next_tick = 0.0
                    return
                raise
            host, port = unmapped(str(addr[0])), int(addr[1])
            if not self._allowed(host):
                self.refused.hit(host)
                sock.close()
                continue
            if len(self._conns) >= self.max_connections:
                self.over_cap.hit(host)
                sock.close()
                continue
            sock.setblocking(False)
            conn = _Connection(sock, host, port, self.limit, self._clock())
            self._sel.register(sock, selectors.EVENT_READ, conn)
            self._conns[sock.fileno()] = conn
            self.accepted += 1
            log.debug("tcp %s:%d connected", host, port)

    def _read(self, conn: _Connection) -> int:
        try:
            data = conn.sock.recv(RECV_BYTES)
        except BlockingIOError:
            return 0
        except OSError as exc:
            log.debug("tcp %s:%d receive error: %s", conn.host, conn.port, exc)
            self._drop(conn)
            return 0
        if not data:
            log.debug("tcp %s:%d closed by peer", conn.host, conn.port)
            self._drop(conn)
            return 0
        conn.last = self._clock()
        self._deliver(conn, conn.framer.feed(data))
        return len(data)

    def _deliver(self, conn: _Connection, frames: list[Frame]) -> None:
        for payload, truncated in frames:
            self.messages += 1
            if truncated:
                self.truncated += 1
            self._emit(payload, conn.host, conn.port, truncated)

    def _drop(self, conn: _Connection, flush: bool = True) -> None:
        fd = conn.sock.fileno()
        if fd >= 0:
            self._sel.unregister(conn.sock)
            self._conns.pop(fd, None)
        conn.sock.close()
        if flush:
            self._deliver(conn, conn.framer.close())
