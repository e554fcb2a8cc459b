"""The ingest loop: receive, stamp, encode, push. Nothing else on this path.

Parsing, matching and logging all happen downstream, so a burst from the
router only has to be copied out of the kernel's buffer into ZeroMQ's queue.
"""

from __future__ import annotations

import logging
import os
import socket
import time

import zmq

from alertik.common import sockets
from alertik.common.config import Config, IngestConfig
from alertik.common.lifecycle import StopFlag
from alertik.common.schema import ENCODER, SyslogEvent
from alertik.common.throttle import Throttled
from alertik.ingest.allow import AllowList
from alertik.ingest.listen import open_socket, peer_host
from alertik.ingest.tcp import TcpListener

log = logging.getLogger(__name__)

# Kernel receive buffer asked for: 8 MiB holds ~40,000 RouterOS lines, enough
# to ride out a scheduling hiccup at tens of thousands of datagrams/s.
RCVBUF_BYTES = 8 * 1024 * 1024
# Largest UDP payload over IPv4/IPv6 without jumbograms.
UDP_MAX = 65535
# Datagrams taken per wake-up before polling again, so TCP clients and the
# stop flag get a turn during a flood.
BATCH = 512


def truncate_utf8(data: bytes, limit: int) -> bytes:
    """Cut data to at most limit bytes without splitting a UTF-8 sequence."""
    if len(data) <= limit:
        return data
    # data[limit] is the first byte cut off; if it continues a character,
    # step back to that character's lead byte (UTF-8 has at most 3
    # continuation bytes) and cut before it.
    cut = limit
    while cut > limit - 4 and cut > 0 and data[cut] & 0xC0 == 0x80:
        cut -= 1
    if data[cut] & 0xC0 == 0x80:
        return data[:limit]  # not UTF-8 at all: any cut will do
    return data[:cut]


def open_udp(cfg: IngestConfig) -> socket.socket:
    """Bind the UDP listener with a large kernel buffer, non-blocking."""
    sock = open_socket(cfg.bind, cfg.udp_port, socket.SOCK_DGRAM)
    # SO_RCVBUFFORCE passes the rmem_max cap when we are root (a container).
    for opt in (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF):
        if opt is None:
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, opt, RCVBUF_BYTES)
            break
        except OSError:
            continue
    sock.setblocking(False)
    return sock


class Ingest:
    """Holds the sockets and counters of one ingest process."""

    def __init__(self, cfg: Config, ctx: zmq.Context[zmq.Socket[bytes]]) -> None:
        self.cfg = cfg
        self.node = cfg.ingest.node_name
        self.pid = os.getpid()
        self.max_bytes = cfg.ingest.max_message_bytes
        self.allow = AllowList(cfg.ingest.allow_from)
        self.udp = open_udp(cfg.ingest)
        self.to_matcher = sockets.connect_push(ctx, cfg.endpoints.matcher)
        self.to_forwarder = (
            sockets.connect_push(ctx, cfg.endpoints.forwarder)
            if cfg.forwarder is not None
            else None
        )
        self.tap = sockets.bind_tap(ctx, cfg.endpoints.ingest_tap)
        self.tcp: TcpListener | None = None
        if cfg.ingest.tcp_port is not None:
            self.tcp = TcpListener(
                cfg.ingest.bind,
                cfg.ingest.tcp_port,
                cfg.ingest,
                self.emit_tcp,
                self.allow.allows,
            )
        self.seq = 0
        self.dropped = Throttled(log, "events dropped: matcher queue full")
        self.fwd_dropped = Throttled(log, "events not forwarded: forwarder queue full")
        self.truncated = Throttled(log, "oversize messages truncated")
        self.refused = Throttled(log, "datagrams refused by ALERTIK_ALLOW_FROM")

    def emit(
        self,
        raw: bytes,
        host: str,
        port: int,
        transport: str = "udp",
        truncated: bool = False,
    ) -> None:
        """Stamp one message and push it on, never blocking."""
        if len(raw) > self.max_bytes:
            truncated = True
            raw = truncate_utf8(raw, self.max_bytes)
        if truncated:
            self.truncated.hit(f"from {host} over {transport}")
        self.seq += 1
        payload = ENCODER.encode(
            SyslogEvent(
                raw=raw,
                received=time.time(),
                sender=host,
                sender_port=port,
                node=self.node,
                seq=self.seq,
                pid=self.pid,
                transport=transport,
                truncated=truncated,
            )
        )
        try:
            self.to_matcher.send(payload, zmq.NOBLOCK)
        except zmq.Again:
            self.dropped.hit()
        if self.to_forwarder is not None:
            try:
                self.to_forwarder.send(payload, zmq.NOBLOCK)
            except zmq.Again:
                self.fwd_dropped.hit()
        sockets.publish(self.tap, payload)

    def emit_tcp(self, raw: bytes, host: str, port: int, truncated: bool) -> None:
        """A message framed by the TCP listener (already allowed and cut)."""
        self.emit(raw, host, port, "tcp", truncated)

    def read_udp(self) -> int:
        """Take up to BATCH datagrams from the kernel; how many were read."""
        recv = self.udp.recvfrom
        check = None if self.allow.open else self.allow.allows
        for n in range(BATCH):
            try:
                data, addr = recv(UDP_MAX)
            except BlockingIOError:
                return n
            except OSError as exc:
                # e.g. ECONNREFUSED echoes; never fatal for a listener.
                log.warning("udp receive error: %s", exc)
                return n
            host = peer_host(addr[0])
            if check is not None and not check(host):
                self.refused.hit(host)
                continue
            self.emit(data, host, addr[1])
        return BATCH

    def flush_counters(self) -> None:
        for counter in (self.dropped, self.fwd_dropped, self.truncated, self.refused):
            counter.flush()

    def close(self) -> None:
        self.udp.close()
        if self.tcp is not None:
            self.tcp.close()
        self.tap.close()
        self.to_matcher.close(linger=sockets.LINGER_MS)
        if self.to_forwarder is not None:
            self.to_forwarder.close(linger=sockets.LINGER_MS)


def _shown(address: tuple[str, int]) -> str:
    host, port = address[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _is_loopback(bind: str) -> bool:
    return bind == "::1" or bind.startswith("127.")


def run(cfg: Config, stop: StopFlag) -> None:
    """Receive until stopped; then close the listeners and flush what is queued."""
    with zmq.Context() as ctx:
        ing = Ingest(cfg, ctx)
        try:
            log.info(
                "ingest listening on udp %s (node %s, to matcher %s%s)",
                _shown(ing.udp.getsockname()),
                ing.node,
                cfg.endpoints.matcher,
                f", to forwarder {cfg.endpoints.forwarder}" if ing.to_forwarder else "",
            )
            if ing.allow.open and not _is_loopback(cfg.ingest.bind):
                log.warning(
                    "anyone who can reach this host can send alerts: set "
                    "ALERTIK_ALLOW_FROM to your routers' addresses"
                )
            poller = zmq.Poller()
            udp_fd = ing.udp.fileno()
            poller.register(udp_fd, zmq.POLLIN)
            if ing.tcp is not None:
                ing.tcp.register(poller)
            while not stop.is_set():
                for fd, _ in poller.poll(sockets.POLL_MS):
                    if fd == udp_fd:
                        ing.read_udp()
                    elif ing.tcp is not None:
                        ing.tcp.handle_ready()
                if ing.tcp is not None:
                    ing.tcp.tick()
            log.info("stopping (%s)", stop.signal_name or "requested")
            # What is already in the kernel buffer was sent to us: take it.
            while ing.read_udp() == BATCH and not stop.force:
                pass
            ing.flush_counters()
            log.info(
                "stopped: received=%d dropped=%d truncated=%d refused=%d",
                ing.seq,
                ing.dropped.total,
                ing.truncated.total,
                ing.refused.total,
            )
        finally:
            ing.close()
