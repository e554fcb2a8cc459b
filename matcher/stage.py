"""The matcher loop: archive each event, try every rule, push alerts to notify."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from functools import partial

import msgspec
import zmq

from alertik.common import sockets
from alertik.common.config import DEFAULT_TIME_SUFFIX, Config, ConfigError
from alertik.common.lifecycle import StopFlag
from alertik.common.schema import ENCODER, EVENT_DECODER, Alert, SyslogEvent
from alertik.common.sockets import Context
from alertik.common.throttle import Throttled
from alertik.ingest.formats import parse
from alertik.matcher.archive import Archive
from alertik.matcher.rules import Match, RuleSet, compile_rules, time_suffix
from alertik.matcher.static import STATIC_TIME_SUFFIX

log = logging.getLogger(__name__)

# When notify comes back after a disconnect, alerts sent this long before it
# went away are sent again: what it may have held unwritten when it died is
# milliseconds' worth; seconds leave room for a slow disk.
RESEND_SECONDS = 5.0
# At most this many recent alerts are kept for that (about 0.5 MB).
RESEND_MAX = 1000

# Events handled per wake-up before the archive is written and the stop flag
# looked at again: at 50,000 events/s a batch is 20 ms of work.
BATCH = 1000
# A wake-up that finds at least this many events means a flood: the matcher
# then pauses COALESCE_SECONDS before polling again, so that it takes events
# (and writes the archive) in batches instead of one by one; its queue holds
# them meanwhile. A trickle is never delayed.
COALESCE_FROM = 4
COALESCE_SECONDS = 0.002


def alert_text(cfg: Config, match: Match, received: float) -> str:
    """The notification text: the expanded mask and the time suffix."""
    fmt = cfg.time_suffix
    if match.static and fmt == DEFAULT_TIME_SUFFIX:
        fmt = STATIC_TIME_SUFFIX
    return match.body + time_suffix(fmt, received)


def build_alerts(cfg: Config, rules: RuleSet, event: SyslogEvent) -> list[Alert]:
    """Every alert one event raises, in rule order."""
    matches = rules.match(event.raw, {"sender": event.sender, "node": event.node})
    if not matches:
        return []
    # Header fields only for the few messages that raise alerts: parsing
    # every message would cost the matcher a third of its throughput.
    fields = parse(event.raw)
    return [
        Alert(
            # node, pid and seq alone repeat after a container restart (same
            # pids, seq from 1) and notify would take new alerts for ones it
            # has seen: the receive time makes the id unique across restarts.
            id=f"{event.node}/{event.pid}/{event.seq}/{event.received:.6f}/{m.rule}",
            notifier=m.notifier,
            text=alert_text(cfg, m, event.received),
            rule=m.rule,
            received=event.received,
            sender=event.sender,
            node=event.node,
            fields=fields,
        )
        for m in matches
    ]


Socket = zmq.Socket[bytes]


class Matcher:
    """Holds the sockets and counters of one matcher process."""

    def __init__(self, cfg: Config, ctx: zmq.Context[zmq.Socket[bytes]]) -> None:
        self.cfg = cfg
        self.rules = compile_rules(cfg.rules, cfg.static_rules)
        made: list[Socket] = []
        makers: list[tuple[str, Callable[[Context, str], Socket]]] = [
            ("matcher", sockets.bind_pull),
            ("matcher_tap", sockets.bind_tap),
            ("notify", sockets.connect_push),
        ]
        try:
            for name, make in makers:
                made.append(sockets.usable(cfg, name, partial(make, ctx)))
        except ConfigError:
            for sock in made:
                sock.close()
            raise
        self.inbox, self.tap, self.to_notify = made
        self.notify_events = sockets.monitor(self.to_notify)
        # Alerts sent lately, to send again if notify dies holding them.
        self.recent: deque[tuple[float, bytes]] = deque(maxlen=RESEND_MAX)
        self.notify_lost_at = 0.0
        # A full notify queue slows us down but never hides SIGTERM from us.
        self.to_notify.setsockopt(zmq.SNDTIMEO, sockets.POLL_MS)
        self.archive = Archive(cfg.log_file, cfg.log_max_bytes, cfg.log_backups)
        self.handled = 0
        self.alerts = 0
        self.bad = Throttled(log, "malformed messages skipped")

    def handle(self, frame: bytes, stop: StopFlag) -> None:
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
            self.send(payload, stop)
            self.recent.append((time.monotonic(), payload))
            sockets.publish(self.tap, payload)
            self.alerts += 1

    def take(self, stop: StopFlag) -> int:
        """Handle what the inbox holds now (up to BATCH), then write the archive."""
        recv = self.inbox.recv
        taken = 0
        while taken < BATCH:
            try:
                frame = recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            self.handle(frame, stop)
            taken += 1
        self.archive.flush()
        return taken

    def send(self, payload: bytes, stop: StopFlag) -> None:
        """Hand an alert to notify, waiting while it is busy, until forced to stop."""
        while True:
            try:
                self.to_notify.send(payload)
                return
            except zmq.Again:
                if stop.force:
                    log.error("stop forced: an alert was not handed to notify")
                    return

    def watch_notify(self, stop: StopFlag) -> None:
        """Follow notify's connection; when it comes back, send recent alerts again.

        PUSH has no acknowledgements: an alert in flight when notify died (in
        the kernel, or read by notify but not yet in its outbox) is gone. Alerts
        carry unique ids and notify's outbox stores each id once, so sending
        the last few seconds' alerts again costs nothing and loses nothing.
        """
        event = sockets.monitor_event(self.notify_events)
        if event == zmq.EVENT_DISCONNECTED:
            self.notify_lost_at = time.monotonic()
            log.warning("notify went away; alerts wait in the queue for it")
        elif event == zmq.EVENT_HANDSHAKE_SUCCEEDED and self.notify_lost_at:
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
                self.send(payload, stop)

    def close(self) -> None:
        self.inbox.close()
        self.tap.close()
        self.notify_events.close()
        self.to_notify.close(linger=sockets.LINGER_MS)
        self.archive.close()


def run(cfg: Config, stop: StopFlag) -> None:
    """Receive events until stopped, then drain what is already queued."""
    with zmq.Context() as ctx:
        m = Matcher(cfg, ctx)
        try:
            log.info(
                "matcher listening on %s (%d rules, tap %s)",
                sockets.bound_endpoint(m.inbox),
                len(m.rules),
                sockets.bound_endpoint(m.tap),
            )
            if not len(m.rules):
                log.warning(
                    "no events are configured (ENV_EVENTS, STATIC_EVENTS_ENABLED): "
                    "messages are logged but nothing will be notified"
                )
            poller = zmq.Poller()
            poller.register(m.inbox, zmq.POLLIN)
            poller.register(m.notify_events, zmq.POLLIN)
            while not stop.is_set():
                ready = dict(poller.poll(sockets.POLL_MS))
                if m.notify_events in ready:
                    m.watch_notify(stop)
                if m.inbox in ready:
                    # Take what is queued in one go; poll again only when idle.
                    if COALESCE_FROM <= m.take(stop) < BATCH:
                        time.sleep(COALESCE_SECONDS)
            log.info("stopping (%s)", stop.signal_name or "requested")
            poller.unregister(m.notify_events)
            deadline = time.monotonic() + cfg.drain_seconds
            while time.monotonic() < deadline and not stop.force:
                if not poller.poll(50):
                    break
                m.take(stop)
            m.bad.flush()
            log.info(
                "stopped: handled=%d alerts=%d malformed=%d",
                m.handled,
                m.alerts,
                m.bad.total,
            )
        finally:
            m.close()
