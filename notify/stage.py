"""notify's loop: receive alerts, store them in the outbox, deliver them.

The receive loop does nothing but decode alerts, write them to the outbox and
wake the worker of the destination concerned; it never waits for HTTP. Each
destination has one worker thread, so a slow or dead service delays only its
own alerts. A worker sends its backlog oldest first, one message at a time,
paced for its service; when the backlog grows past ``digest_after`` a chat
destination gets digests that carry many alerts per message.

Workers never touch ZeroMQ sockets (they are not thread-safe): their outcomes
go through a queue that the loop publishes on the tap.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence

import msgspec
import urllib3
import zmq

from alertik.common import config, rulesfile, sockets
from alertik.common.config import Config, ConfigError
from alertik.common.destinations import (
    AddressListDestination,
    Destination,
    DestinationError,
    check_references,
)
from alertik.common.lifecycle import Ready, Stage, StopFlag, Wiring, serve
from alertik.common.metrics import Samples, rows
from alertik.common.schema import ALERT_DECODER, ENCODER, Alert, Delivery
from alertik.common.throttle import Throttled
from alertik.notify import routeros
from alertik.notify.outbox import Entry, Outbox
from alertik.notify.services import service_of
from alertik.notify.worker import Worker

log = logging.getLogger(__name__)

# Alerts read from the socket per outbox transaction: one commit for a burst
# instead of one per alert.
RECV_BATCH = 1000
# How often rows older than ALERTIK_OUTBOX_MAX_AGE are discarded.
EXPIRE_EVERY_S = 60.0
# The same error about dropped or stuck alerts is repeated at most this often.
REPORT_EVERY_S = 10.0
# How much of an undecodable message goes into the warning.
REPR_BYTES = 80


class Notify(Stage):
    """The receiving side: decode, store, wake workers, publish outcomes."""

    name = "notify"

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.halt = threading.Event()
        self.outcomes: queue.SimpleQueue[Delivery] = queue.SimpleQueue()
        self.received = 0
        self.stored = 0
        self.duplicates = 0
        self.unknown = 0
        self.discarded = 0
        self.accepted: dict[str, int] = {}  # per destination
        self.discarded_for: dict[str, int] = {}
        self.malformed = Throttled(log, "malformed messages skipped", REPORT_EVERY_S)
        self._reported: dict[str, float] = {}
        self._next_expiry = 0.0
        # Each worker's own halt (set with self.halt on stop), so that a reload
        # can replace one; replacements wait here until the old one is done.
        self._halts: dict[str, threading.Event] = {}
        self._waiting: dict[str, Worker] = {}
        self.watcher = rulesfile.Watcher(cfg.rules_path) if cfg.rules_path else None

    def open(self, wiring: Wiring) -> None:
        ncfg = self.cfg.notify
        try:
            check_references(ncfg.destinations)
        except DestinationError as exc:
            raise ConfigError("ALERTIK_RULES_FILE", str(exc)) from None
        self.orders = _orders(ncfg.destinations)
        self.outbox = wiring.hold(
            Outbox.open(
                self.cfg.state_dir, ncfg.outbox_max_count, ncfg.outbox_max_age_seconds
            )
        )
        self.pull = wiring.pull("notify")
        self.tap = wiring.tap("notify_tap")
        self.workers = {d.name: self._worker(d) for d in ncfg.destinations}
        destinations = ncfg.destinations
        _warn_insecure(destinations)
        _describe_actions(destinations)
        if destinations:
            log.info(
                "destinations: %s",
                ", ".join(d.shown() for d in destinations),
            )
        else:
            log.warning("no destinations configured: every alert will be dropped")
        self.start()

    def describe(self) -> str:
        return (
            f"{sockets.bound_endpoint(self.pull)} "
            f"(tap {sockets.bound_endpoint(self.tap)}, "
            f"outbox {self.outbox.path or 'in memory'})"
        )

    def _worker(self, dest: Destination) -> Worker:
        halt = self._halts[dest.name] = threading.Event()
        return Worker(
            dest, self.cfg.notify, self.outbox, self.outcomes.put, halt, self.relay
        )

    def reload(self) -> None:
        self.reload_destinations("SIGHUP")

    def reload_destinations(self, why: str) -> None:
        """Take in destinations the rules file added or changed.

        A changed destination's worker finishes what it is sending, then a
        new one takes over its backlog; a removed one keeps delivering what
        it holds until notify restarts.
        """
        if not self.cfg.rules_path:
            log.info("no ALERTIK_RULES_FILE to reload (%s)", why)
            return
        if self.watcher is not None:
            self.watcher.taken()
        try:
            cfg = config.reload_rules(self.cfg)
        except ConfigError as exc:
            log.error("destinations not reloaded (%s); those in use stay: %s", why, exc)
            return
        self.cfg = cfg
        self.orders = _orders(cfg.notify.destinations)
        changed = []
        for dest in cfg.notify.destinations:
            old = self.workers.get(dest.name)
            if old is not None and old.dest == dest:
                continue
            changed.append(dest)
            if old is None:
                self.workers[dest.name] = worker = self._worker(dest)
                worker.start()
            else:
                self._halts[dest.name].set()
                old.wake()
                self._waiting[dest.name] = self._worker(dest)
        if changed:
            _warn_insecure(changed)
            _describe_actions(changed)
            log.info(
                "destinations reloaded (%s): %s",
                why,
                ", ".join(d.shown() for d in changed),
            )

    def _replace_finished(self) -> None:
        """Start the replacement of each changed worker once it has stopped."""
        for name, worker in list(self._waiting.items()):
            if not self.workers[name].is_alive():
                del self._waiting[name]
                self.workers[name] = worker
                worker.start()

    def turn(self, ready: Ready) -> int:
        if self.watcher is not None and self.watcher.poll(time.monotonic()):
            self.reload_destinations("the file changed")
        if self._waiting:
            self._replace_finished()
        taken = self.receive(self.pull) if self.pull in ready else 0
        self.check_workers()
        self.maintain(time.monotonic())
        return taken

    def finish(self, deadline: float) -> None:
        # What was in our socket is stored (the drain did that, cheaply), so it
        # is delivered after a restart; in-flight requests get what time is left.
        laggards = self.stop_workers(max(0.0, deadline - time.monotonic()))
        self.publish_outcomes()
        self.malformed.flush()
        if laggards:
            log.error(
                "%d deliveries still in flight at the end of the drain (%s); their "
                "alerts stay in the outbox",
                len(laggards),
                ", ".join(w.dest.name for w in laggards),
            )

    def counters(self) -> dict[str, int]:
        workers = self.workers.values()
        return {
            "received": self.received,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "malformed": self.malformed.total,
            "unknown": self.unknown,
            "delivered": sum(w.delivered for w in workers),
            "failed": sum(w.failed for w in workers),
            "discarded": self.discarded,
            "pending": self.outbox.total(),
        }

    def metrics(self) -> Samples:
        workers = self.workers
        now = time.time()
        oldest = self.outbox.oldest()
        return {
            "alertik_alerts_accepted_total": rows(self.accepted),
            "alertik_alerts_delivered_total": [
                [name, w.delivered] for name, w in workers.items()
            ],
            "alertik_alerts_retried_total": [
                [name, w.retried] for name, w in workers.items()
            ],
            "alertik_alerts_failed_total": [
                [name, w.failed] for name, w in workers.items()
            ],
            "alertik_alerts_discarded_total": rows(self.discarded_for),
            "alertik_alerts_unrouted_total": [[self.unknown]],
            "alertik_outbox_pending": [
                [name, self.outbox.count(name)] for name in workers
            ],
            "alertik_outbox_oldest_age_seconds": [
                [name, round(max(0.0, now - oldest[name]), 3) if name in oldest else 0]
                for name in workers
            ],
            "alertik_destination_state": [
                [name, state, int(w.state == state)]
                for name, w in workers.items()
                for state in ("ok", "retrying", "disabled")
            ],
            "alertik_malformed_messages_total": [["notify", self.malformed.total]],
        }

    def start(self) -> None:
        """Start one worker per destination."""
        for worker in self.workers.values():
            worker.start()

    def check_workers(self) -> None:
        """Re-raise a worker's crash here, so the stage exits and is restarted."""
        for worker in self.workers.values():
            if worker.error is not None:
                raise RuntimeError(
                    f"the {worker.dest.name} worker crashed"
                ) from worker.error

    def receive(self, pull: zmq.Socket[bytes]) -> int:
        """Read what the socket holds (up to RECV_BATCH) and store it; a count."""
        frames: list[bytes] = []
        while len(frames) < RECV_BATCH:
            try:
                frames.append(pull.recv(zmq.NOBLOCK))
            except zmq.Again:
                break
        if frames:
            self.handle(frames)
        return len(frames)

    def handle(self, frames: Sequence[bytes]) -> None:
        """Decode frames and store the alerts that have a destination."""
        self.received += len(frames)
        alerts: list[Alert] = []
        now = time.monotonic()
        for frame in frames:
            try:
                alert = ALERT_DECODER.decode(frame)
            except msgspec.DecodeError as exc:
                self.malformed.hit(f"{exc}: {frame[:REPR_BYTES]!r}")
                continue
            if alert.notifier not in self.workers and self._file_changed():
                # The matcher may have read a new rules file before us.
                self.reload_destinations("an alert for a new destination")
            if alert.notifier not in self.workers:
                self.unknown += 1
                if now - self._reported.get(alert.notifier, -REPORT_EVERY_S) >= (
                    REPORT_EVERY_S
                ):
                    self._reported[alert.notifier] = now
                    log.error(
                        "alert %s for %r dropped: no destination is configured for "
                        "it (%d dropped so far); set its webhook variables and name "
                        "it in an event",
                        alert.id,
                        alert.notifier,
                        self.unknown,
                    )
                continue
            order = self.orders.get(alert.notifier)
            if order is not None:
                alert = msgspec.structs.replace(alert, text=order(alert))
            alerts.append(alert)
        if not alerts:
            return
        added = self.outbox.add(alerts)
        self.stored += sum(added.stored.values())
        for notifier, count in added.stored.items():
            self.accepted[notifier] = self.accepted.get(notifier, 0) + count
        self.duplicates += added.duplicates
        if added.duplicates:
            log.info("%d duplicate alerts ignored (already accepted)", added.duplicates)
        if added.discarded:
            self._discard(
                added.discarded,
                f"outbox full (ALERTIK_OUTBOX_MAX={self.outbox.max_count})",
            )
        for notifier in added.stored:
            worker = self.workers[notifier]
            worker.wake()
            if (
                worker.disabled
                and now - self._reported.get(worker.name_for_log, -REPORT_EVERY_S)
                >= REPORT_EVERY_S
            ):
                self._reported[worker.name_for_log] = now
                log.error(
                    "%s is not used any more (%s); %d alerts wait in the outbox",
                    worker.name_for_log,
                    worker.disabled,
                    self.outbox.count(notifier),
                )

    def relay(self, alert: Alert) -> None:
        """Store a message a worker sends to another destination (an action's
        report) and wake that destination's worker; from any thread."""
        worker = self.workers.get(alert.notifier)
        if worker is None:
            log.error("%s: no destination %r to report to", alert.id, alert.notifier)
            return
        added = self.outbox.add([alert])
        if added.discarded:
            self._discard(
                added.discarded,
                f"outbox full (ALERTIK_OUTBOX_MAX={self.outbox.max_count})",
            )
        worker.wake()

    def _discard(self, entries: Sequence[Entry], why: str) -> None:
        counts: dict[str, int] = {}
        for e in entries:
            counts[e.notifier] = counts.get(e.notifier, 0) + 1
            self.outcomes.put(
                Delivery(
                    id=e.alert_id,
                    notifier=e.notifier,
                    outcome="discarded",
                    attempts=0,
                    detail=why,
                )
            )
        self.discarded += len(entries)
        for notifier, count in counts.items():
            self.discarded_for[notifier] = self.discarded_for.get(notifier, 0) + count
        log.error(
            "%s: DISCARDED the %d oldest undelivered alerts (%s); %d discarded so far",
            why,
            len(entries),
            Outbox.describe(counts),
            self.discarded,
        )

    def maintain(self, now: float) -> None:
        """Expire old rows (now and then) and publish the workers' outcomes."""
        if now >= self._next_expiry:
            self._next_expiry = now + EXPIRE_EVERY_S
            expired = self.outbox.expire()
            if expired:
                self._discard(
                    expired,
                    f"older than ALERTIK_OUTBOX_MAX_AGE={self.outbox.max_age:g}s",
                )
        self.publish_outcomes()

    def publish_outcomes(self) -> None:
        """Send every queued outcome on the tap."""
        while True:
            try:
                delivery = self.outcomes.get_nowait()
            except queue.Empty:
                return
            sockets.publish(self.tap, ENCODER.encode(delivery))

    def _file_changed(self) -> bool:
        watcher = self.watcher
        return watcher is not None and rulesfile.signature(watcher.path) != (
            watcher.seen
        )

    def stop_workers(self, budget: float) -> list[Worker]:
        """Halt workers; wait up to budget s for in-flight requests; the laggards."""
        self.halt.set()
        for halt in self._halts.values():
            halt.set()
        for worker in self.workers.values():
            worker.wake()
        deadline = time.monotonic() + budget
        for worker in self.workers.values():
            worker.join(max(0.0, deadline - time.monotonic()))
        return [w for w in self.workers.values() if w.is_alive()]


def _orders(destinations: Sequence[Destination]) -> dict[str, Callable[[Alert], str]]:
    """An action keeps an order in the outbox, not the alert's text."""
    return {
        d.name: order
        for d in destinations
        if (order := service_of(d).order) is not None
    }


def _warn_insecure(destinations: Sequence[Destination]) -> None:
    insecure = [d for d in destinations if not d.verify_tls]
    if insecure:
        # We say it once here instead of urllib3 warning on every request.
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        log.warning(
            "TLS certificates are NOT verified for %s (ALERTIK_TLS_INSECURE)",
            ", ".join(d.name for d in insecure),
        )


def _describe_actions(destinations: Sequence[Destination]) -> None:
    """Say at start what each action on a router will do, and how safely."""
    for dest in destinations:
        if isinstance(dest, AddressListDestination):
            log.warning("action %s", routeros.describe(dest))
            if dest.url.lower().startswith("http://"):
                log.warning(
                    "%s: the router's password goes over plain http to %s; "
                    "enable www-ssl on the router and use https://",
                    dest.name,
                    routeros.router_host(dest),
                )


def run(cfg: Config, stop: StopFlag) -> None:
    """Run notify until stop is set, then drain within cfg.drain_seconds."""
    serve(Notify(cfg), cfg, stop)
