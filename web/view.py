"""What the status page shows, and the numbers /metrics serves.

The loop brings the figures up to date (``Figures.sample`` once a second, the
taps' alerts and outcomes as they come); HTTP threads read them under the
lock to build the page's ``View``. /metrics asks the keeper at every scrape
instead (``KeeperCollector``).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from prometheus_client.registry import Collector

from alertik.common import status
from alertik.common.config import Config
from alertik.common.metrics import OTHER
from alertik.common.schema import Alert, Delivery
from alertik.web import collect, page
from alertik.web.history import Hourly
from alertik.web.recent import Recent

# How long a scrape waits for the keeper's answer.
QUERY_TIMEOUT_S = 2.0
# How long the loop waits for the keeper's answer when it samples.
SAMPLE_TIMEOUT_S = 0.5


class KeeperCollector(Collector):
    """Asks the keeper at every scrape, so /metrics is never older than 1 s."""

    def __init__(self, run_dir: str) -> None:
        self.run_dir = run_dir

    def collect(self) -> Any:
        return collect.families(status.query(self.run_dir, QUERY_TIMEOUT_S))


class Figures:
    """The keeper's last answer, the last hour per router, the recent alerts."""

    def __init__(self, cfg: Config, version: str) -> None:
        self.cfg = cfg
        self.version = version
        self.lock = threading.Lock()  # the loop writes, HTTP threads read
        self.answer: dict[str, Any] = {}
        self.problem = "waiting for the first heartbeats"
        self.messages = Hourly()
        self.alerts = Hourly()
        self.recent = Recent()
        self.started = time.time()

    def record(self, message: object) -> None:
        """An alert or an outcome a tap published."""
        with self.lock:
            if isinstance(message, Alert):
                self.recent.alert(message)
            elif isinstance(message, Delivery):
                self.recent.delivery(message)

    def sample(self) -> bool:
        """Ask the keeper; add what changed to the last hour. False: no answer."""
        try:
            answer = status.query(self.cfg.run_dir, SAMPLE_TIMEOUT_S)
        except (OSError, ValueError) as exc:
            with self.lock:
                self.problem = (
                    f"alertik run is not answering at "
                    f"{status.keeper_path(self.cfg.run_dir)} ({exc})"
                )
            return False
        minute = int(time.time() // 60)
        stages = answer.get("stages", {})
        with self.lock:
            self.answer = answer
            self.problem = ""
            for hourly, stage, name in (
                (self.messages, "ingest", "alertik_messages_received_total"),
                (self.alerts, "matcher", "alertik_router_alerts_total"),
            ):
                beat = (stages.get(stage) or {}).get("status") or {}
                if "pid" not in beat:
                    continue
                hourly.observe(
                    minute,
                    _by_first(_rows(answer, stage, name)),
                    beat["pid"],
                    fresh=float(beat.get("started", 0.0)) >= self.started,
                )
        return True

    def view(self) -> page.View:
        """What the status page shows (called with the lock held)."""
        answer = self.answer
        now = time.time()
        minute = int(now // 60)
        last = {
            str(r[0]): float(r[1])
            for r in _rows(answer, "matcher", "alertik_router_last_message_seconds")
            if len(r) == 2 and isinstance(r[1], int | float)
        }
        after = self.cfg.silence_after
        names = sorted(
            set(self.messages.keys()) | set(self.alerts.keys()) | set(last),
            key=lambda n: (n == OTHER, n),
        )
        routers = [
            page.RouterRow(
                name=name,
                messages=self.messages.last_hour(name, minute),
                alerts=self.alerts.last_hour(name, minute),
                last=last.get(name),
                silent=after is not None and name in last and now - last[name] >= after,
            )
            for name in names
        ]
        return page.View(
            node=self.cfg.ingest.node_name,
            version=self.version,
            now=now,
            problem=self.problem,
            stages=_stages(answer),
            routers=routers,
            destinations=_destinations(answer),
            alerts=self.recent.newest_first(),
            silence_after=after,
        )


def _rows(answer: dict[str, Any], stage: str, name: str) -> list[list[Any]]:
    seen = answer.get("stages", {}).get(stage) or {}
    rows: list[list[Any]] = ((seen.get("status") or {}).get("metrics") or {}).get(
        name, []
    )
    return rows


def _by_first(rows: list[list[Any]]) -> dict[str, float]:
    """{first label: value summed over the other labels}."""
    totals: dict[str, float] = {}
    for row in rows:
        if len(row) >= 2 and isinstance(row[-1], int | float):
            totals[str(row[0])] = totals.get(str(row[0]), 0.0) + row[-1]
    return totals


def _stages(answer: dict[str, Any]) -> list[page.StageRow]:
    stages = answer.get("stages", {})
    spawns = answer.get("spawns", {})
    rows = []
    for name in answer.get("expected", []):
        seen = stages.get(name)
        age = None if seen is None else float(seen.get("age", 0.0))
        rows.append(
            page.StageRow(
                name=name,
                up=seen is not None
                and seen.get("pid") is not None
                and (age or 0.0) <= status.STALE_SECONDS,
                restarts=max(0, int(spawns.get(name, 0)) - 1),
                age=age,
            )
        )
    return rows


def _destinations(answer: dict[str, Any]) -> list[page.DestinationRow]:
    def get(name: str) -> dict[str, float]:
        return _by_first(_rows(answer, "notify", name))

    pending = get("alertik_outbox_pending")
    oldest = get("alertik_outbox_oldest_age_seconds")
    delivered = get("alertik_alerts_delivered_total")
    failed = get("alertik_alerts_failed_total")
    retried = get("alertik_alerts_retried_total")
    states = {
        str(r[0]): str(r[1])
        for r in _rows(answer, "notify", "alertik_destination_state")
        if len(r) == 3 and r[2] == 1
    }
    return [
        page.DestinationRow(
            name=name,
            state=states.get(name, "ok"),
            pending=pending.get(name, 0.0),
            oldest=oldest.get(name, 0.0),
            delivered=delivered.get(name, 0.0),
            failed=failed.get(name, 0.0),
            retried=retried.get(name, 0.0),
        )
        for name in sorted(set(pending) | set(delivered) | set(states))
    ]
