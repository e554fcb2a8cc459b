"""``alertik run``: supervisord plus one process per stage, end to end."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import (
    REPO,
    Proc,
    WebhookServer,
    base_env,
    events_env,
    send_udp,
    stage_pids,
    udp_port_of,
    wait_for,
)

pytestmark = pytest.mark.e2e


def test_run_delivers_alertik_texts_as_json_and_stops_cleanly(
    tmp_path: Path, spawn: Callable[..., Proc], webhook: WebhookServer
) -> None:
    """1. `alertik run` with a substr and a regex event to a local webhook;
    2. send three datagrams, two matching;
    3. SIGTERM.
    Result: the webhook gets the exact texts as JSON, every line is in the
    log, each stage ran in its own process, and nothing is left after 5 s."""
    env = base_env(
        tmp_path,
        GENERIC1_WEBHOOK_URL=f"{webhook.url}/hook",
        **events_env(
            ("Generic1", "substr", "login failure", 'Failed "login" \\ check'),
            (
                "Generic1",
                "regex",
                r"login failure for user ([A-Za-z]+) from (\d{1,3}.*) via ssh",
                "Alert: failed user attempt to login as @1 from @2",
            ),
        ),
    )
    started = time.monotonic()
    # From the checkout, as the README's quick start runs it: the repo's
    # alertik/ folder must not shadow the installed package in the stages.
    run = spawn("run", env=env, cwd=REPO)
    port = udp_port_of(run)
    bound_after = time.monotonic() - started
    for stage in ("notify", "matcher", "ingest"):
        run.wait_line(f"success: {stage} entered RUNNING state")
    assert "forwarder entered RUNNING" not in run.output
    pids = list(stage_pids(run.popen.pid).values())
    assert len(pids) == 3, run.output
    lines = [
        b"system,error,critical login failure for user admin from 192.0.2.1 via ssh",
        b"system,info,account user admin logged in from 192.0.2.1 via winbox",
        b"dhcp,info lease 192.0.2.9 assigned\n",
    ]
    send_udp(port, *lines)
    got = webhook.wait(2)
    texts = sorted(r.json()["text"] for r in got)
    assert [t.split(", at: ")[0] for t in texts] == [
        "Alert: failed user attempt to login as admin from 192.0.2.1",
        'Failed "login" \\ check',
    ]
    for r in got:
        assert r.method == "POST" and r.path == "/hook"
        assert r.headers["content-type"] == "application/json"
        assert list(r.json()) == ["text"]
        assert re.search(r", at: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", r.json()["text"])
    log = tmp_path / "log.txt"
    wait_for(lambda: log.exists() and log.read_text().count("] 127.0.0.1 ") == 3)
    stop_at = time.monotonic()
    run.popen.send_signal(signal.SIGTERM)
    assert run.popen.wait(5) == 0
    assert time.monotonic() - stop_at < 5
    wait_for(lambda: not [p for p in pids if os.path.exists(f"/proc/{p}")], 1.0)
    out = run.output
    # ingest stops first, notify last: the pipeline drains front to back.
    assert out.index("stopped: ingest") < out.index("stopped: matcher")
    assert out.index("stopped: matcher") < out.index("stopped: notify")
    print(f"udp bound {bound_after:.2f}s after start")


def test_run_refuses_a_bad_match_type_before_starting_anything(tmp_path: Path) -> None:
    env = base_env(tmp_path, **events_env(("Generic1", "glob", "x", "y")))
    for command in ("run", "check"):
        proc = subprocess.run(
            [sys.executable, "-m", "alertik", command],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert proc.returncode == 2
        assert proc.stderr.startswith("error: EVENT0_MATCH_TYPE: ")
        assert proc.stderr.count("\n") == 1
        assert "supervisord" not in proc.stdout + proc.stderr


def test_two_instances_with_their_own_run_dirs_work_side_by_side(
    tmp_path: Path,
    spawn: Callable[..., Proc],
    make_webhook: Callable[[], WebhookServer],
) -> None:
    hooks = [make_webhook(), make_webhook()]
    runs = []
    for i, hook in enumerate(hooks):
        d = tmp_path / f"i{i}"
        d.mkdir()
        env = base_env(
            d,
            GENERIC1_WEBHOOK_URL=f"{hook.url}/h",
            **events_env(("Generic1", "substr", "ping", f"instance {i}")),
        )
        runs.append(spawn("run", env=env))
    ports = [udp_port_of(r) for r in runs]
    for r in runs:
        r.wait_line("success: ingest entered RUNNING state")
    for port in ports:
        send_udp(port, b"ping")
    for i, hook in enumerate(hooks):
        (req,) = hook.wait(1)
        assert req.json()["text"].startswith(f"instance {i}, at: ")
    for r in runs:
        assert r.terminate() == 0


def test_run_logs_a_configuration_warning_once_not_once_per_stage(
    tmp_path: Path, spawn: Callable[..., Proc]
) -> None:
    """1. `alertik run` with a misspelt ALERTIK_* name;
    2. wait until every stage runs, then SIGTERM.
    Result: one warning line, from alertik before supervisord starts, naming
    the variable and the setting it was probably meant to be."""
    run = spawn("run", env=base_env(tmp_path, ALERTIK_DRAIN_SECOND="1"))
    for stage in ("notify", "matcher", "ingest"):
        run.wait_line(f"success: {stage} entered RUNNING state")
    run.popen.send_signal(signal.SIGTERM)
    assert run.popen.wait(10) == 0
    out = run.output
    (line,) = [x for x in out.splitlines() if "ALERTIK_DRAIN_SECOND:" in x]
    assert re.search(r" alertik\.cli\[\d+\] WARNING ALERTIK_DRAIN_SECOND: ", line)
    assert line.endswith("did you mean ALERTIK_DRAIN_SECONDS?")
    assert out.index(line) < out.index("supervisord started")
