"""The web stage's loop: HTTP from threads; here, once a second, the keeper's
news, and whatever the matcher's and notify's taps publish."""

from __future__ import annotations

import errno
import logging
import time
from importlib import metadata

import msgspec
import zmq
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from alertik.common import sockets, status
from alertik.common.config import Config, ConfigError
from alertik.common.lifecycle import Ready, Stage, StopFlag, Wiring, serve
from alertik.common.schema import MESSAGE_DECODER
from alertik.web import page, workbench
from alertik.web.server import Request, Response, Route, Server
from alertik.web.view import Figures, KeeperCollector

log = logging.getLogger(__name__)

# How often the page's figures are brought up to date (the keeper's
# heartbeats come once a second), and how soon again when the keeper did not
# answer (until the first answer the last hour has no start).
SAMPLE_EVERY_S = 1.0
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


class Web(Stage):
    """Serves /metrics, the status page and the workbench."""

    name = "web"

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.servers: list[Server] = []
        self.stats = {"requests": 0, "refused": 0, "scrapes": 0, "unanswered": 0}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(KeeperCollector(cfg.run_dir))
        self.next_sample = 0.0
        try:
            version = metadata.version("alertik")
        except metadata.PackageNotFoundError:
            version = "unknown"
        self.figures = Figures(cfg, version)

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
            if not self.figures.sample():
                self.next_sample = time.monotonic() + SAMPLE_RETRY_S
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
            self.figures.record(message)
        return count

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
        with self.figures.lock:
            view = self.figures.view()
        return Response(page.status_page(view))

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
