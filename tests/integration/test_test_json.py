"""``alertik test --json``: what the workbench shows, for scripts too."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support import base_env, events_env

TOKEN = "azGDORePK8gMaC0QOYAMyEEuzJnyUi"
USER = "uQiRzpo4DXghDmr9QzzfQu27cmVRsG"


def test_json_gives_captures_text_and_each_body_with_secrets_hidden(
    tmp_path: Path,
) -> None:
    env = base_env(
        tmp_path,
        ALERTIK_TIME_SUFFIX="",
        ALERTIK_PUSHOVER_TOKEN=TOKEN,
        ALERTIK_PUSHOVER_USER=USER,
        **events_env(
            ("Pushover", "regex", r"login failure for user (\w+)( from x)?", "@1 @2!"),
            ("Pushover", "substr", "link down", "down"),
        ),
    )
    done = subprocess.run(
        [sys.executable, "-m", "alertik", "test", "--json", "--sender", "192.0.2.9"],
        input=b"system,error login failure for user admin via ssh\nnothing\n",
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["rules"] == ["EVENT0", "EVENT1"]
    first, second = result["lines"]
    assert second == {"line": "nothing", "matches": [], "missed": []}
    (match,) = first["matches"]
    assert match["rule"] == "EVENT0" and match["destinations"] == ["Pushover"]
    assert match["captures"] == ["admin", None]
    assert match["text"] == "admin !"
    (delivery,) = match["deliveries"]
    assert delivery["destination"] == "Pushover" and delivery["how"] == "http"
    (body,) = delivery["messages"]
    assert "message=admin+%21" in body
    assert "<redacted>" in body or "%3Credacted%3E" in body
    assert TOKEN not in done.stdout.decode() and USER not in done.stdout.decode()
