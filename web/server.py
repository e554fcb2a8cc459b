"""The HTTP side: a small threaded server per address, with the checks every
request goes through before its route sees it.

* A password (``ALERTIK_WEB_PASSWORD``) is asked for as HTTP basic auth (any
  user name) or ``Authorization: Bearer``, compared in constant time.
* Without a password the server is on loopback (``config.load()`` refuses
  anything else) and answers only requests whose Host is a loopback name, so
  a page elsewhere cannot reach it through a DNS name rebound to 127.0.0.1.
* Every answer forbids framing and scripts from elsewhere, and is not cached.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import logging
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)

# A form (the workbench's pasted lines) larger than this is refused.
MAX_BODY_BYTES = 256 * 1024
# A client that sends nothing for this long is dropped (a thread each).
CLIENT_TIMEOUT_S = 10.0
# Requests answered at once; more wait in the listen backlog.
MAX_THREADS = 8

SECURITY_HEADERS = (
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    (
        "Content-Security-Policy",
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        "form-action 'self'; frame-ancestors 'none'",
    ),
)


class Request:
    """What a route sees of one request."""

    def __init__(self, method: str, path: str, query: str, form: dict[str, str]):
        self.method = method
        self.path = path
        self.query = {k: v[0] for k, v in parse_qs(query).items()}
        self.form = form


class Response:
    def __init__(
        self,
        body: bytes | str,
        status: int = 200,
        content_type: str = "text/html; charset=utf-8",
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.body = body.encode("utf-8") if isinstance(body, str) else body
        self.status = status
        self.content_type = content_type
        self.headers = headers


Route = Callable[[Request, dict[str, str]], Response]


def is_loopback_host(host: str) -> bool:
    """Whether a Host header names this machine's loopback."""
    name = host.strip()
    if name.startswith("["):
        name = name[1:].partition("]")[0]
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def authorized(header: str, password: str) -> bool:
    """Whether an Authorization header carries the password."""
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        given = value
    elif scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        given = decoded.partition(":")[2]
    else:
        return False
    return hmac.compare_digest(given.encode("utf-8"), password.encode("utf-8"))


class Server(ThreadingHTTPServer):
    """One listening address with its routes, served from a thread."""

    daemon_threads = True
    request_queue_size = 16

    def __init__(
        self,
        addr: tuple[str, int],
        routes: dict[str, Route],
        password: str,
        stats: dict[str, int],
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        self.routes = routes
        self.password = password
        self.stats = stats
        self.slots = threading.BoundedSemaphore(MAX_THREADS)
        super().__init__(addr, Handler)
        self.thread = threading.Thread(
            target=self.serve_forever,
            kwargs={"poll_interval": 0.2},
            name=f"web-{self.server_address[1]}",
            daemon=True,
        )

    @property
    def shown(self) -> str:
        host, port = self.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else host
        return f"[{name}]:{port}" if ":" in name else f"{name}:{port}"

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(timeout=CLIENT_TIMEOUT_S):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        if self.thread.is_alive():
            self.shutdown()
        self.server_close()


class Handler(BaseHTTPRequestHandler):
    server: Server
    timeout = CLIENT_TIMEOUT_S
    protocol_version = "HTTP/1.1"
    server_version = "alertik"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        server = self.server
        server.stats["requests"] += 1
        if server.password:
            if not authorized(self.headers.get("Authorization", ""), server.password):
                server.stats["refused"] += 1
                self._send(
                    Response(
                        "a password is needed (ALERTIK_WEB_PASSWORD)\n",
                        401,
                        "text/plain; charset=utf-8",
                        (("WWW-Authenticate", 'Basic realm="alertik"'),),
                    ),
                    method,
                )
                return
        elif not is_loopback_host(self.headers.get("Host", "")):
            server.stats["refused"] += 1
            self._send(
                Response(
                    "only loopback names are answered without ALERTIK_WEB_PASSWORD\n",
                    421,
                    "text/plain; charset=utf-8",
                ),
                method,
            )
            return
        url = urlsplit(self.path)
        route = server.routes.get(url.path)
        if route is None:
            self._send(Response("not found\n", 404, "text/plain"), method)
            return
        form: dict[str, str] = {}
        if method == "POST":
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self._send(Response("too large\n", 413, "text/plain"), method)
                self.close_connection = True
                return
            body = self.rfile.read(length).decode("utf-8", "replace")
            form = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
        request = Request(method, url.path, url.query, form)
        self._send(route(request, dict(self.headers.items())), method)

    def _send(self, response: Response, method: str) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in (*SECURITY_HEADERS, *response.headers):
            self.send_header(name, value)
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(response.body)
