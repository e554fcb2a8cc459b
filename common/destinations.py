"""Destinations: where notify delivers, one typed struct per kind of service.

A destination is a frozen ``msgspec`` struct, and ``Destination`` is the union
of every kind, tagged by its ``type`` field (``telegram``, ``slack``, ``teams``,
``discord``, ``generic``). Every kind has a ``name`` (for the destinations set
by environment, alertik's notifier name: ``Telegram``, ``Generic2``, ...) and
``verify_tls``; the rest is the kind's own (a bot token and chat, a webhook
URL, ...). What notify does with each kind (URL, payload, limits, pacing) is
described in ``notify/services.py``; this module only holds and checks the
values.

There are two ways in, and both end in the same ``check()``:

* ``from_environment()``: alertik's own variables (``TELEGRAM_BOT_TOKEN``,
  ``SLACK_WEBHOOK_URL``, ...), one destination per notifier name. Errors are
  ``ConfigError`` naming the variable.
* ``parse()``: a plain mapping with a ``type`` key, such as a TOML table.
  Errors are ``DestinationError`` naming the key.

Bot tokens and webhook URLs are credentials. A struct holds them, so never log
or print a struct: use ``shown()`` for a log line and ``redacted()`` for a
listing, and ``secrets()`` for what must be scrubbed from any other text.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from typing import Annotated, ClassVar, Literal
from urllib.parse import unquote, urlsplit

import msgspec

from alertik.common.converters import ConfigError, split_list

# alertik's notifier names, which the environment's destinations take.
from alertik.common.events import NOTIFIERS as NOTIFIERS

DEFAULT_TELEGRAM_API_URL = "https://api.telegram.org"

# A bot token as @BotFather gives it: the bot's number, a colon, the secret.
_BOT_TOKEN = re.compile(r"^[0-9]+:[A-Za-z0-9_-]+$")
# A chat id: a number (negative for groups and channels) or @channelname.
_CHAT_ID = re.compile(r"^(-?[0-9]+|@[A-Za-z0-9_]+)$")
_CONTROL = re.compile(r"[\x00-\x20\x7f-\x9f]")
# Host name characters the HTTP library takes as they are.
_HOST = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=-]+")


class DestinationError(ValueError):
    """A destination value that cannot be used; names the key, never the value."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


def _is_text(value: str) -> bool:
    """False for strings holding surrogates: bytes that were not UTF-8."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def url_problem(url: str) -> str | None:
    """Why url cannot be used for HTTP requests, or None; never quotes it.

    Refuses what the HTTP library would refuse on every attempt (a port out
    of range, no host, an invalid host name), so that it is caught at start-up
    instead of being retried forever.
    """
    if not _is_text(url):
        return "is not valid UTF-8 text; check its value"
    if _CONTROL.search(url):
        return "contains spaces or control characters; check its value"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        if str(exc).startswith("Port"):
            return "has an invalid port; use a number from 1 to 65535"
        return "is not a valid URL; check its value"
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return "is not an http:// or https:// URL; check its value"
    if port == 0:
        return "has an invalid port; use a number from 1 to 65535"
    host = parts.hostname or ""
    if not host:
        return "has no host name; check its value"
    try:
        # Basic authentication carries user:password in Latin-1.
        for item in (parts.username, parts.password):
            unquote(item or "").encode("latin-1")
    except UnicodeEncodeError:
        return "has a user or password that is not Latin-1; check its value"
    if parts.netloc.rpartition("@")[2].startswith("["):
        try:
            ipaddress.IPv6Address(host.split("%")[0])
        except ValueError:
            return "has an invalid IPv6 address; check its value"
        return None
    if host.isascii():
        if host.startswith(("*", ".")) or not _HOST.fullmatch(host):
            return "has an invalid host name; check its value"
        return None
    # An international name: as the HTTP library checks it (each label as
    # strict IDNA 2008, and the whole name with the UTS 46 mapping).
    import idna

    try:
        idna.encode(host, uts46=True)
        for label in host.split("."):
            if not label.isascii():
                idna.encode(label, strict=True, std3_rules=True)
            elif not _HOST.fullmatch(label):
                return "has an invalid host name; check its value"
    except idna.IDNAError:
        return "has an invalid host name; check its value"
    return None


def redact_url(url: str) -> str:
    """Keep scheme and host of a URL, hide the path (webhook URLs are secrets)."""
    m = re.match(r"^(https?://[^/\s?#]+)", url)
    host = m.group(1) if m else "<url>"
    # A user:password@ part is a secret too.
    host = re.sub(r"//[^@/]*@", "//", host)
    return f"{host}/<redacted>"


class DestinationBase(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    tag_field="type",
):
    """What every destination has: a name, and whether TLS is verified."""

    name: str
    verify_tls: bool = True

    # Fields whose values are credentials: never shown, scrubbed from logs.
    SECRETS: ClassVar[tuple[str, ...]] = ()
    # Fields that hold http(s) URLs: checked as such; a user:password in
    # them is a secret even when the rest of the URL is not.
    URLS: ClassVar[tuple[str, ...]] = ()

    @property
    def kind(self) -> str:
        """The ``type`` tag: which service this is."""
        return str(type(self).__struct_config__.tag)

    @property
    def address(self) -> str:
        """The URL notify connects to; only its scheme and host may be shown."""
        raise NotImplementedError

    def shown(self) -> str:
        """How a log line names this destination: its name, scheme and host."""
        return f"{self.name} ({redact_url(self.address)})"

    def secrets(self) -> list[str]:
        """Every credential this destination holds, to scrub from any text."""
        found = [str(getattr(self, f)) for f in self.SECRETS]
        for f in self.URLS:
            password = urlsplit(getattr(self, f)).password
            if password:
                found.append(password)
        return [s for s in found if s]

    def redacted(self) -> dict[str, object]:
        """The destination as plain data, every secret hidden."""
        data: dict[str, object] = msgspec.to_builtins(self)
        for f in self.URLS:
            data[f] = redact_url(getattr(self, f))
        for f in self.SECRETS:
            if f not in self.URLS:
                data[f] = "<set>"
        return data

    def check(self) -> None:
        """Raise DestinationError, naming the key, for a value that cannot work."""
        for f in self.__struct_fields__:
            value = getattr(self, f)
            if isinstance(value, str) and not _is_text(value):
                raise DestinationError(f, "is not valid UTF-8 text; check its value")
        for f in self.URLS:
            problem = url_problem(getattr(self, f))
            if problem:
                raise DestinationError(f, problem)
        self._check()

    def _check(self) -> None:
        """The kind's own checks."""


class TelegramDestination(DestinationBase, tag="telegram", frozen=True, kw_only=True):
    """A Telegram chat (or forum topic) reached through a bot."""

    bot_token: str
    chat_id: int | str  # a number (negative for groups) or "@channelname"
    message_thread_id: Annotated[int, msgspec.Meta(ge=1)] | None = None
    api_url: str = DEFAULT_TELEGRAM_API_URL

    SECRETS = ("bot_token",)
    URLS = ("api_url",)

    @property
    def address(self) -> str:
        return self.api_url

    @property
    def chat(self) -> int | str:
        """chat_id as the Bot API documents it: an integer, or @name."""
        if isinstance(self.chat_id, str) and _CHAT_ID.match(self.chat_id):
            if not self.chat_id.startswith("@"):
                return int(self.chat_id)
        return self.chat_id

    def _check(self) -> None:
        if not _BOT_TOKEN.match(self.bot_token):
            raise DestinationError(
                "bot_token",
                "is not a bot token; copy it from @BotFather as 123456:ABC...",
            )
        if isinstance(self.chat_id, str) and not _CHAT_ID.match(self.chat_id):
            raise DestinationError(
                "chat_id",
                "is not a chat id; use the chat's number (negative for groups, "
                "e.g. -1001234567890) or @channelname",
            )


class _Webhook(DestinationBase, frozen=True, kw_only=True):
    """A destination that is one secret URL."""

    url: str

    SECRETS = ("url",)
    URLS = ("url",)

    @property
    def address(self) -> str:
        return self.url


class SlackDestination(_Webhook, tag="slack", frozen=True, kw_only=True):
    """A Slack incoming webhook."""


class TeamsDestination(_Webhook, tag="teams", frozen=True, kw_only=True):
    """A Microsoft Teams webhook: a Workflows URL, or a legacy connector."""

    format: Literal["workflows", "legacy"] = "workflows"


class DiscordDestination(_Webhook, tag="discord", frozen=True, kw_only=True):
    """A Discord webhook (its own URL, not the /slack one)."""


class GenericDestination(_Webhook, tag="generic", frozen=True, kw_only=True):
    """Any webhook that takes alertik's {"text": ...}."""


Destination = (
    TelegramDestination
    | SlackDestination
    | TeamsDestination
    | DiscordDestination
    | GenericDestination
)


def _key_of(exc: msgspec.ValidationError) -> str:
    """The key a msgspec validation error is about."""
    message = str(exc)
    found = re.search(r"field `([^`]+)`", message) or re.search(
        r"at `\$\.([^`.\[]+)", message
    )
    return found.group(1) if found else "type"


def parse(raw: Mapping[str, object]) -> Destination:
    """A destination from plain data with a ``type`` key; DestinationError."""
    try:
        dest: Destination = msgspec.convert(raw, Destination)
    except msgspec.ValidationError as exc:
        key = _key_of(exc)
        # msgspec's text says what was expected; drop the path, which the
        # caller names better (file, table, variable).
        problem = re.sub(r"\s*- at `\$[^`]*`$", "", str(exc))
        raise DestinationError(key, problem) from None
    dest.check()
    return dest


# --- alertik's environment variables -----------------------------------------


def _variables(name: str) -> dict[str, str]:
    """For one notifier name: each key and the variable that sets it."""
    if name == "Telegram":
        return {
            "bot_token": "TELEGRAM_BOT_TOKEN",
            "chat_id": "TELEGRAM_CHAT_ID",
            "api_url": "TELEGRAM_API_URL",
        }
    if name == "Teams":
        return {"url": "TEAMS_WEBHOOK_URL", "format": "TEAMS_WEBHOOK_FORMAT"}
    return {"url": f"{name.upper()}_WEBHOOK_URL"}


def from_environment(
    env: Mapping[str, str], name: str, insecure: set[str]
) -> Destination:
    """The destination of one notifier name, from alertik's variables."""
    variables = _variables(name)
    raw: dict[str, object] = {"name": name, "verify_tls": name not in insecure}
    if name == "Telegram":
        for variable in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_CHAT_ID"):
            if not env.get(variable, "").strip():
                raise ConfigError(
                    variable,
                    "is not set; Telegram needs both "
                    "TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID",
                )
        raw["type"] = "telegram"
        raw["bot_token"] = env["TELEGRAM_BOT_TOKEN"].strip()
        raw["chat_id"] = env["TELEGRAM_CHAT_ID"].strip()
        api = env.get("TELEGRAM_API_URL", "").strip()
        raw["api_url"] = api.rstrip("/") if api else DEFAULT_TELEGRAM_API_URL
    else:
        variable = variables["url"]
        if not env.get(variable, "").strip():
            raise ConfigError(variable, "is not set; set it to the webhook URL")
        raw["type"] = "generic" if name.startswith("Generic") else name.lower()
        raw["url"] = env[variable].strip()
    if name == "Teams":
        fmt = env.get("TEAMS_WEBHOOK_FORMAT") or "workflows"
        if fmt not in ("workflows", "legacy"):
            raise ConfigError(
                "TEAMS_WEBHOOK_FORMAT", f"{fmt!r} is not one of workflows, legacy"
            )
        raw["format"] = fmt
    try:
        return parse(raw)
    except DestinationError as exc:
        raise ConfigError(variables.get(exc.key, exc.key), exc.problem) from None


def _insecure(env: Mapping[str, str]) -> set[str]:
    """The notifier names listed in ALERTIK_TLS_INSECURE."""
    names = set(split_list(env.get("ALERTIK_TLS_INSECURE", "")))
    for name in names:
        if name not in NOTIFIERS:
            raise ConfigError(
                "ALERTIK_TLS_INSECURE",
                f"{name!r} is not a notifier; use names such as Generic1,Teams",
            )
    return names


def environment_destinations(
    env: Mapping[str, str], names: list[str]
) -> tuple[Destination, ...]:
    """The destinations of the notifier names that events use, in that order."""
    insecure = _insecure(env)
    return tuple(from_environment(env, name, insecure) for name in names)


def destination(name: str, environ: Mapping[str, str] | None = None) -> Destination:
    """One notifier's destination, whether or not an event names it."""
    env = os.environ if environ is None else environ
    return from_environment(env, name, _insecure(env))
