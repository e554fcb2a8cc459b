"""Alerts on their way to notify: its socket, the spool behind it, resending.

The matcher never waits for notify. An alert goes into notify's short queue
if it takes it now; otherwise it waits in the spool (``spool.py``), and every
later alert goes behind it so the order holds. Each loop turn hands notify
what it will take from the spool's head.

PUSH has no acknowledgements: an alert in flight when notify died (in the
kernel, or read by notify but not yet in its outbox) is gone. Alerts carry
unique ids and notify's outbox stores each id once, so when notify comes back
the last few seconds' alerts are sent again: that costs nothing and loses
nothing.
"""

from __future__ import annotations

import logging
import time
from collections import deque

import zmq

from alertik.common.config import Config
from alertik.common.lifecycle import Wiring
from alertik.matcher.spool import Spool

log = logging.getLogger(__name__)

# When notify comes back after a disconnect, alerts sent this long before it
# went away are sent again: what it may have held unwritten when it died is
# milliseconds' worth; seconds leave room for a slow disk.
RESEND_SECONDS = 5.0
# At most this many recent alerts are kept for that (about 0.5 MB).
RESEND_MAX = 1000
# Alerts queued in memory for notify; beyond, they wait in the spool on disk.
NOTIFY_HWM = 1000


class Handoff:
    """The PUSH to notify and the spool, opened on the stage's wiring."""

    def __init__(self, wiring: Wiring, cfg: Config) -> None:
        self.sock = wiring.push("notify", on_event=self.notify_event)
        # A short queue in memory: what notify cannot take soon goes to the
        # spool, on disk, instead of waiting in this process.
        self.sock.setsockopt(zmq.SNDHWM, NOTIFY_HWM)
        self.spool = wiring.hold(Spool(cfg.state_dir, cfg.spool_max_count))
        self.overflow: list[bytes] = []  # for the spool, at the end of the batch
        # Alerts sent lately, to send again if notify dies holding them.
        self.recent: deque[tuple[float, bytes]] = deque(maxlen=RESEND_MAX)
        self.notify_lost_at = 0.0
        self.notify_up = False

    def hand(self, payload: bytes) -> None:
        """Send a new alert, and keep it a while in case notify dies holding it."""
        self.send(payload)
        self.recent.append((time.monotonic(), payload))

    def try_send(self, payload: bytes) -> bool:
        """Hand an alert to notify if its queue takes it now."""
        try:
            self.sock.send(payload, zmq.NOBLOCK)
            return True
        except zmq.Again:
            return False

    def send(self, payload: bytes) -> None:
        """Hand an alert to notify, or queue it behind those already waiting."""
        if self.overflow or len(self.spool) or not self.try_send(payload):
            self.overflow.append(payload)

    def spool_overflow(self) -> None:
        """Write what notify did not take to the spool (once per batch)."""
        self.spool.add(self.overflow)
        self.overflow = []

    def send_spooled(self) -> None:
        """Hand notify what it will take from the spool's head."""
        if len(self.spool):
            self.spool.send_head(self.try_send)

    def notify_event(self, event: int) -> None:
        """Follow notify's connection; when it comes back, send recent alerts again."""
        if event == zmq.EVENT_DISCONNECTED and self.notify_up:
            self.notify_up = False
            self.notify_lost_at = time.monotonic()
            log.warning("notify went away; alerts wait in the spool for it")
        elif event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            self.notify_up = True
            if not self.notify_lost_at:
                return
            since = self.notify_lost_at - RESEND_SECONDS
            again = [payload for at, payload in self.recent if at >= since]
            self.notify_lost_at = 0.0
            log.info(
                "notify is back: sending the %d alerts of the last %g s before it "
                "went away again (it keeps each alert once)",
                len(again),
                RESEND_SECONDS,
            )
            for payload in again:
                self.send(payload)
            self.spool_overflow()
