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

* senders: one from outside the allow-list is accepted and closed at once,
  with a throttled warning;
* connections: at most ``tcp_max_per_source`` from one source (an IPv4
  address, or an IPv6 /64, which one host usually has whole) and
  ``tcp_max_connections`` in all. A new connection is never refused for want
  of room: over the per-source bound it replaces the idlest connection of its
  own source; at the cap it replaces the idlest connection of the source that
  holds the most (the idlest of all when each source holds one). So an
  attacker's connections crowd out only each other, and a router can always
  get in. "Idlest" is the longest without a complete message: a peer that
  trickles bytes but never finishes a message does not count as busy. The
  process's file-descriptor limit is raised to fit the cap (or the cap lowered
  to fit the limit, with a warning), and an accept that still finds no
  descriptor frees one the same way;
* memory: each connection holds one ``Framer`` (about ``max_message_bytes``)
  and nothing else, so a slowloris client costs only that;
* time: one ``handle_ready()`` reads at most RECV_BYTES from each ready
  connection and READ_BUDGET_BYTES in all, then returns, so one flooding
  client cannot keep the loop from the UDP socket. Unread data stays in the
  kernel and the selector stays readable (level-triggered) for the next turn;
* idle: a connection that has not completed a message for
  ``tcp_idle_seconds`` is closed (``tick``); bytes that never make a message
  do not keep it open.

Framing is per connection (see ``framing``): octet counting or LF/CRLF/NUL;
for undelimited RouterOS streams, ``tick`` ends a held message after
TAIL_QUIET_SECONDS of silence, or FIRST_QUIET_SECONDS on a connection that has
not shown yet how it ends its messages. On one that has (octet counting or a
delimiter), silence never cuts a message: it waits for its end, however late.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import resource
import selectors
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import zmq

from alertik.common.config import IngestConfig
from alertik.common.net import unmapped
from alertik.common.throttle import Throttled
from alertik.ingest.framing import Convention, Frame, Framer
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
# The same on a connection that has not shown yet whether it delimits its
# messages (its first one). A lost segment is sent again after the
# retransmission timeout: 1 s at first (RFC 6298), doubling on each loss; 5 s
# outlasts two losses in a row, and costs only the first undelimited entry of
# a connection 4 s of delay.
FIRST_QUIET_SECONDS = 5.0
# Silence that ends a held message, by what the connection has shown; never
# for connections that end every message themselves.
QUIET_SECONDS: dict[Convention, float] = {
    "unknown": FIRST_QUIET_SECONDS,
    "undelimited": TAIL_QUIET_SECONDS,
}
# How often tick() looks at every connection; timeouts are this coarse.
TICK_SECONDS = 0.25
# Pause before accepting again when the process is out of file descriptors;
# without it the level-triggered listener would spin the loop.
ACCEPT_PAUSE_SECONDS = 1.0
# Pending handshakes the kernel queues for us (it caps this at somaxconn).
BACKLOG = socket.SOMAXCONN
_FD_EXHAUSTED = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
# File descriptors ingest needs besides its TCP connections: the UDP and
# listening sockets, ZeroMQ's sockets and its I/O thread's, the selector,
# stdio, and slack.
FD_RESERVE = 64
# IPv6 sources are counted per /64: one host or site usually holds a whole
# /64, so per address an attacker would have 2**64 sources.
IPV6_SOURCE_PREFIX = 64


def source_of(host: str) -> str:
    """The source a connection is counted under: the IPv4 address, or the
    IPv6 address's /64 network."""
    if ":" not in host:
        return host
    try:
        net = ipaddress.IPv6Network(f"{host}/{IPV6_SOURCE_PREFIX}", strict=False)
    except ValueError:
        return host
    return str(net)


def fit_descriptors(connections: int) -> int:
    """Raise the soft RLIMIT_NOFILE to hold connections (up to the hard limit);
    return how many connections fit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = connections + FD_RESERVE
    if soft == resource.RLIM_INFINITY or soft >= need:
        return connections
    raised = need if hard == resource.RLIM_INFINITY else min(need, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
        soft = raised
    except (ValueError, OSError) as exc:
        log.debug("cannot raise RLIMIT_NOFILE to %d: %s", raised, exc)
    return max(1, min(connections, soft - FD_RESERVE))


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

    __slots__ = ("fd", "framer", "host", "last", "port", "progress", "sock", "source")

    def __init__(
        self, sock: socket.socket, host: str, port: int, limit: int, now: float
    ) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.host = host
        self.port = port
        self.source = source_of(host)
        self.framer = Framer(limit)
        self.last = now  # the last byte received
        self.progress = now  # the last complete message (or the connect)


class TcpListener:
    """Accepts syslog-over-TCP clients and emits each framed message.

    Subclasses change what a connection is through two hooks: ``_wrap`` (the
    accepted socket, e.g. wrapped in TLS) and ``_receive`` (bytes from it).
    """

    # The transport, as log lines name it.
    kind = "tcp"

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
        self.max_connections = fit_descriptors(cfg.tcp_max_connections)
        if self.max_connections < cfg.tcp_max_connections:
            log.warning(
                "tcp: the file descriptor limit (ulimit -n) holds only %d "
                "connections; ALERTIK_TCP_MAX_CONNECTIONS=%d is lowered to that",
                self.max_connections,
                cfg.tcp_max_connections,
            )
        self.max_per_source = min(cfg.tcp_max_per_source, self.max_connections)
        self.idle_seconds = cfg.tcp_idle_seconds
        self._conns: dict[int, _Connection] = {}
        # The connections of each source, oldest first.
        self._sources: dict[str, dict[int, _Connection]] = {}
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
        kind = self.kind
        self.over_cap = Throttled(
            log,
            f"{kind} at the cap of {self.max_connections} connections: closed the "
            "idlest of the sender holding the most, to let a new one in",
        )
        self.over_source = Throttled(
            log,
            f"{kind} sender over {self.max_per_source} connections "
            "(ALERTIK_TCP_MAX_PER_SOURCE): closed its idlest, to let a new one in",
        )
        self.refused = Throttled(log, f"{kind} connections refused: sender not allowed")
        self.accept_errors = Throttled(log, f"{kind} accept failed, pausing accepts")
        host, real_port = self.address
        shown = f"[{host}]" if ":" in host else host
        log.info("%s listening on %s:%d", kind, shown, real_port)

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
                if self._conns.get(conn.fd) is not conn:
                    continue  # closed to make room since select()
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
        for conn in list(self._conns.values()):
            if conn.progress <= idle_before:
                self.idle_closed += 1
                log.debug("%s %s:%d idle, closing", self.kind, conn.host, conn.port)
                self._drop(conn)
            elif conn.framer.buffered:
                quiet = QUIET_SECONDS.get(conn.framer.convention)
                if quiet is not None and conn.last <= now - quiet:
                    self._deliver(conn, conn.framer.flush(), now)

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
        self.over_source.flush()
        self.refused.flush()
        log.info(
            "%s closed: connections=%d messages=%d truncated=%d idle_closed=%d "
            "over_cap=%d over_source=%d refused=%d",
            self.kind,
            self.accepted,
            self.messages,
            self.truncated,
            self.idle_closed,
            self.over_cap.total,
            self.over_source.total,
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
                    if self._conns:
                        # Free a descriptor the way a full cap does, so the
                        # connection waiting in the backlog still gets in.
                        self.over_cap.hit("out of file descriptors")
                        self._drop(self._victim())
                        continue
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
            sock.setblocking(False)
            wrapped = self._wrap(sock, host)
            if wrapped is None:
                continue
            sock = wrapped
            conn = _Connection(sock, host, port, self.limit, self._clock())
            mine = self._sources.get(conn.source)
            if mine is not None and len(mine) >= self.max_per_source:
                self.over_source.hit(conn.source)
                self._drop(_idlest(mine.values()))
            elif len(self._conns) >= self.max_connections:
                victim = self._victim()
                self.over_cap.hit(victim.source)
                self._drop(victim)
            self._sel.register(sock, selectors.EVENT_READ, conn)
            self._conns[conn.fd] = conn
            self._sources.setdefault(conn.source, {})[conn.fd] = conn
            self.accepted += 1
            log.debug("%s %s:%d connected", self.kind, host, port)

    def _wrap(self, sock: socket.socket, host: str) -> socket.socket | None:
        """The socket to serve a new connection through (None: closed)."""
        return sock

    def _receive(self, conn: _Connection) -> bytes | None:
        """Up to about RECV_BYTES from conn; b"" at its end, None for nothing
        yet. Raises OSError when the connection failed."""
        try:
            return conn.sock.recv(RECV_BYTES)
        except BlockingIOError:
            return None

    def _victim(self) -> _Connection:
        """The connection to close to make room: the idlest of the source
        holding the most, or the idlest of all when each holds one."""
        heaviest = max(self._sources.values(), key=len)
        if len(heaviest) > 1:
            return _idlest(heaviest.values())
        return _idlest(self._conns.values())

    def _read(self, conn: _Connection) -> int:
        try:
            data = self._receive(conn)
        except OSError as exc:
            log.debug(
                "%s %s:%d receive error: %s", self.kind, conn.host, conn.port, exc
            )
            self._drop(conn)
            return 0
        if data is None:
            return 0
        if not data:
            log.debug("%s %s:%d closed by peer", self.kind, conn.host, conn.port)
            self._drop(conn)
            return 0
        conn.last = now = self._clock()
        self._deliver(conn, conn.framer.feed(data), now)
        return len(data)

    def _deliver(self, conn: _Connection, frames: list[Frame], now: float) -> None:
        if frames:
            conn.progress = now
        for payload, truncated in frames:
            self.messages += 1
            if truncated:
                self.truncated += 1
            self._emit(payload, conn.host, conn.port, truncated)

    def _drop(self, conn: _Connection, flush: bool = True) -> None:
        if self._conns.get(conn.fd) is conn:
            del self._conns[conn.fd]
            self._sel.unregister(conn.sock)
            mine = self._sources.get(conn.source)
            if mine is not None:
                mine.pop(conn.fd, None)
                if not mine:
                    del self._sources[conn.source]
        conn.sock.close()
        if flush:
            self._deliver(conn, conn.framer.close(), conn.last)


def _idlest(conns: Iterable[_Connection]) -> _Connection:
    """The connection that has gone longest without a complete message."""
    return min(conns, key=lambda c: c.progress)
