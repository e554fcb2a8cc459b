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
* ``transport``: for a service that is not an HTTP request (e-mail), what
  sends a message instead; ``None`` means ``request`` over HTTP.

Adding a destination means adding its struct to ``Destination``, one entry to
``SERVICES`` and their tests. Nothing here does I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar

import msgspec

from alertik.common.destinations import (
    Destination,
    DestinationBase,
    DiscordDestination,
    GenericDestination,
    SlackDestination,
    TeamsDestination,
    TelegramDestination,
)
from alertik.notify import render

if TYPE_CHECKING:
    from alertik.common.config import NotifyConfig

D = TypeVar("D", bound=DestinationBase)
Action = Literal["delivered", "retry", "failed", "disabled"]


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


@dataclass(frozen=True)
class Verdict:
    """What to do after one attempt."""

    action: Action
    wait: float | None = None  # seconds the service asked us to wait, if any
    reason: str = ""


class Transport(Protocol):
    """Sends messages to one destination; for services that are not HTTP."""

    def attempt(self, text: str) -> Attempt:
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
    request: Callable[[D, str], HttpRequest] | None  # None: not HTTP
    limit: int | None  # largest text of one message, in `measure` units
    digest_limit: int  # largest digest message; may be below `limit`
    measure: render.Measure
    escape: render.Escape
    chat: bool  # read by people: packs digests when it falls behind
    pace: Callable[[D], float]
    body_wait: Callable[[object], float | None] = field(default=_no_wait)
    rate_bucket: Callable[[Mapping[str, str]], float | None] | None = None
    answer: Callable[[Attempt], Verdict | None] | None = None
    transport: Callable[[D, NotifyConfig], Transport] | None = None

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


def _json_post(url: str, document: object) -> HttpRequest:
    # Real UTF-8 JSON: quotes, backslashes, newlines and any character arrive
    # intact.
    return HttpRequest(
        "POST",
        url,
        {"Content-Type": "application/json"},
        msgspec.json.encode(document),
    )


# --- Telegram ----------------------------------------------------------------
# POST <api_url>/bot<token>/sendMessage. "1-4096 characters after entity
# parsing"; counting UTF-16 units is never more lenient than Telegram. About
# 1 message/s in a private chat, 20 a minute in a group or channel. A 429
# says how long to wait in parameters.retry_after.

TELEGRAM_PRIVATE_PACE = 1.0
TELEGRAM_GROUP_PACE = 3.0


def telegram_request(dest: TelegramDestination, text: str) -> HttpRequest:
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


# --- Slack -------------------------------------------------------------------
# An incoming webhook takes {"text": ...}; 1 message/s. Slack cuts text at
# 40,000 characters and recommends 4,000 for reading, so single alerts may be
# long but digests stay readable. Its mrkdwn reads <...> as links and
# mentions: the text is escaped with Slack's entities.


def slack_request(dest: SlackDestination, text: str) -> HttpRequest:
    return _json_post(dest.url, {"text": render.slack_escape(text)})


# --- Microsoft Teams -----------------------------------------------------------
# A Workflows webhook takes a message with one Adaptive Card 1.4 attachment
# (1.5 is not rendered; without wrap long text is cut); the retired legacy
# connectors take {"text": ...}. A message may be 28 KB in all: 24,000 bytes
# of text leaves room for the envelope. Throttled above 4 requests/s. Both
# render Markdown links.


def teams_request(dest: TeamsDestination, text: str) -> HttpRequest:
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


def discord_request(dest: DiscordDestination, text: str) -> HttpRequest:
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


def generic_request(dest: GenericDestination, text: str) -> HttpRequest:
    return _json_post(dest.url, {"text": text})


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
}


def service_of(dest: Destination) -> Service[Any]:
    """The service a destination is."""
    return SERVICES[dest.kind]


def request(dest: Destination, text: str) -> HttpRequest:
    """The HTTP request that carries text to dest."""
    build = service_of(dest).request
    if build is None:
        raise ValueError(f"{dest.kind} is not an HTTP service")
    return build(dest, text)


def pace_seconds(dest: Destination) -> float:
    """The minimum gap between two requests to dest."""
    return service_of(dest).pace(dest)


def parts(kind: str, text: str) -> list[str]:
    """The messages that carry one alert's text to a service of this kind."""
    service = SERVICES[kind]
    return render.split(text, service.limit, service.size)


def pack(kind: str, texts: Sequence[str]) -> int:
    """How many of texts, from the front, fit in one digest (at least 1)."""
    service = SERVICES[kind]
    return render.pack(texts, service.digest_limit, service.size)
