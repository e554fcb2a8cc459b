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
import time
import urllib.parse
import urllib.request

import harness as h

from tests.support import Memory, Proc, WebhookProcess, memory, udp_port_of

ROUTERS = 50
LOGIN = b"system,error,critical login failure for user admin from 10.0.0.9 via ssh"
INFO = b"system,info,account user admin logged in from 10.0.0.9 via winbox"


MIB = 1024 * 1024


def memories(run: Proc) -> dict[str, Memory]:
    """The memory of the keeper, supervisord and each stage, by name."""
    return {name: memory(pid) for name, pid in sorted(h.processes(run).items())}


def shown(found: dict[str, Memory]) -> str:
    total = sum(m.rss for m in found.values())
    pss = sum(m.pss for m in found.values())
    parts = [f"{name} {m.rss / MIB:.1f}" for name, m in found.items()]
    return f"{', '.join(parts)}; **total {total / MIB:.1f} MiB** (PSS {pss / MIB:.1f})"


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


def start(env: dict[str, str], stages: list[str]) -> Proc:
    run = h.start_alertik(env)
    h.wait_running(run, stages)
    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    hook = WebhookProcess()
    base = {
        "GENERIC1_WEBHOOK_URL": hook.url + "/hook",
        "ENV_EVENTS": "1",
        "EVENT0_NOTIFIER": "Generic1",
        "EVENT0_MATCH_TYPE": "regex",
        "EVENT0_MATCH_STR": r"login failure for user ([a-z]+) from ([0-9.]+)",
        "EVENT0_MASK_MSG": "Failed login as @1 from @2",
    }
    rows: list[tuple[str, str]] = []
    stages = ["notify", "matcher", "ingest"]

    print("alertik without the web stage ...", file=sys.stderr)
    work = [h.scratch_dir("alertik-bench-web-") for _ in range(2)]
    run = start(h.clean_env(work[0], **base), stages)
    send(udp_port_of(run), args.messages)
    time.sleep(3)
    rows.append(("memory without the web stage: RSS MiB", shown(memories(run))))
    h.stop(run)

    print("alertik with /metrics and the page ...", file=sys.stderr)
    env = h.clean_env(
        work[1],
        ALERTIK_METRICS_ADDR="127.0.0.1:0",
        ALERTIK_WEB_ADDR="127.0.0.1:0",
        **base,
    )
    run = start(env, [*stages, "web"])
    line = run.wait_line("web listening on ", 30)
    found = re.search(r"(http://[0-9.:]+)/, .*(http://[0-9.:]+/metrics)", line)
    assert found, line
    page, metrics = found.group(1), found.group(2)
    send(udp_port_of(run), args.messages)
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
    rows.append(("memory with the web stage: RSS MiB", shown(memories(run))))
    h.stop(run)
    hook.close()
    for folder in work:
        h.remove(folder)
    print("| measure | result |\n|---|---|")
    for what, value in rows:
        print(f"| {what} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
