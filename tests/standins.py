"""Local stand-ins for services that keep state: a Matrix homeserver, the
RouterOS REST API, an SMTP server (aiosmtpd), and throwaway certificates.

Each checks a request the way the real service does and answers as it
answers (status, JSON error body), from what the services document:

* Matrix: ``PUT /_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}``
  with ``Authorization: Bearer``; an unknown token is 401 ``M_UNKNOWN_TOKEN``,
  a room the user is not in 403 ``M_FORBIDDEN``, content without ``body`` or
  ``msgtype`` 400; the same transaction id from the same token gets the same
  event id back and adds no event (checked against a real Synapse, see
  tests/manual/test_synapse.py).
* RouterOS: ``/rest/ip/firewall/address-list`` (and ``ipv6``) over HTTPS with
  basic authentication; PUT adds an entry and answers it with its ``.id``,
  an entry already there is 400 with detail ``failure: already have such
  entry``, a bad login 401; GET lists the entries.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass(frozen=True)
class Pair:
    """A certificate (self-signed, for 127.0.0.1 and localhost) and its key."""

    cert: str
    key: str


def make_cert(folder: Path) -> Pair:
    """A throwaway certificate made with the openssl command."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
        env={**os.environ, "RANDFILE": str(folder / ".rnd")},
    )  # fmt: skip
    return Pair(str(cert), str(key))


@dataclass
class Hit:
    """One request as a stand-in saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class JsonServer:
    """A threaded HTTP(S) server on 127.0.0.1 whose answers come from route()."""

    def __init__(self, tls: Pair | None = None, port: int = 0) -> None:
        self.hits: list[Hit] = []
        self.lock = threading.Lock()
        # Called before route(): may return "reset" to drop the connection
        # after the request was handled (the answer is lost on the way).
        self.fault: Callable[[Hit], str | None] = lambda hit: None
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                hit = Hit(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length) if length else b"",
                )
                with server.lock:
                    server.hits.append(hit)
                    status, document = server.route(hit)
                    fault = server.fault(hit)
                if fault == "reset":
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00" * 2
                    )
                    self.close_connection = True
                    return
                body = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls.cert, tls.key)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.port = self.httpd.server_address[1]
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def route(self, hit: Hit) -> tuple[int, object]:
        raise NotImplementedError

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Recorder(JsonServer):
    """Takes every request with 200 and {} (an ntfy server, for one)."""

    def route(self, hit: Hit) -> tuple[int, object]:
        return 200, {}


# --- Matrix ------------------------------------------------------------------


@dataclass
class Event:
    sender: str
    content: dict[str, Any]
    event_id: str


class MatrixServer(JsonServer):
    """A homeserver's message sending: tokens, memberships, transactions."""

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}  # access token -> user id
        self.members: dict[str, set[str]] = {}  # room id -> user ids
        self.rooms: dict[str, list[Event]] = {}
        self.txns: dict[tuple[str, str], str] = {}  # (token, txn) -> event id
        # A 429 (M_LIMIT_EXCEEDED) with this retry_after_ms for the next n sends.
        self.limited: list[int] = []
        super().__init__()

    def add_user(self, user: str, token: str, *rooms: str) -> None:
        self.tokens[token] = user
        for room in rooms:
            self.members.setdefault(room, set()).add(user)
            self.rooms.setdefault(room, [])

    def route(self, hit: Hit) -> tuple[int, object]:
        parts = [unquote(p) for p in urlsplit(hit.path).path.split("/")]
        # ['', '_matrix', 'client', 'v3', 'rooms', room, 'send', type, txn]
        if (
            hit.method != "PUT"
            or len(parts) != 9
            or parts[1:5] != ["_matrix", "client", "v3", "rooms"]
            or parts[6] != "send"
        ):
            return 404, {"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"}
        room, event_type, txn = parts[5], parts[7], parts[8]
        auth = hit.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else ""
        if not token:
            return 401, {"errcode": "M_MISSING_TOKEN", "error": "Missing access token"}
        user = self.tokens.get(token)
        if user is None:
            return 401, {"errcode": "M_UNKNOWN_TOKEN", "error": "Invalid token"}
        if user not in self.members.get(room, set()):
            return 403, {
                "errcode": "M_FORBIDDEN",
                "error": f"User {user} not in room {room}",
            }
        if (token, txn) in self.txns:
            return 200, {"event_id": self.txns[(token, txn)]}
        if self.limited:
            wait = self.limited.pop(0)
            return 429, {
                "errcode": "M_LIMIT_EXCEEDED",
                "error": "Too Many Requests",
                "retry_after_ms": wait,
            }
        try:
            content = json.loads(hit.body)
        except ValueError:
            return 400, {"errcode": "M_NOT_JSON", "error": "Content not JSON."}
        if event_type == "m.room.message":
            for key in ("body", "msgtype"):
                if not isinstance(content.get(key), str):
                    return 400, {
                        "errcode": "M_UNKNOWN",
                        "error": f"'{key}' not in content",
                    }
        event_id = f"$event{sum(len(r) for r in self.rooms.values()) + 1}"
        self.rooms[room].append(Event(user, content, event_id))
        self.txns[(token, txn)] = event_id
        return 200, {"event_id": event_id}


# --- RouterOS REST API ---------------------------------------------------------


@dataclass
class Entry:
    id: str
    list: str
    address: str
    comment: str = ""
    timeout: str = ""


@dataclass
class RouterOS(JsonServer):
    """A router's /rest/ip(v6)/firewall/address-list, over HTTPS."""

    tls: Pair | None = None
    user: str = "alertik"
    password: str = "r0uter-pa55"
    entries: list[Entry] = field(default_factory=list)

    def __post_init__(self) -> None:
        JsonServer.__init__(self, self.tls)

    def listed(self, list_name: str) -> list[str]:
        with self.lock:
            return [e.address for e in self.entries if e.list == list_name]

    def route(self, hit: Hit) -> tuple[int, object]:
        auth = hit.headers.get("authorization", "")
        expected = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        if auth != f"Basic {expected}":
            return 401, {"error": 401, "message": "Unauthorized"}
        url = urlsplit(hit.path)
        if url.path not in (
            "/rest/ip/firewall/address-list",
            "/rest/ipv6/firewall/address-list",
        ):
            return 404, {"error": 404, "message": "Not Found"}
        if hit.method == "GET":
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            return 200, [
                {".id": e.id, "list": e.list, "address": e.address,
                 "comment": e.comment, "dynamic": "true" if e.timeout else "false"}
                for e in self.entries
                if all(getattr(e, k, None) == v for k, v in query.items())
            ]  # fmt: skip
        if hit.method != "PUT":
            return 400, {"error": 400, "message": "Bad Request"}
        try:
            item = json.loads(hit.body)
        except ValueError:
            return 400, {"error": 400, "message": "Bad Request", "detail": "JSON"}
        unknown = set(item) - {"list", "address", "comment", "timeout"}
        if unknown or not isinstance(item.get("address"), str):
            return 400, {
                "error": 400,
                "message": "Bad Request",
                "detail": f"unknown parameter {sorted(unknown)[0] if unknown else ''}",
            }
        for e in self.entries:
            if e.list == item.get("list") and e.address == item["address"]:
                return 400, {
                    "error": 400,
                    "message": "Bad Request",
                    "detail": "failure: already have such entry",
                }
        entry = Entry(
            id=f"*{len(self.entries) + 1:X}",
            list=str(item.get("list", "")),
            address=item["address"],
            comment=str(item.get("comment", "")),
            timeout=str(item.get("timeout", "")),
        )
        self.entries.append(entry)
        return 201, {
            ".id": entry.id, "list": entry.list, "address": entry.address,
            "comment": entry.comment, "timeout": entry.timeout,
            "dynamic": "true" if entry.timeout else "false", "disabled": "false",
        }  # fmt: skip
