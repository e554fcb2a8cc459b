"""Shared fixtures: local HTTP servers standing in for the chat services,
alertik processes on 127.0.0.1 killed at teardown, and a ZeroMQ sink.

The helpers behind them (and the ones tests import) are in tests/support.py,
which the benchmarks use too."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import zmq

from tests.support import Proc, WebhookServer


@pytest.fixture
def webhook() -> Iterator[WebhookServer]:
    server = WebhookServer()
    yield server
    server.close()


@pytest.fixture
def make_webhook() -> Iterator[Callable[[], WebhookServer]]:
    servers: list[WebhookServer] = []

    def make() -> WebhookServer:
        servers.append(WebhookServer())
        return servers[-1]

    yield make
    for s in servers:
        s.close()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    """Start ``alertik ARGS...`` processes; every one is killed at teardown."""
    procs: list[Proc] = []

    def start(*args: str, env: dict[str, str], cwd: Path | None = None) -> Proc:
        proc = Proc([sys.executable, "-m", "alertik", *args], env, cwd or tmp_path)
        procs.append(proc)
        return proc

    yield start
    for p in procs:
        p.kill()


@pytest.fixture
def sink() -> Iterator[tuple[zmq.Socket[bytes], str]]:
    """A PULL socket standing in for notify, on an ephemeral TCP port."""
    with zmq.Context() as ctx:
        sock = ctx.socket(zmq.PULL)
        port = sock.bind_to_random_port("tcp://127.0.0.1")
        yield sock, f"tcp://127.0.0.1:{port}"
        sock.close(linger=0)
