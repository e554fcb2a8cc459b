"""What the web stage costs: memory of every process, time to answer.

Usage: python bench/web.py [--messages N] [--requests N]

Starts alertik as a user does (``alertik run``) twice: without the web stage,
then with ``ALERTIK_METRICS_ADDR`` and ``ALERTIK_WEB_ADDR``; sends --messages
datagrams from 50 router addresses on loopback (127.0.0.1-50, a tenth raising
an alert to a local webhook); then times --requests scrapes of /metrics and
loads of the status page and one workbench run, and reads every process's
RSS and PSS. Prints one Markdown table; progress goes to stderr. About half
a minute.
"""

from __future__ import annotations

import argparse
import re
import socket
import statistics
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import harness as h

ROUTERS = 50
LOGIN = b"system,error,critical login failure for user admin from 10.0.0.9 via ssh"
INFO = b"system,info,account user admin logged in from 10.0.0.9 via winbox"


class Hook(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def memory(run: h.Alertik) -> dict[str, tuple[int, int]]:
    return {
        name: (h.status_kib(pid), h.pss_kib(pid))
        for name, pid in sorted(run.processes().items())
    }


def shown(found: dict[str, tuple[int, int]]) -> str:
    total = sum(rss for rss, _ in found.values())
    pss = sum(p for _, p in found.values())
    parts = [f"{name} {rss / 1024:.1f}" for name, (rss, _) in found.items()]
    return (
        f"{', '.join(parts)}; **total {total / 1024:.1f} MiB** (PSS {pss / 1024:.1f})"
    )


def send(port: int, count: int) -> None:
    socks = []
    for i in range(ROUTERS):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((f"127.0.0.{i + 1}", 0))
        socks.append(s)
    for n in range(count):
        socks[n % ROUTERS].sendto(LOGIN if n % 10 == 0 else INFO, ("127.0.0.1", port))
        if n % 200 == 199:
            time.sleep(0.01)
    for s in socks:
        s.close()


def timed(url: str, data: bytes | None = None) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, data=data, timeout=30) as answer:
        answer.read()
    return (time.perf_counter() - started) * 1000


def start(env: dict[str, str], stages: list[str]) -> h.Alertik:
    run = h.Alertik(env)
    run.wait_running(stages)
    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    base = {
        "GENERIC1_WEBHOOK_URL": f"http://127.0.0.1:{hook.server_address[1]}/hook",
        "ENV_EVENTS": "1",
        "EVENT0_NOTIFIER": "Generic1",
        "EVENT0_MATCH_TYPE": "regex",
        "EVENT0_MATCH_STR": r"login failure for user ([a-z]+) from ([0-9.]+)",
        "EVENT0_MASK_MSG": "Failed login as @1 from @2",
    }
    rows: list[tuple[str, str]] = []
    stages = ["notify", "matcher", "ingest"]

    print("alertik without the web stage ...", file=sys.stderr)
    run = start(h.clean_env(h.scratch_dir("alertik-bench-web-"), **base), stages)
    send(run.udp_port(), args.messages)
    time.sleep(3)
    rows.append(("memory without the web stage: RSS MiB", shown(memory(run))))
    run.stop()

    print("alertik with /metrics and the page ...", file=sys.stderr)
    env = h.clean_env(
        h.scratch_dir("alertik-bench-web-"),
        ALERTIK_METRICS_ADDR="127.0.0.1:0",
        ALERTIK_WEB_ADDR="127.0.0.1:0",
        **base,
    )
    run = start(env, [*stages, "web"])
    _, line = run.wait_line(r"web listening on ")
    found = re.search(r"(http://[0-9.:]+)/, .*(http://[0-9.:]+/metrics)", line)
    assert found, line
    page, metrics = found.group(1), found.group(2)
    send(run.udp_port(), args.messages)
    time.sleep(3)
    scrapes = [timed(metrics) for _ in range(args.requests)]
    loads = [timed(page + "/") for _ in range(args.requests)]
    form = urllib.parse.urlencode(
        {"lines": (LOGIN.decode() + "\n") * 20, "sender": "192.0.2.1"}
    ).encode()
    bench = [timed(page + "/workbench", form) for _ in range(3)]
    rows.append(
        (
            f"/metrics with {ROUTERS} routers: ms per scrape (median / max of "
            f"{args.requests})",
            f"{statistics.median(scrapes):.1f} / {max(scrapes):.1f}",
        )
    )
    rows.append(
        (
            f"status page with {ROUTERS} routers: ms per load (median / max)",
            f"{statistics.median(loads):.1f} / {max(loads):.1f}",
        )
    )
    rows.append(
        (
            "workbench, 20 lines: ms per run (median of 3)",
            f"{statistics.median(bench):.0f}",
        )
    )
    rows.append(("memory with the web stage: RSS MiB", shown(memory(run))))
    run.stop()
    hook.shutdown()
    print("| measure | result |\n|---|---|")
    for what, value in rows:
        print(f"| {what} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
