"""Syslog over TLS (RFC 5425): the TCP listener with a TLS layer per connection.

``TlsListener`` is a ``TcpListener`` whose accepted sockets are wrapped in TLS
(``_wrap``) and read through it (``_receive``). Everything else is the TCP
listener's, unchanged: the allow-list (checked before any TLS work), the
connection cap, per-connection framing (RFC 5425 uses octet counting; RouterOS
sends CEF ending in ``cef-event-delimiter``, as over TCP), the read budgets
and the idle timeout. No threads: the handshake runs in non-blocking steps,
each when the poll loop finds the connection readable (or writable, while
OpenSSL waits to send).

A slow or hostile client is bounded like a TCP one, and more:

* a handshake not finished within HANDSHAKE_SECONDS closes the connection
  (idle and slowloris clients, a ClientHello trickled byte by byte);
* bytes that are not TLS (a RouterOS action left on ``remote-protocol=tcp``,
  a port scanner, garbage) fail the handshake at once: the connection is
  closed and a throttled warning says from where and why;
* renegotiation is refused (``common.tls``), so repeating it costs the client
  a closed connection, not us a handshake;
* at most HANDSHAKE_STEPS handshake steps run per ``handle_ready()``: each
  can cost a private-key signature (about a millisecond), so a handshake
  storm waits for later turns instead of holding the loop from UDP and the
  other clients.

``context`` may be replaced at any time (SIGHUP): new connections use the new
certificate, open ones keep theirs.
"""

from __future__ import annotations

import logging
import selectors
import socket
import ssl
import time
from collections.abc import Callable

from alertik.common.config import ConfigError, IngestConfig
from alertik.common.throttle import Throttled
from alertik.common.tls import describe, server_context
from alertik.ingest.listen import listen_error
from alertik.ingest.tcp import RECV_BYTES, TICK_SECONDS, Emit, TcpListener, _Connection

log = logging.getLogger(__name__)

# Time a client has to finish its handshake. A router on a slow link needs a
# few round trips (well under a second); ten seconds also covers a lost
# segment or two (RFC 6298 retransmits after 1 s, then 2 s, then 4 s).
HANDSHAKE_SECONDS = 10.0
# Handshake steps per handle_ready(). The costly step (answering a
# ClientHello: key exchange and an RSA-2048 signature) takes about 1 ms here,
# so a storm of new clients costs the loop under 10 ms per turn.
HANDSHAKE_STEPS = 8
# What the usual OpenSSL reasons for a failed handshake mean for an admin.
_NOT_TLS = "not TLS: is the sender set to remote-protocol=tcp?"
_DISTRUST = "the sender does not trust our certificate: import it there"
HINTS = {
    "WRONG_VERSION_NUMBER": _NOT_TLS,
    "HTTP_REQUEST": _NOT_TLS,
    "UNKNOWN_PROTOCOL": _NOT_TLS,
    "RECORD_LAYER_FAILURE": _NOT_TLS,
    "TLSV1_ALERT_UNKNOWN_CA": _DISTRUST,
    "SSLV3_ALERT_BAD_CERTIFICATE": _DISTRUST,
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": _DISTRUST,
    "UNSUPPORTED_PROTOCOL": "the sender offers only TLS older than 1.2",
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": "ALERTIK_TLS_CLIENT_CA asks for one",
}


def open_tls(
    ing: IngestConfig, port: int, emit: Emit, allowed: Callable[[str], bool]
) -> TlsListener:
    """The listener on ALERTIK_TLS_PORT, with the certificate and key read now
    (config.load() checked them; the files may have changed since)."""
    context = server_context(ing.tls_cert, ing.tls_key, ing.tls_client_ca)
    try:
        listener = TlsListener(ing.bind, port, ing, emit, allowed, context)
    except OSError as exc:
        raise listen_error("tls", ing.bind, port, exc) from None
    log.info("tls %s", describe(ing.tls_cert, ing.tls_key, ing.tls_client_ca))
    return listener


class TlsListener(TcpListener):
    """Accepts syslog-over-TLS clients and emits each framed message."""

    kind = "tls"

    def __init__(
        self,
        bind: str,
        port: int,
        cfg: IngestConfig,
        emit: Emit,
        allowed: Callable[[str], bool],
        context: ssl.SSLContext,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.context = context
        # Connections still in their handshake: socket -> deadline.
        self._handshaking: dict[ssl.SSLSocket, float] = {}
        # Sockets registered for writability (OpenSSL waits to send).
        self._writing: set[ssl.SSLSocket] = set()
        self._steps = HANDSHAKE_STEPS
        self._next_deadline_check = 0.0
        self.handshakes = 0
        self.handshake_timeouts = 0
        self.handshake_failed = Throttled(log, "tls handshakes failed")
        super().__init__(bind, port, cfg, emit, allowed, clock=clock)

    def renew(self, ing: IngestConfig) -> None:
        """Read the certificate and key again (renewed files, SIGHUP).

        New connections get the new pair; a pair that cannot be used leaves
        the one in use in place, with one error naming the variable.
        """
        try:
            context = server_context(ing.tls_cert, ing.tls_key, ing.tls_client_ca)
        except ConfigError as exc:
            log.error("tls: kept the certificate in use: %s", exc)
            return
        self.context = context
        log.info(
            "tls reloaded %s", describe(ing.tls_cert, ing.tls_key, ing.tls_client_ca)
        )

    def handle_ready(self) -> int:
        self._steps = HANDSHAKE_STEPS
        return super().handle_ready()

    def tick(self, now: float | None = None) -> None:
        """As TcpListener.tick, and close handshakes past their deadline."""
        now = self._clock() if now is None else now
        super().tick(now)
        if self._closed or not self._handshaking or now < self._next_deadline_check:
            return
        self._next_deadline_check = now + TICK_SECONDS
        for sock, deadline in list(self._handshaking.items()):
            if deadline > now:
                continue
            conn = self._conns.get(sock.fileno())
            self.handshake_timeouts += 1
            self.handshake_failed.hit(
                f"from {conn.host if conn else '?'}: not finished within "
                f"{HANDSHAKE_SECONDS:g} s"
            )
            if conn is not None:
                self._drop(conn, flush=False)
            else:
                self._handshaking.pop(sock, None)

    def close(self, flush: bool = True) -> None:
        if not self._closed:
            self.handshake_failed.flush()
        super().close(flush)

    # -- the hooks -------------------------------------------------------

    def _wrap(self, sock: socket.socket, host: str) -> socket.socket | None:
        try:
            wrapped = self.context.wrap_socket(
                sock, server_side=True, do_handshake_on_connect=False
            )
        except OSError as exc:
            log.debug("tls %s: cannot start TLS: %s", host, exc)
            sock.close()
            return None
        self._handshaking[wrapped] = self._clock() + HANDSHAKE_SECONDS
        return wrapped

    def _receive(self, conn: _Connection) -> bytes | None:
        sock = conn.sock
        assert isinstance(sock, ssl.SSLSocket)
        if sock in self._writing:
            self._want_write(conn, False)
        if sock in self._handshaking:
            if self._steps <= 0:
                return None  # still readable: served on a later turn
            self._steps -= 1
            if not self._handshake(conn, sock):
                return None
        chunks: list[bytes] = []
        total = 0
        # Also what OpenSSL has decrypted but not handed over yet (at most one
        # record): the selector cannot see it, so it must not be left behind.
        while total < RECV_BYTES or sock.pending():
            try:
                data = sock.recv(max(RECV_BYTES - total, sock.pending()))
            except ssl.SSLWantReadError:
                break
            except ssl.SSLWantWriteError:
                self._want_write(conn, True)
                break
            if not data:
                if chunks:
                    break  # the end is seen again on the next read
                return b""
            chunks.append(data)
            total += len(data)
        return b"".join(chunks) if chunks else None

    def _drop(self, conn: _Connection, flush: bool = True) -> None:
        if isinstance(conn.sock, ssl.SSLSocket):
            self._handshaking.pop(conn.sock, None)
            self._writing.discard(conn.sock)
        super()._drop(conn, flush)

    # -- internals ---------------------------------------------------------

    def _handshake(self, conn: _Connection, sock: ssl.SSLSocket) -> bool:
        """One step of the handshake; True once it is done."""
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            return False
        except ssl.SSLWantWriteError:
            self._want_write(conn, True)
            return False
        except ssl.SSLError as exc:
            reason = exc.reason or exc.strerror or str(exc)
            hint = f" ({HINTS[reason]})" if reason in HINTS else ""
            self.handshake_failed.hit(f"from {conn.host}: {reason}{hint}")
            raise
        del self._handshaking[sock]
        self.handshakes += 1
        log.debug(
            "tls %s:%d handshake done: %s %s",
            conn.host,
            conn.port,
            sock.version(),
            (sock.cipher() or ("?",))[0],
        )
        return True

    def _want_write(self, conn: _Connection, write: bool) -> None:
        """Wake up for writability too while OpenSSL waits to send."""
        sock = conn.sock
        assert isinstance(sock, ssl.SSLSocket)
        events = selectors.EVENT_READ
        if write:
            self._writing.add(sock)
            events |= selectors.EVENT_WRITE
        else:
            self._writing.discard(sock)
        self._sel.modify(sock, events, conn)
