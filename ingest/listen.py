"""Listening sockets for ingest: dual-stack where the host has IPv6."""

from __future__ import annotations

import errno
import logging
import socket

log = logging.getLogger(__name__)

_NO_IPV6 = (errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT)


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
