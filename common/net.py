"""Small helpers for addresses, shared by the stages."""

from __future__ import annotations

_MAPPED_PREFIX = "::ffff:"


def unmapped(addr: str) -> str:
    """An IPv4 peer seen through a dual-stack socket, shown as plain IPv4."""
    if addr.startswith(_MAPPED_PREFIX) and "." in addr:
        return addr[len(_MAPPED_PREFIX) :]
    return addr


def host_port(host: str, port: int | str) -> str:
    """``host:port``, with an IPv6 address in brackets: ``[::1]:5140``."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
