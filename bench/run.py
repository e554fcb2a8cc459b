"""alertik's benchmarks: alertik started as a user starts it, driven over UDP.

Usage: python bench/run.py [--only SECTION,...] [--quick] [--update FILE]

Prints one Markdown table (progress goes to stderr). Sections, all run by
default in this order (``forward`` only when asked):

  startup  time from ``alertik run`` to the UDP port bound and to the first
           alert delivered to a webhook (fresh instances, three times)
  ingest   the target (50,000 datagrams/s for 4 s, 16 rules: every datagram in
           the log), then the highest rate at which every datagram of a 10 s
           run reaches the log, and beside it a bare Python recvfrom loop
  burst    100,000 datagrams as fast as the sender can: how many reach the log
  latency  packet-to-webhook p50/p99/max at 100 and 1,000 alerts/s, and the
           alerts/s a fast local webhook receives
  memory   RSS (and PSS) of supervisord and each stage, idle and after the
           sections above
  match    the matcher stage alone: events/s with 16, 100 and 1,000 rules
  rules    the matcher alone with 1,000 rules from a rules file, 200 of them
           with thresholds and cooldowns, against the same 1,000 as EVENTn_*
  tcp      UDP no-loss rate without and with 1,000 idle TCP clients and a
           slowloris on ingest's TCP listener
  forward  bench/forward.py (forwarder throughput), its last line

``--quick`` shortens every run (about a minute in all); ``--update FILE``
replaces the block between ``<!-- bench:begin -->`` and ``<!-- bench:end -->``
in FILE (docs/BENCHMARKS.md) with this run's machine, command and table.

alertik runs under ``alertik run`` with a private run directory, its log on
tmpfs (/dev/shm) as on a router, ``ALERTIK_LOG_MAX_BYTES=0`` so that every
line can be counted, and UDP on an ephemeral port of 127.0.0.1. The sender,
the bare receiver and the webhook are processes of their own; all of them
share the machine with alertik, as a router's other work would.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import harness as h
import startup
import zmq

from alertik.common.schema import ALERT_DECODER, ENCODER, SyslogEvent
from tests.support import (
    Proc,
    WebhookProcess,
    endpoint_of,
    events_env,
    memory,
    udp_port_of,
)

SECTIONS = (
    "startup",
    "ingest",
    "burst",
    "latency",
    "memory",
    "match",
    "rules",
    "tcp",
)
OPTIONAL = ("forward",)
STAGES = ("notify", "matcher", "ingest")
# The processes of `alertik run` whose memory is shown: the keeper (what
# `alertik run` becomes), supervisord below it, and the stages.
PROCESSES = ("keeper", "supervisord", *STAGES)
# The targets, quoted in the table.
TARGET_RATE = 50_000
TARGET_SECONDS = 4.0
BURST = 100_000
# One alert line in this many datagrams during the ingest and burst runs: a
# flood is mostly firewall and DHCP noise, with the odd login failure.
ALERT_EVERY = 1000
# A run "keeps up" when its last line reaches the log within this long after
# the last datagram was sent; later means it lived off queues.
KEEP_UP_SECONDS = 1.0
# A sender that falls this far short of the asked rate is the bottleneck.
SENDER_SHORTFALL = 0.97
MIB = 1024 * 1024
MARK_BEGIN = "<!-- bench:begin -->"
MARK_END = "<!-- bench:end -->"


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclass
class Settings:
    """Run lengths: the full set, or --quick."""

    quick: bool
    capacity_seconds: float = 10.0
    capacity_runs: int = 5  # attempts of the search for the highest rate
    bare_runs: int = 3
    target_runs: int = 3
    burst_runs: int = 3
    startup_runs: int = 3
    match_events: int = 200_000
    match_runs: int = 3
    tcp_seconds: float = 4.0
    tcp_runs: int = 4
    latency_runs: int = 3  # of latency_seconds[0] at 100 alerts/s
    latency_seconds: tuple[float, float] = (5.0, 3.0)
    throughput_alerts: int = 2000

    def __post_init__(self) -> None:
        if self.quick:
            self.capacity_seconds = 3.0
            self.capacity_runs = 3
            self.bare_runs = 2
            self.target_runs = 1
            self.burst_runs = 1
            self.startup_runs = 1
            self.match_events = 50_000
            self.match_runs = 1
            self.tcp_seconds = 2.0
            self.tcp_runs = 2
            self.latency_runs = 1
            self.latency_seconds = (3.0, 2.0)
            self.throughput_alerts = 1000


@dataclass
class Table:
    """The rows of the final table: measure, result, target."""

    rows: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, measure: str, result: str, target: str = "") -> None:
        self.rows.append((measure, result, target))
        progress(f"=> {measure}: {result}" + (f" (target: {target})" if target else ""))

    def markdown(self) -> str:
        lines = ["| measure | result | target |", "|---|---|---|"]
        for measure, result, target in self.rows:
            lines.append(f"| {measure} | {result} | {target} |")
        return "\n".join(lines)


def rate_text(rate: float) -> str:
    return f"{rate:,.0f}/s"


def ms(ns: float) -> str:
    return f"{ns / 1e6:.1f} ms"


# --- the pipeline under test --------------------------------------------------


@dataclass
class RunResult:
    """One paced run through alertik, as the log saw it."""

    sent: int
    rate: float  # the sender's achieved rate
    logged: int
    lag: float  # last line in the log, seconds after the last datagram left
    cpu_us: dict[str, float]  # CPU microseconds per datagram, per process
    kernel_drops: int  # of them dropped by the kernel (ingest's buffer was full)

    @property
    def lossless(self) -> bool:
        return self.logged >= self.sent

    @property
    def kept_up(self) -> bool:
        return self.lossless and self.lag <= KEEP_UP_SECONDS

    def __str__(self) -> str:
        cpu = " ".join(f"{k}={v:.1f}" for k, v in self.cpu_us.items() if v)
        verdict = "ok" if self.kept_up else "LOST" if not self.lossless else "BEHIND"
        drops = f" ({self.kernel_drops:,} in the kernel)" if self.kernel_drops else ""
        return (
            f"{self.logged:,}/{self.sent:,} at {rate_text(self.rate)}, "
            f"lag {self.lag:.2f}s {verdict}{drops}; CPU us/datagram {cpu}"
        )


class Pipeline:
    """``alertik run`` with the 16 realistic rules, a webhook and a sender."""

    def __init__(self, name: str, extra: dict[str, str] | None = None) -> None:
        self.work = h.scratch_dir(f"alertik-bench-{name}-")
        self.hook = WebhookProcess()
        env = h.clean_env(
            self.work,
            GENERIC1_WEBHOOK_URL=self.hook.url + "/hook",
            **events_env(*h.rule_set(16)),
            **(extra or {}),
        )
        self.alertik = h.start_alertik(env)
        self.sender = h.Sender()
        self.port = udp_port_of(self.alertik)
        h.wait_running(self.alertik, STAGES)
        self.log = h.LogCounter(env["ALERTIK_LOG_FILE"])
        self.seq = 1_000_000
        # Warm-up: imports done, DFA caches filled, connections made.
        self.run(2000, 4000.0, 100)
        self.hook.collect(20, 10)

    def next_seqs(self, count: int) -> int:
        first = self.seq
        self.seq += count
        return first

    def run(self, count: int, rate: float, alert_every: int = ALERT_EVERY) -> RunResult:
        """Send count datagrams at rate (0: flat out); count them in the log."""
        self.log.skip_to_end()
        pids = h.processes(self.alertik)
        before = {k: h.cpu_seconds(p) for k, p in pids.items()}
        drops = h.udp_drops(self.port)
        sent, elapsed, _, _ = self.sender.send(
            self.port, self.next_seqs(count), count, rate, alert_every
        )
        ended = time.monotonic()
        last = self.log.wait_for(count, quiet=3.0)
        cpu = {
            k: (h.cpu_seconds(p) - before[k]) / max(1, sent) * 1e6
            for k, p in pids.items()
        }
        return RunResult(
            sent,
            sent / elapsed,
            self.log.count,
            max(0.0, last - ended),
            cpu,
            h.udp_drops(self.port) - drops,
        )

    def close(self) -> None:
        code = h.stop(self.alertik)
        if code != 0:
            progress(f"  alertik run exited {code}:\n{self.alertik.output[-3000:]}")
        self.sender.close()
        self.hook.close()
        h.remove(self.work)


@contextmanager
def pipeline(name: str, **extra: str) -> Iterator[Pipeline]:
    p = Pipeline(name, extra)
    try:
        yield p
    finally:
        p.close()


def search(
    ok: Callable[[int], tuple[bool, float]], start: int, runs: int, limit: int
) -> tuple[int, bool]:
    """The highest rate ok() passes: grow by half until a failure, then bisect,
    in at most runs attempts.

    ok(rate) gives (nothing lost, the rate the sender achieved). A rate the
    sender could not reach counts as a failure (the machine could not carry
    sender and receiver together), but if nothing was lost the answer is
    marked as a lower bound: the sender, not the receiver, was the limit.
    """
    lo, hi = 0, 0
    sender_bound = False
    left = runs

    def attempt(rate: int) -> bool:
        nonlocal sender_bound, left
        left -= 1
        passed, achieved = ok(rate)
        if achieved < rate * SENDER_SHORTFALL:
            sender_bound = sender_bound or passed
            return False
        return passed

    rate = start
    while rate <= limit and left > 0:
        if not attempt(rate):
            hi = rate
            break
        lo = rate
        rate = int(rate * 1.5 // 1000 * 1000)
    if not hi:
        return lo, True
    while left > 0:
        mid = (lo + hi) // 2 // 1000 * 1000
        if mid <= lo or mid >= hi:
            break
        if attempt(mid):
            lo = mid
        else:
            hi = mid
    return lo, sender_bound


# --- sections -------------------------------------------------------------------


def section_startup(s: Settings, table: Table) -> None:
    """bench/startup.py's measure: the port as the kernel lists it, then the
    first alert of a datagram sent the moment it is bound."""
    argv = startup.command(use_python=True)
    bound: list[float] = []
    first: list[float] = []
    for i in range(s.startup_runs):
        b, f = startup.one_start(argv, 16)
        bound.append(b)
        first.append(f)
        progress(f"  start-up {i + 1}: udp bound {b:.2f}s, first alert {f:.2f}s")
    runs = f"median of {len(bound)}"
    table.add(
        f"start-up: `alertik run` to UDP port bound ({runs})",
        f"{h.median(bound):.2f} s",
        "≤ 0.5 s",
    )
    table.add(
        f"start-up: `alertik run` to first alert at the webhook ({runs})",
        f"{h.median(first):.2f} s",
    )


def memory_rows(p: Pipeline, when: str, table: Table) -> None:
    procs = h.processes(p.alertik)
    parts = []
    total = pss = 0
    for name in PROCESSES:
        pid = procs.get(name)
        if pid is None:
            continue
        used = memory(pid)
        total += used.rss
        pss += used.pss
        parts.append(f"{name} {used.rss / MIB:.1f}")
    table.add(
        f"memory {when}: RSS MiB of each process",
        ", ".join(parts) + f"; **total {total / MIB:.1f} MiB** (PSS {pss / MIB:.1f})",
        "< 100 MB in all" if when == "after the runs" else "",
    )


def section_ingest(s: Settings, p: Pipeline, table: Table) -> None:
    results = []
    for i in range(s.target_runs):
        count = int(TARGET_RATE * TARGET_SECONDS)
        r = p.run(count, TARGET_RATE)
        results.append(r)
        progress(f"  target run {i + 1}: {r}")
    losses = [r.sent - min(r.sent, r.logged) for r in results]
    table.add(
        f"ingest: {TARGET_RATE:,} datagrams/s for {TARGET_SECONDS:g} s, 16 rules "
        f"({len(results)} runs): datagrams in the log",
        ", ".join(f"{r.logged:,}/{r.sent:,}" for r in results)
        + f" (median lag {h.median([r.lag for r in results]):.2f} s)",
        "every datagram",
    )
    cpu_ingest = h.median([r.cpu_us.get("ingest", 0.0) for r in results])
    cpu_matcher = h.median([r.cpu_us.get("matcher", 0.0) for r in results])
    table.add(
        "ingest: CPU per datagram at the target rate (median)",
        f"ingest {cpu_ingest:.1f} us, matcher {cpu_matcher:.1f} us",
    )
    del losses

    seconds = s.capacity_seconds

    def through_alertik(rate: int) -> tuple[bool, float]:
        r = p.run(int(rate * seconds), rate)
        progress(f"  alertik at {rate_text(rate)} for {seconds:g}s: {r}")
        return r.kept_up, r.rate

    best, bound = search(through_alertik, TARGET_RATE, s.capacity_runs, 400_000)
    bare = h.BareReceiver()
    try:

        def through_bare(rate: int) -> tuple[bool, float]:
            count = int(rate * seconds)
            bare.expect(count)
            sent, elapsed, _, _ = p.sender.send(bare.port, 0, count, rate)
            got = bare.received()
            progress(
                f"  bare recvfrom at {rate_text(rate)} for {seconds:g}s: "
                f"{got:,}/{sent:,} (sender {rate_text(sent / elapsed)})"
            )
            return got >= sent, sent / elapsed

        bare_best, bare_bound = search(
            through_bare, 3 * TARGET_RATE, s.bare_runs, 400_000
        )
    finally:
        bare.close()
    shown = ("≥ " if bound else "") + rate_text(best)
    bare_shown = ("≥ " if bare_bound else "") + rate_text(bare_best)
    ratio = best / bare_best if bare_best else float("nan")
    table.add(
        f"ingest capacity: highest rate with every datagram of a {seconds:g} s run "
        f"in the log, keeping up (lag ≤ {KEEP_UP_SECONDS:g} s)",
        shown,
    )
    table.add(
        "ingest capacity: a bare Python `recvfrom` loop, same sender",
        f"{bare_shown}; alertik/bare = **{ratio:.2f}**",
    )


def section_burst(s: Settings, p: Pipeline, table: Table) -> None:
    results = []
    for i in range(s.burst_runs):
        r = p.run(BURST, 0.0)
        results.append(r)
        progress(f"  burst {i + 1}: {r}")
    table.add(
        f"burst: {BURST:,} datagrams flat out ({len(results)} runs, sender at "
        f"{rate_text(h.median([r.rate for r in results]))}): in the log",
        ", ".join(f"{r.logged:,}" for r in results),
        "no loss",
    )


def latency_run(p: Pipeline, rate: float, seconds: float) -> list[int]:
    """Send alert lines paced at rate; each one's packet-to-webhook time (ns)."""
    count = int(rate * seconds)
    p.hook.forget()
    first = p.next_seqs(count)
    _, _, _, times = p.sender.send(p.port, first, count, rate, 1, True)
    p.hook.collect(count, 30 + seconds)
    arrived = {
        seq: t for seq, t in h.arrivals(p.hook.requests) if first <= seq < first + count
    }
    if len(arrived) < count:
        progress(f"  only {len(arrived)} of {count} alerts arrived")
    return [arrived[first + i] - t for i, t in enumerate(times) if first + i in arrived]


def section_latency(s: Settings, p: Pipeline, table: Table) -> None:
    runs = [latency_run(p, 100.0, s.latency_seconds[0]) for _ in range(s.latency_runs)]
    for lat in runs:
        progress(
            f"  100 alerts/s: p50 {ms(h.percentile(lat, 0.5))}, p99 "
            f"{ms(h.percentile(lat, 0.99))}, max {ms(max(lat))}"
        )
    table.add(
        f"latency: packet to webhook at 100 alerts/s ({len(runs)} runs of "
        f"{len(runs[0]):,} alerts): median p50 / median p99 / max",
        f"{ms(h.median([h.percentile(r, 0.5) for r in runs]))} / "
        f"{ms(h.median([h.percentile(r, 0.99) for r in runs]))} / "
        f"{ms(max(max(r) for r in runs))}",
        "p99 < 20 ms",
    )
    lat = latency_run(p, 1000.0, s.latency_seconds[1])
    table.add(
        f"latency: packet to webhook at 1,000 alerts/s ({len(lat):,} alerts): "
        "p50 / p99 / max",
        f"{ms(h.percentile(lat, 0.5))} / {ms(h.percentile(lat, 0.99))} / "
        f"{ms(max(lat))}",
    )
    count = s.throughput_alerts
    p.hook.forget()
    first = p.next_seqs(count)
    started = time.monotonic_ns()
    p.sender.send(p.port, first, count, 0.0, 1)
    p.hook.collect(count, 60)
    times = sorted(
        t for seq, t in h.arrivals(p.hook.requests) if first <= seq < first + count
    )
    if len(times) > 1:
        rate = (len(times) - 1) / ((times[-1] - times[0]) / 1e9)
        whole = len(times) / ((times[-1] - started) / 1e9)
        table.add(
            f"alerts delivered to a fast local webhook ({len(times):,} sent flat out)",
            f"{rate_text(rate)} (first to last; {rate_text(whole)} from the first "
            "datagram)",
        )


def section_tcp(s: Settings, table: Table) -> None:
    seconds = s.tcp_seconds
    with pipeline("tcp", ALERTIK_TCP_PORT="0") as p:
        tcp_port = h.tcp_port(p.alertik)

        def ok(rate: int) -> tuple[bool, float]:
            r = p.run(int(rate * seconds), rate)
            progress(f"  udp at {rate_text(rate)} for {seconds:g}s: {r}")
            return r.kept_up, r.rate

        plain, plain_bound = search(ok, TARGET_RATE, s.tcp_runs, 400_000)
        idle: list[socket.socket] = []
        stop = threading.Event()
        loris = threading.Thread(target=slowloris, args=(tcp_port, stop), daemon=True)
        try:
            for _ in range(1000):
                idle.append(socket.create_connection(("127.0.0.1", tcp_port)))
            loris.start()
            time.sleep(1.0)  # every connection accepted and registered
            loaded, loaded_bound = search(ok, plain or TARGET_RATE, s.tcp_runs, 400_000)
        finally:
            stop.set()
            loris.join(5)
            for c in idle:
                c.close()
        table.add(
            f"UDP no-loss rate ({seconds:g} s runs), TCP listener on, no TCP clients",
            ("≥ " if plain_bound else "") + rate_text(plain),
        )
        table.add(
            "UDP no-loss rate with 1,000 idle TCP connections and one slowloris",
            ("≥ " if loaded_bound else "") + rate_text(loaded),
        )


def slowloris(port: int, stop: threading.Event) -> None:
    """One client that sends a message a byte at a time and never ends it."""
    with socket.create_connection(("127.0.0.1", port)) as c:
        while not stop.wait(0.1):
            c.send(b"x")


def section_match(s: Settings, table: Table) -> None:
    configs = (
        (16, "mixed"),
        (100, "mixed"),
        (1000, "mixed"),
        (16, "substr"),
        (1000, "substr"),
    )
    rates: dict[tuple[int, str], float] = {}
    for count, kind in configs:
        rates[(count, kind)] = matcher_alone(s, count, kind)
        table.add(
            f"matcher stage alone, {count:,} rules ({kind}): events/s "
            f"(median of {s.match_runs}, 1 in 100 raises an alert)",
            rate_text(rates[(count, kind)]),
        )
    ratio = rates[(1000, "substr")] / rates[(16, "mixed")]
    table.add(
        "matcher: 1,000 substring rules vs the 16 realistic ones",
        f"**{ratio:.2f}**",
        "≥ 0.5",
    )


def section_rules(s: Settings, table: Table) -> None:
    """1,000 file rules with 200 thresholds against the same 1,000 as events.

    The two alternate, RULES_ROUNDS times each, so that a machine that gets
    busier or quieter meanwhile weighs on both alike.
    """
    env_rates: list[float] = []
    file_rates: list[float] = []
    env_cpu: list[float] = []
    file_cpu: list[float] = []
    for _ in range(1 if s.quick else RULES_ROUNDS):
        env_rates += matcher_rates(s, 1000, "mixed", cpu=env_cpu)
        file_rates += matcher_rates(s, 1000, "mixed", thresholds=200, cpu=file_cpu)
    env_rate, file_rate = h.median(env_rates), h.median(file_rates)
    runs = len(env_rates)
    table.add(
        "matcher stage alone, 1,000 `EVENTn_*` rules (mixed): events/s (median of "
        f"{runs}, 1 in 100 raises an alert)",
        rate_text(env_rate),
    )
    table.add(
        "matcher stage alone, the same 1,000 rules from a rules file, 200 with a "
        f"threshold and cooldown: events/s (median of {runs}, alternating with the "
        "line above; 1 in 100 a new threshold key and an alert)",
        rate_text(file_rate),
    )
    table.add(
        "matcher: 1,000 file rules (200 thresholds) vs 1,000 `EVENTn_*` rules",
        f"**{file_rate / env_rate:.2f}**",
        "≥ 0.8",
    )
    env_us, file_us = h.median(env_cpu), h.median(file_cpu)
    table.add(
        "matcher CPU per event (median): `EVENTn_*` / rules file, and the ratio "
        "of the rates they allow",
        f"{env_us:.1f} us / {file_us:.1f} us = **{env_us / file_us:.2f}**",
        "≥ 0.8",
    )


RULES_ROUNDS = 3


def matcher_alone(s: Settings, rules: int, kind: str, thresholds: int = -1) -> float:
    """Events/s through ``alertik matcher`` alone (median of matcher_rates)."""
    return h.median(matcher_rates(s, rules, kind, thresholds))


def matcher_rates(
    s: Settings,
    rules: int,
    kind: str,
    thresholds: int = -1,
    cpu: list[float] | None = None,
) -> list[float]:
    """Events/s through ``alertik matcher`` alone: pushed in, counted in its log.

    With thresholds >= 0 the rules come from a rules file instead of EVENTn_*
    (h.rules_toml), that many of them with a threshold and a cooldown. Each
    run's rate; cpu, if given, gets each run's matcher CPU time per event (us),
    which a busy machine disturbs less than the rate.
    """
    work = h.scratch_dir("alertik-bench-match-")
    events = h.rule_set(rules, kind)
    if thresholds >= 0:
        path = os.path.join(work, "rules.toml")
        with open(path, "w") as f:
            f.write(h.rules_toml(events, thresholds))
        rule_env = {"ALERTIK_RULES_FILE": path}
    else:
        rule_env = events_env(*events)
    with (
        zmq.Context() as ctx,
        ctx.socket(zmq.PULL) as sink,
        ctx.socket(zmq.PUSH) as push,
    ):
        sink.setsockopt(zmq.LINGER, 0)
        push.setsockopt(zmq.LINGER, 0)
        push.setsockopt(zmq.SNDHWM, 0)
        sink_port = sink.bind_to_random_port("tcp://127.0.0.1")
        env = h.clean_env(
            work,
            GENERIC1_WEBHOOK_URL="http://127.0.0.1:9/unused",
            ALERTIK_MATCHER_ADDR="tcp://127.0.0.1:*",
            ALERTIK_MATCHER_TAP="tcp://127.0.0.1:*",
            ALERTIK_NOTIFY_ADDR=f"tcp://127.0.0.1:{sink_port}",
            **rule_env,
        )
        proc = Proc([sys.executable, "-m", "alertik", "matcher"], env)
        try:
            # Compiling 1,000 rules on a busy machine takes its time.
            push.connect(endpoint_of(proc, "matcher", 60))
            log = h.LogCounter(env["ALERTIK_LOG_FILE"])
            seq = 0
            frames = _frames(0, 5000)
            for frame in frames:
                push.send(frame)
            log.wait_for(5000, quiet=5.0)
            alerts = _count(sink)
            rates = []
            for _ in range(s.match_runs):
                seq += 1_000_000
                frames = _frames(seq, s.match_events)
                log.skip_to_end()
                started = time.monotonic()
                used = h.cpu_seconds(proc.popen.pid)
                for frame in frames:
                    push.send(frame)
                last = log.wait_for(len(frames), quiet=5.0)
                if cpu is not None:
                    cpu.append((h.cpu_seconds(proc.popen.pid) - used) / log.count * 1e6)
                alerts = _count(sink)
                rate = log.count / (last - started)
                rates.append(rate)
                progress(
                    f"  matcher, {rules} {kind} rules: {log.count:,} events in "
                    f"{last - started:.2f}s = {rate_text(rate)}, {alerts} alerts"
                )
        finally:
            proc.terminate(10)
            h.remove(work)
    return rates


def _frames(first: int, count: int) -> list[bytes]:
    now = time.time()
    return [
        ENCODER.encode(
            SyslogEvent(
                raw=h.datagram(seq, 100),
                received=now,
                sender="192.0.2.1",
                sender_port=514,
                node="bench",
                seq=seq,
                pid=1,
            )
        )
        for seq in range(first, first + count)
    ]


def _count(sink: zmq.Socket[bytes]) -> int:
    """Alerts waiting at the stand-in for notify (read and checked)."""
    n = 0
    while sink.poll(200):
        ALERT_DECODER.decode(sink.recv())
        n += 1
    return n


def section_forward(s: Settings, table: Table) -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    args = [sys.executable, os.path.join(here, "forward.py")]
    if s.quick:
        args += ["--count", "50000", "--rates", "25000,50000", "--step-seconds", "1"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=600).stdout
    for line in out.splitlines():
        progress(f"  forward.py: {line}")
    last = out.strip().splitlines()[-1] if out.strip() else "forward.py printed nothing"
    table.add("forwarder (bench/forward.py)", last.split(": ", 1)[-1])


# --- main -------------------------------------------------------------------------


def document(table: Table, command: str, took: float) -> str:
    when = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return "\n".join(
        [
            MARK_BEGIN,
            f"Measured {when} on {h.machine()}.",
            "",
            f"Command: `{command}` ({took / 60:.1f} minutes)",
            "",
            table.markdown(),
            MARK_END,
        ]
    )


def update(path: str, block: str) -> None:
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        text = ""
    if MARK_BEGIN in text and MARK_END in text:
        head, rest = text.split(MARK_BEGIN, 1)
        tail = rest.split(MARK_END, 1)[1]
        text = head + block + tail
    else:
        text = text + ("\n" if text else "") + block + "\n"
    with open(path, "w") as f:
        f.write(text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", default=",".join(SECTIONS), help="comma list of sections to run"
    )
    parser.add_argument("--quick", action="store_true", help="short runs (~1 minute)")
    parser.add_argument("--update", metavar="FILE", help="write the table into FILE")
    args = parser.parse_args(argv)
    wanted = [w for w in args.only.split(",") if w]
    unknown = [w for w in wanted if w not in SECTIONS + OPTIONAL]
    if unknown:
        parser.error(f"unknown sections {unknown}; use {','.join(SECTIONS + OPTIONAL)}")
    s = Settings(quick=args.quick)
    table = Table()
    began = time.monotonic()
    progress(f"machine: {h.machine()}")
    if "startup" in wanted:
        section_startup(s, table)
    shared = [w for w in ("ingest", "burst", "latency", "memory") if w in wanted]
    if shared:
        with pipeline("main") as p:
            if "memory" in wanted:
                time.sleep(2.0)
                memory_rows(p, "at idle", table)
            if "ingest" in wanted:
                section_ingest(s, p, table)
            if "burst" in wanted:
                section_burst(s, p, table)
            if "latency" in wanted:
                section_latency(s, p, table)
            if "memory" in wanted:
                memory_rows(p, "after the runs", table)
    if "match" in wanted:
        section_match(s, table)
    if "rules" in wanted:
        section_rules(s, table)
    if "tcp" in wanted:
        section_tcp(s, table)
    if "forward" in wanted:
        section_forward(s, table)
    took = time.monotonic() - began
    command = "python bench/run.py " + " ".join(
        a for a in (argv if argv is not None else sys.argv[1:]) if a
    )
    command = re.sub(r"\s*--update(=|\s+)\S+", "", command).strip()
    print(table.markdown())
    progress(f"took {took / 60:.1f} minutes")
    if args.update:
        update(args.update, document(table, command, took))
    return 0


if __name__ == "__main__":
    sys.exit(main())
