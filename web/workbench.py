"""The rule workbench: pasted lines through ``alertik test --json``.

Why a subprocess rather than asking the running matcher: the web stage may
not import the matcher (no stage imports another), and the matcher should
not spend its loop on someone's pasted text. ``alertik test`` is the code
users already run in a shell, so what the page shows is exactly what the
command says, for the configuration and rules file as they are now (the
same environment as every stage; a rules file changed since the last SIGHUP
is shown as it will be after it). It costs a Python process for about half a
second per click; one runs at a time, with bounded input and a deadline.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
import threading
from typing import Any

# What one click may ask for.
MAX_LINES = 200
MAX_BYTES = 64 * 1024
DEADLINE_S = 15.0


class Busy(Exception):
    """Another workbench run is under way."""


class Refused(ValueError):
    """The input cannot be tried; the text says why."""


_one_at_a_time = threading.Lock()


def lines_of(text: str) -> list[str]:
    lines = [line for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
    if not lines:
        raise Refused("paste at least one log line")
    if len(lines) > MAX_LINES or len(text.encode("utf-8")) > MAX_BYTES:
        raise Refused(f"at most {MAX_LINES} lines and {MAX_BYTES // 1024} KiB at once")
    return lines


def check_sender(sender: str) -> str:
    try:
        return str(ipaddress.ip_address(sender.strip()))
    except ValueError:
        raise Refused(f"{sender.strip()!r} is not an IP address") from None


def run(lines: list[str], sender: str) -> dict[str, Any]:
    """What ``alertik test --json --sender SENDER`` says of the lines."""
    if not _one_at_a_time.acquire(blocking=False):
        raise Busy()
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-P",
                "-m",
                "alertik",
                "test",
                "--json",
                "--sender",
                sender,
            ],
            input="\n".join(lines).encode("utf-8"),
            capture_output=True,
            timeout=DEADLINE_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise Refused(f"alertik test took more than {DEADLINE_S:g} s") from None
    finally:
        _one_at_a_time.release()
    if done.returncode not in (0, 1):
        # A configuration error: one line naming the variable, never a secret.
        why = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise Refused(why[-1] if why else f"alertik test exited {done.returncode}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result
