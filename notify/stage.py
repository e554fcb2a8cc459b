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
import time
from collections.abc import Sequence

import msgspec
import zmq

from alertik.common import sockets
from alertik.common.config import Config, ConfigError
from alertik.common.destinations import DestinationError, check_references
from alertik.common.lifecycle import Ready, Stage, StopFlag, Wiring, serve
from alertik.common.metrics import Samples, rows
from alertik.common.schema import ALERT_DECODER, ENCODER, Alert, Delivery
from alertik.common.throttle import Throttled
from alertik.notify.outbox import Entry, Outbox
from alertik.notify.roster import Roster

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

    def open(self, wiring: Wiring) -> None:
        ncfg = self.cfg.notify
        try:
            check_references(ncfg.destinations)
        except DestinationError as exc:
            raise ConfigError("ALERTIK_RULES_FILE", str(exc)) from None
        self.outbox = wiring.hold(
            Outbox.open(
                self.cfg.state_dir, ncfg.outbox_max_count, ncfg.outbox_max_age_seconds
            )
        )
        self.pull = wiring.pull("notify")
        self.tap = wiring.tap("notify_tap")
        self.roster = Roster(self.cfg, self.outbox, self.outcomes.put, self.relay)
        self.workers = self.roster.workers
        self.roster.start()

    def describe(self) -> str:
        return (
            f"{sockets.bound_endpoint(self.pull)} "
            f"(tap {sockets.bound_endpoint(self.tap)}, "
            f"outbox {self.outbox.path or 'in memory'})"
        )

    def reload(self) -> None:
        self.roster.reload("SIGHUP")

    def turn(self, ready: Ready) -> int:
        self.roster.tend()
        taken = self.receive(self.pull) if self.pull in ready else 0
        self.roster.check()
        self.maintain(time.monotonic())
        return taken

    def finish(self, deadline: float) -> None:
        # What was in our socket is stored (the drain did that, cheaply), so it
        # is delivered after a restart; in-flight requests get what time is left.
        laggards = self.roster.stop(max(0.0, deadline - time.monotonic()))
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
            if alert.notifier not in self.workers and self.roster.file_changed():
                # The matcher may have read a new rules file before us.
                self.roster.reload("an alert for a new destination")
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
            order = self.roster.orders.get(alert.notifier)
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


def run(cfg: Config, stop: StopFlag) -> None:
    """Run notify until stop is set, then drain within cfg.drain_seconds."""
    serve(Notify(cfg), cfg, stop)
