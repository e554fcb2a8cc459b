"""The matcher loop: archive each event, try every rule, push alerts to notify."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import msgspec
import zmq

from alertik.common import sockets
from alertik.common.config import Config, ConfigError
from alertik.common.lifecycle import Ready, Stage, StopFlag, Wiring, serve
from alertik.common.metrics import Bounded, Samples, rows
from alertik.common.schema import ENCODER, EVENT_DECODER, Alert
from alertik.common.throttle import Throttled
from alertik.matcher.alerts import (
    SILENCE_RULE,
    build_alerts,
    release_alerts,
    silence_alerts,
)
from alertik.matcher.archive import Archive
from alertik.matcher.formats import classify
from alertik.matcher.gate import Gate
from alertik.matcher.handoff import Handoff
from alertik.matcher.reload import Reload, Reloads
from alertik.matcher.rules import compile_rules
from alertik.matcher.rulestate import RuleStore
from alertik.matcher.silence import Notice, Silence, configure as configure_silence

log = logging.getLogger(__name__)

# Events handled per wake-up before the archive is written and the stop flag
# looked at again: at 50,000 events/s a batch is 20 ms of work.
BATCH = 1000
# A wake-up that finds at least this many events means a flood: the matcher
# then pauses COALESCE_SECONDS before polling again, so that it takes events
# (and writes the archive) in batches instead of one by one; its queue holds
# them meanwhile. A trickle is never delayed.
COALESCE_FROM = 4
COALESCE_SECONDS = 0.002
# How often routers are checked for silence (ALERTIK_SILENCE_AFTER is at
# least a second).
SILENCE_CHECK_SECONDS = 1.0


class Matcher(Stage):
    """Archives every event, tries every rule, pushes alerts to notify."""

    name = "matcher"

    def __init__(self, cfg: Config, clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.rules = compile_rules(cfg.rules, cfg.static_rules, cfg.rules_file)
        self.clock = clock  # wall time, for cooldown and quiet-hours ends
        self.gate = Gate(
            self.rules.file_rules,
            suffix=cfg.time_suffix,
            max_keys=cfg.rule_keys_max,
            clock=clock,
        )
        self.reloads = Reloads(cfg.rules_path)
        self.handled = 0
        self.alerts = 0
        self.bad = Throttled(log, "malformed messages skipped")
        # For ALERTIK_METRICS_ADDR and silence alerts (common/metrics.py).
        self.routers = Bounded()
        self.last_seen: dict[str, float] = {}  # router -> when (wall clock)
        self.formats: dict[str, int] = {}
        self.rule_matches: dict[str, int] = {}
        self.raised: dict[str, int] = {}  # per destination
        self.router_alerts: dict[str, int] = {}
        self.silence_alerts = {"silent": 0, "back": 0}
        self.silence: Silence | None = None
        self.silence_notify: dict[str, tuple[str, ...]] = {}  # router -> targets
        self.next_silence_check = 0.0
        self.watch_silence(cfg)

    def open(self, wiring: Wiring) -> None:
        self.inbox = wiring.pull("matcher")
        self.tap = wiring.tap("matcher_tap")
        cfg = self.cfg
        self.handoff = Handoff(wiring, cfg)
        self.spool = self.handoff.spool
        self.archive = wiring.hold(
            Archive(cfg.log_file, cfg.log_max_bytes, cfg.log_backups)
        )
        # After the spool: its lock keeps other matchers out of state_dir.
        self.gate.store = wiring.hold(RuleStore(cfg.state_dir))
        self.emit(release_alerts(self.gate.restore()))
        if not len(self.rules):
            log.warning(
                "no events are configured (ENV_EVENTS, STATIC_EVENTS_ENABLED, "
                "ALERTIK_RULES_FILE): messages are logged but nothing will be "
                "notified"
            )

    def describe(self) -> str:
        return (
            f"{sockets.bound_endpoint(self.inbox)} ({len(self.rules)} rules, "
            f"tap {sockets.bound_endpoint(self.tap)})"
        )

    def turn(self, ready: Ready) -> int:
        job = self.reloads.finished()
        if job is not None:
            self.switch(job)
        if self.reloads.changed():
            self.start_reload("the file changed")
        due = self.gate.next_due()
        if due is not None and due <= self.clock():
            self.emit(release_alerts(self.gate.due()))
            self.archive.flush()
            self.gate.flush()
            self.handoff.spool_overflow()
        if self.silence is not None:
            now = time.monotonic()
            if now >= self.next_silence_check:
                self.next_silence_check = now + SILENCE_CHECK_SECONDS
                self.raise_silence(self.silence.check(time.time()))
        self.handoff.send_spooled()
        if self.inbox not in ready:
            return 0
        # Take what is queued in one go; poll again only when idle.
        taken = self.take()
        if COALESCE_FROM <= taken < BATCH:
            time.sleep(COALESCE_SECONDS)
        return taken

    def wait_ms(self) -> float:
        due = self.gate.next_due()
        if due is None:
            return sockets.POLL_MS
        return max(0.0, min(sockets.POLL_MS, (due - self.clock()) * 1000))

    def reload(self) -> None:
        self.start_reload("SIGHUP")

    def finish(self, deadline: float) -> None:
        self.bad.flush()
        self.gate.flush()

    def pending(self) -> int:
        # What waits in a durable spool is sent after a restart; in memory it
        # would be lost, so the drain gives notify the chance to take it.
        return 0 if self.spool.durable else len(self.spool)

    def counters(self) -> dict[str, int]:
        gate = self.gate
        return {
            "handled": self.handled,
            "alerts": self.alerts,
            "malformed": self.bad.total,
            "spooled": len(self.spool),
            "spool_dropped": self.spool.dropped.total,
            "held": gate.held_total,
            "summaries": gate.summaries,
            "quiet_held": gate.quiet_held,
            "digests": gate.digests,
            "rule_keys": len(gate.keys),
            "rule_keys_evicted": gate.evicted,
            "reloads": self.reloads.count,
            "reload_errors": self.reloads.errors,
        }

    def metrics(self) -> Samples:
        return {
            "alertik_messages_matched_total": rows(self.formats),
            "alertik_lines_archived_total": rows(self.archive.written),
            "alertik_lines_lost_total": [[self.archive.lost.total]],
            "alertik_rule_matches_total": rows(self.rule_matches),
            "alertik_alerts_raised_total": rows(self.raised),
            "alertik_router_alerts_total": rows(self.router_alerts),
            "alertik_router_last_message_seconds": rows(self.last_seen),
            "alertik_alerts_held_total": [
                ["threshold", self.gate.below_threshold],
                ["cooldown", self.gate.held_total],
                ["quiet_hours", self.gate.quiet_holds],
            ],
            "alertik_silence_alerts_total": rows(self.silence_alerts),
            "alertik_spool_pending": [[len(self.spool)]],
            "alertik_spool_dropped_total": [[self.spool.dropped.total]],
            "alertik_malformed_messages_total": [["matcher", self.bad.total]],
        }

    def handle(self, frame: bytes) -> None:
        try:
            event = EVENT_DECODER.decode(frame)
        except msgspec.DecodeError as exc:
            self.bad.hit(f"{exc}: {frame[:64]!r}")
            return
        self.handled += 1
        fmt = classify(event.raw)
        self.formats[fmt] = self.formats.get(fmt, 0) + 1
        router = self.routers.label(event.sender)
        if self.silence is not None and self.silence.watching(router):
            self.raise_silence(
                self.silence.heard(router, event.received, self.last_seen.get(router))
            )
        self.last_seen[router] = event.received
        self.archive.message(event.received, event.sender, event.raw)
        self.emit(
            build_alerts(
                self.cfg, self.rules, event, self.gate, matched=self.rule_matches
            )
        )

    def emit(self, alerts: list[Alert]) -> None:
        """Note each alert in the archive and hand it to notify."""
        for alert in alerts:
            self.send(alert, f"{alert.rule} matched, sending to {alert.notifier}")
            router = self.routers.label(alert.sender)
            self.router_alerts[router] = self.router_alerts.get(router, 0) + 1

    def send(self, alert: Alert, note: str) -> None:
        """Note one alert in the archive, hand it to notify, show it on the tap."""
        self.archive.note(alert.received, note)
        payload = ENCODER.encode(alert)
        self.handoff.hand(payload)
        sockets.publish(self.tap, payload)
        self.alerts += 1
        self.raised[alert.notifier] = self.raised.get(alert.notifier, 0) + 1

    def watch_silence(self, cfg: Config) -> None:
        """ALERTIK_SILENCE_* and the rules file's [routers."ADDRESS"] tables
        (at start and after each reload of the file)."""
        routers = cfg.rules_file.routers if cfg.rules_file is not None else ()
        self.silence, self.silence_notify = configure_silence(
            self.silence, cfg.silence_after, routers, self.last_seen, time.time()
        )

    def raise_silence(self, notices: list[Notice]) -> None:
        """Send each silence notice to the router's silence_notify (rules file)
        or else to every ALERTIK_SILENCE_NOTIFY destination."""
        for notice in notices:
            now = time.time()
            log.warning("%s", notice.text)
            self.silence_alerts[notice.kind] += 1
            targets = self.silence_notify.get(notice.router, self.cfg.silence_notify)
            for alert in silence_alerts(self.cfg, notice, targets, now):
                self.send(alert, f"{SILENCE_RULE}, sending to {alert.notifier}")
        if notices:
            self.handoff.spool_overflow()

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
        self.gate.flush()
        self.handoff.spool_overflow()
        return taken

    # --- reloading the rules file ---------------------------------------------

    def start_reload(self, why: str) -> None:
        self.reloads.start(self.cfg, why, self.rules.file_rules)

    def switch(self, job: Reload) -> None:
        """Use the rules a finished reload compiled (between two messages)."""
        if isinstance(job.result, ConfigError):
            self.reloads.failed(job, job.result, len(self.rules))
        elif job.result is not None:
            cfg, rules = job.result
            self.cfg = cfg
            self.rules = rules
            self.watch_silence(cfg)
            kept = self.gate.rules.keys() & {r.identity for r in rules.file_rules}
            released = self.gate.rebind(rules.file_rules)
            self.reloads.switched(job, cfg, rules, len(kept), len(released))
            self.emit(release_alerts(released))
            self.gate.flush()
        if job.again:
            self.start_reload(job.again)


def run(cfg: Config, stop: StopFlag) -> None:
    """Receive events until stopped, then drain (tests call this)."""
    serve(Matcher(cfg), cfg, stop)
