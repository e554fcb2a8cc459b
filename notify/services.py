"""Every notifier service, described in one place.

One ``Service`` entry per destination type (``common/destinations.py``) says
all that notify needs to know about that service:

* ``request``: the HTTP request that carries one message (method, URL,
  headers, body), as the service documents it;
* ``limit``, ``digest_limit`` and ``measure``: the largest message and the
  largest digest, counted the way the service counts (so a message built
  here is never refused for its length);
* ``escape``: how log text is made to show as text (no markup, links or
  mentions from a log line);
* ``chat``: read by people, so a backlog is packed into digests;
* ``pace``: the smallest gap between two requests to one destination;
* ``body_wait`` and ``rate_bucket``: where its answers say how long to wait
  (the ``Retry-After`` header is read for every service);
* ``answer``: answers that mean something particular for this service (a
  Discord 404: the webhook was deleted); the rest follow the common rules in
  ``notify/delivery.py`` (2xx delivered; 429, 408, 425 and 5xx retried; any
  other answer refused for good);
* ``transport``: for a service that is not a plain HTTP request (e-mail,
  Apprise, the RouterOS action), what sends a message instead; ``None`` means
  ``request`` over HTTP;
* ``order``: for an action (``routeros-address-list``), what the outbox keeps
  of an alert: not a message to show but what the action needs (the address,
  the rule). An action is never split or packed into digests.

Every message carries a ``key``: the same for every retry of it, also after a
restart (built from its alerts' ids), so a service that takes an idempotency
key (Matrix's transaction id, an e-mail's Message-ID) never shows it twice.

Adding a destination means adding its struct to ``Destination``, one entry to
``SERVICES`` and their tests. Nothing here does I/O: transports that are not
plain HTTP live in their own modules, imported only when such a destination is
configured.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar
from urllib.parse import quote, urlencode

import msgspec

from alertik.common.destinations import (
    AddressListDestination,
    Destination,
    DestinationBase,
    DiscordDestination,
    GenericDestination,
    GotifyDestination,
    MatrixDestination,
    NtfyDestination,
    PushoverDestination,
    SlackDestination,
    TeamsDestination,
    TelegramDestination,
)
from alertik.common.schema import Alert
from alertik.notify import render

if TYPE_CHECKING:
    from alertik.common.config import NotifyConfig

D = TypeVar("D", bound=DestinationBase)
# delivered, retry, failed (for good), disabled (stop using the destination),
# moved (the service gave a new address: follow it once), skipped (an action
# decided not to act: an allow-listed address, audit mode).
Action = Literal["delivered", "retry", "failed", "disabled", "moved", "skipped"]


@dataclass(frozen=True)
class HttpRequest:
    """One HTTP request, as a service wants it."""

    method: str
    url: str  # a secret: holds the token or the webhook's key
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Attempt:
    """The result of one try: an answer, or an error without one."""

    status: int | None
    headers: Mapping[str, str]
    body: bytes  # at most the first delivery.MAX_BODY bytes
    error: str = ""  # already scrubbed
    elapsed: float = 0.0
    truncated: bool = False  # the body was longer than what was read
    # A transport that decided without asking the service (an action that
    # does not act) says so here; classify() takes it as it is.
    verdict: Verdict | None = None


@dataclass(frozen=True)
class Verdict:
    """What to do after one attempt."""

    action: Action
    wait: float | None = None  # seconds the service asked us to wait, if any
    reason: str = ""
    # For "moved": the destination's fields to change (Telegram's new chat).
    change: Mapping[str, Any] | None = None


class Transport(Protocol):
    """Sends messages to one destination; for services that are not HTTP."""

    def attempt(self, text: str, key: str) -> Attempt:
        """One try at delivering text; never raises for network trouble."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def _no_wait(data: object) -> float | None:
    return None


@dataclass(frozen=True)
class Service(Generic[D]):
    """What one kind of destination is; see the module docstring."""

    kind: str
    # (destination, text, key) -> the request; None: not HTTP.
    request: Callable[[D, str, str], HttpRequest] | None
    limit: int | None  # largest text of one message, in `measure` units
    digest_limit: int  # largest digest message; may be below `limit`
    measure: render.Measure
    escape: render.Escape
    chat: bool  # read by people: packs digests when it falls behind
    pace: Callable[[D], float]
    body_wait: Callable[[object], float | None] = field(default=_no_wait)
    rate_bucket: Callable[[Mapping[str, str]], float | None] | None = None
    answer: Callable[[Attempt], Verdict | None] | None = None
    transport: Callable[[D, NotifyConfig, list[str]], Transport] | None = None
    order: Callable[[Alert], str] | None = None  # an action's outbox text
    protocol: str = "HTTP"  # how a log line names a status: "HTTP 200"

    @property
    def action(self) -> bool:
        """An action on a system, not a message read by someone."""
        return self.order is not None

    def size(self, text: str) -> int:
        """The size of text once escaped, in the service's own measure."""
        return self.measure(self.escape(text))


def seconds(raw: object) -> float | None:
    """A number of seconds from a header or a JSON field, or None."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return value


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _json_post(
    url: str,
    document: object,
    headers: Mapping[str, str] | None = None,
    method: str = "POST",
) -> HttpRequest:
    # Real UTF-8 JSON: quotes, backslashes, newlines and any character arrive
    # intact.
    return HttpRequest(
        method,
        url,
        {"Content-Type": "application/json", **(headers or {})},
        msgspec.json.encode(document),
    )


def basic_auth(user: str, password: str) -> str:
    """An Authorization header's value for HTTP basic authentication (UTF-8)."""
    pair = f"{user}:{password}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


def _json_field(body: bytes, *path: str) -> object:
    """A field of a JSON answer (None when the body is not JSON or lacks it)."""
    try:
        data: object = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None
    for name in path:
        if not isinstance(data, dict):
            return None
        data = data.get(name)
    return data


# --- Telegram ----------------------------------------------------------------
# POST <api_url>/bot<token>/sendMessage. "1-4096 characters after entity
# parsing"; counting UTF-16 units is never more lenient than Telegram. About
# 1 message/s in a private chat, 20 a minute in a group or channel. A 429
# says how long to wait in parameters.retry_after.

TELEGRAM_PRIVATE_PACE = 1.0
TELEGRAM_GROUP_PACE = 3.0


def telegram_request(
    dest: TelegramDestination, text: str, key: str = ""
) -> HttpRequest:
    # Plain text on purpose: no parse_mode, so nothing in a log line can be
    # taken for markup.
    document: dict[str, object] = {"chat_id": dest.chat}
    if dest.message_thread_id is not None:
        document["message_thread_id"] = dest.message_thread_id
    document["text"] = text
    url = f"{dest.api_url.rstrip('/')}/bot{dest.bot_token}/sendMessage"
    return _json_post(url, document)


def telegram_pace(dest: TelegramDestination) -> float:
    chat = dest.chat
    private = isinstance(chat, int) and chat > 0
    return TELEGRAM_PRIVATE_PACE if private else TELEGRAM_GROUP_PACE


def telegram_wait(data: object) -> float | None:
    if isinstance(data, dict):
        params = data.get("parameters")
        if isinstance(params, dict):
            return seconds(params.get("retry_after"))
    return None


def telegram_answer(attempt: Attempt) -> Verdict | None:
    # A group that became a supergroup has a new id: Telegram refuses the old
    # one with a 400 that names the new one in parameters.migrate_to_chat_id.
    if attempt.status != 400:
        return None
    moved = _json_field(attempt.body, "parameters", "migrate_to_chat_id")
    if isinstance(moved, int) and not isinstance(moved, bool):
        return Verdict(
            "moved",
            reason=f"the group became a supergroup with chat id {moved}",
            change={"chat_id": moved},
        )
    return None


# --- Slack -------------------------------------------------------------------
# An incoming webhook takes {"text": ...}; 1 message/s. Slack cuts text at
# 40,000 characters and recommends 4,000 for reading, so single alerts may be
# long but digests stay readable. Its mrkdwn reads <...> as links and
# mentions: the text is escaped with Slack's entities.


def slack_request(dest: SlackDestination, text: str, key: str = "") -> HttpRequest:
    return _json_post(dest.url, {"text": render.slack_escape(text)})


# --- Microsoft Teams -----------------------------------------------------------
# A Workflows webhook takes a message with one Adaptive Card 1.4 attachment
# (1.5 is not rendered; without wrap long text is cut); the retired legacy
# connectors take {"text": ...}. A message may be 28 KB in all: 24,000 bytes
# of text leaves room for the envelope. Throttled above 4 requests/s. Both
# render Markdown links.


def teams_request(dest: TeamsDestination, text: str, key: str = "") -> HttpRequest:
    text = render.markdown_escape(text)
    if dest.format == "legacy":
        return _json_post(dest.url, {"text": text})
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [{"type": "TextBlock", "text": text, "wrap": True}],
    }
    return _json_post(
        dest.url,
        {
            "type": "message",
            "attachments": [
                {
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": None,
                    "content": card,
                }
            ],
        },
    )


# --- Discord -----------------------------------------------------------------
# The native webhook: `content` is at most 2000 characters (UTF-16 units, as
# for Telegram). Rate limits come as bucket headers on every answer, and a
# 429's JSON retry_after is more precise than its header. A webhook that
# answers 404 was deleted: Discord asks clients to stop using it.


def discord_request(dest: DiscordDestination, text: str, key: str = "") -> HttpRequest:
    # An empty parse list: "@everyone" in a log line pings nobody.
    document = {
        "content": render.discord_escape(text),
        "allowed_mentions": {"parse": []},
    }
    return _json_post(dest.url, document)


def discord_wait(data: object) -> float | None:
    return seconds(data.get("retry_after")) if isinstance(data, dict) else None


def discord_bucket(headers: Mapping[str, str]) -> float | None:
    """Seconds until the rate-limit bucket refills, when it is empty."""
    remaining = _header(headers, "x-ratelimit-remaining")
    if remaining is None or remaining.strip() != "0":
        return None
    return seconds((_header(headers, "x-ratelimit-reset-after") or "").strip())


def discord_answer(attempt: Attempt) -> Verdict | None:
    if attempt.status == 404:
        return Verdict("disabled", reason="HTTP 404: the webhook no longer exists")
    return None


# --- generic webhooks ----------------------------------------------------------
# Read by programs: {"text": ...} with the whole text, however long; not
# paced. A digest (only with ALERTIK_GENERIC_DIGEST) stays below 64 KiB.


def generic_request(dest: GenericDestination, text: str, key: str = "") -> HttpRequest:
    return _json_post(dest.url, {"text": text})


# --- ntfy --------------------------------------------------------------------
# Published as JSON to the server's root: {"topic", "message", ...}, so that
# titles and tags need no header encoding. A message is at most 4096 bytes
# (longer ones become attachments). ntfy.sh lets a client burst 60 requests
# and then one every 5 s; a 429 is retried with backoff.


def ntfy_request(dest: NtfyDestination, text: str, key: str = "") -> HttpRequest:
    document: dict[str, object] = {"topic": dest.topic, "message": text}
    if dest.title:
        document["title"] = dest.title
    if dest.priority is not None:
        document["priority"] = dest.priority
    if dest.tags:
        document["tags"] = list(dest.tags)
    if dest.click:
        document["click"] = dest.click
    headers = {}
    if dest.token:
        headers["Authorization"] = f"Bearer {dest.token}"
    elif dest.user:
        headers["Authorization"] = basic_auth(dest.user, dest.password)
    return _json_post(dest.url.rstrip("/") + "/", document, headers)


# --- Gotify ------------------------------------------------------------------
# POST <url>/message with the application token in X-Gotify-Key (not in the
# query string, which proxies log). Self-hosted: no documented rate limit.


def gotify_request(dest: GotifyDestination, text: str, key: str = "") -> HttpRequest:
    document: dict[str, object] = {"message": text}
    if dest.priority is not None:
        document["priority"] = dest.priority
    url = dest.url.rstrip("/") + "/message"
    return _json_post(url, document, {"X-Gotify-Key": dest.token})


# --- Pushover ----------------------------------------------------------------
# POST <api_url>/1/messages.json, form-encoded: token, user, message (at most
# 1024 characters) and the options. Priority 2 (emergency) repeats the alert
# every `retry` seconds for `expire` seconds until acknowledged. A 4xx is not
# to be sent again; after a 5xx, wait at least 5 s.

PUSHOVER_SERVER_ERROR_WAIT = 5.0


def pushover_request(
    dest: PushoverDestination, text: str, key: str = ""
) -> HttpRequest:
    form: dict[str, object] = {"token": dest.token, "user": dest.user, "message": text}
    for name in ("priority", "retry", "expire"):
        value = getattr(dest, name)
        if value is not None and (name == "priority" or dest.priority == 2):
            form[name] = value
    if dest.sound:
        form["sound"] = dest.sound
    return HttpRequest(
        "POST",
        dest.api_url.rstrip("/") + "/1/messages.json",
        {"Content-Type": "application/x-www-form-urlencoded"},
        urlencode(form).encode("ascii"),
    )


def pushover_answer(attempt: Attempt) -> Verdict | None:
    if attempt.status is not None and attempt.status >= 500:
        return Verdict("retry", PUSHOVER_SERVER_ERROR_WAIT, f"HTTP {attempt.status}")
    return None


# --- Matrix ------------------------------------------------------------------
# PUT <homeserver>/_matrix/client/v3/rooms/<room>/send/m.room.message/<txn>
# with the access token as a Bearer header. The transaction id comes from the
# message's key: a retry (even after a restart) sends the same id, and the
# homeserver answers with the event it already has instead of a second one.
# An event is at most 65,536 bytes, signatures included. A 429
# (M_LIMIT_EXCEEDED) says how long to wait in retry_after_ms; Synapse lets a
# user send about one message every 5 s after a burst of 10.


def matrix_txn(key: str, text: str) -> str:
    """A transaction id: from the message's key (or, without one, its text)."""
    return "alertik-" + (key or hashlib.sha256(text.encode("utf-8")).hexdigest()[:32])


def matrix_request(dest: MatrixDestination, text: str, key: str = "") -> HttpRequest:
    room = quote(dest.room, safe="")
    txn = quote(matrix_txn(key, text), safe="")
    url = (
        f"{dest.homeserver.rstrip('/')}/_matrix/client/v3/rooms/{room}"
        f"/send/m.room.message/{txn}"
    )
    document = {"msgtype": dest.msgtype, "body": text}
    headers = {"Authorization": f"Bearer {dest.access_token}"}
    return _json_post(url, document, headers, method="PUT")


def matrix_wait(data: object) -> float | None:
    if isinstance(data, dict):
        ms = seconds(data.get("retry_after_ms"))
        return None if ms is None else ms / 1000
    return None


# --- e-mail --------------------------------------------------------------------
# SMTP (notify/mail.py): one message per alert or digest, plain text. The
# server's answer codes: 2xx taken, 4xx try again later, 5xx refused for good.


def email_transport(dest: Any, cfg: NotifyConfig, secrets: list[str]) -> Transport:
    from alertik.notify.mail import SmtpTransport

    return SmtpTransport(dest, cfg)


def smtp_answer(attempt: Attempt) -> Verdict | None:
    status = attempt.status
    if status is None:
        return None
    if 200 <= status < 300:
        return Verdict("delivered", reason=attempt.error)
    if 400 <= status < 500:
        return Verdict("retry", reason=f"SMTP {status}")
    return Verdict("failed", reason=f"SMTP {status}")


# --- Apprise -------------------------------------------------------------------
# An optional extra (notify/via_apprise.py), imported only when a destination
# uses it: Apprise costs megabytes per process. It reports success or failure
# without a status; a failure is retried like a refused connection.


def apprise_transport(dest: Any, cfg: NotifyConfig, secrets: list[str]) -> Transport:
    from alertik.notify.via_apprise import AppriseTransport

    return AppriseTransport(dest, cfg)


# --- RouterOS address list -----------------------------------------------------
# An action, not a message: PUT <rest>/ip/firewall/address-list (ipv6/... for
# an IPv6 address) with {"list", "address", "comment", "timeout"}, basic
# authentication. RouterOS refuses an address already on the list with a 400
# whose detail is "failure: already have such entry": that is the state we
# want, so it counts as done, and a retry after a lost answer is harmless.
# The checks before any request (an address, not allow-listed, not audit
# mode) are notify/routeros.py's.


class Order(msgspec.Struct, frozen=True, kw_only=True):
    """What the outbox keeps for an action: the alert's address, rule and text."""

    address: str = ""
    rule: str = ""
    text: str = ""
    sender: str = ""
    node: str = ""


ORDER_DECODER = msgspec.json.Decoder(Order)


def routeros_order(alert: Alert) -> str:
    order = Order(
        address=alert.address,
        rule=alert.rule,
        text=alert.text,
        sender=alert.sender,
        node=alert.node,
    )
    return msgspec.json.encode(order).decode("utf-8")


def read_order(text: str) -> Order:
    """The order an action's outbox text holds (an empty one if it is not)."""
    try:
        return ORDER_DECODER.decode(text)
    except msgspec.DecodeError:
        return Order()


def routeros_comment(rule: str) -> str:
    return f"alertik: {rule}"


def routeros_request(
    dest: AddressListDestination, text: str, key: str = ""
) -> HttpRequest:
    order = read_order(text)
    try:
        family = ipaddress.ip_address(order.address).version
    except ValueError:
        family = 4
    menu = "ipv6" if family == 6 else "ip"
    document = {
        "list": dest.list_name,
        "address": order.address,
        "comment": routeros_comment(order.rule),
    }
    if dest.timeout != "none":
        document["timeout"] = dest.timeout
    url = f"{dest.rest_url}/{menu}/firewall/address-list"
    headers = {"Authorization": basic_auth(dest.user, dest.password)}
    return _json_post(url, document, headers, method="PUT")


ALREADY_LISTED = "already have such entry"


def routeros_answer(attempt: Attempt) -> Verdict | None:
    if attempt.status == 400:
        detail = _json_field(attempt.body, "detail")
        if isinstance(detail, str) and ALREADY_LISTED in detail:
            return Verdict("delivered", reason="already on the list")
    return None


def routeros_transport(dest: Any, cfg: NotifyConfig, secrets: list[str]) -> Transport:
    from alertik.notify.routeros import AddressListTransport

    return AddressListTransport(dest, cfg, secrets)


def _every(gap: float) -> Callable[[Any], float]:
    return lambda dest: gap


SERVICES: dict[str, Service[Any]] = {
    "telegram": Service(
        kind="telegram",
        request=telegram_request,
        limit=4096,
        digest_limit=4096,
        measure=render.utf16_units,
        escape=render.as_is,
        chat=True,
        pace=telegram_pace,
        body_wait=telegram_wait,
        answer=telegram_answer,
    ),
    "slack": Service(
        kind="slack",
        request=slack_request,
        limit=40_000,
        digest_limit=4000,
        measure=render.characters,
        escape=render.slack_escape,
        chat=True,
        pace=_every(1.0),
    ),
    "teams": Service(
        kind="teams",
        request=teams_request,
        limit=24_000,
        digest_limit=24_000,
        measure=render.json_bytes,
        escape=render.markdown_escape,
        chat=True,
        pace=_every(0.25),
    ),
    "discord": Service(
        kind="discord",
        request=discord_request,
        limit=2000,
        digest_limit=2000,
        measure=render.utf16_units,
        escape=render.discord_escape,
        chat=True,
        pace=_every(0.0),
        body_wait=discord_wait,
        rate_bucket=discord_bucket,
        answer=discord_answer,
    ),
    "generic": Service(
        kind="generic",
        request=generic_request,
        limit=None,
        digest_limit=65_536,
        measure=render.json_bytes,
        escape=render.as_is,
        chat=False,
        pace=_every(0.0),
    ),
    "ntfy": Service(
        kind="ntfy",
        request=ntfy_request,
        limit=4096,
        digest_limit=4096,
        measure=render.utf8_bytes,
        escape=render.as_is,
        chat=True,
        pace=_every(1.0),
    ),
    "gotify": Service(
        kind="gotify",
        request=gotify_request,
        limit=None,
        digest_limit=4096,
        measure=render.characters,
        escape=render.as_is,
        chat=True,
        pace=_every(0.0),
    ),
    "pushover": Service(
        kind="pushover",
        request=pushover_request,
        limit=1024,
        digest_limit=1024,
        measure=render.characters,
        escape=render.as_is,
        chat=True,
        pace=_every(1.0),
        answer=pushover_answer,
    ),
    "matrix": Service(
        kind="matrix",
        request=matrix_request,
        limit=32_000,
        digest_limit=16_000,
        measure=render.json_bytes,
        escape=render.as_is,
        chat=True,
        pace=_every(1.0),
        body_wait=matrix_wait,
    ),
    "email": Service(
        kind="email",
        request=None,
        limit=None,
        digest_limit=65_536,
        measure=render.characters,
        escape=render.as_is,
        chat=True,
        pace=_every(1.0),
        answer=smtp_answer,
        transport=email_transport,
        protocol="SMTP",
    ),
    "apprise": Service(
        kind="apprise",
        request=None,
        limit=None,
        digest_limit=4000,
        measure=render.characters,
        escape=render.as_is,
        chat=True,
        pace=_every(1.0),
        transport=apprise_transport,
        protocol="Apprise",
    ),
    "routeros-address-list": Service(
        kind="routeros-address-list",
        request=routeros_request,
        limit=None,
        digest_limit=1,
        measure=render.characters,
        escape=render.as_is,
        chat=False,
        pace=_every(0.0),
        answer=routeros_answer,
        transport=routeros_transport,
        order=routeros_order,
    ),
}


def service_of(dest: Destination) -> Service[Any]:
    """The service a destination is."""
    return SERVICES[dest.kind]


def request(dest: Destination, text: str, key: str = "") -> HttpRequest:
    """The HTTP request that carries text to dest."""
    build = service_of(dest).request
    if build is None:
        raise ValueError(f"{dest.kind} is not an HTTP service")
    return build(dest, text, key)


def pace_seconds(dest: Destination) -> float:
    """The minimum gap between two requests to dest."""
    return service_of(dest).pace(dest)


def parts(kind: str, text: str) -> list[str]:
    """The messages that carry one alert's text to a service of this kind."""
    service = SERVICES[kind]
    if service.action:
        return [text]  # an order, not a message: never cut
    return render.split(text, service.limit, service.size)


def pack(kind: str, texts: Sequence[str]) -> int:
    """How many of texts, from the front, fit in one digest (at least 1)."""
    service = SERVICES[kind]
    return render.pack(texts, service.digest_limit, service.size)
