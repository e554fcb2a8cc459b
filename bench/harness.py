"""Shared pieces of the benchmarks: alertik as a user runs it, and its peers.

* ``start_alertik``: ``python -m alertik run`` (the keeper, supervisord and
  one process per stage) in a private run directory, on ephemeral ports of
  127.0.0.1: a ``tests.support.Proc``, its output collected line by line; its
  processes, their memory and CPU time through psutil.
* ``Sender``: a process that sends RouterOS-style datagrams to a UDP port,
  paced or flat out, and says when it sent each one.
* ``BareReceiver``: a process with nothing but a ``recvfrom`` loop, the
  yardstick for ingest.
* ``tests.support.WebhookProcess``: the tests' webhook server in a process of
  its own; ``arrivals`` says which alert arrived when.
* ``LogCounter``: reads the log archive as it grows and counts the lines.

Senders and receivers run in processes of their own (multiprocessing, spawn)
so that they never share a GIL with each other or with the measuring script.
Everything talks over 127.0.0.1 only.

The scripts run as ``python bench/NAME.py``. Importing this module puts the
repository on ``sys.path`` (first, as pytest does for the tests), so that the
scripts and this module can use ``tests.support``: a script imports harness
before anything from ``tests``.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from multiprocessing.connection import Connection
from typing import Any

import psutil

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tests.support import (  # noqa: E402
    Proc,
    Request,
    alertik_processes,
    base_env,
)

# Every benchmark datagram is exactly this long: a typical RouterOS line.
LINE_BYTES = 200
# Where each line carries its sequence number: 9 digits, unique per run.
SEQ_FORMAT = b" seq=%09d"
SEQ_RE = re.compile(rb" seq=(\d{9})")
# The kernel receive buffer asked for by the bare recvfrom loop. ingest asks
# for more (64 MiB, ingest/listen.py RCVBUF_BYTES); the bare loop's figures in
# docs/BENCHMARKS.md were taken with this one.
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


# --- alertik as a user runs it -------------------------------------------------


def scratch_dir(prefix: str) -> str:
    """A private directory, on tmpfs where there is one (as /log on a router)."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    return tempfile.mkdtemp(prefix=prefix, dir=base)


def clean_env(workdir: str, **extra: str) -> dict[str, str]:
    """The bench's environment for alertik: nothing inherited that configures it,
    private directories under workdir, UDP on an ephemeral port of 127.0.0.1."""
    # Every line stays in one file, so that every line can be counted.
    env = base_env(workdir, ALERTIK_LOG_MAX_BYTES="0", ALERTIK_NODE_NAME="bench")
    # The tests' short retry cap is theirs; the bench keeps alertik's default.
    del env["ALERTIK_RETRY_MAX_DELAY"]
    env.update(extra)
    return env


def start_alertik(env: dict[str, str], *args: str) -> Proc:
    """``python -P -m alertik run`` in its own session, its output kept line by
    line with the time each line was read.

    -P: a checkout in the working directory must not shadow the installed
    alertik.
    """
    return Proc([sys.executable, "-P", "-m", "alertik", "run", *args], env)


def wait_running(alertik: Proc, stages: Iterable[str], timeout: float = 30.0) -> float:
    """Wait until supervisord says every stage is RUNNING; when the last said so."""
    return max(
        alertik.wait_match(rf"success: {stage} entered RUNNING state", timeout)[0]
        for stage in stages
    )


def tcp_port(alertik: Proc, kind: str = "tcp") -> int:
    """The port ingest's TCP (or, kind "tls", TLS) listener logged."""
    _, found = alertik.wait_match(rf"{kind} listening on \S*:(\d+)", 30.0)
    return int(found.group(1))


def stop(alertik: Proc, timeout: float = 20.0) -> int | None:
    """SIGTERM, as docker stop does; its exit status, or None if it did not
    stop in time and the whole tree was killed."""
    try:
        return alertik.terminate(timeout)
    except subprocess.TimeoutExpired:
        return None


def processes(alertik: Proc) -> dict[str, int]:
    """The keeper's pid (``alertik run`` becomes it), supervisord's and each
    stage's, by name."""
    return alertik_processes(alertik.popen.pid)


def udp_sockets(port: int) -> list[list[str]]:
    """The kernel's rows (/proc/net/udp, udp6) for the UDP sockets bound to port."""
    rows = []
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if int(fields[1].rsplit(":", 1)[1], 16) == port:
                        rows.append(fields)
        except (OSError, StopIteration, ValueError, IndexError):
            continue
    return rows


def udp_bound(port: int) -> bool:
    """Whether some socket is bound to this UDP port (IPv4 or IPv6)."""
    return bool(udp_sockets(port))


def udp_drops(port: int) -> int:
    """Datagrams the kernel dropped for the UDP socket bound to port (a full buffer)."""
    return sum(int(fields[-1]) for fields in udp_sockets(port))


def free_udp_port() -> int:
    """A UDP port of 127.0.0.1 that nobody holds right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (0 if it is gone)."""
    try:
        used = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return used.user + used.system


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


def spawn_helper(target: Callable[..., None], *args: Any) -> tuple[Any, Connection]:
    """target(conn, *args) in a process of its own (spawn); conn is the other
    end of the pipe returned beside the process."""
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
        self._proc, self._conn = spawn_helper(_send_loop)

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
        self._proc, self._conn = spawn_helper(_bare_loop)
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


def arrivals(requests: Iterable[Request]) -> list[tuple[int, int]]:
    """(seq, monotonic ns) of each alert a webhook received: the benchmark seq
    its text carries, or -1 for a request that carries none."""
    out: list[tuple[int, int]] = []
    for request in requests:
        at = round(request.at * 1e9)
        try:
            text = json.loads(request.body).get("text", "").encode()
        except (ValueError, AttributeError):
            text = b""
        seqs = ALERT_SEQ_RE.findall(text)
        if seqs:
            out.extend((int(s), at) for s in seqs)
        else:
            out.append((-1, at))
    return out


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
    mem = psutil.virtual_memory().total
    return (
        f"{model}, {os.cpu_count()} cores, {mem / 2**30:.0f} GiB RAM, "
        f"Linux {os.uname().release}, Python {sys.version.split()[0]}"
    )


def remove(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
