"""Matrix against a real Synapse, run by hand (not in CI: see docs/DESTINATIONS.md).

    python3 -m venv /tmp/synapse && /tmp/synapse/bin/pip install matrix-synapse
    ALERTIK_SYNAPSE_PYTHON=/tmp/synapse/bin/python pytest -m synapse tests/manual

Synapse runs on 127.0.0.1 with an SQLite database in the test's folder, no
federation key servers, and message rate limits raised. A proxy in front of
it loses the answer to the first PUT (the message was taken, the client never
hears so), so notify retries with the same transaction id; the room must then
hold the message once.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.integration import test_notify_stage as base
from tests.integration.test_notify_stage import Stage, alert
from tests.support import events_env, wait_for

pytestmark = [pytest.mark.synapse, pytest.mark.timeout(300)]
notify = base.notify

SYNAPSE = os.environ.get("ALERTIK_SYNAPSE_PYTHON", "")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def synapse(tmp_path: Path) -> Iterator[dict[str, str]]:
    if not SYNAPSE:
        pytest.skip("set ALERTIK_SYNAPSE_PYTHON to a Python with matrix-synapse")
    folder = tmp_path / "synapse"
    folder.mkdir()
    config = folder / "homeserver.yaml"
    subprocess.run(
        [SYNAPSE, "-m", "synapse.app.homeserver", "--server-name", "localhost",
         "--config-path", str(config), "--data-directory", str(folder),
         "--generate-config", "--report-stats=no"],
        check=True, capture_output=True, cwd=folder,
    )  # fmt: skip
    port = free_port()
    text = config.read_text()
    text = text.replace("port: 8008", f"port: {port}").replace("    - ::1\n", "")
    text = text.replace(
        'trusted_key_servers:\n  - server_name: "matrix.org"', "trusted_key_servers: []"
    )
    text += "\nrc_message:\n  per_second: 1000\n  burst_count: 1000\n"
    config.write_text(text)
    secret = next(
        line.split(":", 1)[1].strip().strip('"')
        for line in text.splitlines()
        if line.startswith("registration_shared_secret:")
    )
    output = open(folder / "output.txt", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [SYNAPSE, "-m", "synapse.app.homeserver", "-c", str(config)],
        cwd=folder, stdout=output, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: _up(url) or proc.poll() is not None,
            timeout=120,
            what="synapse to start",
        )
        assert proc.poll() is None, (folder / "output.txt").read_text()
        # The shared-secret registration (what register_new_matrix_user does).
        nonce = requests.get(f"{url}/_synapse/admin/v1/register", timeout=10).json()
        registered = requests.post(
            f"{url}/_synapse/admin/v1/register",
            json={"nonce": nonce["nonce"], "username": "alertik",
                  "password": "pa55-alertik", "admin": False,
                  "mac": _mac(secret, nonce["nonce"])},
            timeout=30,
        ).json()  # fmt: skip
        token = registered["access_token"]
        room = requests.post(
            f"{url}/_matrix/client/v3/createRoom",
            headers={"Authorization": f"Bearer {token}"},
            json={"name": "alerts"},
            timeout=10,
        ).json()["room_id"]
        yield {"url": url, "token": token, "room": room}
    finally:
        proc.terminate()
        proc.wait(30)
        output.close()


def _mac(secret: str, nonce: str) -> str:
    """The registration's HMAC: nonce, user, password and "notadmin", NUL-separated."""
    mac = hmac.new(secret.encode(), digestmod=hashlib.sha1)
    mac.update(nonce.encode() + b"\x00alertik\x00pa55-alertik\x00notadmin")
    return mac.hexdigest()


def _up(url: str) -> bool:
    try:
        return requests.get(f"{url}/_matrix/client/versions", timeout=1).ok
    except requests.RequestException:
        return False


class LosingProxy:
    """Forwards one connection at a time to Synapse; for the first request
    that carries a message, reads Synapse's answer and then resets the
    client's connection instead of passing it on."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.lost = 0
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(client,), daemon=True).start()

    def _one(self, client: socket.socket) -> None:
        with client, socket.create_connection(("127.0.0.1", self.target)) as up:
            while True:
                request = _read_http(client)
                if not request:
                    return
                up.sendall(request)
                answer = _read_http(up)
                if request.startswith(b"PUT") and self.lost == 0:
                    self.lost += 1
                    client.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00" * 2
                    )
                    return
                client.sendall(answer)

    def close(self) -> None:
        self.server.close()


def _read_http(sock: socket.socket) -> bytes:
    """One HTTP/1.1 message (headers and a Content-Length body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_a_lost_answer_from_a_real_synapse_still_gives_one_message(
    synapse: dict[str, str], notify: Callable[..., Stage]
) -> None:
    proxy = LosingProxy(int(synapse["url"].rsplit(":", 1)[1]))
    try:
        stage = notify(
            {
                "ALERTIK_MATRIX_HOMESERVER": f"http://127.0.0.1:{proxy.port}",
                "ALERTIK_MATRIX_ROOM": synapse["room"],
                "ALERTIK_MATRIX_ACCESS_TOKEN": synapse["token"],
                **events_env(("Matrix", "substr", "x", "m")),
            }
        )
        stage.send(alert(1, "Matrix", "login failure from 192.0.2.7 é"))
        stage.outcome("Matrix-1", "delivered", timeout=60)
    finally:
        proxy.close()
    assert proxy.lost == 1
    messages = _messages(synapse)
    assert messages == [
        {"msgtype": "m.notice", "body": "login failure from 192.0.2.7 é"}
    ]


def _messages(synapse: dict[str, str]) -> list[Any]:
    answer = requests.get(
        f"{synapse['url']}/_matrix/client/v3/rooms/{synapse['room']}/messages",
        params={"dir": "b", "limit": "50"},
        headers={"Authorization": f"Bearer {synapse['token']}"},
        timeout=10,
    ).json()
    return [e["content"] for e in answer["chunk"] if e["type"] == "m.room.message"]
