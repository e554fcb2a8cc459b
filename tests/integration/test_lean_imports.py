"""Each stage loads only what it uses: every process is a Python interpreter of
its own on a router with little memory, and a module imported for nothing
costs each of them (ssl and hashlib: 5 MiB of RSS; email, argparse,
tempfile: 1-2 MiB more).

Each stage runs for real (``python -X importtime -m alertik STAGE``) until it
says where it listens, so whatever it imports while starting counts.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import base_env, events_env

# Modules that a stage without TLS, e-mail or a command line never needs.
NEEDLESS = ("ssl", "_ssl", "hashlib", "email", "argparse", "tempfile", "difflib")
_IMPORT = re.compile(r"^import time:\s+\d+ \|\s+\d+ \| *(\S+)")


def imports_of(stage: str, env: dict[str, str]) -> set[str]:
    proc = subprocess.Popen(
        [sys.executable, "-X", "importtime", "-m", "alertik", stage],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    lines = []
    try:
        for line in proc.stderr:
            lines.append(line)
            if " listening on " in line:
                break
        else:
            pytest.fail(f"{stage} did not start:\n{''.join(lines[-20:])}")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=30)
    return {m.group(1) for m in map(_IMPORT.match, lines + rest.splitlines()) if m}


@pytest.mark.parametrize("stage", ["ingest", "matcher", "forwarder"])
def test_a_stage_imports_nothing_it_does_not_use(tmp_path: Path, stage: str) -> None:
    env = base_env(
        tmp_path,
        GENERIC1_WEBHOOK_URL="http://127.0.0.1:9/hook",
        FORWARD_HOST="127.0.0.1",
        FORWARD_PORT="9",
        **events_env(("Generic1", "regex", r"login failure for (\S+)", "@1")),
    )
    modules = imports_of(stage, env)
    assert "zmq" in modules and "msgspec" in modules  # the check sees imports
    assert sorted(set(NEEDLESS) & modules) == []
