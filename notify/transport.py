"""HTTP requests to one destination, each bounded in size and time.

``HttpTransport`` is the transport of every service that speaks HTTP (the
others bring their own, in ``services.py``): one ``requests.Session`` per
destination (keep-alive, proxies and CA bundle read once), at most
``MAX_BODY`` bytes of any answer read, and a deadline on each whole request
that cuts the connection of an answer trickled too slowly (``_Cutter``).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from typing import Any

import requests
import requests.adapters
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from alertik.common.config import NotifyConfig
from alertik.common.destinations import Destination
from alertik.notify.scrub import scrub
from alertik.notify.services import Attempt, Service

# The most of any answer that is read: error texts and 429 details are small;
# a service that answers with megabytes gets its connection closed instead.
MAX_BODY = 16 * 1024
READ_CHUNK = 4096
USER_AGENT = "alertik"


class _Cutter:
    """Cuts the connection of a request that is still running at its deadline.

    The timeouts of the HTTP library bound each read, not a whole request: an
    answer trickled one byte at a time never ends. A connection tells the
    cutter when it sends a request; a thread of the cutter's own shuts that
    connection's socket down if the request is still running at its deadline,
    and the blocked read returns at once.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._conn: Any = None
        self._due: float | None = None
        self._closed = False
        self._thread: threading.Thread | None = None
        self.fired = False

    def using(self, conn: object) -> None:
        """The connection of the request now starting."""
        with self._lock:
            self._conn = conn

    def arm(self, seconds: float) -> None:
        """A request starts now and must be over within seconds."""
        with self._lock:
            self.fired = False
            self._conn = None
            self._due = time.monotonic() + seconds
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"deadline-{self._name}", daemon=True
                )
                self._thread.start()
            self._changed.notify()

    def disarm(self) -> None:
        """The request is over."""
        with self._lock:
            self._due = None
            self._conn = None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._changed.notify()

    def _run(self) -> None:
        with self._lock:
            while not self._closed:
                if self._due is None:
                    self._changed.wait()
                    continue
                left = self._due - time.monotonic()
                if left > 0:
                    self._changed.wait(left)
                    continue
                self._due = None
                self.fired = True
                sock = getattr(self._conn, "sock", None)
                if sock is not None:
                    # The plain socket's shutdown, also under TLS: it wakes
                    # the reading thread, which then fails.
                    with contextlib.suppress(OSError):
                        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _pool_classes(cutter: _Cutter) -> dict[str, type[HTTPConnectionPool]]:
    """Connection pools whose connections report to cutter."""

    class Connection(HTTPConnection):
        def request(self, *args: Any, **kwargs: Any) -> None:
            cutter.using(self)
            super().request(*args, **kwargs)

    class TLSConnection(HTTPSConnection):
        def request(self, *args: Any, **kwargs: Any) -> None:
            cutter.using(self)
            super().request(*args, **kwargs)

    class Pool(HTTPConnectionPool):
        ConnectionCls = Connection

    class TLSPool(HTTPSConnectionPool):
        ConnectionCls = TLSConnection

    return {"http": Pool, "https": TLSPool}


class _Adapter(requests.adapters.HTTPAdapter):
    """requests' adapter, with connections that a _Cutter can cut."""

    def __init__(self, cutter: _Cutter) -> None:
        self._cutter = cutter
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _pool_classes(self._cutter)

    def proxy_manager_for(self, *args: Any, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(*args, **kwargs)
        manager.pool_classes_by_scheme = _pool_classes(self._cutter)
        return manager


def make_session(
    dest: Destination, adapter: requests.adapters.HTTPAdapter | None = None
) -> requests.Session:
    """A session for one destination: keep-alive, TLS verified unless opted out."""
    # urllib3 logs request paths at DEBUG, and a path holds the token or the
    # webhook secret: keep its chatter out even when ALERTIK_LOG_LEVEL=DEBUG.
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    session = requests.Session()
    if adapter is not None:
        session.mount("http://", adapter)
        session.mount("https://", adapter)
    # Proxies (HTTPS_PROXY, NO_PROXY) and a CA bundle (REQUESTS_CA_BUNDLE) from
    # the environment are read once here: left to requests, every request
    # scans the environment again, which cost a third of notify's time.
    # A router's own certificate: checked against its CA file, not the
    # system's authorities.
    verify: bool | str = dest.verify_tls
    ca_file = getattr(dest, "ca_file", "")
    if verify and ca_file:
        verify = ca_file
    found = session.merge_environment_settings(dest.endpoint, {}, None, verify, None)
    session.trust_env = False
    session.proxies.update(found["proxies"])
    session.verify = found["verify"]
    session.headers["User-Agent"] = USER_AGENT
    session.headers["Accept"] = "application/json"
    # A compressed answer can unpack to far more than MAX_BODY in one read.
    session.headers["Accept-Encoding"] = "identity"
    return session


class HttpTransport:
    """Sends one destination's HTTP requests, each bounded in size and time.

    A request must be over within connect + read timeout (ALERTIK_HTTP_*),
    however slowly the service answers; of its answer at most MAX_BODY bytes
    are read. Once the status is known it stands: a 2xx whose body is cut
    short still counts as delivered.
    """

    def __init__(
        self,
        dest: Destination,
        service: Service[Any],
        cfg: NotifyConfig,
        secrets: list[str],
    ) -> None:
        if service.request is None:
            raise ValueError(f"{service.kind} is not an HTTP service")
        self._dest = dest
        self._build = service.request
        self._timeout = (cfg.connect_timeout, cfg.read_timeout)
        self.deadline = cfg.connect_timeout + cfg.read_timeout
        self._secrets = secrets
        self._cutter = _Cutter(dest.name)
        self._session = make_session(dest, _Adapter(self._cutter))

    def close(self) -> None:
        """Close the session's connections."""
        self._cutter.close()
        self._session.close()

    def attempt(self, text: str, key: str) -> Attempt:
        """One request carrying text; never raises for network trouble."""
        req = self._build(self._dest, text, key)
        started = time.monotonic()
        self._cutter.arm(self.deadline)
        try:
            resp = self._session.request(
                req.method,
                req.url,
                data=req.body,
                headers=dict(req.headers),
                timeout=self._timeout,
                allow_redirects=False,
                stream=True,
            )
        except requests.RequestException as exc:
            self._cutter.disarm()
            if self._cutter.fired:
                error = f"Timeout: no complete answer within {self.deadline:g} s"
            else:
                # str(exc) names the URL, token included: scrub it.
                error = scrub(f"{type(exc).__name__}: {exc}", self._secrets)
            return Attempt(None, {}, b"", error, time.monotonic() - started)
        except Exception as exc:
            # Not a network problem: a bug, so crash, but without the URL in
            # the message or in a chained exception's message.
            self._cutter.disarm()
            error = scrub(f"{type(exc).__name__}: {exc}", self._secrets)
            raise RuntimeError(f"{self._dest.shown()}: {error}") from None
        try:
            body, truncated = self._read(resp)
        finally:
            self._cutter.disarm()
            resp.close()
        return Attempt(
            resp.status_code,
            dict(resp.headers),
            body,
            "",
            time.monotonic() - started,
            truncated,
        )

    @staticmethod
    def _read(resp: requests.Response) -> tuple[bytes, bool]:
        """At most MAX_BODY bytes of the answer, and whether there was more."""
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in resp.iter_content(READ_CHUNK):
                room = MAX_BODY - size
                if len(chunk) > room:
                    chunks.append(chunk[:room])
                    return b"".join(chunks), True
                chunks.append(chunk)
                size += len(chunk)
        except requests.RequestException:
            # Cut at the deadline, or the connection failed: the status
            # stands, with what came of the body.
            return b"".join(chunks), True
        return b"".join(chunks), False
