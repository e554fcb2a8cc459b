"""Memory of each alertik process at idle: RSS, PSS and USS, from /proc.

Usage: python bench/memory.py [--forward] [--rules N] [--settle S]

Starts ``alertik run`` with 16 realistic rules (``--rules``), a generic
webhook on 127.0.0.1 and, with ``--forward``, a forward target (so that all
four stages run), and reads every process of it twice:

* **started**: once every stage is running, before any message arrived;
* **after one alert**: once one datagram has raised an alert and the webhook
  has it (whatever a stage loads only when it first has work is loaded now).

Each time it waits ``--settle`` seconds first. Per process: RSS (``VmRSS``),
PSS (``smaps_rollup``: each shared page divided among the processes that map
it, so PSS adds up to what the processes cost together) and USS (pages no
other process maps: what stopping that process would give back). Prints
Markdown table rows.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time

import harness as h

STAGES = ("ingest", "matcher", "notify", "forwarder")


def rollup(pid: int) -> dict[str, int]:
    """RSS, PSS and USS of a process in KiB (zeros if it is gone)."""
    out = {"rss": 0, "pss": 0, "uss": 0}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key == "Rss":
                    out["rss"] = int(rest.split()[0])
                elif key == "Pss":
                    out["pss"] = int(rest.split()[0])
                elif key in ("Private_Clean", "Private_Dirty"):
                    out["uss"] += int(rest.split()[0])
    except OSError:
        pass
    return out


def role(pid: int) -> str | None:
    """What an alertik process is, from its command line."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = [a.decode("utf-8", "replace") for a in f.read().split(b"\0")]
    except OSError:
        return None
    if "alertik.keeper" in argv:
        return "keeper"
    if any(a.endswith("supervisord") or a == "alertik.supervise" for a in argv):
        return "supervisord"
    for i, arg in enumerate(argv[:-1]):
        if (arg == "alertik" or arg.endswith("/alertik")) and argv[i + 1] in STAGES:
            return argv[i + 1]
    if "run" in argv:
        return "alertik run"
    return None


def processes(root: int) -> dict[str, int]:
    """Every alertik process under (and including) root, by role."""
    found = {}
    for pid in [root, *h.proc_children(root)]:
        name = role(pid)
        if name is not None:
            found[name] = pid
    return found


def snapshot(root: int) -> dict[str, dict[str, int]]:
    return {name: rollup(pid) for name, pid in processes(root).items()}


def rows(when: str, snap: dict[str, dict[str, int]]) -> list[str]:
    order = ["alertik run", "keeper", "supervisord", *STAGES]
    names = [n for n in order if n in snap]
    out = []
    for name in names:
        m = snap[name]
        out.append(
            f"| {when} | {name} | {m['rss'] / 1024:.1f} | {m['pss'] / 1024:.1f} | "
            f"{m['uss'] / 1024:.1f} |"
        )
    total = {k: sum(snap[n][k] for n in names) for k in ("rss", "pss", "uss")}
    out.append(
        f"| {when} | **all** | {total['rss'] / 1024:.1f} | "
        f"**{total['pss'] / 1024:.1f}** | {total['uss'] / 1024:.1f} |"
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
    hook = h.Webhook()
    extra = {"GENERIC1_WEBHOOK_URL": hook.url, **h.events_env(h.rule_set(args.rules))}
    target = None
    if args.forward:
        target = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        target.bind(("127.0.0.1", 0))
        extra.update(
            FORWARD_HOST="127.0.0.1", FORWARD_PORT=str(target.getsockname()[1])
        )
    alertik = h.Alertik(h.clean_env(work, **extra))
    stages = [s for s in STAGES if s != "forwarder" or args.forward]
    print(f"# {h.machine()}; load average {os.getloadavg()[0]:.1f}")
    print("| when | process | RSS MiB | PSS MiB | USS MiB |")
    print("|---|---|---:|---:|---:|")
    try:
        port = alertik.udp_port()
        alertik.wait_running(stages)
        time.sleep(args.settle)
        started = snapshot(alertik.popen.pid)
        missing = [s for s in stages if s not in started]
        if missing:
            raise RuntimeError(f"not running: {', '.join(missing)}")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(h.datagram(1, 1), ("127.0.0.1", port))
        if hook.wait(1, 30) < 1:
            raise RuntimeError("the alert never arrived")
        time.sleep(args.settle)
        after = snapshot(alertik.popen.pid)
        for line in rows("started", started) + rows("after one alert", after):
            print(line)
    finally:
        alertik.stop()
        hook.close()
        if target is not None:
            target.close()
        h.remove(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
