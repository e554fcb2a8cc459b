"""Listening sockets for ingest: dual-stack where the host has IPv6.

``alertik run`` opens the UDP socket with ``open_udp()`` too, and hands it to
each ingest it starts (``take_udp()``), so both ask the kernel for the same
receive buffer.
"""

from __future__ import annotations

import errno
import logging
import socket
import sys

from alertik.common.config import ConfigError, IngestConfig
from alertik.common.net import host_port

log = logging.getLogger(__name__)

_NO_IPV6 = (errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT)
# Kernel receive buffer asked for: the queue in front of ingest, the one
# place a burst waits when it comes faster than Python can read (a sender
# flat out on loopback is four times faster than a bare recvfrom loop). The
# kernel doubles the figure and charges each datagram's whole buffer, about
# 1,280 bytes for a 200-byte RouterOS line: 64 MiB holds ~100,000 lines even
# if ingest read none of them meanwhile. It is memory only while it is full,
# and the kernel's net.ipv4.udp_mem (about 18% of RAM for all UDP sockets
# together) still caps it on a small router.
RCVBUF_BYTES = 64 * 1024 * 1024
# What the kernel charges the buffer for one 200-byte line (see above).
LINE_CHARGE_BYTES = 1280
# SO_RCVBUFFORCE passes the net.core.rmem_max cap (often 208 KiB, at most a
# few MiB) when we have CAP_NET_ADMIN (Docker drops it unless run with
# --cap-add NET_ADMIN); Python's socket module does not name it, Linux
# numbers it 33.
SO_RCVBUFFORCE: int | None = getattr(
    socket, "SO_RCVBUFFORCE", 33 if sys.platform.startswith("linux") else None
)
# What an ingest asks alertik run for over its listen socket.
UDP_REQUEST = b"udp"


def open_socket(bind: str, port: int, kind: socket.SocketKind) -> socket.socket:
    """A bound socket; ``::`` takes IPv4 too, and falls back to 0.0.0.0
    where IPv6 is absent (no module) or disabled (no address)."""
    host = bind.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    name = "udp" if kind == socket.SOCK_DGRAM else "tcp"
    try:
        sock = socket.socket(family, kind)
    except OSError as exc:
        if host != "::" or exc.errno not in _NO_IPV6:
            raise
        log.warning("IPv6 is not available here; %s listens on IPv4 only", name)
        return open_socket("0.0.0.0", port, kind)
    try:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and host == "::":
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if host == "::" and exc.errno == errno.EADDRNOTAVAIL:
            log.warning("IPv6 is disabled here; %s listens on IPv4 only", name)
            return open_socket("0.0.0.0", port, kind)
        raise
    return sock


def open_udp(bind: str, port: int) -> socket.socket:
    """Bind the UDP listener with a large kernel buffer, non-blocking."""
    sock = open_socket(bind, port, socket.SOCK_DGRAM)
    for opt in (SO_RCVBUFFORCE, socket.SO_RCVBUF):
        if opt is None:
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, opt, RCVBUF_BYTES)
            break
        except OSError:
            continue
    sock.setblocking(False)
    got = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    if got < RCVBUF_BYTES:  # Linux reports twice what it was asked for
        log.info(
            "udp receive buffer is %d KiB of the %d KiB asked (net.core.rmem_max "
            "caps it without CAP_NET_ADMIN): a burst of more than about %d "
            "lines may be lost; raise net.core.rmem_max or grant CAP_NET_ADMIN",
            got // 1024,
            RCVBUF_BYTES // 1024,
            got // LINE_CHARGE_BYTES,
        )
    return sock


def take_udp(path: str) -> socket.socket:
    """The UDP socket that alertik run holds, handed over its Unix socket."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(5.0)
        conn.connect(path)
        conn.sendall(UDP_REQUEST)
        _, fds, _, _ = socket.recv_fds(conn, 16, 1)
    if not fds:
        raise OSError(f"{path} sent no socket")
    return socket.socket(fileno=fds[0])


def udp_socket(ing: IngestConfig) -> socket.socket:
    """The non-blocking UDP socket ingest reads: the one alertik run holds
    (listen_socket), so datagrams wait in the kernel while ingest restarts,
    or its own."""
    if ing.listen_socket:
        try:
            udp = take_udp(ing.listen_socket)
        except OSError as exc:
            raise RuntimeError(
                f"cannot take the UDP socket from alertik run at "
                f"{ing.listen_socket}: {exc}"
            ) from None
        udp.setblocking(False)
        return udp
    try:
        return open_udp(ing.bind, ing.udp_port)
    except OSError as exc:
        raise listen_error("udp", ing.bind, ing.udp_port, exc) from None


def listen_error(kind: str, bind: str, port: int, exc: OSError) -> ConfigError:
    """Why a listener could not bind, naming the variable to change."""
    shown = host_port(bind, port)
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.EADDRINUSE, errno.EACCES):
        variable = f"ALERTIK_{kind.upper()}_PORT"
        return ConfigError(
            variable,
            f"cannot listen on {kind} {shown}: {reason}; choose another port "
            "(below 1024 needs root)",
        )
    return ConfigError(
        "ALERTIK_BIND",
        f"cannot listen on {kind} {shown}: {reason}; use an address of this "
        "host, :: or 0.0.0.0",
    )
