"""Destinations: where notify delivers, one typed struct per kind of service.

A destination is a frozen ``msgspec`` struct, and ``Destination`` is the union
of every kind, tagged by its ``type`` field: the chats and webhooks
(``telegram``, ``slack``, ``teams``, ``discord``, ``generic``), the push
services (``ntfy``, ``gotify``, ``pushover``, ``matrix``), ``email``,
``apprise`` (an optional extra), and one action on the router,
``routeros-address-list``. Every kind has a ``name`` (for the destinations
set by environment, alertik's notifier name: ``Telegram``, ``Generic2``,
``Ntfy``, ...) and ``verify_tls``; the rest is the kind's own (a bot token and
chat, a webhook URL, ...). What notify does with each kind (URL, payload,
limits, pacing) is described in ``notify/services.py``; this module only
holds and checks the values.

There are two ways in, and both end in the same ``check()``:

* ``from_environment()``: alertik's own variables (``TELEGRAM_BOT_TOKEN``,
  ``SLACK_WEBHOOK_URL``, ...) and, for the kinds alertik did not have, one
  destination each from ``ALERTIK_<SERVICE>_<KEY>`` (``ENVIRONMENT``). Every
  secret may instead be read from a file named by a ``..._FILE`` variable.
  Errors are ``ConfigError`` naming the variable.
* ``parse()``: a plain mapping with a ``type`` key, such as a TOML table;
  every secret key ``k`` may be given as ``k_file`` instead. Errors are
  ``DestinationError`` naming the key.

Tokens, passwords and webhook URLs are credentials. A struct holds them, so
never log or print a struct: use ``shown()`` for a log line and
``redacted()`` for a listing, and ``secrets()`` for what must be scrubbed
from any other text.
"""

from __future__ import annotations

import ipaddress
import os
import re
import typing
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import unquote, urlsplit

import msgspec

from alertik.common.converters import ConfigError, split_list, whole_number

# alertik's notifier names, which the environment's destinations take.
from alertik.common.events import NOTIFIERS as NOTIFIERS

DEFAULT_TELEGRAM_API_URL = "https://api.telegram.org"
DEFAULT_NTFY_URL = "https://ntfy.sh"
DEFAULT_PUSHOVER_API_URL = "https://api.pushover.net"
# RouterOS reads these as a duration: 30s, 10m, 1h, 1d, 2w, or several (1h30m).
_ROUTEROS_DURATION = re.compile(
    r"^(?=.)([0-9]+w)?([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?$"
)
# A secret read from a file larger than this is not a token but a mistake.
SECRET_FILE_MAX = 64 * 1024

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
    if "\\" in parts.netloc:
        # The HTTP library takes a backslash for the start of the path:
        # https://a\b@host/ would go to host "a", not "host".
        return "has a backslash before its path; check its value"
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


def read_secret(path: str, base: str | None = None) -> str:
    """The secret held by a file (Docker secrets, a RouterOS mount): its text
    without the line end; ValueError with a one-line reason naming the path."""
    if base is not None and not os.path.isabs(path):
        path = os.path.join(base, path)
    try:
        with open(path, "rb") as f:
            data = f.read(SECRET_FILE_MAX + 1)
    except OSError as exc:
        raise ValueError(f"cannot read {path} ({exc.strerror})") from None
    if len(data) > SECRET_FILE_MAX:
        raise ValueError(f"{path} is larger than {SECRET_FILE_MAX} bytes")
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text") from None
    if not text:
        raise ValueError(f"{path} is empty")
    return text


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

    # Fields whose values are credentials: never shown, scrubbed from logs;
    # each may also be given as "<field>_file".
    SECRETS: ClassVar[tuple[str, ...]] = ()
    # Fields that hold http(s) URLs: checked as such; a user:password in
    # them is a secret even when the rest of the URL is not.
    URLS: ClassVar[tuple[str, ...]] = ()

    @property
    def kind(self) -> str:
        """The ``type`` tag: which service this is."""
        return str(type(self).__struct_config__.tag)

    @property
    def endpoint(self) -> str:
        """The URL notify connects to; only its scheme and host may be shown."""
        raise NotImplementedError

    def shown(self) -> str:
        """How a log line names this destination: its name, scheme and host."""
        return f"{self.name} ({redact_url(self.endpoint)})"

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
            data[_encoded(type(self), f)] = redact_url(getattr(self, f))
        for f in self.SECRETS:
            if f not in self.URLS and getattr(self, f):
                data[_encoded(type(self), f)] = "<set>"
        return data

    def check(self) -> None:
        """Raise DestinationError, naming the key, for a value that cannot work."""
        for f in self.__struct_fields__:
            value = getattr(self, f)
            items = value if isinstance(value, tuple) else (value,)
            for item in items:
                if isinstance(item, str) and not _is_text(item):
                    raise DestinationError(
                        _encoded(type(self), f),
                        "is not valid UTF-8 text; check its value",
                    )
        for f in self.URLS:
            problem = url_problem(getattr(self, f))
            if problem:
                raise DestinationError(f, problem)
        self._check()

    def _check(self) -> None:
        """The kind's own checks."""


def _encoded(cls: type[msgspec.Struct], field: str) -> str:
    """A field's key as written in a table ("from" for EmailDestination.sender)."""
    names = dict(zip(cls.__struct_fields__, cls.__struct_encode_fields__, strict=True))
    return names.get(field, field)


def _header_safe(value: str) -> bool:
    """Printable ASCII without spaces: fit for an HTTP header or a URL path."""
    return bool(re.fullmatch(r"[\x21-\x7e]+", value))


class TelegramDestination(DestinationBase, tag="telegram", frozen=True, kw_only=True):
    """A Telegram chat (or forum topic) reached through a bot."""

    bot_token: str
    chat_id: int | str  # a number (negative for groups) or "@channelname"
    message_thread_id: Annotated[int, msgspec.Meta(ge=1)] | None = None
    api_url: str = DEFAULT_TELEGRAM_API_URL

    SECRETS = ("bot_token",)
    URLS = ("api_url",)

    @property
    def endpoint(self) -> str:
        return self.api_url

    @property
    def chat(self) -> int | str:
        """chat_id as the Bot API documents it: an integer, or @name."""
        if (
            isinstance(self.chat_id, str)
            and _CHAT_ID.match(self.chat_id)
            and not self.chat_id.startswith("@")
        ):
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
    def endpoint(self) -> str:
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


# ntfy's topic names: letters, digits, "-" and "_", at most 64.
_NTFY_TOPIC = re.compile(r"^[-_A-Za-z0-9]{1,64}$")


class NtfyDestination(DestinationBase, tag="ntfy", frozen=True, kw_only=True):
    """A topic on an ntfy server (https://ntfy.sh or one's own)."""

    url: str = DEFAULT_NTFY_URL
    # On a public server anyone who knows the topic reads it: a secret.
    topic: str
    priority: Annotated[int, msgspec.Meta(ge=1, le=5)] | None = None
    title: str = ""
    tags: tuple[str, ...] = ()
    click: str = ""
    token: str = ""
    user: str = ""
    password: str = ""

    SECRETS = ("topic", "token", "password")
    URLS = ("url",)

    @property
    def endpoint(self) -> str:
        return self.url

    def _check(self) -> None:
        if not _NTFY_TOPIC.match(self.topic):
            raise DestinationError(
                "topic", "is not an ntfy topic; use letters, digits, - and _ (1-64)"
            )
        if self.token and (self.user or self.password):
            raise DestinationError(
                "token", "is set, and so are user/password; use one way to log in"
            )
        if bool(self.user) != bool(self.password):
            raise DestinationError(
                "user" if self.password else "password",
                "is needed too: ntfy logs in with both user and password",
            )
        if self.token and not _header_safe(self.token):
            raise DestinationError("token", "is not an access token (tk_...)")
        if _CONTROL.search(self.click.replace(" ", "")):
            raise DestinationError("click", "contains control characters")


class GotifyDestination(DestinationBase, tag="gotify", frozen=True, kw_only=True):
    """A Gotify server, through an application token."""

    url: str
    token: str
    priority: Annotated[int, msgspec.Meta(ge=0, le=10)] | None = None

    SECRETS = ("token",)
    URLS = ("url",)

    @property
    def endpoint(self) -> str:
        return self.url

    def _check(self) -> None:
        if not _header_safe(self.token):
            raise DestinationError(
                "token", "is not an application token; copy it from Gotify's Apps"
            )


# Pushover's user, group and application keys: 30 letters and digits.
_PUSHOVER_KEY = re.compile(r"^[A-Za-z0-9]{30}$")
# Pushover repeats an emergency alert at most this long (3 hours).
PUSHOVER_MAX_EXPIRE = 10800


class PushoverDestination(DestinationBase, tag="pushover", frozen=True, kw_only=True):
    """A Pushover user or group, through an application's token."""

    user: str
    token: str
    priority: Annotated[int, msgspec.Meta(ge=-2, le=2)] | None = None
    retry: Annotated[int, msgspec.Meta(ge=30)] | None = None
    expire: Annotated[int, msgspec.Meta(ge=1, le=PUSHOVER_MAX_EXPIRE)] | None = None
    sound: str = ""
    api_url: str = DEFAULT_PUSHOVER_API_URL

    SECRETS = ("user", "token")
    URLS = ("api_url",)

    @property
    def endpoint(self) -> str:
        return self.api_url

    def _check(self) -> None:
        for key in ("user", "token"):
            if not _PUSHOVER_KEY.match(getattr(self, key)):
                raise DestinationError(
                    key, "is not a Pushover key; copy its 30 characters from Pushover"
                )
        if self.priority == 2:
            if self.retry is None:
                raise DestinationError(
                    "retry",
                    "is needed with priority 2 (emergency): seconds (30 or more) "
                    "between repeats until someone acknowledges",
                )
            if self.expire is None:
                raise DestinationError(
                    "expire",
                    "is needed with priority 2 (emergency): seconds (up to "
                    f"{PUSHOVER_MAX_EXPIRE}) during which the alert is repeated",
                )
        if self.sound and not re.fullmatch(r"[a-z0-9_-]{1,64}", self.sound):
            raise DestinationError("sound", "is not a Pushover sound name (e.g. siren)")


# A room id: "!", an opaque part and, before room version 12, ":" and the
# server's name (version 12 ids, Synapse's default now, have none).
_MATRIX_ROOM = re.compile(r"^![^:\s/]+(:[^\s/]+)?$")


class MatrixDestination(DestinationBase, tag="matrix", frozen=True, kw_only=True):
    """A Matrix room, as a user whose access token notify holds."""

    homeserver: str
    room: str
    access_token: str
    msgtype: Literal["m.notice", "m.text"] = "m.notice"

    SECRETS = ("access_token",)
    URLS = ("homeserver",)

    @property
    def endpoint(self) -> str:
        return self.homeserver

    def _check(self) -> None:
        if not _MATRIX_ROOM.match(self.room):
            raise DestinationError(
                "room",
                "is not a room id; use the id shown in the room's settings "
                "(Advanced), e.g. !AbCdEfGh:example.org (not an #alias)",
            )
        if not _header_safe(self.access_token):
            raise DestinationError("access_token", "is not an access token")


EMAIL_PORTS = {"starttls": 587, "tls": 465, "none": 25}
_MAIL_HOST = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")


def _mail_address(value: str) -> bool:
    """Whether value is one e-mail address, with or without a display name."""
    if "\n" in value or "\r" in value:
        return False
    import email.utils  # only for e-mail destinations

    _, address = email.utils.parseaddr(value)
    local, at, domain = address.rpartition("@")
    return bool(at and local and ("." in domain or domain == "localhost"))


class EmailDestination(DestinationBase, tag="email", frozen=True, kw_only=True):
    """Mail through an SMTP server: one message per alert, or per digest."""

    host: str
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] | None = None
    security: Literal["starttls", "tls", "none"] = "starttls"
    user: str = ""
    password: str = ""
    sender: str = msgspec.field(name="from")
    to: tuple[str, ...]

    SECRETS = ("password",)

    @property
    def smtp_port(self) -> int:
        """The port: as set, or the usual one for the security chosen."""
        return self.port if self.port is not None else EMAIL_PORTS[self.security]

    @property
    def endpoint(self) -> str:
        return f"smtp://{self.host}:{self.smtp_port}"

    def shown(self) -> str:
        return f"{self.name} (smtp {self.host}:{self.smtp_port}, {self.security})"

    def _check(self) -> None:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            if not _MAIL_HOST.match(self.host) or ".." in self.host:
                raise DestinationError(
                    "host", "is not a host name or address; check its value"
                ) from None
        if bool(self.user) != bool(self.password):
            raise DestinationError(
                "user" if self.password else "password",
                "is needed too: the server logs in with both user and password",
            )
        if self.user and self.security == "none":
            raise DestinationError(
                "security",
                "is none, which would send the password in clear; use starttls or tls",
            )
        if not _mail_address(self.sender):
            raise DestinationError("from", "is not an e-mail address")
        if not self.to:
            raise DestinationError("to", "is empty; list at least one address")
        for address in self.to:
            if not _mail_address(address):
                raise DestinationError("to", "holds something that is not an address")


class AddressListDestination(
    DestinationBase, tag="routeros-address-list", frozen=True, kw_only=True
):
    """An action: add the address an alert is about to a RouterOS address list.

    ``address`` is a mask (``@2``, ``@{sender}``) that the matcher expands for
    every alert to this destination (``Alert.address``). ``allow`` lists the
    addresses and networks never added; with ``audit`` nothing is added and
    ``report`` (another destination) is told what would have been.
    """

    url: str  # the router's REST base: https://192.0.2.1 (or .../rest)
    user: str
    password: str = ""
    list_name: str = msgspec.field(name="list")
    timeout: str = "1d"  # RouterOS duration; "none": a static entry
    address: str
    allow: tuple[str, ...] = ()
    audit: bool = False
    ca_file: str = ""
    report: str = ""  # a destination told what was (or would be) added

    SECRETS = ("password",)
    URLS = ("url",)

    @property
    def endpoint(self) -> str:
        return self.url

    @property
    def rest_url(self) -> str:
        """The REST API's base, ending in /rest."""
        base = self.url.rstrip("/")
        return base if base.endswith("/rest") else f"{base}/rest"

    @property
    def allowed(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """The networks never added (an address is a /32 or /128)."""
        return tuple(ipaddress.ip_network(a, strict=False) for a in self.allow)

    def _check(self) -> None:
        if not self.user or not _header_safe(self.user):
            raise DestinationError("user", "is not a RouterOS user name")
        if not re.fullmatch(r"[^\s\x00-\x1f\x7f]{1,63}", self.list_name):
            raise DestinationError("list", "is not an address-list name")
        if self.timeout != "none" and not _ROUTEROS_DURATION.match(self.timeout):
            raise DestinationError(
                "timeout", "is not a duration; write e.g. 1d, 12h, 30m, or none"
            )
        if "@" not in self.address:
            raise DestinationError(
                "address", "is not a mask; name the capture, e.g. @2 or @{sender}"
            )
        for item in self.allow:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise DestinationError(
                    "allow", f"{item!r} is not an address or network"
                ) from None
        if self.ca_file and not os.path.isfile(self.ca_file):
            raise DestinationError("ca_file", f"{self.ca_file} is not a file")
        if self.audit and not self.report:
            raise DestinationError(
                "report",
                "is needed with audit = true: the destination told what would "
                "have been added",
            )
        if self.report == self.name:
            raise DestinationError("report", "names this destination itself")


_APPRISE_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://\S+$")


class AppriseDestination(DestinationBase, tag="apprise", frozen=True, kw_only=True):
    """Any service Apprise knows, by its URL (pip install 'alertik[apprise]')."""

    url: str  # tgram://..., mailto://..., and so on: a secret

    SECRETS = ("url",)

    @property
    def endpoint(self) -> str:
        return self.url

    def shown(self) -> str:
        scheme = self.url.partition("://")[0]
        return f"{self.name} (apprise {scheme}://<redacted>)"

    def _check(self) -> None:
        if not _APPRISE_URL.match(self.url):
            raise DestinationError(
                "url", "is not an Apprise URL such as tgram://... or ntfys://..."
            )


Destination = (
    TelegramDestination
    | SlackDestination
    | TeamsDestination
    | DiscordDestination
    | GenericDestination
    | NtfyDestination
    | GotifyDestination
    | PushoverDestination
    | MatrixDestination
    | EmailDestination
    | AddressListDestination
    | AppriseDestination
)

# Each kind's struct, by its type tag.
KINDS: dict[str, type[DestinationBase]] = {
    str(cls.__struct_config__.tag): cls for cls in typing.get_args(Destination)
}


def _key_of(exc: msgspec.ValidationError) -> str:
    """The key a msgspec validation error is about."""
    message = str(exc)
    found = re.search(r"field `([^`]+)`", message) or re.search(
        r"at `\$\.([^`.\[]+)", message
    )
    return found.group(1) if found else "type"


def _with_secret_files(
    raw: Mapping[str, object], base: str | None
) -> dict[str, object]:
    """raw, with each secret given as "<key>_file" read from its file."""
    out = dict(raw)
    kind = raw.get("type")
    cls = KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        return out
    for field in cls.SECRETS:
        key = _encoded(cls, field)
        path = raw.get(f"{key}_file")
        if path is None:
            continue
        del out[f"{key}_file"]
        if key in raw:
            raise DestinationError(f"{key}_file", f"is set, and so is {key}; use one")
        if not isinstance(path, str) or not path:
            raise DestinationError(f"{key}_file", "is not a file name")
        try:
            out[key] = read_secret(path, base)
        except ValueError as exc:
            raise DestinationError(f"{key}_file", str(exc)) from None
    return out


def parse(raw: Mapping[str, object], base: str | None = None) -> Destination:
    """A destination from plain data with a ``type`` key; DestinationError.

    A secret key ``k`` may be given as ``k_file``, the name of a file holding
    it; a relative name is taken from base (the rules file's folder).
    """
    data = _with_secret_files(raw, base)
    try:
        dest: Destination = msgspec.convert(data, Destination)
    except msgspec.ValidationError as exc:
        key = _key_of(exc)
        # msgspec's text says what was expected; drop the path, which the
        # caller names better (file, table, variable).
        problem = re.sub(r"\s*- at `\$[^`]*`$", "", str(exc))
        raise DestinationError(key, problem) from None
    dest.check()
    return dest


def check_references(destinations: typing.Sequence[DestinationBase]) -> None:
    """Refuse a destination that names another that does not exist (an
    address-list action's ``report``), or one that cannot take messages."""
    by_name = {d.name: d for d in destinations}
    for dest in destinations:
        if isinstance(dest, AddressListDestination) and dest.report:
            target = by_name.get(dest.report)
            if target is None:
                raise DestinationError(
                    "report", f"{dest.name}: no destination is named {dest.report!r}"
                )
            if isinstance(target, AddressListDestination):
                raise DestinationError(
                    "report",
                    f"{dest.name}: {dest.report!r} is an action; name a destination "
                    "that takes messages",
                )


# --- the environment's destinations --------------------------------------------

# For each notifier name: its kind, and the variable of each key. alertik's
# own keep their names; each kind alertik did not have is one destination
# from ALERTIK_<SERVICE>_<KEY>.
ENVIRONMENT: dict[str, tuple[str, dict[str, str]]] = {
    "Telegram": (
        "telegram",
        {
            "bot_token": "TELEGRAM_BOT_TOKEN",
            "chat_id": "TELEGRAM_CHAT_ID",
            "api_url": "TELEGRAM_API_URL",
            "message_thread_id": "ALERTIK_TELEGRAM_THREAD_ID",
        },
    ),
    "Slack": ("slack", {"url": "SLACK_WEBHOOK_URL"}),
    "Teams": ("teams", {"url": "TEAMS_WEBHOOK_URL", "format": "TEAMS_WEBHOOK_FORMAT"}),
    "Discord": ("discord", {"url": "DISCORD_WEBHOOK_URL"}),
    **{
        f"Generic{n}": ("generic", {"url": f"GENERIC{n}_WEBHOOK_URL"})
        for n in range(1, 5)
    },
    "Ntfy": (
        "ntfy",
        {
            "url": "ALERTIK_NTFY_URL",
            "topic": "ALERTIK_NTFY_TOPIC",
            "priority": "ALERTIK_NTFY_PRIORITY",
            "title": "ALERTIK_NTFY_TITLE",
            "tags": "ALERTIK_NTFY_TAGS",
            "click": "ALERTIK_NTFY_CLICK",
            "token": "ALERTIK_NTFY_TOKEN",
            "user": "ALERTIK_NTFY_USER",
            "password": "ALERTIK_NTFY_PASSWORD",
        },
    ),
    "Gotify": (
        "gotify",
        {
            "url": "ALERTIK_GOTIFY_URL",
            "token": "ALERTIK_GOTIFY_TOKEN",
            "priority": "ALERTIK_GOTIFY_PRIORITY",
        },
    ),
    "Pushover": (
        "pushover",
        {
            "user": "ALERTIK_PUSHOVER_USER",
            "token": "ALERTIK_PUSHOVER_TOKEN",
            "priority": "ALERTIK_PUSHOVER_PRIORITY",
            "retry": "ALERTIK_PUSHOVER_RETRY",
            "expire": "ALERTIK_PUSHOVER_EXPIRE",
            "sound": "ALERTIK_PUSHOVER_SOUND",
            "api_url": "ALERTIK_PUSHOVER_API_URL",
        },
    ),
    "Matrix": (
        "matrix",
        {
            "homeserver": "ALERTIK_MATRIX_HOMESERVER",
            "room": "ALERTIK_MATRIX_ROOM",
            "access_token": "ALERTIK_MATRIX_ACCESS_TOKEN",
            "msgtype": "ALERTIK_MATRIX_MSGTYPE",
        },
    ),
    "Email": (
        "email",
        {
            "host": "ALERTIK_EMAIL_HOST",
            "port": "ALERTIK_EMAIL_PORT",
            "security": "ALERTIK_EMAIL_SECURITY",
            "user": "ALERTIK_EMAIL_USER",
            "password": "ALERTIK_EMAIL_PASSWORD",
            "from": "ALERTIK_EMAIL_FROM",
            "to": "ALERTIK_EMAIL_TO",
        },
    ),
    "Apprise": ("apprise", {"url": "ALERTIK_APPRISE_URL"}),
}
# Keys given in a variable as numbers, and as comma-separated lists.
_NUMBER_KEYS = frozenset({"priority", "retry", "expire", "port", "message_thread_id"})
_LIST_KEYS = frozenset({"tags", "to"})


def file_variable(variable: str) -> str:
    """The variable naming a file that holds the secret of variable."""
    own = variable if variable.startswith("ALERTIK_") else f"ALERTIK_{variable}"
    return f"{own}_FILE"


def _secret_variables(name: str) -> dict[str, str]:
    """For one notifier name: each secret key's variable."""
    kind, variables = ENVIRONMENT[name]
    cls = KINDS[kind]
    secret_keys = {_encoded(cls, f) for f in cls.SECRETS}
    return {k: v for k, v in variables.items() if k in secret_keys}


# Every variable the environment's destinations read, file variables included.
ENV_VARIABLES = frozenset(
    {v for _, variables in ENVIRONMENT.values() for v in variables.values()}
    | {
        file_variable(v)
        for name in ENVIRONMENT
        for v in _secret_variables(name).values()
    }
)


def _value(env: Mapping[str, str], name: str, key: str, variable: str) -> str | None:
    """A key's text from its variable, or from the file its _FILE variable names."""
    text = env.get(variable, "").strip()
    secret = _secret_variables(name).get(key)
    if secret is None:
        return text or None
    path = env.get(file_variable(variable), "").strip()
    if not path:
        return text or None
    if text:
        raise ConfigError(
            file_variable(variable), f"is set, and so is {variable}; set one of them"
        )
    try:
        return read_secret(path)
    except ValueError as exc:
        raise ConfigError(file_variable(variable), str(exc)) from None


def from_environment(
    env: Mapping[str, str], name: str, insecure: set[str]
) -> Destination:
    """The destination of one notifier name, from its variables."""
    kind, variables = ENVIRONMENT[name]
    cls = KINDS[kind]
    raw: dict[str, Any] = {
        "type": kind,
        "name": name,
        "verify_tls": name not in insecure,
    }
    for key, variable in variables.items():
        text = _value(env, name, key, variable)
        if text is None:
            continue
        if key in _NUMBER_KEYS:
            number = whole_number(text)
            if number is None:
                raise ConfigError(variable, f"{text!r} is not a whole number")
            raw[key] = number
        elif key in _LIST_KEYS:
            raw[key] = split_list(text) if key == "tags" else _addresses(text)
        else:
            raw[key] = text
    if name == "Telegram":
        for key in ("bot_token", "chat_id"):
            if key not in raw:
                raise ConfigError(
                    variables[key],
                    "is not set; Telegram needs both "
                    "TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID",
                )
        raw["api_url"] = str(raw.get("api_url", DEFAULT_TELEGRAM_API_URL)).rstrip("/")
    elif kind in ("slack", "teams", "discord", "generic"):
        if "url" not in raw:
            raise ConfigError(variables["url"], "is not set; set it to the webhook URL")
    else:
        required = [
            variables[_encoded(cls, f.name)]
            for f in msgspec.structs.fields(cls)
            if f.required and f.encode_name in variables
        ]
        for variable in required:
            key = next(k for k, v in variables.items() if v == variable)
            if key not in raw:
                raise ConfigError(
                    variable, f"is not set; {name} needs {', '.join(required)}"
                )
    if name == "Teams" and raw.get("format", "workflows") not in (
        "workflows",
        "legacy",
    ):
        raise ConfigError(
            "TEAMS_WEBHOOK_FORMAT", f"{raw['format']!r} is not one of workflows, legacy"
        )
    try:
        return parse(raw)
    except DestinationError as exc:
        raise ConfigError(variables.get(exc.key, exc.key), exc.problem) from None


def _addresses(text: str) -> tuple[str, ...]:
    """A comma-separated list of e-mail addresses (names may hold spaces)."""
    return tuple(item.strip() for item in text.split(",") if item.strip())


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
