"""Helpers for the TLS tests: certificate pairs, RouterOS-like clients, raw
handshake bytes.

Pairs come from ``alertik cert`` itself (the openssl command), so the tests
use the certificates an admin would. The RouterOS-like client follows our
RouterOS notes: TLS 1.2, the server's certificate checked against the
imported one (the chain only, not the host name), no client certificate.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

from alertik import cert


@dataclass(frozen=True)
class Pair:
    """A certificate and its key, as files."""

    cert: str
    key: str


def make_pair(folder: Path, *names: str) -> Pair:
    """A self-signed pair for names, made as ``alertik cert`` makes it."""
    folder.mkdir(parents=True, exist_ok=True)
    crt, key = cert.make(
        list(names or ("localhost", "127.0.0.1")), str(folder), 2, True
    )
    return Pair(crt, key)


def routeros_context(trusted: str) -> ssl.SSLContext:
    """A client as RouterOS is one: TLS 1.2 only, chain checked, no name."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False
    ctx.load_verify_locations(cafile=trusted)
    return ctx


def strict_context(trusted: str) -> ssl.SSLContext:
    """A careful client: any version, chain and host name checked, and the
    stricter X.509 rules that newer Pythons turn on by default."""
    ctx = ssl.create_default_context(cafile=trusted)
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    return ctx


def connect_tls(
    port: int,
    ctx: ssl.SSLContext,
    host: str = "127.0.0.1",
    server_name: str | None = None,
    timeout: float = 5.0,
) -> ssl.SSLSocket:
    """A TLS connection to port on host, handshake done."""
    raw = socket.create_connection((host, port), timeout=timeout)
    try:
        return ctx.wrap_socket(raw, server_hostname=server_name or host)
    except BaseException:
        raw.close()
        raise


def client_hello(version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2) -> bytes:
    """The bytes of a real ClientHello (what a client sends first)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = version
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with contextlib.suppress(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = outgoing.read()
    assert hello[:1] == b"\x16", hello[:8]  # a handshake record
    return hello


def make_client_ca(folder: Path) -> tuple[str, Pair]:
    """A CA file and a client certificate it issued (for client checks)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = folder / "ca.key", folder / "ca.crt"
    key, csr, crt = folder / "client.key", folder / "client.csr", folder / "client.crt"
    ext = folder / "client.ext"
    ext.write_text("extendedKeyUsage = clientAuth\nbasicConstraints = CA:FALSE\n")
    run = [
        [
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=test relay CA",
            "-keyout",
            ca_key,
            "-out",
            ca_crt,
        ],
        [
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=relay",
            "-keyout",
            key,
            "-out",
            csr,
        ],
        [
            "x509",
            "-req",
            "-in",
            csr,
            "-CA",
            ca_crt,
            "-CAkey",
            ca_key,
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            ext,
            "-out",
            crt,
        ],
    ]
    for args in run:
        subprocess.run(
            ["openssl", *map(str, args)],
            check=True,
            capture_output=True,
            env={**os.environ, "RANDFILE": str(folder / ".rnd")},
        )
    return str(ca_crt), Pair(str(crt), str(key))
