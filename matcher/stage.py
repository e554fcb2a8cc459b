"""The matcher loop: archive each event, try every rule, push alerts to notify."""

from __future__ import annotations

import logging
import time

import msgspec
import zmq

from alertik.common import sockets
from alertik.common.config import DEFAULT_TIME_SUFFIX, Config
from alertik.common.lifecycle import StopFlag
from alertik.common.schema import ENCODER, EVENT_DECODER, Alert, SyslogEvent
from alertik.common.throttle import Throttled
from alertik.ingest.formats import parse
from alertik.matcher.archive import Archive
from alertik.matcher.rules import Match, RuleSet, compile_rules, time_suffix
from alertik.matcher.static import STATIC_TIME_SUFFIX

log = logging.getLogger(__name__)


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
            id=f"{event.node}/{event.pid}/{event.seq}/{m.rule}",
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


class Matcher:
    """Holds the sockets and counters of one matcher process."""

    def __init__(self, cfg: Config, ctx: zmq.Context[zmq.Socket[bytes]]) -> None:
        self.cfg = cfg
        self.rules = compile_rules(cfg.rules, cfg.static_rules)
        self.archive = Archive(cfg.log_file, cfg.log_max_bytes, cfg.log_backups)
        self.inbox = sockets.bind_pull(ctx, cfg.endpoints.matcher)
        self.tap = sockets.bind_tap(ctx, cfg.endpoints.matcher_tap)
        self.to_notify = sockets.connect_push(ctx, cfg.endpoints.notify)
        # A full notify queue slows us down but never hides SIGTERM from us.
        self.to_notify.setsockopt(zmq.SNDTIMEO, sockets.POLL_MS)
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
        text = event.raw.decode("utf-8", "replace")
        self.archive.message(event.received, event.sender, text)
        for alert in build_alerts(self.cfg, self.rules, event):
            self.archive.note(
                event.received, f"{alert.rule} matched, sending to {alert.notifier}"
            )
            payload = ENCODER.encode(alert)
            self.send(payload, stop)
            sockets.publish(self.tap, payload)
            self.alerts += 1

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

    def close(self) -> None:
        self.inbox.close()
        self.tap.close()
        self.to_notify.close(linger=sockets.LINGER_MS)
        self.archive.close()


def run(cfg: Config, stop: StopFlag) -> None:
    """Receive events until stopped, then drain what is already queued."""
    with zmq.Context() as ctx:
        m = Matcher(cfg, ctx)
        try:
            log.info(
                "matcher listening on %s (%d rules)",
                sockets.bound_endpoint(m.inbox),
                len(m.rules),
            )
            if not len(m.rules):
                log.warning(
                    "no events are configured (ENV_EVENTS, STATIC_EVENTS_ENABLED): "
                    "messages are logged but nothing will be notified"
                )
            poller = zmq.Poller()
            poller.register(m.inbox, zmq.POLLIN)
            while not stop.is_set():
                if poller.poll(sockets.POLL_MS):
                    # Take what is queued in one go; poll again only when idle.
                    for _ in range(1000):
                        try:
                            frame = m.inbox.recv(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        m.handle(frame, stop)
            log.info("stopping (%s)", stop.signal_name or "requested")
            deadline = time.monotonic() + cfg.drain_seconds
            while time.monotonic() < deadline and not stop.force:
                if not poller.poll(50):
                    break
                m.handle(m.inbox.recv(), stop)
            m.bad.flush()
            log.info(
                "stopped: handled=%d alerts=%d malformed=%d",
                m.handled,
                m.alerts,
                m.bad.total,
            )
        finally:
            m.close()
