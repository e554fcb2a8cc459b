"""Shared fixtures: local HTTP servers standing in for the chat services, stage
processes on 127.0.0.1, and helpers that wait for events instead of sleeping."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import zmq

from alertik.common.config import is_own_variable
from alertik.common.schema import ALERT_DECODER, Alert

REPO = Path(__file__).resolve().parent.parent


def wait_for(
    predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition"
) -> Any:
    """Poll predicate until it returns a true value; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


@dataclass
class Request:
    """One HTTP request as the fake service received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    """What the fake service answers: status, body, headers, delay or reset."""

    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    reset: bool = False  # close the connection without answering
    # Hostile answers: `filler` zero bytes after the body (in 64 KiB writes,
    # stopping when the client hangs up), or every byte `trickle` seconds
    # apart, the body only, or (with trickle_headers) the headers too.
    filler: int = 0
    trickle: float = 0.0
    trickle_headers: bool = False


class WebhookServer:
    """A real HTTP server on 127.0.0.1 that records requests.

    ``replies`` is consulted per request: a callable (Request -> Reply) or a
    list of Reply consumed in order (the last one repeats).
    """

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.arrived: queue.Queue[Request] = queue.Queue()
        self.replies: list[Reply] | Callable[[Request], Reply] = [Reply()]
        # Bytes of each answer written before it ended or the client left.
        self.written: list[int] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Without it every answer waits ~40 ms for a delayed ACK.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                req = Request(
                    method=self.command,
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                    at=time.monotonic(),
                )
                reply = server._next_reply(req)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.reset:
                    # SO_LINGER 0: the client sees a connection reset.
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00" * 2
                    )
                    self.close_connection = True
                    return
                with server._lock:
                    server.requests.append(req)
                server.arrived.put(req)
                if reply.filler or reply.trickle:
                    self._hostile(reply)
                    return
                self.send_response(reply.status)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def _hostile(self, reply: Reply) -> None:
                self.close_connection = True
                length = len(reply.body) + reply.filler
                head = (
                    f"HTTP/1.1 {reply.status} Whatever\r\n"
                    + "".join(f"{k}: {v}\r\n" for k, v in reply.headers.items())
                    + f"Content-Length: {length}\r\n\r\n"
                ).encode()
                if reply.trickle_headers:
                    # Never ends: one more header byte at a time.
                    head = head.replace(b"\r\n\r\n", b"\r\nX-Slow: ") + b"y" * 10**6
                written = 0
                try:
                    if reply.trickle:
                        if not reply.trickle_headers:
                            self.wfile.write(head)
                            head = reply.body + b"\0" * reply.filler
                        for i in range(len(head)):
                            self.wfile.write(head[i : i + 1])
                            self.wfile.flush()
                            written += 1
                            time.sleep(reply.trickle)
                    else:
                        self.wfile.write(head + reply.body)
                        chunk = b"\0" * 65536
                        while written < reply.filler:
                            n = min(len(chunk), reply.filler - written)
                            self.wfile.write(chunk[:n])
                            written += n
                except OSError:
                    pass  # the client hung up
                finally:
                    with server._lock:
                        server.written.append(written)

            do_POST = _handle
            do_GET = _handle
            do_PUT = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def _next_reply(self, req: Request) -> Reply:
        with self._lock:
            if callable(self.replies):
                return self.replies(req)
            if len(self.replies) > 1:
                return self.replies.pop(0)
            return self.replies[0]

    def wait(self, count: int, timeout: float = 10.0) -> list[Request]:
        """Wait until at least count requests were answered; return them all."""
        wait_for(lambda: len(self.requests) >= count, timeout, f"{count} requests")
        with self._lock:
            return list(self.requests)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


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


def base_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """An environment for alertik processes: private dirs, ephemeral ports."""
    env = {k: v for k, v in os.environ.items() if not is_own_variable(k)}
    env.update(
        ALERTIK_RUN_DIR=str(tmp_path / "run"),
        ALERTIK_STATE_DIR=str(tmp_path / "state"),
        ALERTIK_LOG_FILE=str(tmp_path / "log.txt"),
        ALERTIK_UDP_PORT="0",
        ALERTIK_BIND="127.0.0.1",
        ALERTIK_NODE_NAME="test-node",
        ALERTIK_RETRY_MAX_DELAY="0.5",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def events_env(*events: tuple[str, str, str, str]) -> dict[str, str]:
    """EVENTn_* variables for (notifier, match type, match string, mask) tuples."""
    env = {"ENV_EVENTS": str(len(events))}
    for i, (notifier, kind, match, mask) in enumerate(events):
        env[f"EVENT{i}_NOTIFIER"] = notifier
        env[f"EVENT{i}_MATCH_TYPE"] = kind
        env[f"EVENT{i}_MATCH_STR"] = match
        env[f"EVENT{i}_MASK_MSG"] = mask
    return env


def processes() -> dict[int, tuple[int, list[bytes]]]:
    """Every live process: pid -> (parent pid, argv), from /proc."""
    table: dict[int, tuple[int, list[bytes]]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().rstrip(b"\0").split(b"\0")
        except OSError:
            continue
        if fields[0] != "Z":
            table[int(entry)] = (int(fields[1]), argv)
    return table


def stage_pids(pid: int) -> dict[str, int]:
    """The stage processes below pid (alertik run: keeper, supervisord, stages)."""
    table = processes()
    found = {}
    for child in children_of(pid):
        argv = table.get(child, (0, []))[1]
        if argv[-2:-1] == [b"alertik"]:
            found[argv[-1].decode()] = child
    return found


def supervisord_pid(pid: int) -> int:
    """The supervisord below `alertik run`'s keeper."""
    table = processes()
    for child in children_of(pid):
        if b"alertik.supervise" in table.get(child, (0, []))[1]:
            return child
    raise AssertionError(f"no supervisord under {pid}")


def children_of(pid: int) -> list[int]:
    """Every live descendant of pid, for checking nothing is left."""
    table = processes()
    kids: list[int] = []
    frontier = [pid]
    while frontier:
        p = frontier.pop()
        for child, (parent, _) in table.items():
            if parent == p:
                kids.append(child)
                frontier.append(child)
    return kids


class Proc:
    """A child process whose merged output is collected line by line."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.args = args
        self.popen = subprocess.Popen(
            args,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for raw in self.popen.stdout:
            with self._lock:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    @property
    def output(self) -> str:
        with self._lock:
            return "\n".join(self.lines)

    def wait_line(self, needle: str, timeout: float = 15.0) -> str:
        """Wait for an output line containing needle and return it."""

        def find() -> str | None:
            with self._lock:
                for line in self.lines:
                    if needle in line:
                        return line
            if self.popen.poll() is not None:
                self._reader.join(1)
                pytest.fail(
                    f"{self.args[-1]} exited {self.popen.returncode} before "
                    f"{needle!r}:\n{self.output}"
                )
            return None

        return str(wait_for(find, timeout, repr(needle)))

    def terminate(self, timeout: float = 10.0) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        finally:
            self.kill()

    def kill(self) -> None:
        """SIGKILL the process and every descendant (supervisord starts each
        stage in a process group of its own, so killpg alone leaves them)."""
        for pid in [self.popen.pid, *children_of(self.popen.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.popen.wait(5)
        self._reader.join(5)
        if self.popen.stdout is not None and not self._reader.is_alive():
            self.popen.stdout.close()


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


def endpoint_of(proc: Proc, stage: str) -> str:
    """The endpoint a stage logged that it bound its input to."""
    line = proc.wait_line(f"{stage} listening on ")
    match = re.search(rf"{stage} listening on (\S+)", line)
    assert match, line
    return match.group(1)


def udp_port_of(proc: Proc) -> int:
    """The UDP port an ingest process logged that it bound."""
    line = proc.wait_line("listening on udp")
    m = re.search(r"listening on udp \S*:(\d+)", line)
    assert m, line
    return int(m.group(1))


def send_udp(port: int, *payloads: bytes, host: str = "127.0.0.1") -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        for p in payloads:
            s.sendto(p, (host, port))


@pytest.fixture
def sink() -> Iterator[tuple[zmq.Socket[bytes], str]]:
    """A PULL socket standing in for notify, on an ephemeral TCP port."""
    with zmq.Context() as ctx:
        sock = ctx.socket(zmq.PULL)
        port = sock.bind_to_random_port("tcp://127.0.0.1")
        yield sock, f"tcp://127.0.0.1:{port}"
        sock.close(linger=0)


def receive_alerts(sock: zmq.Socket[bytes], count: int) -> list[Alert]:
    """Receive count alerts from a sink; fail after 10 s of silence."""
    alerts: list[Alert] = []
    while len(alerts) < count:
        assert sock.poll(10_000), f"only {len(alerts)} of {count} alerts arrived"
        alerts.append(ALERT_DECODER.decode(sock.recv()))
    return alerts
