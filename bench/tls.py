"""Syslog over TLS against TCP, on this machine: replay bursts, handshakes, memory.

Usage: python bench/tls.py [--runs N] [--handshakes N] [--connections N]

Starts alertik as a user does (``alertik run``, ingest with ALERTIK_TCP_PORT
and ALERTIK_TLS_PORT, a certificate from ``alertik cert``) and measures:

1. replay bursts: a RouterOS-like client (TLS 1.2 checking the certificate,
   or plain TCP) sends 1,000 CEF entries in one write, each ending in
   ``\\r\\n`` or in nothing (``cef-event-delimiter``); the time from the
   write to the 1,000th line in the log archive (median of ``--runs``), and
   ingest's CPU per burst (mean). Undelimited bursts include the one second
   of quiet after which the last entry is taken as complete;
2. handshakes: ``--handshakes`` connections one after another (TLS 1.2 with
   RSA 2048 as RouterOS, then TLS 1.3), each closed after its handshake; the
   client's handshake time (median, p99) and ingest's CPU per connection;
3. memory: ingest's RSS before and after ``--connections`` idle connections
   (TLS with the handshake done, then plain TCP): KiB per connection.

Prints one Markdown table; progress goes to stderr. About a minute.
"""

from __future__ import annotations

import argparse
import os
import socket
import ssl
import sys
import tempfile
import time

import harness as h

from alertik import cert
from tests.support import memory

BURST = 1000
CEF = (
    b"Nov 30 10:00:00 MikroTik CEF:0|MikroTik|CHR|7.19.4 (stable)|10|"
    b"system,info,account|Low|dvchost=MikroTik dvc=192.0.2.1 msg=user admin "
    b"logged in from 192.0.2.7 via winbox app=winbox duser=admin outcome=success"
    + h.SEQ_FORMAT
)


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def client_context(trusted: str, version: ssl.TLSVersion) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ctx.maximum_version = version
    ctx.check_hostname = False  # RouterOS checks the chain only
    ctx.load_verify_locations(cafile=trusted)
    return ctx


def connect(port: int, ctx: ssl.SSLContext | None) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return ctx.wrap_socket(sock) if ctx is not None else sock


def median_ms(values: list[float]) -> str:
    return f"{h.median(values) * 1000:.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--handshakes", type=int, default=300)
    parser.add_argument("--connections", type=int, default=500)
    args = parser.parse_args()

    work = h.scratch_dir("alertik-bench-tls-")
    pair_dir = tempfile.mkdtemp(prefix="pair-", dir=work)
    crt, key = cert.make(["localhost", "127.0.0.1"], pair_dir, 2, False)
    env = h.clean_env(
        work,
        ALERTIK_TCP_PORT="0",
        ALERTIK_TLS_PORT="0",
        ALERTIK_TLS_CERT=crt,
        ALERTIK_TLS_KEY=key,
        # All the bench's connections come from 127.0.0.1.
        ALERTIK_TCP_MAX_CONNECTIONS=str(args.connections + 100),
        ALERTIK_TCP_MAX_PER_SOURCE=str(args.connections + 100),
    )
    alertik = h.start_alertik(env)
    rows: list[tuple[str, str]] = []
    try:
        h.wait_running(alertik, ("notify", "matcher", "ingest"))
        tcp_port = h.tcp_port(alertik)
        tls_port = h.tcp_port(alertik, "tls")
        ingest = h.processes(alertik)["ingest"]
        counter = h.LogCounter(env["ALERTIK_LOG_FILE"])
        tls12 = client_context(crt, ssl.TLSVersion.TLSv1_2)
        tls13 = client_context(crt, ssl.TLSVersion.TLSv1_3)
        seq = 0

        # 1. replay bursts
        for name, port, ctx in (("tcp", tcp_port, None), ("tls", tls_port, tls12)):
            for delim, label in ((b"\r\n", "crlf"), (b"", "empty")):
                times, cpu = [], []
                for _ in range(args.runs):
                    burst = b"".join(CEF % (seq + n) + delim for n in range(BURST))
                    seq += BURST
                    counter.skip_to_end()
                    with connect(port, ctx) as sock:
                        before = h.cpu_seconds(ingest)
                        start = time.monotonic()
                        sock.sendall(burst)
                        last = counter.wait_for(BURST, quiet=3.0)
                        if counter.count != BURST:
                            raise RuntimeError(
                                f"{name} {label}: {counter.count} of {BURST} lines"
                            )
                        times.append(last - start)
                        cpu.append(h.cpu_seconds(ingest) - before)
                # CPU time comes in clock ticks (10 ms): the mean over the
                # runs says more than any one of them.
                rows.append(
                    (
                        f"1,000 CEF entries over {name}, delimiter {label}: "
                        "write to last line archived, median (ingest CPU, mean)",
                        f"{median_ms(times)} ({sum(cpu) / len(cpu) * 1000:.0f} ms)",
                    )
                )
                progress(f"{rows[-1][0]}: {rows[-1][1]}")

        # 2. handshakes
        for label, ctx in (("TLS 1.2", tls12), ("TLS 1.3", tls13)):
            durations = []
            before = h.cpu_seconds(ingest)
            for _ in range(args.handshakes):
                raw = socket.create_connection(("127.0.0.1", tls_port), timeout=10)
                start = time.perf_counter()
                tls = ctx.wrap_socket(raw)
                durations.append(time.perf_counter() - start)
                tls.close()
            per = (h.cpu_seconds(ingest) - before) / args.handshakes
            rows.append(
                (
                    f"{label} handshake, RSA 2048: client median / p99 (ingest CPU "
                    "per connection)",
                    f"{median_ms(durations)} / "
                    f"{h.percentile(durations, 0.99) * 1000:.1f} ms "
                    f"({per * 1000:.2f} ms)",
                )
            )
            progress(f"{rows[-1][0]}: {rows[-1][1]}")

        # 3. memory per idle connection
        for name, port, ctx in (("tls", tls_port, tls12), ("tcp", tcp_port, None)):
            time.sleep(0.5)  # let the closed connections of before go
            base = memory(ingest).rss
            held = [connect(port, ctx) for _ in range(args.connections)]
            if ctx is None:
                for sock in held:  # make sure ingest has accepted them all
                    sock.sendall(b"")
            time.sleep(1.0)  # accepted within a turn; RSS read after
            grown = (memory(ingest).rss - base) / 1024
            for sock in held:
                sock.close()
            rows.append(
                (
                    f"ingest RSS per idle {name} connection "
                    f"({args.connections} connections)",
                    f"{grown / args.connections:.1f} KiB",
                )
            )
            progress(f"{rows[-1][0]}: {rows[-1][1]}")
    finally:
        h.stop(alertik)
        h.remove(work)

    print(f"machine: {h.machine()}")
    print(f"command: python bench/tls.py --runs {args.runs} --handshakes "
          f"{args.handshakes} --connections {args.connections}")  # fmt: skip
    print()
    print("| measure | result |")
    print("|---|---|")
    for measure, result in rows:
        print(f"| {measure} | {result} |")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
