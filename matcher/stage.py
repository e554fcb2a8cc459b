"""The matcher loop: archive each event, try every rule, push alerts to notify."""

from __future__ import annotations

import logging
import time
from collections import deque

import msgspec
import zmq

from alertik.common import sockets
from alertik.common.config import Config
from alertik.common.lifecycle import Ready, Stage, StopFlag, Wiring, serve
from alertik.common.schema import ENCODER, EVENT_DECODER
from alertik.common.throttle import Throttled
from alertik.matcher.alerts import build_alerts
from alertik.matcher.archive import Archive
from alertik.matcher.rules import compile_rules
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

# Events handled per wake-up before the archive is written and the stop flag
# looked at again: at 50,000 events/s a batch is 20 ms of work.
BATCH = 1000
# A wake-up that finds at least this many events means a flood: the matcher
# then pauses COALESCE_SECONDS before polling again, so that it takes events
# (and writes the archive) in batches instead of one by one; its queue holds
# them meanwhile. A trickle is never delayed.
COALESCE_FROM = 4
COALESCE_SECONDS = 0.002


Socket = zmq.Socket[bytes]


class Matcher(Stage):
    """Archives every event, tries every rule, pushes alerts to notify."""

    name = "matcher"

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.rules = compile_rules(cfg.rules, cfg.static_rules)
        # Alerts sent lately, to send again if notify dies holding them.
        self.recent: deque[tuple[float, bytes]] = deque(maxlen=RESEND_MAX)
        self.notify_lost_at = 0.0
        self.notify_up = False
        self.handled = 0
        self.alerts = 0
        self.overflow: list[bytes] = []  # for the spool, at the end of the batch
        self.bad = Throttled(log, "malformed messages skipped")

    def open(self, wiring: Wiring) -> None:
        self.inbox = wiring.pull("matcher")
        self.tap = wiring.tap("matcher_tap")
        self.to_notify = wiring.push("notify", on_event=self.notify_event)
        # A short queue in memory: what notify cannot take soon goes to the
        # spool, on disk, instead of waiting in this process.
        self.to_notify.setsockopt(zmq.SNDHWM, NOTIFY_HWM)
        cfg = self.cfg
        self.spool = wiring.hold(Spool(cfg.state_dir, cfg.spool_max_count))
        self.archive = wiring.hold(
            Archive(cfg.log_file, cfg.log_max_bytes, cfg.log_backups)
        )
        if not len(self.rules):
            log.warning(
                "no events are configured (ENV_EVENTS, STATIC_EVENTS_ENABLED): "
                "messages are logged but nothing will be notified"
            )

    def describe(self) -> str:
        return (
            f"{sockets.bound_endpoint(self.inbox)} ({len(self.rules)} rules, "
            f"tap {sockets.bound_endpoint(self.tap)})"
        )

    def turn(self, ready: Ready) -> int:
        if len(self.spool):
            self.spool.send_head(self.try_send)
        if self.inbox not in ready:
            return 0
        # Take what is queued in one go; poll again only when idle.
        taken = self.take()
        if COALESCE_FROM <= taken < BATCH:
            time.sleep(COALESCE_SECONDS)
        return taken

    def finish(self, deadline: float) -> None:
        self.bad.flush()

    def pending(self) -> int:
        # What waits in a durable spool is sent after a restart; in memory it
        # would be lost, so the drain gives notify the chance to take it.
        return 0 if self.spool.durable else len(self.spool)

    def counters(self) -> dict[str, int]:
        return {
            "handled": self.handled,
            "alerts": self.alerts,
            "malformed": self.bad.total,
            "spooled": len(self.spool),
            "spool_dropped": self.spool.dropped.total,
        }

    def handle(self, frame: bytes) -> None:
        try:
            event = EVENT_DECODER.decode(frame)
        except msgspec.DecodeError as exc:
            self.bad.hit(f"{exc}: {frame[:64]!r}")
            return
        self.handled += 1
        self.archive.message(event.received, event.sender, event.raw)
        for alert in build_alerts(self.cfg, self.rules, event):
            self.archive.note(
                event.received, f"{alert.rule} matched, sending to {alert.notifier}"
            )
            payload = ENCODER.encode(alert)
            self.send(payload)
            self.recent.append((time.monotonic(), payload))
            sockets.publish(self.tap, payload)
            self.alerts += 1

    def take(self) -> int:
        """Handle what the inbox holds now (up to BATCH), then write the archive."""
        recv = self.inbox.recv
        taken = 0
        while taken < BATCH:
            try:
                frame = recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            self.handle(frame)
            taken += 1
        self.archive.flush()
        self.spool.add(self.overflow)
        self.overflow = []
        return taken

    def try_send(self, payload: bytes) -> bool:
        """Hand an alert to notify if its queue takes it now."""
        try:
            self.to_notify.send(payload, zmq.NOBLOCK)
            return True
        except zmq.Again:
            return False

    def send(self, payload: bytes) -> None:
        """Hand an alert to notify, or queue it behind those already waiting."""
        if self.overflow or len(self.spool) or not self.try_send(payload):
            self.overflow.append(payload)

    def notify_event(self, event: int) -> None:
        """Follow notify's connection; when it comes back, send recent alerts again.

        PUSH has no acknowledgements: an alert in flight when notify died (in
        the kernel, or read by notify but not yet in its outbox) is gone. Alerts
        carry unique ids and notify's outbox stores each id once, so sending
        the last few seconds' alerts again costs nothing and loses nothing.
        """
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
            self.spool.add(self.overflow)
            self.overflow = []


def run(cfg: Config, stop: StopFlag) -> None:
    """Receive events until stopped, then drain (tests call this)."""
    serve(Matcher(cfg), cfg, stop)
