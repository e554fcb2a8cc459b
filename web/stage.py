"""The web stage's loop: HTTP from threads; here, once a second, the keeper's
news, and whatever the matcher's and notify's taps publish."""

from __future__ import annotations

import errno
import logging
import threading
import time
from importlib import metadata
from typing import Any

import msgspec
import zmq
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from alertik.common import sockets, status
from alertik.common.config import Config, ConfigError
from alertik.common.lifecycle import Ready, Stage, StopFlag, Wiring, serve
from alertik.common.metrics import OTHER
from alertik.common.schema import MESSAGE_DECODER, Alert, Delivery
from alertik.web import collect, page, workbench
from alertik.web.history import Hourly
from alertik.web.recent import Recent
from alertik.web.server import Request, Response, Route, Server

log = logging.getLogger(__name__)

# How long a scrape waits for the keeper's answer.
QUERY_TIMEOUT_S = 2.0
# How often the page's figures are brought up to date (the keeper's
# heartbeats come once a second), and how long the loop waits for that.
SAMPLE_EVERY_S = 1.0
SAMPLE_TIMEOUT_S = 0.5
SAMPLE_RETRY_S = 0.1
# Tap messages read per turn, so that a flood of alerts cannot hold the loop.
TAP_BATCH = 500
# Bind-only hosts, and where a reader on the same host connects instead.
WILDCARDS = {"*": "127.0.0.1", "0.0.0.0": "127.0.0.1", "[::]": "[::1]"}


def local_endpoint(endpoint: str) -> str:
    """Where a reader on this host connects to a tap the stage bound."""
    if not endpoint.startswith("tcp://"):
        return endpoint
    host, _, port = endpoint[len("tcp://") :].rpartition(":")
    return f"tcp://{WILDCARDS.get(host, host)}:{port}"


class KeeperCollector(Collector):
    """Asks the keeper at every scrape, so /metrics is never older than 1 s."""

    def __init__(self, run_dir: str) -> None:
        self.run_dir = run_dir

    def collect(self) -> Any:
        return collect.families(status.query(self.run_dir, QUERY_TIMEOUT_S))


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


class Web(Stage):
    """Serves /metrics, the status page and the workbench."""

    name = "web"

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.servers: list[Server] = []
        self.stats = {"requests": 0, "refused": 0, "scrapes": 0, "unanswered": 0}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(KeeperCollector(cfg.run_dir))
        self.lock = threading.Lock()  # the loop writes, HTTP threads read
        self.answer: dict[str, Any] = {}
        self.problem = "waiting for the first heartbeats"
        self.messages = Hourly()
        self.alerts = Hourly()
        self.recent = Recent()
        self.next_sample = 0.0
        self.started = time.time()
        try:
            self.version = metadata.version("alertik")
        except metadata.PackageNotFoundError:
            self.version = "unknown"

    def open(self, wiring: Wiring) -> None:
        web = self.cfg.web
        if not web.enabled:
            raise ConfigError(
                "ALERTIK_WEB_ADDR",
                "is not set, nor ALERTIK_METRICS_ADDR: the web stage has nothing "
                "to serve",
            )
        metrics: dict[str, Route] = {"/metrics": self.serve_metrics}
        if web.web_addr is not None:
            routes: dict[str, Route] = {
                "/": self.serve_status,
                "/workbench": self.serve_workbench,
                **metrics,
            }
            self.servers.append(self._listen("ALERTIK_WEB_ADDR", web.web_addr, routes))
        if web.metrics_addr is not None and web.metrics_addr != web.web_addr:
            self.servers.append(
                self._listen("ALERTIK_METRICS_ADDR", web.metrics_addr, metrics)
            )
        wiring.stack.callback(self._close)
        self.taps: list[zmq.Socket[bytes]] = []
        if web.web_addr is not None:
            for name in ("matcher_tap", "notify_tap"):
                endpoint = local_endpoint(getattr(self.cfg.endpoints, name))
                tap = wiring.hold(
                    sockets.connect_tap(wiring.ctx, endpoint, wiring.security)
                )
                wiring.watch(tap)
                self.taps.append(tap)
        for server in self.servers:
            server.start()

    def _listen(
        self, variable: str, addr: tuple[str, int], routes: dict[str, Route]
    ) -> Server:
        try:
            return Server(addr, routes, self.cfg.web.password, self.stats)
        except OSError as exc:
            host, port = addr
            shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            fix = (
                "choose another port"
                if exc.errno in (errno.EADDRINUSE, errno.EACCES)
                else "use an address of this host"
            )
            raise ConfigError(
                variable, f"cannot listen on {shown}: {exc.strerror or exc}; {fix}"
            ) from None

    def _close(self) -> None:
        for server in self.servers:
            server.stop()

    def describe(self) -> str:
        shown = []
        for server in self.servers:
            paths = sorted(p for p in server.routes if p != "/")
            if "/" in server.routes:
                paths.insert(0, "/")
            shown += [f"http://{server.shown}{p}" for p in paths]
        return ", ".join(shown)

    def wait_ms(self) -> float:
        return max(0.0, (self.next_sample - time.monotonic()) * 1000)

    def turn(self, ready: Ready) -> int:
        done = 0
        for tap in self.taps:
            if tap in ready:
                done += self.read_tap(tap)
        now = time.monotonic()
        if self.cfg.web.web_addr is not None and now >= self.next_sample:
            self.next_sample = now + SAMPLE_EVERY_S
            self.sample()
        return done

    def read_tap(self, tap: zmq.Socket[bytes]) -> int:
        count = 0
        while count < TAP_BATCH:
            try:
                frame = tap.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            count += 1
            try:
                message = MESSAGE_DECODER.decode(frame)
            except msgspec.DecodeError:
                continue
            with self.lock:
                if isinstance(message, Alert):
                    self.recent.alert(message)
                elif isinstance(message, Delivery):
                    self.recent.delivery(message)
        return count

    def sample(self) -> None:
        """Ask the keeper; add what changed to the last hour."""
        try:
            answer = status.query(self.cfg.run_dir, SAMPLE_TIMEOUT_S)
        except (OSError, ValueError) as exc:
            with self.lock:
                self.problem = (
                    f"alertik run is not answering at "
                    f"{status.keeper_path(self.cfg.run_dir)} ({exc})"
                )
            # Soon again: until the first answer the last hour has no start.
            self.next_sample = time.monotonic() + SAMPLE_RETRY_S
            return
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

    def counters(self) -> dict[str, int]:
        return dict(self.stats)

    # -- routes (HTTP threads) ---------------------------------------------

    def serve_metrics(self, request: Request, headers: dict[str, str]) -> Response:
        """``/metrics``: the keeper's latest, in the format the scraper asked."""
        self.stats["scrapes"] += 1
        encoder, content_type = choose_encoder(headers.get("Accept", ""))
        try:
            body = encoder(self.registry)
        except (OSError, ValueError) as exc:
            self.stats["unanswered"] += 1
            keeper = status.keeper_path(self.cfg.run_dir)
            return Response(
                f"alertik run is not answering at {keeper} ({exc}); is the web "
                "stage running under it?\n",
                503,
                "text/plain; charset=utf-8",
            )
        return Response(body, 200, content_type)

    def serve_status(self, request: Request, headers: dict[str, str]) -> Response:
        with self.lock:
            view = self.view()
        return Response(page.status_page(view))

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
            stages=self._stages(answer),
            routers=routers,
            destinations=self._destinations(answer, now),
            alerts=self.recent.newest_first(),
            silence_after=after,
        )

    @staticmethod
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

    @staticmethod
    def _destinations(answer: dict[str, Any], now: float) -> list[page.DestinationRow]:
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

    def serve_workbench(self, request: Request, headers: dict[str, str]) -> Response:
        if request.method != "POST":
            return Response(page.workbench_page())
        text = request.form.get("lines", "")
        sender = request.form.get("sender", "192.0.2.1")
        try:
            result = workbench.run(
                workbench.lines_of(text), workbench.check_sender(sender)
            )
        except workbench.Busy:
            return Response(
                page.workbench_page(text, sender, error="busy: try again in a moment"),
                429,
            )
        except workbench.Refused as exc:
            return Response(page.workbench_page(text, sender, error=str(exc)), 400)
        return Response(page.workbench_page(text, sender, result))


def run(cfg: Config, stop: StopFlag) -> None:
    """Serve until stopped (tests call this)."""
    serve(Web(cfg), cfg, stop)
