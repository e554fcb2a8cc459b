"""The forwarder loop: events in from ingest, raw bytes out to FORWARD_HOST."""

from __future__ import annotations

import logging
import socket
import time
from functools import partial
from typing import Protocol

import msgspec
import zmq

from alertik.common.config import Config, ConfigError, ForwarderConfig
from alertik.common.lifecycle import StopFlag
from alertik.common.schema import EVENT_DECODER
from alertik.common.sockets import (
    POLL_MS,
    bind_pull,
    bind_tap,
    bound_endpoint,
    publish,
    usable,
)
from alertik.common.throttle import Throttled
from alertik.forwarder.resolve import (
    Target,
    display_name,
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
# While draining: input silent this long (ingest has stopped) means done.
DRAIN_IDLE_MS = POLL_MS
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
    name = display_name(fwd.host, fwd.port)
    if fwd.protocol == "tcp":
        lookup = getaddrinfo_lookup(fwd.host, port, socket.SOCK_STREAM)
        return TcpSender(Target(name, lookup, fwd.resolve_seconds), fwd.buffer_messages)
    lookup = getaddrinfo_lookup(fwd.host, port, socket.SOCK_DGRAM)
    return UdpSender(Target(name, lookup, fwd.resolve_seconds))


class Relay:
    """Moves events from the input socket to the sender and the tap."""

    def __init__(
        self, inbox: zmq.Socket[bytes], tap: zmq.Socket[bytes], sender: Sender
    ) -> None:
        self.inbox = inbox
        self.tap = tap
        self.sender = sender
        self.skipped = Throttled(log, "malformed messages skipped")
        self._poller = zmq.Poller()
        self._poller.register(inbox, zmq.POLLIN)
        self._watched: tuple[int, int] | None = None

    def turn(self, timeout_ms: float) -> int:
        """Wait up to timeout_ms, then take input and let the sender work."""
        now = time.monotonic()
        due = self.sender.due_in(now)
        if due is not None:
            timeout_ms = min(timeout_ms, due * 1000)
        ready = dict(self._poller.poll(max(0, round(timeout_ms))))
        taken = self.take() if self.inbox in ready else 0
        revents = ready.get(self._watched[0], 0) if self._watched else 0
        self.sender.service(time.monotonic(), revents)
        self._watch(self.sender.watch())
        return taken

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
                publish(self.tap, message)
        return count

    def _watch(self, wanted: tuple[int, int] | None) -> None:
        if wanted == self._watched:
            return
        if self._watched is not None:
            self._poller.unregister(self._watched[0])
        if wanted is not None:
            self._poller.register(wanted[0], wanted[1])
        self._watched = wanted


def run(cfg: Config, stop: StopFlag) -> None:
    """Forward every event's raw bytes until stop is set, then drain."""
    fwd = cfg.forwarder
    if fwd is None:
        raise ConfigError(
            "FORWARD_HOST",
            "is not set; the forwarder needs FORWARD_HOST and FORWARD_PORT",
        )
    sender = make_sender(fwd)
    try:
        with (
            zmq.Context() as ctx,
            usable(cfg, "forwarder", partial(bind_pull, ctx)) as inbox,
            usable(cfg, "forwarder_tap", partial(bind_tap, ctx)) as tap,
        ):
            log.info(
                "forwarder listening on %s (tap %s), forwarding to %s over %s",
                bound_endpoint(inbox),
                bound_endpoint(tap),
                display_name(fwd.host, fwd.port),
                fwd.protocol.upper(),
            )
            sender.target.wait_first(FIRST_LOOKUP_WAIT_SECONDS, stop.is_set)
            relay = Relay(inbox, tap, sender)
            while not stop.is_set():
                relay.turn(POLL_MS)
            log.info("stopping (%s)", stop.signal_name or "stop requested")
            _drain(relay, cfg.drain_seconds, stop)
    finally:
        sender.flush()
        sender.close()
    log.info(
        "stopped: forwarded=%d dropped=%d skipped=%d refused=%d",
        sender.forwarded,
        sender.dropped,
        relay.skipped.total,
        sender.refused,
    )


def _drain(relay: Relay, seconds: float, stop: StopFlag) -> None:
    """Take the input until it is idle and the sender has written everything."""
    deadline = time.monotonic() + seconds
    while not stop.force:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        taken = relay.turn(min(DRAIN_IDLE_MS, remaining * 1000))
        if taken == 0 and relay.sender.pending == 0:
            return
    cut = relay.sender.pending
    if cut:
        relay.sender.dropped += cut
        log.error("drain cut off: %d frames not written to the target", cut)
