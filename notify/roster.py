"""notify's destinations and their workers, one thread per destination.

The roster starts a worker for each destination, takes in destinations the
rules file adds or changes while notify runs (SIGHUP, the file changed, or
an alert for a destination it does not know yet), re-raises a worker's
crash in the loop, and halts the workers at the end of the drain.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

import urllib3

from alertik.common import config, rulesfile
from alertik.common.config import Config, ConfigError
from alertik.common.destinations import AddressListDestination, Destination
from alertik.common.schema import Alert, Delivery
from alertik.notify import routeros
from alertik.notify.outbox import Outbox
from alertik.notify.services import service_of
from alertik.notify.worker import Worker

log = logging.getLogger(__name__)

Order = Callable[[Alert], str]


class Roster:
    """One worker per destination; outcomes go to outcome, reports to relay."""

    def __init__(
        self,
        cfg: Config,
        outbox: Outbox,
        outcome: Callable[[Delivery], None],
        relay: Callable[[Alert], None],
    ) -> None:
        self.cfg = cfg
        self.outbox = outbox
        self.outcome = outcome
        self.relay = relay
        self.halt = threading.Event()
        # Each worker's own halt (set with self.halt on stop), so that a reload
        # can replace one; replacements wait here until the old one is done.
        self._halts: dict[str, threading.Event] = {}
        self._waiting: dict[str, Worker] = {}
        self.watcher = rulesfile.Watcher(cfg.rules_path) if cfg.rules_path else None
        destinations = cfg.notify.destinations
        self.orders = orders(destinations)
        self.workers = {d.name: self._worker(d) for d in destinations}

    def _worker(self, dest: Destination) -> Worker:
        halt = self._halts[dest.name] = threading.Event()
        return Worker(
            dest, self.cfg.notify, self.outbox, self.outcome, halt, self.relay
        )

    def start(self) -> None:
        """Say what the destinations are; start one worker per destination."""
        destinations = self.cfg.notify.destinations
        warn_insecure(destinations)
        describe_actions(destinations)
        if destinations:
            log.info(
                "destinations: %s",
                ", ".join(d.shown() for d in destinations),
            )
        else:
            log.warning("no destinations configured: every alert will be dropped")
        for worker in self.workers.values():
            worker.start()

    def file_changed(self) -> bool:
        """Whether the rules file differs from what was read last (looked at now)."""
        watcher = self.watcher
        return watcher is not None and rulesfile.signature(watcher.path) != (
            watcher.seen
        )

    def tend(self) -> None:
        """Once per loop turn: reload if the file changed (looked at now and then),
        start the replacements whose predecessor is done."""
        if self.watcher is not None and self.watcher.poll(time.monotonic()):
            self.reload("the file changed")
        if self._waiting:
            self._replace_finished()

    def reload(self, why: str) -> None:
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
        self.orders = orders(cfg.notify.destinations)
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
            warn_insecure(changed)
            describe_actions(changed)
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

    def check(self) -> None:
        """Re-raise a worker's crash here, so the stage exits and is restarted."""
        for worker in self.workers.values():
            if worker.error is not None:
                raise RuntimeError(
                    f"the {worker.dest.name} worker crashed"
                ) from worker.error

    def stop(self, budget: float) -> list[Worker]:
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


def orders(destinations: Sequence[Destination]) -> dict[str, Order]:
    """An action keeps an order in the outbox, not the alert's text."""
    return {
        d.name: order
        for d in destinations
        if (order := service_of(d).order) is not None
    }


def warn_insecure(destinations: Sequence[Destination]) -> None:
    insecure = [d for d in destinations if not d.verify_tls]
    if insecure:
        # We say it once here instead of urllib3 warning on every request.
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        log.warning(
            "TLS certificates are NOT verified for %s (ALERTIK_TLS_INSECURE)",
            ", ".join(d.name for d in insecure),
        )


def describe_actions(destinations: Sequence[Destination]) -> None:
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
