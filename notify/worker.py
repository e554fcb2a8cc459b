"""One destination's delivery thread: its backlog, in order, paced.

A worker sends its backlog oldest first, one message at a time, paced for its
service; when the backlog grows past ``digest_after`` a chat destination gets
digests that carry many alerts per message. Each message has a key made from
its alerts' ids (and its part number), the same on every retry and after a
restart, for services that drop a repeated request (Matrix, e-mail). Workers
never touch ZeroMQ sockets (they are not thread-safe): outcomes go to
``report``.

An action's worker (the RouterOS address list) also tells another
destination, its ``report``, what it did or, in audit mode, would have done:
through ``relay``, which stores that message in the outbox like an alert.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence

from alertik.common.config import NotifyConfig
from alertik.common.destinations import AddressListDestination, Destination
from alertik.common.schema import Alert, Delivery
from alertik.notify import render, routeros, services
from alertik.notify.delivery import Courier, Outcome
from alertik.notify.outbox import Entry, Outbox
from alertik.notify.services import Verdict

log = logging.getLogger(__name__)

# Rows a worker reads when it packs a digest: more than the largest digest can
# hold even with very short alerts.
DIGEST_SCAN = 2000
# An idle worker looks at the outbox this often even without a wake-up.
IDLE_WAIT_S = 5.0

Report = Callable[[Delivery], None]
Relay = Callable[[Alert], None]


def message_key(alert_ids: Sequence[str], part: int) -> str:
    """A message's idempotency key: its alerts and its part, hashed."""
    digest = hashlib.sha256("\n".join(alert_ids).encode("utf-8"))
    digest.update(f"#{part}".encode())
    return digest.hexdigest()[:32]


class Worker(threading.Thread):
    """Delivers one destination's backlog from the outbox, in order."""

    def __init__(
        self,
        dest: Destination,
        cfg: NotifyConfig,
        outbox: Outbox,
        report: Report,
        halt: threading.Event,
        relay: Relay | None = None,
    ) -> None:
        super().__init__(name=f"notify-{dest.name}", daemon=True)
        self.dest = dest
        self.courier = Courier(dest, cfg, halt)
        self.name_for_log = self.courier.name
        self.delivered = 0
        self.failed = 0
        self.retried = 0  # failed attempts that will be tried again, per alert
        self.retrying = False  # the last attempt failed and is being retried
        self.disabled = ""  # why this destination is no longer used
        self.error: BaseException | None = None
        self._cfg = cfg
        self._outbox = outbox
        self._report = report
        self._halt = halt
        self._relay = relay
        self._wake = threading.Event()
        service = self.courier.service
        self._digests = service.chat or (cfg.generic_digest and not service.action)

    def wake(self) -> None:
        """Tell the worker there is something new in the outbox (or to stop)."""
        self._wake.set()

    def run(self) -> None:
        """Deliver the backlog until halted; a crash is kept for check_workers."""
        try:
            while not self._halt.is_set():
                self._wake.clear()
                if self.disabled or not self._outbox.count(self.dest.name):
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
        notifier = self.dest.name
        digest = self._digests and self._outbox.count(notifier) > self._cfg.digest_after
        entries = self._outbox.pending(notifier, DIGEST_SCAN if digest else 1)
        if not entries:
            return
        count = 1
        if digest and entries[0].parts_done == 0:
            count = services.pack(self.dest.kind, [e.text for e in entries])
        if count > 1:
            self._send_digest(entries[:count])
        else:
            self._send_single(entries[0])

    def _send(self, text: str, entries: Sequence[Entry], part: int = 0) -> Outcome:
        def retrying(attempt: int, verdict: Verdict) -> None:
            self.retrying = True
            self.retried += len(entries)
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

        key = message_key([e.alert_id for e in entries], part)
        outcome = self.courier.send(text, key=key, on_retry=retrying)
        self.retrying = outcome.result not in ("delivered", "failed")
        return outcome

    @property
    def state(self) -> str:
        """ok, retrying or disabled (for the status page and the metrics)."""
        if self.disabled:
            return "disabled"
        return "retrying" if self.retrying else "ok"

    def _send_single(self, entry: Entry) -> None:
        messages = services.parts(self.dest.kind, entry.text)
        # Progress recorded under other limits may point past the end.
        first = min(entry.parts_done, len(messages) - 1)
        for index in range(first, len(messages)):
            outcome = self._send(messages[index], [entry], index)
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
        notifier = self.dest.name
        what = (
            f"alert {entries[0].alert_id}"
            if len(entries) == 1
            else f"{len(entries)} alerts in one digest"
        )
        protocol = self.courier.service.protocol
        if outcome.result == "delivered":
            self._outbox.remove(notifier, [e.seq for e in entries])
            self.delivered += len(entries)
            status = "" if outcome.status is None else f"{protocol} {outcome.status}, "
            log.info(
                "%s: delivered %s%s (%s%d attempt%s)%s",
                self.name_for_log,
                what,
                f" in {parts} parts" if parts > 1 else "",
                status,
                outcome.attempts,
                "" if outcome.attempts == 1 else "s",
                f": {outcome.detail}" if outcome.detail else "",
            )
        elif outcome.result == "skipped":
            self._outbox.remove(notifier, [e.seq for e in entries])
            log.warning(
                "%s: %s not acted on: %s", self.name_for_log, what, outcome.detail
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
        if isinstance(self.dest, AddressListDestination):
            for e in entries:
                self._tell(e, outcome)
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

    def _tell(self, entry: Entry, outcome: Outcome) -> None:
        """Tell the action's report destination what became of one order."""
        dest = self.dest
        if not isinstance(dest, AddressListDestination) or not dest.report:
            return
        if self._relay is None:
            return
        order = services.read_order(entry.text)
        text = routeros.report_text(dest, order, outcome.result, outcome.detail)
        if text is None:
            return
        self._relay(
            Alert(
                id=f"{entry.alert_id}/{dest.name}",
                notifier=dest.report,
                text=text,
                rule=order.rule,
                received=time.time(),
                sender=order.sender,
                node=order.node,
            )
        )
