"""The ZAP handler for CURVE servers: allow-listed client keys pass.

Kept apart from sockets.py because pyzmq's ZAP thread imports asyncio and
ssl, which a stage without CURVE keys should not pay for.
"""

from __future__ import annotations

import logging

import zmq
from zmq.auth.thread import ThreadAuthenticator

from alertik.common.net import unmapped
from alertik.common.throttle import Throttled

log = logging.getLogger("alertik.common.sockets")

# Distinct refused peers logged one by one; past that only the throttled count
# goes on, so a scan of random keys cannot grow memory or flood the log.
MAX_REFUSED_LOGGED = 1000

Context = zmq.Context[zmq.Socket[bytes]]


class Refusals:
    """The ZAP credentials check: allow-listed keys pass, refusals are logged."""

    def __init__(self, allowed: frozenset[bytes]) -> None:
        self.allowed = allowed
        self.peer = ""  # address of the request being checked (set per request)
        self._seen: set[tuple[bytes, str]] = set()
        self.repeats = Throttled(log, "CURVE clients refused again")

    def callback(self, domain: str, key: bytes) -> bool:
        if key in self.allowed:
            return True
        first = (key, self.peer)
        if first not in self._seen and len(self._seen) < MAX_REFUSED_LOGGED:
            self._seen.add(first)
            log.warning(
                "refused a CURVE client from %s: public key %s is not in "
                "ALERTIK_CURVE_ALLOWED_CLIENTS",
                self.peer or "an unknown address",
                key.decode("ascii", "replace"),
            )
        else:
            self.repeats.hit(f"{key.decode('ascii', 'replace')} from {self.peer}")
        return False


class Authenticator(ThreadAuthenticator):
    """pyzmq's ZAP thread, telling the credentials check who is asking."""

    def __init__(self, ctx: Context, refusals: Refusals) -> None:
        super().__init__(ctx, log=logging.getLogger(__name__ + ".zap"))
        self.refusals = refusals

    async def handle_zap_message(self, msg: list[bytes]) -> None:
        # Frame 3 of a ZAP request is the peer's IP address; one request is
        # handled at a time, so the callback that follows reads this one.
        peer = msg[3].decode("ascii", "replace") if len(msg) > 3 else ""
        self.refusals.peer = unmapped(peer)
        await super().handle_zap_message(msg)


class Zap:
    """One running ZAP handler and the number of CURVE servers that use it."""

    def __init__(self, ctx: Context, allowed: frozenset[bytes], domain: str) -> None:
        self.auth = Authenticator(ctx, Refusals(allowed))
        self.auth.configure_curve_callback(domain, self.auth.refusals)
        self.auth.start()
        self.users = 0
