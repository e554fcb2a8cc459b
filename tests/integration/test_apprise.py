"""Apprise destinations (the optional extra): imported only when configured,
delivered through our retries and outbox, its log kept out of ours."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration import test_notify_stage as base
from tests.integration.test_notify_stage import TRICKY, Stage, alert
from tests.support import Reply, WebhookServer, base_env, events_env

pytest.importorskip("apprise")

notify = base.notify
service = base.service

# What a stage does at start, short of sockets: load the configuration and
# make every destination's courier; then say whether Apprise was imported.
PROBE = """
import sys, threading
from alertik.common.config import load
from alertik.notify.delivery import Courier
cfg = load()
for dest in cfg.notify.destinations:
    Courier(dest, cfg.notify, threading.Event()).close()
print("apprise" in sys.modules)
"""


@pytest.mark.parametrize(
    ("name", "env", "imported"),
    [
        ("Generic1", {"GENERIC1_WEBHOOK_URL": "http://127.0.0.1:9/x"}, "False"),
        ("Apprise", {"ALERTIK_APPRISE_URL": "json://127.0.0.1:9/x"}, "True"),
    ],
)
def test_apprise_is_imported_only_by_a_notify_that_has_such_a_destination(
    tmp_path: Path, name: str, env: dict[str, str], imported: str
) -> None:
    full = base_env(tmp_path, **{**events_env((name, "substr", "x", "m")), **env})
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=full, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == imported


def test_an_apprise_destination_delivers_and_its_failures_are_retried(
    service: Callable[[], WebhookServer], notify: Callable[..., Stage]
) -> None:
    """1. an Apprise json:// URL pointing at a local server, which fails
    twice with 500 (its path holds a secret), then takes the message;
    Result: the alert is retried by our courier until delivered; Apprise's
    reason is in our retry detail, scrubbed; the secret is in no output."""
    hook = service()
    hook.replies = [Reply(500, b"down"), Reply(500, b"down"), Reply(200, b"{}")]
    port = hook.url.rsplit(":", 1)[1]
    stage = notify(
        {
            "ALERTIK_APPRISE_URL": f"json://127.0.0.1:{port}/hooks/appriseSECRET42",
            **events_env(("Apprise", "substr", "x", "m")),
        }
    )
    stage.send(alert(1, "Apprise", TRICKY))
    retry = stage.outcome("Apprise-1", "retrying")
    assert "Apprise could not send" in retry.detail
    stage.outcome("Apprise-1", "delivered")
    requests = hook.wait(3)
    assert all(r.path == "/hooks/appriseSECRET42" for r in requests)
    assert json.loads(requests[-1].body)["message"] == TRICKY
    out = stage.proc.output + " ".join(d.detail for d in stage.deliveries)
    assert "appriseSECRET42" not in out
    assert "Apprise (apprise json://<redacted>)" in out


def test_an_apprise_url_it_does_not_understand_stops_notify_at_start(
    tmp_path: Path,
) -> None:
    full = base_env(
        tmp_path,
        ALERTIK_APPRISE_URL="nosuchservice://x/y",
        **events_env(("Apprise", "substr", "x", "m")),
    )
    done = subprocess.run(
        [sys.executable, "-m", "alertik", "send-test", "Apprise"],
        env=full,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "ALERTIK_APPRISE_URL" in done.stderr
    assert "nosuchservice://x/y" not in done.stdout + done.stderr
