"""The web stage's loop: serve HTTP from threads, ask the keeper for news."""

from __future__ import annotations

import errno
import logging
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from alertik.common import status
from alertik.common.config import Config, ConfigError
from alertik.common.lifecycle import Ready, Stage, StopFlag, Wiring, serve
from alertik.web import collect
from alertik.web.server import Request, Response, Server

log = logging.getLogger(__name__)

# How long a scrape waits for the keeper's answer.
QUERY_TIMEOUT_S = 2.0


class KeeperCollector(Collector):
    """Asks the keeper at every scrape, so /metrics is never older than 1 s."""

    def __init__(self, run_dir: str) -> None:
        self.run_dir = run_dir

    def collect(self) -> Any:
        return collect.families(status.query(self.run_dir, QUERY_TIMEOUT_S))


class Web(Stage):
    """Serves /metrics (and the status page) from the keeper's heartbeats."""

    name = "web"

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.servers: list[Server] = []
        self.stats = {"requests": 0, "refused": 0, "scrapes": 0, "unanswered": 0}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(KeeperCollector(cfg.run_dir))

    def open(self, wiring: Wiring) -> None:
        web = self.cfg.web
        if web.metrics_addr is None:
            raise ConfigError(
                "ALERTIK_METRICS_ADDR",
                "is not set: the web stage has nothing to serve",
            )
        self.servers.append(
            self._listen(
                "ALERTIK_METRICS_ADDR",
                web.metrics_addr,
                {"/metrics": self.serve_metrics},
            )
        )
        wiring.stack.callback(self._close)
        for server in self.servers:
            server.start()

    def _listen(
        self, variable: str, addr: tuple[str, int], routes: dict[str, Any]
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
        return ", ".join(f"http://{s.shown}/metrics" for s in self.servers)

    def turn(self, ready: Ready) -> int:
        return 0

    def counters(self) -> dict[str, int]:
        return dict(self.stats)

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


def run(cfg: Config, stop: StopFlag) -> None:
    """Serve until stopped (tests call this)."""
    serve(Web(cfg), cfg, stop)
