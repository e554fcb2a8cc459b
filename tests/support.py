"""Helpers shared by the tests and the benchmarks (no pytest fixtures here).

* ``wait_for``: poll for an event instead of sleeping.
* ``WebhookServer``: a real HTTP server on 127.0.0.1 standing in for a chat
  service, in a thread; ``WebhookProcess``: the same in a process of its own,
  for load, its requests fetched through a pipe.
* ``Proc``: an alertik process (or any other) with its output collected line
  by line, each line with the time it was read.
* Process readings, through psutil: ``children_of``, ``stage_pids``,
  ``supervisord_pid``, ``alertik_processes`` and ``memory``.
* Environments and small clients: ``base_env``, ``events_env``,
  ``endpoint_of``, ``udp_port_of``, ``send_udp``, ``receive_alerts``.

``tests/conftest.py`` turns some of these into fixtures; ``bench/harness.py``
imports this module too (it puts the repository on ``sys.path``).
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import queue
import re
import signal
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import psutil
import zmq

from alertik.common.config import is_own_variable
from alertik.common.schema import ALERT_DECODER, Alert

REPO = Path(__file__).resolve().parent.parent

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition"
) -> Any:
    """Poll predicate until it returns a true value, and return that value.

    Raises AssertionError on timeout: a test fails, a benchmark stops.
    """
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


# The reason phrase of each status, for the status line.
_REASONS = {status.value: status.phrase for status in HTTPStatus}

# --- a webhook --------------------------------------------------------------------


@dataclass
class Request:
    """One HTTP request as the fake service received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when it arrived (one clock for all processes)

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


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


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
        self._taken = 0
        self._lock = threading.Lock()
        server = self

        class Handler(socketserver.StreamRequestHandler):
            """HTTP/1.1 with keep-alive, parsed by hand: the standard library's
            parser (email.parser) costs three times as much per request, which
            a benchmark's webhook cannot spend."""

            # Without it every answer waits ~40 ms for a delayed ACK.
            disable_nagle_algorithm = True
            close_connection = False

            def handle(self) -> None:
                while not self.close_connection:
                    head = self._head()
                    if head is None:
                        return
                    method, path, version, headers = head
                    if method not in ("GET", "POST", "PUT"):
                        self._answer(501, b"unsupported method", {})
                        continue
                    if headers.get("expect", "").lower() == "100-continue":
                        self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                    length = int(headers.get("content-length") or 0)
                    body = self.rfile.read(length) if length else b""
                    connection = headers.get("connection", "").lower()
                    self.close_connection = connection == "close" or (
                        version == "HTTP/1.0" and connection != "keep-alive"
                    )
                    self._handle(Request(method, path, headers, body, time.monotonic()))

            def _head(self) -> tuple[str, str, str, dict[str, str]] | None:
                """The request line and headers (names in lower case); None
                when the client hung up or sent no HTTP."""
                line = self.rfile.readline(65537)
                while line in (b"\r\n", b"\n"):
                    line = self.rfile.readline(65537)
                words = line.decode("latin-1").split()
                if len(words) != 3 or not words[2].startswith("HTTP/"):
                    return None
                headers: dict[str, str] = {}
                while True:
                    field = self.rfile.readline(65537)
                    if field in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = field.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                return words[0], words[1], words[2], headers

            def _answer(self, status: int, body: bytes, fields: dict[str, str]) -> None:
                """One write: status line, headers and body."""
                self.wfile.write(
                    (
                        f"HTTP/1.1 {status} {_REASONS.get(status, 'Whatever')}\r\n"
                        + "".join(f"{k}: {v}\r\n" for k, v in fields.items())
                        + f"Content-Length: {len(body)}\r\n\r\n"
                    ).encode("latin-1")
                    + body
                )

            def _handle(self, req: Request) -> None:
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
                self._answer(reply.status, reply.body, reply.headers)

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

        self.httpd = _Server(("127.0.0.1", 0), Handler)
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

    def take(self) -> list[Request]:
        """The requests answered since the last take."""
        with self._lock:
            fresh = self.requests[self._taken :]
            self._taken = len(self.requests)
        return fresh

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _webhook_child(conn: Connection) -> None:
    """WebhookProcess's other end: serve, and hand over what arrived when asked."""
    server = WebhookServer()
    conn.send(server.port)
    try:
        while conn.recv():
            conn.send(server.take())
    finally:
        server.close()


class WebhookProcess:
    """A WebhookServer (answering 200 to everything) in a process of its own.

    For load: the server never shares a GIL with whoever measures it or sends
    to it. ``collect`` fetches what arrived into ``requests``.
    """

    # How often collect asks the other process while it waits.
    POLL_SECONDS = 0.02

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, there = ctx.Pipe()
        self._proc = ctx.Process(target=_webhook_child, args=(there,), daemon=True)
        self._proc.start()
        there.close()
        self.port: int = self._conn.recv()
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests: list[Request] = []

    def collect(self, count: int = 0, timeout: float = 0.0) -> list[Request]:
        """Fetch what arrived, until count requests in all or for timeout
        seconds, whichever comes first; all the requests so far (never fails)."""
        deadline = time.monotonic() + timeout
        while True:
            self._conn.send(True)
            fresh: list[Request] = self._conn.recv()
            self.requests += fresh
            if len(self.requests) >= count or time.monotonic() >= deadline:
                return self.requests
            time.sleep(self.POLL_SECONDS)

    def forget(self) -> None:
        """Fetch what arrived and forget it all, to count afresh."""
        self.collect()
        self.requests.clear()

    def close(self) -> None:
        self._conn.send(False)
        self._proc.join(5)


# --- processes --------------------------------------------------------------------


def _live(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def descendants(pid: int) -> list[psutil.Process]:
    """Every live process below pid (zombies left out).

    psutil checks each one's start time against its parent's, so a pid that
    was reused by an unrelated process is never taken for a child.
    """
    try:
        found = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []
    return [p for p in found if _live(p)]


def children_of(pid: int) -> list[int]:
    """Every live descendant of pid, for checking nothing is left."""
    return [p.pid for p in descendants(pid)]


def _argv(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except psutil.Error:
        return []


# The module `alertik run`'s keeper runs supervisord as (python -m ...).
SUPERVISORD = "alertik.supervise"


def role(argv: Sequence[str]) -> str | None:
    """What an alertik process is, from its command line: a stage (the word
    after ``alertik``, as supervisord.conf starts it), ``supervisord``,
    ``keeper`` or ``alertik run`` (before it becomes the keeper)."""
    if "alertik.keeper" in argv:
        return "keeper"
    if SUPERVISORD in argv or any(a.endswith("/supervisord") for a in argv):
        return "supervisord"
    for i, arg in enumerate(argv[:-1]):
        if arg == "alertik" or arg.endswith("/alertik"):
            return "alertik run" if argv[i + 1] == "run" else argv[i + 1]
    return None


def alertik_processes(pid: int) -> dict[str, int]:
    """pid and every alertik process below it, by role (``role``)."""
    found: dict[str, int] = {}
    try:
        top = [psutil.Process(pid)]
    except psutil.Error:
        top = []
    for proc in [*top, *descendants(pid)]:
        name = role(_argv(proc))
        if name is not None:
            found[name] = proc.pid
    return found


def stage_pids(pid: int) -> dict[str, int]:
    """The stage processes below pid (alertik run: keeper, supervisord, stages)."""
    return {
        name: child
        for name, child in alertik_processes(pid).items()
        if child != pid and name not in ("keeper", "supervisord", "alertik run")
    }


def supervisord_pid(pid: int) -> int:
    """The supervisord below `alertik run`'s keeper."""
    for proc in descendants(pid):
        if SUPERVISORD in _argv(proc):
            return proc.pid
    raise AssertionError(f"no supervisord under {pid}")


class Memory(NamedTuple):
    """A process's memory, in bytes."""

    rss: int  # resident, shared pages counted in full (VmRSS)
    pss: int  # shared pages divided among the processes that map them
    uss: int  # pages no other process maps: what stopping it would give back


def memory(pid: int) -> Memory:
    """RSS, PSS and USS of a live process (psutil.NoSuchProcess if gone)."""
    info = psutil.Process(pid).memory_full_info()
    return Memory(info.rss, info.pss, info.uss)


class Proc:
    """A child process whose merged output is collected line by line."""

    def __init__(
        self, args: Sequence[str], env: dict[str, str], cwd: Path | str | None = None
    ) -> None:
        self.args = list(args)
        self.started = time.monotonic()
        self.popen = subprocess.Popen(
            self.args,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.lines: list[str] = []
        # When each line was read (time.monotonic()), beside it in lines.
        self.stamps: list[float] = []
        # Held while lines grow; notified at each line, so that a wait ends
        # the moment its line is read.
        self._grown = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for raw in self.popen.stdout:
            at = time.monotonic()
            with self._grown:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self.stamps.append(at)
                self._grown.notify_all()

    @property
    def output(self) -> str:
        with self._grown:
            return "\n".join(self.lines)

    # How often a wait looks whether the process exited, between lines.
    EXIT_CHECK_SECONDS = 0.1

    def _first(
        self, test: Callable[[str], T | None], what: str, timeout: float
    ) -> tuple[float, T]:
        """The first line test() accepts: when it was read, and what test gave.

        Fails (AssertionError) when the process exits first or on timeout."""
        deadline = time.monotonic() + timeout
        seen = 0
        exited = False
        while True:
            with self._grown:
                while seen < len(self.lines):
                    found = test(self.lines[seen])
                    if found:
                        return self.stamps[seen], found
                    seen += 1
                if exited:
                    raise AssertionError(
                        f"{self.args[-1]} exited {self.popen.returncode} before "
                        f"{what}:\n{self.output}"
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"timed out after {timeout}s waiting for {what}"
                    )
                self._grown.wait(min(left, self.EXIT_CHECK_SECONDS))
            if self.popen.poll() is not None:
                # One more look once the reader has the last of the output.
                self._reader.join(1)
                exited = True

    def wait_line(self, needle: str, timeout: float = 15.0) -> str:
        """Wait for an output line containing needle and return it."""
        _, line = self._first(
            lambda s: s if needle in s else None, repr(needle), timeout
        )
        return line

    def wait_match(
        self, pattern: str, timeout: float = 15.0
    ) -> tuple[float, re.Match[str]]:
        """Wait for an output line matching pattern (a regex): when it was read
        (time.monotonic()) and the match."""
        rx = re.compile(pattern)
        return self._first(rx.search, repr(pattern), timeout)

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
        below = descendants(self.popen.pid)
        if self.popen.poll() is None:
            self.popen.kill()
        for proc in below:
            with contextlib.suppress(psutil.Error):  # gone already
                proc.kill()
        self.popen.wait(5)
        self._reader.join(5)
        if self.popen.stdout is not None and not self._reader.is_alive():
            self.popen.stdout.close()


# --- environments and clients ------------------------------------------------------


def base_env(folder: Path | str, **extra: str) -> dict[str, str]:
    """An environment for alertik processes: private dirs, ephemeral ports."""
    env = {k: v for k, v in os.environ.items() if not is_own_variable(k)}
    env.update(
        ALERTIK_RUN_DIR=os.path.join(folder, "run"),
        ALERTIK_STATE_DIR=os.path.join(folder, "state"),
        ALERTIK_LOG_FILE=os.path.join(folder, "log.txt"),
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


def endpoint_of(proc: Proc, stage: str, timeout: float = 15.0) -> str:
    """The endpoint a stage logged that it bound its input to."""
    line = proc.wait_line(f"{stage} listening on ", timeout)
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


def send_from(source: str, port: int, *lines: bytes) -> None:
    """Datagrams to 127.0.0.1:port from a loopback address of our choice (a
    second router, say)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        for line in lines:
            sock.sendto(line, ("127.0.0.1", port))


def receive_alerts(sock: zmq.Socket[bytes], count: int) -> list[Alert]:
    """Receive count alerts from a sink; fail after 10 s of silence."""
    alerts: list[Alert] = []
    while len(alerts) < count:
        assert sock.poll(10_000), f"only {len(alerts)} of {count} alerts arrived"
        alerts.append(ALERT_DECODER.decode(sock.recv()))
    return alerts
