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
from functools import partial

import msgspec
import urllib3
import zmq

from alertik.common.config import Config, Destination, NotifyConfig, redact_url
from alertik.common.lifecycle import StopFlag
from alertik.common.schema import ALERT_DECODER, ENCODER, Alert, Delivery
from alertik.common.sockets import (
    POLL_MS,
    bind_pull,
    bind_tap,
    bound_endpoint,
    publish,
    usable,
)
from alertik.common.throttle import Throttled
from alertik.notify import render
from alertik.notify.delivery import Courier, Outcome, Verdict
from alertik.notify.outbox import Entry, Outbox

log = logging.getLogger(__name__)

# Alerts read from the socket per outbox transaction: one commit for a burst
# instead of one per alert.
RECV_BATCH = 1000
# Rows a worker reads when it packs a digest: more than the largest digest can
# hold even with very short alerts.
DIGEST_SCAN = 2000
# How often rows older than ALERTIK_OUTBOX_MAX_AGE are discarded.
EXPIRE_EVERY_S = 60.0
# An idle worker looks at the outbox this often even without a wake-up.
IDLE_WAIT_S = 5.0
# The same error about dropped or stuck alerts is repeated at most this often.
REPORT_EVERY_S = 10.0
# How much of an undecodable message goes into the warning.
REPR_BYTES = 80

Report = Callable[[Delivery], None]


class Worker(threading.Thread):
    """Delivers one destination's backlog from the outbox, in order."""

    def __init__(
        self,
        dest: Destination,
        cfg: NotifyConfig,
        outbox: Outbox,
        report: Report,
        halt: threading.Event,
    ) -> None:
        super().__init__(name=f"notify-{dest.notifier}", daemon=True)
        self.dest = dest
        self.courier = Courier(dest, cfg, halt)
        self.name_for_log = self.courier.name
        self.delivered = 0
        self.failed = 0
        self.disabled = ""  # why this destination is no longer used
        self.error: BaseException | None = None
        self._cfg = cfg
        self._outbox = outbox
        self._report = report
        self._halt = halt
        self._wake = threading.Event()
        service = render.SERVICES[dest.kind]
        self._digests = service.chat or cfg.generic_digest

    def wake(self) -> None:
        """Tell the worker there is something new in the outbox (or to stop)."""
        self._wake.set()

    def run(self) -> None:
        """Deliver the backlog until halted; a crash is kept for check_workers."""
        try:
            while not self._halt.is_set():
                self._wake.clear()
                if self.disabled or not self._outbox.count(self.dest.notifier):
                    self._wake.wait(IDLE_WAIT_S)
                    continue
                # Wait for our turn before choosing what to send, so a digest
                # takes in everything that arrived meanwhile.
                delay = self.courier.pacer.delay(time.monotonic())
                if delay and self._halt.wait(delay):
                    break
                self._deliver_next()
        except BaseException as exc:
            self.error = exc
            log.exception("%s: worker crashed", self.name_for_log)
        finally:
            self.courier.close()

    def _deliver_next(self) -> None:
        notifier = self.dest.notifier
        digest = self._digests and self._outbox.count(notifier) > self._cfg.digest_after
        entries = self._outbox.pending(notifier, DIGEST_SCAN if digest else 1)
        if not entries:
            return
        count = 1
        if digest and entries[0].parts_done == 0:
            count = render.pack(self.dest.kind, [e.text for e in entries])
        if count > 1:
            self._send_digest(entries[:count])
        else:
            self._send_single(entries[0])

    def _send(self, text: str, entries: Sequence[Entry]) -> Outcome:
        def retrying(attempt: int, verdict: Verdict) -> None:
            for e in entries:
                self._report(
                    Delivery(
                        id=e.alert_id,
                        notifier=e.notifier,
                        outcome="retrying",
                        attempts=attempt,
                        detail=verdict.reason,
                    )
                )

        return self.courier.send(text, on_retry=retrying)

    def _send_single(self, entry: Entry) -> None:
        messages = render.parts(self.dest.kind, entry.text)
        # Progress recorded under other limits may point past the end.
        first = min(entry.parts_done, len(messages) - 1)
        for index in range(first, len(messages)):
            outcome = self._send(messages[index], [entry])
            if outcome.result == "delivered" and index + 1 < len(messages):
                self._outbox.set_progress(entry.seq, index + 1)
                continue
            self._settle([entry], outcome, len(messages))
            return

    def _send_digest(self, entries: Sequence[Entry]) -> None:
        outcome = self._send(render.digest([e.text for e in entries]), entries)
        self._settle(entries, outcome, 1)

    def _settle(self, entries: Sequence[Entry], outcome: Outcome, parts: int) -> None:
        """Remove what is done, report every alert's fate, log it."""
        notifier = self.dest.notifier
        what = (
            f"alert {entries[0].alert_id}"
            if len(entries) == 1
            else f"{len(entries)} alerts in one digest"
        )
        if outcome.result == "delivered":
            self._outbox.remove(notifier, [e.seq for e in entries])
            self.delivered += len(entries)
            log.info(
                "%s: delivered %s%s (HTTP %s, %d attempt%s)",
                self.name_for_log,
                what,
                f" in {parts} parts" if parts > 1 else "",
                outcome.status,
                outcome.attempts,
                "" if outcome.attempts == 1 else "s",
            )
        elif outcome.result == "failed":
            self._outbox.remove(notifier, [e.seq for e in entries])
            self.failed += len(entries)
            log.error(
                "%s: %s refused, not retried: %s",
                self.name_for_log,
                what,
                outcome.detail,
            )
        elif outcome.result == "disabled":
            self.disabled = outcome.detail
            log.error(
                "%s: %s. NOT USING THIS DESTINATION ANY MORE until notify restarts; "
                "its %d alerts stay in the outbox: configure a new webhook URL",
                self.name_for_log,
                outcome.detail,
                self._outbox.count(notifier),
            )
            return
        else:
            # Halted mid-way: the alerts stay in the outbox for next time.
            return
        for e in entries:
            self._report(
                Delivery(
                    id=e.alert_id,
                    notifier=e.notifier,
                    outcome=outcome.result,
                    attempts=outcome.attempts,
                    status=outcome.status,
                    detail=outcome.detail,
                )
            )


class Notify:
    """The receiving side: decode, store, wake workers, publish outcomes."""

    def __init__(self, cfg: Config, outbox: Outbox, tap: zmq.Socket[bytes]) -> None:
        self.cfg = cfg
        self.outbox = outbox
        self.tap = tap
        self.halt = threading.Event()
        self.outcomes: queue.SimpleQueue[Delivery] = queue.SimpleQueue()
        self.workers = {
            d.notifier: Worker(d, cfg.notify, outbox, self.outcomes.put, self.halt)
            for d in cfg.notify.destinations
        }
        self.received = 0
        self.stored = 0
        self.duplicates = 0
        self.unknown = 0
        self.discarded = 0
        self.malformed = Throttled(log, "malformed messages skipped", REPORT_EVERY_S)
        self._reported: dict[str, float] = {}
        self._next_expiry = 0.0

    def start(self) -> None:
        """Start one worker per destination."""
        for worker in self.workers.values():
            worker.start()

    def check_workers(self) -> None:
        """Re-raise a worker's crash here, so the stage exits and is restarted."""
        for worker in self.workers.values():
            if worker.error is not None:
                raise RuntimeError(
                    f"the {worker.dest.notifier} worker crashed"
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
            alerts.append(alert)
        if not alerts:
            return
        added = self.outbox.add(alerts)
        self.stored += sum(added.stored.values())
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
            publish(self.tap, ENCODER.encode(delivery))

    def stop_workers(self, budget: float) -> list[Worker]:
        """Halt workers; wait up to budget s for in-flight requests; the laggards."""
        self.halt.set()
        for worker in self.workers.values():
            worker.wake()
        deadline = time.monotonic() + budget
        for worker in self.workers.values():
            worker.join(max(0.0, deadline - time.monotonic()))
        return [w for w in self.workers.values() if w.is_alive()]


def _warn_insecure(destinations: Sequence[Destination]) -> None:
    insecure = [d for d in destinations if not d.verify_tls]
    if insecure:
        # We say it once here instead of urllib3 warning on every request.
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        log.warning(
            "TLS certificates are NOT verified for %s (ALERTIK_TLS_INSECURE)",
            ", ".join(d.notifier for d in insecure),
        )


def run(cfg: Config, stop: StopFlag) -> None:
    """Run notify until stop is set, then drain within cfg.drain_seconds."""
    ncfg = cfg.notify
    outbox = Outbox.open(
        cfg.state_dir, ncfg.outbox_max_count, ncfg.outbox_max_age_seconds
    )
    try:
        with (
            zmq.Context() as ctx,
            usable(cfg, "notify", partial(bind_pull, ctx)) as pull,
            usable(cfg, "notify_tap", partial(bind_tap, ctx)) as tap,
        ):
            _serve(cfg, stop, outbox, pull, tap)
    finally:
        outbox.close()


def _serve(
    cfg: Config,
    stop: StopFlag,
    outbox: Outbox,
    pull: zmq.Socket[bytes],
    tap: zmq.Socket[bytes],
) -> None:
    notify = Notify(cfg, outbox, tap)
    destinations = cfg.notify.destinations
    _warn_insecure(destinations)
    log.info(
        "notify listening on %s (tap %s, outbox %s)",
        bound_endpoint(pull),
        bound_endpoint(tap),
        outbox.path or "in memory",
    )
    if destinations:
        log.info(
            "destinations: %s",
            ", ".join(f"{d.notifier} ({redact_url(d.url)})" for d in destinations),
        )
    else:
        log.warning("no destinations configured: every alert will be dropped")
    notify.start()
    while not stop.is_set():
        if pull.poll(POLL_MS):
            notify.receive(pull)
        notify.check_workers()
        notify.maintain(time.monotonic())
    log.info("stopping (%s)", stop.signal_name or "asked to")
    budget = 0.0 if stop.force else cfg.drain_seconds
    deadline = time.monotonic() + budget
    # What already sits in our socket was sent before the matcher stopped:
    # store it (cheap) so it is delivered after the restart.
    while time.monotonic() < deadline and notify.receive(pull):
        pass
    laggards = notify.stop_workers(max(0.0, deadline - time.monotonic()))
    notify.publish_outcomes()
    notify.malformed.flush()
    if laggards:
        log.error(
            "%d deliveries still in flight after the %.1f s drain (%s); their "
            "alerts stay in the outbox",
            len(laggards),
            budget,
            ", ".join(w.dest.notifier for w in laggards),
        )
    log.info(
        "stopped: received=%d stored=%d duplicates=%d malformed=%d unknown=%d "
        "delivered=%d failed=%d discarded=%d pending=%d",
        notify.received,
        notify.stored,
        notify.duplicates,
        notify.malformed.total,
        notify.unknown,
        sum(w.delivered for w in notify.workers.values()),
        sum(w.failed for w in notify.workers.values()),
        notify.discarded,
        outbox.total(),
    )
