"""ZeroMQ wiring: the only module that creates sockets.

Each stage binds its PULL input; the stages that feed it connect a PUSH, one
PUSH per downstream stage (a PUSH connected to two stages would split the
traffic between them instead of copying it). So stages start in any order, and
several ingests on several hosts can feed one matcher.

Security for links between hosts (``tcp://`` only; ``ipc://`` stays local):
``configure_security()`` is called once per process, before any socket is made.
With a CURVE secret key configured,

* a socket that binds ``tcp://`` is a CURVE server with this process's secret
  key. With ``ALERTIK_CURVE_ALLOWED_CLIENTS`` set, a ZAP handler (one thread per
  context, stopped when the last such socket closes) admits only the listed
  client public keys and this process's own public key, and logs every refused
  peer. Without an allow-list, any client that knows this server's public key
  is admitted: the server key then works as a shared secret, and the traffic is
  encrypted all the same.
* a socket that connects ``tcp://`` is a CURVE client with this process's key
  pair and ``ALERTIK_CURVE_SERVER_KEY`` (by default its own public key, which
  fits links between stages that share one key pair).

Without keys, binding ``tcp://`` on anything but a loopback address logs one
warning naming the endpoint.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import struct
import threading
from typing import TYPE_CHECKING, Protocol

import zmq

if TYPE_CHECKING:
    from alertik.common.zap import Zap

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
# The ZAP domain of alertik's CURVE servers; the handler answers only for it.
ZAP_DOMAIN = "alertik"
# Events a tap reader's monitor reports: enough to say connected, lost, refused.
MONITOR_EVENTS = (
    zmq.EVENT_HANDSHAKE_SUCCEEDED
    | zmq.EVENT_DISCONNECTED
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)
# What a failed handshake most likely means, for the log of the side that
# connects (the server only sees a client it cannot decrypt or admit).
HANDSHAKE_FAILED: dict[int, str] = {
    zmq.EVENT_HANDSHAKE_FAILED_AUTH: "refused by the server: this public key is "
    "not in its ALERTIK_CURVE_ALLOWED_CLIENTS",
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: "the peer speaks another security "
    "mechanism or key: check ALERTIK_CURVE_SECRET_KEY and ALERTIK_CURVE_SERVER_KEY "
    "on both sides",
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: "the peer closed the handshake: check "
    "ALERTIK_CURVE_SERVER_KEY (the server's public key) and the CURVE settings on "
    "both sides",
}

Context = zmq.Context[zmq.Socket[bytes]]


class OpenToAnyone(Exception):
    """A CURVE server without an allow-list: encrypted, but anyone gets in."""


class Security:
    """This process's CURVE material for tcp:// sockets; None keys means off.

    Keys are Z85 text, already checked by the configuration. Servers admit only
    ``allowed`` (plus our own public key, so stages sharing a key pair talk to
    each other); ``allowed`` None with ``allow_any`` admits any client that
    knows our public key, and without ``allow_any`` refuses to bind.
    """

    def __init__(
        self,
        secret: str = "",
        server: str = "",
        allowed: tuple[str, ...] = (),
        allow_any: bool = False,
    ) -> None:
        self.enabled = bool(secret)
        self.secret = secret.encode("ascii")
        self.public = zmq.curve_public(self.secret) if secret else b""
        self.server = server.encode("ascii") if server else self.public
        self.allowed: frozenset[bytes] | None = (
            frozenset([k.encode("ascii") for k in allowed] + [self.public])
            if allowed
            else None
        )
        self.allow_any = allow_any

    @classmethod
    def of(cls, curve: _Curve) -> Security:
        """From the configuration's Curve section."""
        return cls(
            curve.secret_key, curve.server_key, curve.allowed_clients, curve.allow_any
        )

    def describe(self) -> str:
        if not self.enabled:
            return "CURVE off"
        who = (
            f"{len(self.allowed) - 1} allowed clients"
            if self.allowed is not None
            else "any client that knows this public key"
        )
        return f"CURVE on for tcp:// links: public key {self.public.decode()}, {who}"


class _Curve(Protocol):
    """The configuration's CURVE section (this module reads no variables)."""

    @property
    def secret_key(self) -> str: ...
    @property
    def server_key(self) -> str: ...
    @property
    def allowed_clients(self) -> tuple[str, ...]: ...
    @property
    def allow_any(self) -> bool: ...


NO_SECURITY = Security()


def endpoint_host(endpoint: str) -> str | None:
    """The host part of a ``tcp://HOST:PORT`` endpoint; None for other transports."""
    if not endpoint.startswith("tcp://"):
        return None
    rest = endpoint[len("tcp://") :]
    # A connect endpoint may name a source first: tcp://SOURCE;HOST:PORT.
    rest = rest.rsplit(";", 1)[-1]
    host = rest.rsplit(":", 1)[0] if ":" in rest else rest
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def is_loopback(endpoint: str) -> bool:
    """Whether a tcp:// endpoint can only be reached from this host."""
    host = endpoint_host(endpoint)
    if host is None:
        return True  # ipc:// and inproc:// never leave the host
    if host in ("localhost", "lo"):
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False  # *, an interface name or a host name


def _ipv6(endpoint: str) -> bool:
    """Whether a tcp:// socket should speak IPv6: all but IPv4 literals.

    ``tcp://*`` then binds both families, as ingest's UDP socket does, and an
    IPv4 address keeps plain IPv4 (no ``::ffff:`` mapped names in logs).
    """
    host = endpoint_host(endpoint)
    if host is None:
        return False
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).version == 6
    except ValueError:
        return True  # *, an interface or a host name: either family


# Running ZAP handlers by id(context): ZAP is per context, and the stages make
# their own contexts; the lock covers tests that run stages in threads.
_zaps: dict[int, Zap] = {}
_zaps_lock = threading.Lock()


def _acquire_zap(ctx: Context, allowed: frozenset[bytes]) -> Zap:
    # Imported here: pyzmq's ZAP thread pulls in asyncio and ssl (~8 MB per
    # process), which only a stage with CURVE keys needs.
    from alertik.common.zap import Zap

    with _zaps_lock:
        zap = _zaps.get(id(ctx))
        if zap is None:
            zap = _zaps[id(ctx)] = Zap(ctx, allowed, ZAP_DOMAIN)
        zap.users += 1
        return zap


def _release_zap(ctx: Context, zap: Zap) -> None:
    with _zaps_lock:
        zap.users -= 1
        if zap.users > 0:
            return
        if _zaps.get(id(ctx)) is zap:
            del _zaps[id(ctx)]
    try:
        zap.auth.stop()
    except zmq.ZMQError:
        # The context is being destroyed around us (a crash path); its
        # sockets are going away anyway.
        log.debug("ZAP handler was already torn down")
    zap.auth.refusals.repeats.flush()  # the thread has ended: no race


class _ServerSocket(zmq.Socket[bytes]):
    """A CURVE server socket: closing the last one stops the ZAP thread."""

    _zap: Zap | None = None

    def close(self, linger: int | None = None) -> None:
        zap, self._zap = self._zap, None
        ctx = self.context
        super().close(linger=linger)
        if zap is not None:
            _release_zap(ctx, zap)


def _bound(ctx: Context, kind: int, endpoint: str, keys: Security) -> zmq.Socket[bytes]:
    """A socket of kind bound to endpoint, secured when it is tcp://."""
    _prepare_ipc(endpoint)
    if not endpoint.startswith("tcp://"):
        sock = ctx.socket(kind)
    elif not keys.enabled:
        if not is_loopback(endpoint):
            log.warning(
                "%s is open to the network without CURVE: anyone who reaches it "
                "can send or read; make keys with alertik keygen",
                endpoint,
            )
        sock = ctx.socket(kind)
        sock.setsockopt(zmq.IPV6, _ipv6(endpoint))
    else:
        if keys.allowed is None and not keys.allow_any:
            raise OpenToAnyone(
                f"is not set, so any client with the public key could use {endpoint}; "
                "list the clients' public keys, or set ALERTIK_CURVE_ALLOW_ANY=yes"
            )
        server = ctx.socket(kind, socket_class=_ServerSocket)
        server.setsockopt(zmq.IPV6, _ipv6(endpoint))
        server.setsockopt(zmq.CURVE_SERVER, 1)
        server.setsockopt(zmq.CURVE_SECRETKEY, keys.secret)
        server.setsockopt(zmq.ZAP_DOMAIN, ZAP_DOMAIN.encode())
        if keys.allowed is not None:
            # The handler must be up before the first peer can knock.
            server._zap = _acquire_zap(ctx, keys.allowed)
        sock = server
    try:
        sock.bind(endpoint)
    except zmq.ZMQError:
        sock.close(linger=0)
        raise
    return sock


def _connected(
    ctx: Context, kind: int, endpoint: str, keys: Security
) -> zmq.Socket[bytes]:
    """A socket of kind, made a CURVE client when endpoint is tcp://."""
    sock = ctx.socket(kind)
    if endpoint.startswith("tcp://"):
        sock.setsockopt(zmq.IPV6, _ipv6(endpoint))
        if keys.enabled:
            sock.setsockopt(zmq.CURVE_SECRETKEY, keys.secret)
            sock.setsockopt(zmq.CURVE_PUBLICKEY, keys.public)
            sock.setsockopt(zmq.CURVE_SERVERKEY, keys.server)
    return sock


def _prepare_ipc(endpoint: str) -> None:
    if endpoint.startswith("ipc://"):
        path = endpoint[len("ipc://") :]
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, mode=0o700, exist_ok=True)


def bind_pull(ctx: Context, endpoint: str, security: Security) -> zmq.Socket[bytes]:
    """A PULL socket bound to endpoint (``tcp://127.0.0.1:*`` picks a port)."""
    sock = _bound(ctx, zmq.PULL, endpoint, security)
    sock.setsockopt(zmq.RCVHWM, RCVHWM)
    # Not 0: libzmq ends the pipe of a peer that disconnects with this
    # socket's linger, and with 0 it dropped what that peer had sent and this
    # stage had not read yet (an ingest stopping while the matcher was
    # behind). Closing a PULL never waits for it: it has nothing to send.
    sock.setsockopt(zmq.LINGER, LINGER_MS)
    return sock


def connect_push(ctx: Context, endpoint: str, security: Security) -> zmq.Socket[bytes]:
    """A PUSH socket connected to a downstream stage's input."""
    sock = _connected(ctx, zmq.PUSH, endpoint, security)
    sock.setsockopt(zmq.SNDHWM, SNDHWM)
    sock.setsockopt(zmq.LINGER, LINGER_MS)
    # Messages wait for a peer that is not up yet instead of being dropped.
    sock.setsockopt(zmq.IMMEDIATE, 0)
    sock.connect(endpoint)
    return sock


def bind_tap(ctx: Context, endpoint: str, security: Security) -> zmq.Socket[bytes]:
    """A PUB socket for live taps; with no subscriber, sends cost next to nothing."""
    sock = _bound(ctx, zmq.PUB, endpoint, security)
    sock.setsockopt(zmq.SNDHWM, TAP_HWM)
    sock.setsockopt(zmq.LINGER, 0)
    return sock


def connect_tap(ctx: Context, endpoint: str, security: Security) -> zmq.Socket[bytes]:
    """A SUB socket reading everything a stage publishes on its tap."""
    sock = _connected(ctx, zmq.SUB, endpoint, security)
    sock.setsockopt(zmq.RCVHWM, TAP_HWM)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.connect(endpoint)
    return sock


def monitor(sock: zmq.Socket[bytes], events: int = MONITOR_EVENTS) -> zmq.Socket[bytes]:
    """A PAIR socket reporting sock's connects, disconnects and refusals."""
    mon = sock.get_monitor_socket(events)
    mon.setsockopt(zmq.LINGER, 0)
    return mon


def monitor_event(mon: zmq.Socket[bytes]) -> int:
    """The next event number from a monitor socket (zmq.EVENT_*).

    Read by hand: pyzmq's recv_monitor_message imports asyncio, about 9 MB of
    RSS in a stage that never uses it. The first frame starts with the event
    number, 16 bits in host byte order.
    """
    frames = mon.recv_multipart()
    return int(struct.unpack("=H", frames[0][:2])[0])


def bound_endpoint(sock: zmq.Socket[bytes]) -> str:
    """The endpoint a socket really bound (the port, when ``*`` was asked)."""
    value = sock.getsockopt(zmq.LAST_ENDPOINT)
    assert isinstance(value, bytes)
    return value.decode()


def publish(tap: zmq.Socket[bytes], payload: bytes) -> None:
    """Send on a tap without ever blocking; with no reader it is dropped."""
    with contextlib.suppress(zmq.Again):
        tap.send(payload, zmq.NOBLOCK)
