"""The ingest loop: receive, stamp, encode, push. Nothing else on this path.

Parsing, matching and logging all happen downstream, so a burst from the
router only has to be copied out of the kernel's buffer into ZeroMQ's queue.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import time
from typing import TYPE_CHECKING

import zmq

from alertik.common import sockets
from alertik.common.config import Config
from alertik.common.lifecycle import Ready, Stage, StopFlag, Wiring, serve
from alertik.common.metrics import Bounded, Samples
from alertik.common.net import host_port, unmapped
from alertik.common.schema import ENCODER, SyslogEvent
from alertik.common.text import truncate_utf8
from alertik.common.throttle import Throttled
from alertik.ingest.allow import AllowList
from alertik.ingest.listen import listen_error, udp_socket
from alertik.ingest.tcp import TcpListener, fit_descriptors

if TYPE_CHECKING:
    from alertik.ingest.tls import TlsListener

log = logging.getLogger(__name__)

# Largest UDP payload over IPv4/IPv6 without jumbograms.
UDP_MAX = 65535
# Datagrams taken per wake-up before polling again, so TCP clients and the
# stop flag get a turn during a flood.
BATCH = 512
# A wake-up that finds at least this many datagrams means a flood: ingest then
# pauses COALESCE_SECONDS before polling again, so that the next wake-up takes
# a batch instead of one datagram. Each wake-up costs ingest a poll and costs
# ZeroMQ's I/O thread an eventfd signal; the kernel buffer holds the datagrams
# meanwhile (200 of them at 200,000/s). A trickle is never delayed.
COALESCE_FROM = 4
COALESCE_SECONDS = 0.001


class Ingest(Stage):
    """Receives syslog over UDP (and TCP, and TLS) and pushes each message on."""

    name = "ingest"

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.node = cfg.ingest.node_name
        self.pid = os.getpid()
        self.max_bytes = cfg.ingest.max_message_bytes
        self.allow = AllowList(cfg.ingest.allow_from)
        self.to_forwarder: zmq.Socket[bytes] | None = None
        self.tcp: TcpListener | None = None
        self.tls: TlsListener | None = None
        self.seq = 0
        self.dropped = Throttled(log, "events dropped: matcher queue full")
        self.fwd_dropped = Throttled(log, "events not forwarded: forwarder queue full")
        self.truncated = Throttled(log, "oversize messages truncated")
        self.refused = Throttled(log, "datagrams refused by ALERTIK_ALLOW_FROM")
        # Messages per transport, per router (bounded: see common/metrics.py).
        self.routers = Bounded()
        self.by_router: dict[str, dict[str, int]] = {"udp": {}, "tcp": {}, "tls": {}}

    def open(self, wiring: Wiring) -> None:
        cfg = self.cfg
        ing = cfg.ingest
        self.tap = wiring.tap("ingest_tap")
        self.to_matcher = wiring.push("matcher")
        if cfg.forwarder is not None:
            self.to_forwarder = wiring.push("forwarder")
        # Opened last, so closed first: no new input while the PUSHes flush.
        self.udp = wiring.hold(udp_socket(ing))
        self.udp_fd = self.udp.fileno()
        wiring.watch(self.udp_fd)
        streams = (ing.tcp_port is not None) + (ing.tls_port is not None)
        if streams > 1:
            # Each listener fits the descriptor limit to its own cap; both
            # together need room for both caps.
            fit_descriptors(streams * ing.tcp_max_connections)
        if ing.tcp_port is not None:
            try:
                self.tcp = wiring.hold(
                    TcpListener(
                        ing.bind, ing.tcp_port, ing, self.emit_tcp, self.allow.allows
                    )
                )
            except OSError as exc:
                raise listen_error("tcp", ing.bind, ing.tcp_port, exc) from None
            self.tcp.register(wiring.poller)
        if ing.tls_port is not None:
            # Only with a TLS port: ssl costs ingest 5 MiB it otherwise never uses.
            from alertik.ingest.tls import open_tls

            self.tls = wiring.hold(
                open_tls(ing, ing.tls_port, self.emit_tls, self.allow.allows)
            )
            self.tls.register(wiring.poller)
        if self.allow.open and not ipaddress.ip_address(ing.bind).is_loopback:
            log.warning(
                "anyone who can reach this host can send alerts: set "
                "ALERTIK_ALLOW_FROM to your routers' addresses"
            )

    def describe(self) -> str:
        cfg = self.cfg
        forwarder = ""
        if self.to_forwarder is not None:
            forwarder = f", to forwarder {cfg.endpoints.forwarder}"
        return (
            f"udp {host_port(*self.udp.getsockname()[:2])} (node {self.node}, "
            f"to matcher {cfg.endpoints.matcher}{forwarder}, "
            f"tap {sockets.bound_endpoint(self.tap)})"
        )

    def turn(self, ready: Ready) -> int:
        done = 0
        if self.udp_fd in ready:
            done = self.read_udp()
            if COALESCE_FROM <= done < BATCH:
                time.sleep(COALESCE_SECONDS)
        for listener in (self.tcp, self.tls):
            if listener is not None:
                if listener.fileno() in ready:
                    done += listener.handle_ready()
                listener.tick()
        return done

    def reload(self) -> None:
        """SIGHUP: read the TLS certificate and key again (renewed files)."""
        if self.tls is None:
            log.info("ingest has nothing to reload (no TLS listener)")
            return
        self.tls.renew(self.cfg.ingest)

    # No quiesce(): what is already in the kernel buffer was sent to us, and
    # the drain takes it until the buffer is empty or the drain time is up.

    def finish(self, deadline: float) -> None:
        for counter in (self.dropped, self.fwd_dropped, self.truncated, self.refused):
            counter.flush()

    def counters(self) -> dict[str, int]:
        return {
            "received": self.seq,
            "dropped": self.dropped.total,
            "truncated": self.truncated.total,
            "refused": self.refused.total,
        }

    def metrics(self) -> Samples:
        received = [
            [router, transport, n]
            for transport, counts in self.by_router.items()
            for router, n in counts.items()
        ]
        return {
            "alertik_messages_received_total": received,
            "alertik_messages_refused_total": [[self.refused.total]],
            "alertik_messages_truncated_total": [[self.truncated.total]],
            "alertik_messages_dropped_total": [
                ["matcher", self.dropped.total],
                ["forwarder", self.fwd_dropped.total],
            ],
        }

    def count(self, counts: dict[str, int], host: str) -> None:
        """One more message from host (the first from it, or past the bound)."""
        label = self.routers.label(host)
        counts[label] = counts.get(label, 0) + 1

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
        counts = self.by_router[transport]
        n = counts.get(host)
        if n is None:
            self.count(counts, host)
        else:
            counts[host] = n + 1
        self.push(
            ENCODER.encode(
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
        )

    def push(self, payload: bytes) -> None:
        """Hand one encoded event to the matcher, the forwarder and the tap."""
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

    def emit_tls(self, raw: bytes, host: str, port: int, truncated: bool) -> None:
        """A message framed by the TLS listener (already allowed and cut)."""
        self.emit(raw, host, port, "tls", truncated)

    def read_udp(self) -> int:
        """Take up to BATCH datagrams from the kernel; how many were read.

        emit() inlined: this loop is most of ingest's time under a flood.
        """
        recv = self.udp.recvfrom
        check = None if self.allow.open else self.allow.allows
        encode = ENCODER.encode
        push = self.push
        clock = time.time
        node = self.node
        pid = self.pid
        limit = self.max_bytes
        counts = self.by_router["udp"]
        for n in range(BATCH):
            try:
                data, addr = recv(UDP_MAX)
            except BlockingIOError:
                return n
            except OSError as exc:
                # e.g. ECONNREFUSED echoes; never fatal for a listener.
                log.warning("udp receive error: %s", exc)
                return n
            host = unmapped(addr[0])
            if check is not None and not check(host):
                self.refused.hit(host)
                continue
            if len(data) > limit:
                self.emit(data, host, addr[1])
                continue
            self.seq += 1
            seen = counts.get(host)
            if seen is None:
                self.count(counts, host)
            else:
                counts[host] = seen + 1
            push(
                encode(
                    SyslogEvent(
                        raw=data,
                        received=clock(),
                        sender=host,
                        sender_port=addr[1],
                        node=node,
                        seq=self.seq,
                        pid=pid,
                    )
                )
            )
        return BATCH


def run(cfg: Config, stop: StopFlag) -> None:
    """Receive until stopped; then drain what is queued (tests call this)."""
    serve(Ingest(cfg), cfg, stop)
