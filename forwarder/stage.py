"""The forwarder loop: events in from ingest, raw bytes out to FORWARD_HOST."""

from __future__ import annotations

import logging
import socket
import time
from typing import Protocol

import msgspec
import zmq

from alertik.common import sockets
from alertik.common.config import Config, ConfigError, ForwarderConfig
from alertik.common.lifecycle import Ready, Stage, StopFlag, Wiring, serve
from alertik.common.metrics import Samples
from alertik.common.net import host_port
from alertik.common.schema import EVENT_DECODER
from alertik.common.throttle import Throttled
from alertik.forwarder.resolve import (
    Target,
    getaddrinfo_lookup,
    port_number,
)
from alertik.forwarder.tcp import TcpSender
from alertik.forwarder.udp import UdpSender

log = logging.getLogger(__name__)

# Messages taken from the input per turn of the loop before the sender gets to
# write and the stop flag is looked at again.
BATCH = 1000
# At start-up, how long input waits for the first lookup of FORWARD_HOST, so
# the first datagrams are not dropped while a literal address is "resolved".
FIRST_LOOKUP_WAIT_SECONDS = 1.0
# How much of a malformed message a warning shows.
REPR_BYTES = 64


class Sender(Protocol):
    """What the loop needs from the UDP and the TCP sender."""

    forwarded: int
    dropped: int
    refused: int

    @property
    def pending(self) -> int: ...

    def send(self, payload: bytes) -> bool: ...

    def service(self, now: float, revents: int = 0) -> None: ...

    def watch(self) -> tuple[int, int] | None: ...

    def due_in(self, now: float) -> float | None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


def make_sender(fwd: ForwarderConfig) -> UdpSender | TcpSender:
    """The sender that FORWARD_PROTOCOL asks for, aimed at FORWARD_HOST."""
    try:
        port = port_number(fwd.port, fwd.protocol)
    except ValueError as exc:
        raise ConfigError("FORWARD_PORT", str(exc)) from None
    name = host_port(fwd.host, fwd.port)
    if fwd.protocol == "tcp":
        lookup = getaddrinfo_lookup(fwd.host, port, socket.SOCK_STREAM)
        return TcpSender(Target(name, lookup, fwd.resolve_seconds), fwd.buffer_messages)
    lookup = getaddrinfo_lookup(fwd.host, port, socket.SOCK_DGRAM)
    return UdpSender(Target(name, lookup, fwd.resolve_seconds))


class Forwarder(Stage):
    """Moves events from the input socket to the sender and the tap."""

    name = "forwarder"

    def __init__(self, cfg: Config) -> None:
        if cfg.forwarder is None:
            raise ConfigError(
                "FORWARD_HOST",
                "is not set; the forwarder needs FORWARD_HOST and FORWARD_PORT",
            )
        self.fwd = cfg.forwarder
        self.skipped = Throttled(log, "malformed messages skipped")
        self._watched: tuple[int, int] | None = None

    def open(self, wiring: Wiring) -> None:
        # Registered first, so closed last: what the sender holds is written
        # after the input is closed.
        self.sender: Sender = make_sender(self.fwd)
        wiring.stack.callback(self._close_sender)
        self.wiring = wiring
        self.inbox = wiring.pull("forwarder")
        self.tap = wiring.tap("forwarder_tap")
        self.sender.target.wait_first(FIRST_LOOKUP_WAIT_SECONDS, self.stop.is_set)

    def _close_sender(self) -> None:
        self.sender.flush()
        self.sender.close()

    def describe(self) -> str:
        return (
            f"{sockets.bound_endpoint(self.inbox)} "
            f"(tap {sockets.bound_endpoint(self.tap)}), forwarding to "
            f"{host_port(self.fwd.host, self.fwd.port)} over "
            f"{self.fwd.protocol.upper()}"
        )

    def wait_ms(self) -> float:
        due = self.sender.due_in(time.monotonic())
        return sockets.POLL_MS if due is None else min(sockets.POLL_MS, due * 1000)

    def turn(self, ready: Ready) -> int:
        taken = self.take() if self.inbox in ready else 0
        revents = ready.get(self._watched[0], 0) if self._watched else 0
        self.sender.service(time.monotonic(), revents)
        self._watch(self.sender.watch())
        return taken

    def pending(self) -> int:
        return self.sender.pending

    def finish(self, deadline: float) -> None:
        cut = self.sender.pending
        if cut:
            self.sender.dropped += cut
            log.error("drain cut off: %d frames not written to the target", cut)

    def counters(self) -> dict[str, int]:
        return {
            "forwarded": self.sender.forwarded,
            "dropped": self.sender.dropped,
            "skipped": self.skipped.total,
            "refused": self.sender.refused,
        }

    def metrics(self) -> Samples:
        return {
            "alertik_messages_forwarded_total": [[self.sender.forwarded]],
            "alertik_messages_forward_dropped_total": [[self.sender.dropped]],
            "alertik_malformed_messages_total": [["forwarder", self.skipped.total]],
        }

    def take(self) -> int:
        """Hand up to BATCH waiting events to the sender; how many were read."""
        count = 0
        while count < BATCH:
            try:
                message = self.inbox.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            count += 1
            try:
                event = EVENT_DECODER.decode(message)
            except msgspec.DecodeError as exc:
                self.skipped.hit(f"{exc}: {message[:REPR_BYTES]!r}")
                continue
            if self.sender.send(event.raw):
                sockets.publish(self.tap, message)
        return count

    def _watch(self, wanted: tuple[int, int] | None) -> None:
        if wanted == self._watched:
            return
        if self._watched is not None:
            self.wiring.unwatch(self._watched[0])
        if wanted is not None:
            self.wiring.watch(wanted[0], wanted[1])
        self._watched = wanted


def run(cfg: Config, stop: StopFlag) -> None:
    """Forward every event's raw bytes until stop is set, then drain."""
    serve(Forwarder(cfg), cfg, stop)
