"""Shared pieces of the benchmarks: alertik as a user runs it, and its peers.

* ``Alertik``: ``python -m alertik run`` (supervisord and one process per
  stage) in a private run directory, on ephemeral ports of 127.0.0.1, its
  output collected line by line; its processes and their memory from /proc.
* ``Sender``: a process that sends RouterOS-style datagrams to a UDP port,
  paced or flat out, and says when it sent each one.
* ``BareReceiver``: a process with nothing but a ``recvfrom`` loop, the
  yardstick for ingest.
* ``Webhook``: a process serving HTTP/1.1 with keep-alive on 127.0.0.1 that
  notes when each alert arrived.
* ``LogCounter``: reads the log archive as it grows and counts the lines.

Senders and receivers run in processes of their own (multiprocessing, spawn)
so that they never share a GIL with each other or with the measuring script.
Everything talks over 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import re
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from multiprocessing.connection import Connection
from typing import Any

from alertik.common.config import is_own_variable

# Every benchmark datagram is exactly this long: a typical RouterOS line.
LINE_BYTES = 200
# Where each line carries its sequence number: 9 digits, unique per run.
SEQ_FORMAT = b" seq=%09d"
SEQ_RE = re.compile(rb" seq=(\d{9})")
# The kernel receive buffer asked for by the bare recvfrom loop: the same as
# ingest asks for (ingest/stage.py RCVBUF_BYTES), so the yardstick is fair.
BARE_RCVBUF_BYTES = 8 * 1024 * 1024
# How long a receiver waits after the last datagram before calling a run over.
QUIET_SECONDS = 1.0
# Pacing granularity of the sender: one slice of datagrams per millisecond
# costs little sleeping and keeps bursts inside a slice short.
SLICE_SECONDS = 0.001
# The sender's own socket buffer: loopback delivers synchronously, so this only
# matters when the receiver is slow to drain, and then the receiver drops.
SEND_BUFFER_BYTES = 4 * 1024 * 1024

_HEADER = b"<134>Oct  2 17:36:35 MikroTik "

# Lines that no rule of the benchmark's rule sets matches: the bulk of what a
# router sends (firewall logging, DHCP, Wi-Fi, DNS).
QUIET_LINES: tuple[bytes, ...] = (
    b"firewall,info forward: in:bridge out:ether1, connection-state:new src-mac "
    b"18:3d:5e:79:42:a5, proto TCP (SYN), 192.168.88.17:51532->198.51.100.7:443, "
    b"len 60",
    b"dhcp,info defconf assigned 192.168.88.254 for 18:3D:5E:79:42:A5 laptop-kitchen",
    b"wireless,info 36:7F:7F:07:C4:B0@wlan1: connected, signal strength -61",
    b"firewall,info drop-invalid input: in:ether1 out:(unknown 0), src-mac "
    b"00:0c:42:1f:3a:b6, proto UDP, 203.0.113.9:40231->192.0.2.10:161, len 76",
    b"dns,packet question: 0.pool.ntp.org:A:IN from 192.168.88.23",
    b"system,info,account user admin logged out from 192.168.88.17 via winbox",
    b"interface,info ether3 link up (speed 1G, full duplex)",
    b"dhcp,info dhcp-client on ether1 got IP address 198.51.100.44",
)
# A line that raises exactly one alert (EVENT0 of the realistic set); its
# user name carries the sequence number into the alert text.
ALERT_LINE = (
    b"system,error,critical login failure for user b%09d from 192.0.2.1 via ssh"
)
ALERT_SEQ_RE = re.compile(rb"Failed login for b(\d{9})")


def _pad(body: bytes) -> bytes:
    """A header, body and sequence field padded to LINE_BYTES (a format string)."""
    text = _HEADER + body
    room = LINE_BYTES - len(text) - len(SEQ_FORMAT % 0)
    if room < 0:
        text = text[:room]
        room = 0
    return text.replace(b"%", b"%%") + b"." * room + SEQ_FORMAT


QUIET_FORMATS: tuple[bytes, ...] = tuple(_pad(b) for b in QUIET_LINES)


def alert_format() -> bytes:
    """The alert line as a format of (seq, seq), LINE_BYTES long."""
    text = _HEADER + ALERT_LINE
    room = LINE_BYTES - len(text % 0) - len(SEQ_FORMAT % 0)
    return text + b"." * room + SEQ_FORMAT


ALERT_FORMAT = alert_format()


def datagram(seq: int, alert_every: int) -> bytes:
    """Datagram seq: an alert line every alert_every datagrams (0: never)."""
    if alert_every and seq % alert_every == 0:
        return ALERT_FORMAT % (seq, seq)
    return QUIET_FORMATS[seq % len(QUIET_FORMATS)] % seq


# --- rules -------------------------------------------------------------------

Event = tuple[str, str, str, str]  # notifier, match type, match string, mask

# Sixteen rules as an admin writes them (alertik's README and RouterOS
# forums); half substrings, half POSIX EREs. EVENT0 is the benchmark's alert.
REALISTIC: tuple[Event, ...] = (
    (
        "Generic1",
        "regex",
        r"login failure for user ([A-Za-z0-9_]+) from ([0-9.]+) via ([a-z]+)",
        "Failed login for @1 from @2 via @3",
    ),
    ("Generic1", "substr", "link down", "An interface went down"),
    ("Generic1", "substr", "system,critical", "Critical system message"),
    ("Generic1", "substr", "router rebooted", "The router rebooted"),
    ("Generic1", "substr", "ipsec,error", "IPsec error"),
    ("Generic1", "substr", "out of memory", "The router is out of memory"),
    ("Generic1", "substr", "dhcp,warning", "DHCP warning"),
    ("Generic1", "substr", "fan failure", "A fan failed"),
    ("Generic1", "substr", "logged in from 203.0.113.", "Login from outside"),
    (
        "Generic1",
        "regex",
        r"input: in:(pppoe-out1|ether1-wan) .*src-mac [0-9a-f:]+, proto TCP "
        r"\(SYN\), ((\d{1,3}\.?)+):(\d{1,5})->((\d{1,3}\.?)+):(22|23|8291)",
        "The IP @2 is knocking on port @6 of @4",
    ),
    (
        "Generic1",
        "regex",
        r"([a-zA-Z0-9-]+) link up \(speed ([0-9A-Za-z]+), half duplex\)",
        "Interface @1 is at @2, half duplex",
    ),
    (
        "Generic1",
        "regex",
        r"([0-9A-F:]{17})@([a-z0-9-]+): disconnected, unicast key exchange",
        "Wrong Wi-Fi password on @2 from @1",
    ),
    (
        "Generic1",
        "regex",
        r"dhcp-client on ([a-z0-9-]+) lost IP address ([0-9.]+)",
        "Lost the address @2 on @1",
    ),
    (
        "Generic1",
        "regex",
        r"pppoe-out[0-9]+: (disconnected|terminating)",
        "PPPoE link @1",
    ),
    (
        "Generic1",
        "regex",
        r"phase1 negotiation failed due to time up ([0-9.]+)",
        "IPsec peer @1 does not answer",
    ),
    (
        "Generic1",
        "regex",
        r"user ([a-z0-9_]+) logged in from ([0-9.]+) via (ssh|telnet|api)",
        "@1 logged in from @2 via @3",
    ),
)


def generated(i: int, kind: str) -> Event:
    """Rule number i (16 and up) of a large set: per-interface, per-user rules."""
    if kind == "substr":
        words = (
            f"vlan{i} link down",
            f"login failure for user op{i} ",
            f"sfp{i}: rx loss",
            f"cap-wlan{i} disconnected",
        )
        return ("Generic1", "substr", words[i % 4], f"substr rule {i}")
    patterns = (
        rf"dhcp-client on vlan{i} lost IP address ([0-9.]+)",
        rf"pppoe-client{i}: (disconnected|terminating)",
        rf"user op{i} logged in from ([0-9.]+) via (ssh|telnet)",
        rf"ipsec,error peer 10\.{i // 256}\.{i % 256}\.1 (timed out|refused)",
    )
    return ("Generic1", "regex", patterns[i % 4], f"regex rule {i}: @1")


def rule_set(count: int, kind: str = "mixed") -> list[Event]:
    """count rules: the realistic 16, then generated ones.

    kind ``mixed`` alternates substr and regex in the generated part;
    ``substr`` generates only substrings.
    """
    events = list(REALISTIC[:count])
    for i in range(len(events), count):
        if kind == "substr":
            events.append(generated(i, "substr"))
        else:
            events.append(generated(i, "substr" if i % 2 else "regex"))
    return events


def rules_toml(events: Sequence[Event], thresholds: int) -> str:
    """events as a rules file; thresholds of them (every fifth from rule 1 on)
    get a threshold of 5 in 60 s and a 10 minute cooldown.

    Rule 1 then counts the benchmark's alert line per user name, which is new
    on every alert line: a brute force from ever new names, the gate's worst
    case (a new key per hit, written to its state each batch).
    """
    out: list[str] = []
    given = 0
    for i, (notifier, kind, match, mask) in enumerate(events):
        if i == 1:
            kind, match, mask = "regex", "login failure for user ([a-z0-9]+)", "@1"
        out += [
            "[[rules]]",
            f'name = "r{i}"',
            f"{kind} = {json.dumps(match)}",
            f'notify = "{notifier}"',
            f"text = {json.dumps(mask)}",
        ]
        if i >= 1 and i % 5 == 1 and given < thresholds:
            key = "@1" if kind == "regex" else "@{sender}"
            out.append(f'threshold = {{ count = 5, window = "60s", key = "{key}" }}')
            out.append('cooldown = "10m"')
            given += 1
        out.append("")
    if given < thresholds:
        raise ValueError(f"{len(events)} rules hold only {given} thresholds")
    return "\n".join(out)


def events_env(events: Sequence[Event]) -> dict[str, str]:
    """EVENTn_* variables for the given events."""
    env = {"ENV_EVENTS": str(len(events))}
    for i, (notifier, kind, match, mask) in enumerate(events):
        env[f"EVENT{i}_NOTIFIER"] = notifier
        env[f"EVENT{i}_MATCH_TYPE"] = kind
        env[f"EVENT{i}_MATCH_STR"] = match
        env[f"EVENT{i}_MASK_MSG"] = mask
    return env


# --- alertik as a user runs it -------------------------------------------------


def scratch_dir(prefix: str) -> str:
    """A private directory, on tmpfs where there is one (as /log on a router)."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    return tempfile.mkdtemp(prefix=prefix, dir=base)


def clean_env(workdir: str, **extra: str) -> dict[str, str]:
    """The bench's environment for alertik: nothing inherited that configures it."""
    env = {k: v for k, v in os.environ.items() if not is_own_variable(k)}
    env.update(
        ALERTIK_RUN_DIR=os.path.join(workdir, "run"),
        ALERTIK_STATE_DIR=os.path.join(workdir, "state"),
        ALERTIK_LOG_FILE=os.path.join(workdir, "log.txt"),
        # Every line stays in one file, so that every line can be counted.
        ALERTIK_LOG_MAX_BYTES="0",
        ALERTIK_UDP_PORT="0",
        ALERTIK_BIND="127.0.0.1",
        ALERTIK_NODE_NAME="bench",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def proc_children(pid: int) -> list[int]:
    """Every live descendant of pid, from /proc."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            parents[int(entry)] = int(fields[1])
    out: list[int] = []
    frontier = [pid]
    while frontier:
        p = frontier.pop()
        for child, parent in parents.items():
            if parent == p:
                out.append(child)
                frontier.append(child)
    return out


def status_kib(pid: int, field: str = "VmRSS") -> int:
    """A ``/proc/PID/status`` figure in KiB (0 if the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kib(pid: int) -> int:
    """Proportional set size in KiB: shared pages split among their users."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def udp_drops(port: int) -> int:
    """Datagrams the kernel dropped for the UDP socket bound to port (a full buffer)."""
    total = 0
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if int(fields[1].rsplit(":", 1)[1], 16) == port:
                        total += int(fields[-1])
        except (OSError, StopIteration, ValueError, IndexError):
            continue
    return total


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Alertik:
    """``python -P -m alertik run`` in its own session, output kept with timestamps.

    -P: a checkout in the working directory must not shadow the installed
    alertik.
    """

    def __init__(self, env: dict[str, str], args: Sequence[str] = ()) -> None:
        self.env = env
        self.log_path = env.get("ALERTIK_LOG_FILE", "")
        self.started = time.monotonic()
        self.popen = subprocess.Popen(
            [sys.executable, "-P", "-m", "alertik", "run", *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.lines: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for raw in self.popen.stdout:
            now = time.monotonic()
            with self._lock:
                self.lines.append((now, raw.decode("utf-8", "replace").rstrip("\n")))

    @property
    def output(self) -> str:
        with self._lock:
            return "\n".join(line for _, line in self.lines)

    def wait_line(self, pattern: str, timeout: float = 30.0) -> tuple[float, str]:
        """The first output line matching pattern (a regex) and when it was read."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            with self._lock:
                fresh = self.lines[seen:]
            seen += len(fresh)
            for at, line in fresh:
                if rx.search(line):
                    return at, line
            if self.popen.poll() is not None and not self._reader.is_alive():
                raise RuntimeError(
                    f"alertik run exited {self.popen.returncode} before "
                    f"{pattern!r}:\n{self.output[-4000:]}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"no {pattern!r} after {timeout:g}s:\n{self.output[-4000:]}"
                )
            time.sleep(0.002)

    def udp_port(self) -> int:
        _, line = self.wait_line(r"listening on udp \S*:\d+")
        found = re.search(r"listening on udp \S*:(\d+)", line)
        assert found is not None
        return int(found.group(1))

    def tcp_port(self) -> int:
        _, line = self.wait_line(r"tcp listening on \S*:\d+")
        found = re.search(r"tcp listening on \S*:(\d+)", line)
        assert found is not None
        return int(found.group(1))

    def wait_running(self, stages: Iterable[str], timeout: float = 30.0) -> None:
        for stage in stages:
            self.wait_line(rf"success: {stage} entered RUNNING state", timeout)

    def processes(self) -> dict[str, int]:
        """The keeper's pid (alertik run's), supervisord's and each stage's."""
        out = {"keeper": self.popen.pid}
        for pid in proc_children(self.popen.pid):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if b"alertik.supervise" in argv:
                out["supervisord"] = pid
            elif b"alertik" in argv and len(argv) > argv.index(b"alertik") + 1:
                out[argv[argv.index(b"alertik") + 1].decode()] = pid
        return out

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, as docker stop does; SIGKILL everything if it takes too long.

        supervisord gives each stage its own process group, so the stages are
        killed one by one (after supervisord, which would restart them).
        """
        code: int | None = None
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            stages = proc_children(self.popen.pid)
            for pid in [self.popen.pid, *stages]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.popen.wait(5)
        self._reader.join(5)
        if self.popen.stdout is not None:
            self.popen.stdout.close()
        return code


class LogCounter:
    """Counts the benchmark lines (those with a seq field) the archive has gained."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.offset = 0
        self._tail = b""
        self.count = 0
        self.seqs: set[int] = set()
        self.keep_seqs = False
        self.last_growth = time.monotonic()

    def skip_to_end(self) -> None:
        """Forget what is there now: count only what comes after."""
        self.poll()
        self.count = 0
        self.seqs.clear()

    def poll(self) -> int:
        """Read what was appended since the last call; the new lines counted."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return 0
        if not data:
            return 0
        self.offset += len(data)
        self.last_growth = time.monotonic()
        data = self._tail + data
        cut = data.rfind(b"\n") + 1
        self._tail = data[cut:]
        body = data[:cut]
        if self.keep_seqs:
            found = SEQ_RE.findall(body)
            self.seqs.update(int(s) for s in found)
            new = len(found)
        else:
            new = body.count(b" seq=")
        self.count += new
        return new

    def wait_for(self, count: int, quiet: float = 2.0, timeout: float = 60.0) -> float:
        """Read until count lines arrived or none came for quiet seconds.

        Returns the time the last of them was read (monotonic)."""
        deadline = time.monotonic() + timeout
        last = time.monotonic()
        while self.count < count and time.monotonic() < deadline:
            if self.poll():
                last = time.monotonic()
            elif time.monotonic() - last > quiet:
                break
            else:
                time.sleep(0.01)
        return last


# --- helper processes ---------------------------------------------------------


def _spawn(target: Callable[..., None], *args: Any) -> tuple[Any, Connection]:
    ctx = multiprocessing.get_context("spawn")
    here, there = ctx.Pipe()
    proc = ctx.Process(target=target, args=(there, *args), daemon=True)
    proc.start()
    there.close()
    return proc, here


def _send_loop(conn: Connection) -> None:
    """The sender process: serves send requests until told to stop."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
    while True:
        request = conn.recv()
        if request is None:
            return
        port, first, count, rate, alert_every, want_times = request
        target = ("127.0.0.1", port)
        send = sock.sendto
        times: list[int] = []
        errors = 0
        began = time.perf_counter()
        if rate <= 0:
            payloads = [datagram(s, alert_every) for s in range(first, first + count)]
            began = time.perf_counter()
            for p in payloads:
                try:
                    send(p, target)
                except OSError:
                    errors += 1
        else:
            per_slice = max(1, round(rate * SLICE_SECONDS))
            clock = time.perf_counter
            stamp = time.monotonic_ns
            sleep = time.sleep
            seq = first
            end = first + count
            while seq < end:
                stop = min(end, seq + per_slice)
                for s in range(seq, stop):
                    if want_times:
                        times.append(stamp())
                    try:
                        send(datagram(s, alert_every), target)
                    except OSError:
                        errors += 1
                delay = began + (stop - first) / rate - clock()
                seq = stop
                if delay > 0:
                    sleep(delay)
        elapsed = time.perf_counter() - began
        conn.send((count, elapsed, errors, times))


class Sender:
    """A UDP sender in its own process; one request at a time."""

    def __init__(self) -> None:
        self._proc, self._conn = _spawn(_send_loop)

    def start(
        self,
        port: int,
        first: int,
        count: int,
        rate: float,
        alert_every: int = 0,
        want_times: bool = False,
    ) -> None:
        """Begin sending count datagrams from seq first (rate 0: flat out)."""
        self._conn.send((port, first, count, rate, alert_every, want_times))

    def result(self) -> tuple[int, float, int, list[int]]:
        """(sent, seconds it took, send errors, monotonic_ns of each if asked)."""
        result: tuple[int, float, int, list[int]] = self._conn.recv()
        return result

    def send(
        self,
        port: int,
        first: int,
        count: int,
        rate: float,
        alert_every: int = 0,
        want_times: bool = False,
    ) -> tuple[int, float, int, list[int]]:
        self.start(port, first, count, rate, alert_every, want_times)
        return self.result()

    def close(self) -> None:
        self._conn.send(None)
        self._proc.join(5)


def _bare_loop(conn: Connection) -> None:
    """The bare receiver: recvfrom in a loop, counting, nothing else."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for opt in (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF):
        if opt is None:
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, opt, BARE_RCVBUF_BYTES)
            break
        except OSError:
            continue
    sock.bind(("127.0.0.1", 0))
    conn.send(sock.getsockname()[1])
    recvfrom = sock.recvfrom
    while True:
        count = conn.recv()
        if count is None:
            return
        got = 0
        sock.settimeout(QUIET_SECONDS * 5)
        while got < count:
            try:
                recvfrom(65535)
            except TimeoutError:
                break
            got += 1
            if got == 1:
                sock.settimeout(QUIET_SECONDS)
        conn.send(got)


class BareReceiver:
    """A bare ``recvfrom`` loop in its own process, counting what arrives."""

    def __init__(self) -> None:
        self._proc, self._conn = _spawn(_bare_loop)
        self.port: int = self._conn.recv()

    def expect(self, count: int) -> None:
        """Count the next datagrams, up to count or until a quiet second."""
        self._conn.send(count)

    def received(self) -> int:
        got: int = self._conn.recv()
        return got

    def close(self) -> None:
        self._conn.send(None)
        self._proc.join(5)


_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
)


def _webhook_loop(conn: Connection) -> None:
    """The webhook process: HTTP/1.1 keep-alive, answers 200 to every POST.

    Notes (seq, arrival monotonic_ns) for each alert whose text carries a
    benchmark seq, and the arrival of every other request as seq -1.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.setblocking(False)
    conn.send(listener.getsockname()[1])
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, None)
    sel.register(conn, selectors.EVENT_READ, "control")
    buffers: dict[socket.socket, bytes] = {}
    arrivals: list[tuple[int, int]] = []
    while True:
        for key, _ in sel.select(1.0):
            if key.data == "control":
                if conn.recv() is None:
                    return
                conn.send(arrivals)
                arrivals = []
            elif key.data is None:
                client, _ = listener.accept()
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                client.setblocking(False)
                buffers[client] = b""
                sel.register(client, selectors.EVENT_READ, "client")
            else:
                client = key.fileobj  # type: ignore[assignment]
                try:
                    chunk = client.recv(65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    sel.unregister(client)
                    client.close()
                    buffers.pop(client, None)
                    continue
                data = buffers[client] + chunk
                while True:
                    head_end = data.find(b"\r\n\r\n")
                    if head_end < 0:
                        break
                    found = re.search(rb"(?i)content-length:\s*(\d+)", data[:head_end])
                    length = int(found.group(1)) if found else 0
                    end = head_end + 4 + length
                    if len(data) < end:
                        break
                    body = data[head_end + 4 : end]
                    data = data[end:]
                    now = time.monotonic_ns()
                    client.sendall(_RESPONSE)
                    try:
                        text = json.loads(body).get("text", "").encode()
                    except (ValueError, AttributeError):
                        text = b""
                    seqs = ALERT_SEQ_RE.findall(text)
                    if seqs:
                        arrivals.extend((int(s), now) for s in seqs)
                    else:
                        arrivals.append((-1, now))
                buffers[client] = data


class Webhook:
    """A fast local webhook in its own process: ``url``, and who arrived when."""

    def __init__(self) -> None:
        self._proc, self._conn = _spawn(_webhook_loop)
        self.port: int = self._conn.recv()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.arrived: list[tuple[int, int]] = []

    def collect(self) -> list[tuple[int, int]]:
        """Everything that arrived since the last call, added to ``arrived``."""
        self._conn.send(True)
        got: list[tuple[int, int]] = self._conn.recv()
        self.arrived.extend(got)
        return got

    def wait(self, count: int, timeout: float = 30.0) -> int:
        """Collect until count alerts arrived in all (or timeout); the count."""
        deadline = time.monotonic() + timeout
        while len(self.arrived) < count and time.monotonic() < deadline:
            self.collect()
            if len(self.arrived) < count:
                time.sleep(0.02)
        return len(self.arrived)

    def close(self) -> None:
        self._conn.send(None)
        self._proc.join(5)


# --- numbers -------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by the nearest-rank method."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))
    return ordered[rank]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def machine() -> str:
    """One line describing this machine: CPU, cores, memory, kernel, Python."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = status_kib(os.getpid(), "VmRSS")
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1])
    except OSError:
        pass
    return (
        f"{model}, {os.cpu_count()} cores, {mem / 1024 / 1024:.0f} GiB RAM, "
        f"Linux {os.uname().release}, Python {sys.version.split()[0]}"
    )


def remove(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
