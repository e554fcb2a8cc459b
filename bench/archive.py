"""What the log archive costs per line, as the matcher calls it.

Usage: python bench/archive.py [--lines N] [--repeat R]

Writes N lines to a file in a temporary directory through
``matcher.archive.Archive``, the way the matcher does: ``message()`` per
line, ``flush()`` per batch. Four kinds of line (plain ASCII; ASCII with an
ANSI escape sequence; UTF-8; UTF-8 with a C1 control) and two batch sizes: 1,000
lines (the matcher's BATCH under a flood) and 1 (a trickle, one write and one
``stat()`` of the path per line). Prints the best of R runs, in ns per line.
Uses only the standard library and alertik.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from alertik.matcher.archive import Archive

BASE = (
    b"<134>Oct  2 17:36:35 MikroTik firewall,info forward: in:bridge out:ether1, "
    b"connection-state:new src-mac 18:3d:5e:79:42:a5, proto TCP (SYN), "
    b"192.0.2.1:45624->198.51.100.2:80, len 60"
)
LINES = {
    "plain ASCII": BASE,
    "ASCII with an ANSI escape": BASE + b" user \x1b[31mroot\x1b[0m",
    "UTF-8": BASE + " user r\u00f6\u00f6t".encode(),
    "UTF-8 with a C1 control": BASE + " user r\u00f6\u00f6t \u009b2J".encode(),
}


def run(line: bytes, lines: int, batch: int) -> float:
    """ns per line for lines copies of line, flushed every batch lines."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = Archive(os.path.join(tmp, "log.txt"), 0, 0)
        began = time.perf_counter_ns()
        when = 1.7e9
        for i in range(lines):
            archive.message(when + i / 1000, "192.0.2.1", line)
            if i % batch == batch - 1:
                archive.flush()
        archive.close()
        return (time.perf_counter_ns() - began) / lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{'line':<28} {'batch':>6} {'ns/line':>8}")
    for name, line in LINES.items():
        for batch in (1000, 1):
            lines = args.lines if batch > 1 else args.lines // 10
            best = min(run(line, lines, batch) for _ in range(args.repeat))
            print(f"{name:<28} {batch:>6} {best:>8.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
