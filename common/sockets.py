"""ZeroMQ wiring: the only module that creates sockets.

Each stage binds its PULL input; the stages that feed it connect a PUSH, one
PUSH per downstream stage (a PUSH connected to two stages would split the
traffic between them instead of copying it). So stages start in any order, and
several ingests on several hosts can feed one matcher.
"""

from __future__ import annotations

import logging
import os

import zmq

log = logging.getLogger(__name__)

# Messages queued per socket before a PUSH refuses more. 100,000 events of
# about 300 bytes is ~30 MB at worst: it absorbs a RouterOS burst (it flushes
# up to 1000 buffered entries on reconnect) and a matcher restart.
SNDHWM = 100_000
RCVHWM = 100_000
# How long close() may keep flushing queued messages: the drain budget. Never
# -1, with which term() can hang for ever on a peer that went away.
LINGER_MS = 2000
# How long a loop blocks before looking at its stop flag again.
POLL_MS = 200
# A tap keeps only a short backlog for a slow reader, then drops: a tap must
# never slow the stage it watches.
TAP_HWM = 1000


def _prepare_ipc(endpoint: str) -> None:
    if endpoint.startswith("ipc://"):
        path = endpoint[len("ipc://") :]
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, mode=0o700, exist_ok=True)


def bind_pull(ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str) -> zmq.Socket[bytes]:
    """A PULL socket bound to endpoint (``tcp://127.0.0.1:*`` picks a port)."""
    sock = ctx.socket(zmq.PULL)
    sock.setsockopt(zmq.RCVHWM, RCVHWM)
    sock.setsockopt(zmq.LINGER, 0)
    _prepare_ipc(endpoint)
    sock.bind(endpoint)
    return sock


def connect_push(
    ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str
) -> zmq.Socket[bytes]:
    """A PUSH socket connected to a downstream stage's input."""
    sock = ctx.socket(zmq.PUSH)
    sock.setsockopt(zmq.SNDHWM, SNDHWM)
    sock.setsockopt(zmq.LINGER, LINGER_MS)
    # Messages wait for a peer that is not up yet instead of being dropped.
    sock.setsockopt(zmq.IMMEDIATE, 0)
    sock.connect(endpoint)
    return sock


def bind_tap(ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str) -> zmq.Socket[bytes]:
    """A PUB socket for live taps; with no subscriber, sends cost next to nothing."""
    sock = ctx.socket(zmq.PUB)
    sock.setsockopt(zmq.SNDHWM, TAP_HWM)
    sock.setsockopt(zmq.LINGER, 0)
    _prepare_ipc(endpoint)
    sock.bind(endpoint)
    return sock


def bound_endpoint(sock: zmq.Socket[bytes]) -> str:
    """The endpoint a socket really bound (the port, when ``*`` was asked)."""
    value = sock.getsockopt(zmq.LAST_ENDPOINT)
    assert isinstance(value, bytes)
    return value.decode()


def publish(tap: zmq.Socket[bytes], payload: bytes) -> None:
    """Send on a tap without ever blocking; with no reader it is dropped."""
    try:
        tap.send(payload, zmq.NOBLOCK)
    except zmq.Again:
        pass
