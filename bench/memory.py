"""Memory of each alertik process at idle: RSS, PSS and USS, from /proc.

Usage: python bench/memory.py [--forward] [--rules N] [--settle S]

Starts ``alertik run`` with 16 realistic rules (``--rules``), a generic
webhook on 127.0.0.1 and, with ``--forward``, a forward target (so that all
four stages run), and reads every process of it twice:

* **started**: once every stage is running, before any message arrived;
* **after one alert**: once one datagram has raised an alert and the webhook
  has it (whatever a stage loads only when it first has work is loaded now).

Each time it waits ``--settle`` seconds first. Per process, through psutil:
RSS (``VmRSS``), PSS (``smaps_rollup``: each shared page divided among the
processes that map it, so PSS adds up to what the processes cost together)
and USS (pages no other process maps: what stopping that process would give
back). Prints Markdown table rows.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time

import harness as h

from tests.support import (
    Memory,
    WebhookProcess,
    alertik_processes,
    events_env,
    memory,
    udp_port_of,
)

STAGES = ("ingest", "matcher", "notify", "forwarder")
MIB = 1024 * 1024


def snapshot(root: int) -> dict[str, Memory]:
    """The memory of every alertik process under (and including) root, by role."""
    return {name: memory(pid) for name, pid in alertik_processes(root).items()}


def rows(when: str, snap: dict[str, Memory]) -> list[str]:
    order = ["alertik run", "keeper", "supervisord", *STAGES]
    names = [n for n in order if n in snap]
    out = []
    for name in names:
        m = snap[name]
        out.append(
            f"| {when} | {name} | {m.rss / MIB:.1f} | {m.pss / MIB:.1f} | "
            f"{m.uss / MIB:.1f} |"
        )
    total = Memory(
        *(sum(column) for column in zip(*(snap[n] for n in names), strict=True))
    )
    out.append(
        f"| {when} | **all** | {total.rss / MIB:.1f} | "
        f"**{total.pss / MIB:.1f}** | {total.uss / MIB:.1f} |"
    )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forward", action="store_true", help="run the forwarder too")
    parser.add_argument("--rules", type=int, default=16, help="rules (default 16)")
    parser.add_argument(
        "--settle", type=float, default=3.0, help="seconds to wait before reading"
    )
    args = parser.parse_args()
    work = h.scratch_dir("alertik-bench-memory-")
    hook = WebhookProcess()
    extra = {
        "GENERIC1_WEBHOOK_URL": hook.url + "/hook",
        **events_env(*h.rule_set(args.rules)),
    }
    target = None
    if args.forward:
        target = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        target.bind(("127.0.0.1", 0))
        extra.update(
            FORWARD_HOST="127.0.0.1", FORWARD_PORT=str(target.getsockname()[1])
        )
    alertik = h.start_alertik(h.clean_env(work, **extra))
    stages = [s for s in STAGES if s != "forwarder" or args.forward]
    print(f"# {h.machine()}; load average {os.getloadavg()[0]:.1f}")
    print("| when | process | RSS MiB | PSS MiB | USS MiB |")
    print("|---|---|---:|---:|---:|")
    try:
        port = udp_port_of(alertik)
        h.wait_running(alertik, stages)
        time.sleep(args.settle)
        started = snapshot(alertik.popen.pid)
        missing = [s for s in stages if s not in started]
        if missing:
            raise RuntimeError(f"not running: {', '.join(missing)}")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(h.datagram(1, 1), ("127.0.0.1", port))
        if not hook.collect(1, 30):
            raise RuntimeError("the alert never arrived")
        time.sleep(args.settle)
        after = snapshot(alertik.popen.pid)
        for line in rows("started", started) + rows("after one alert", after):
            print(line)
    finally:
        h.stop(alertik)
        hook.close()
        if target is not None:
            target.close()
        h.remove(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
