"""Configuration: the environment, read once, into frozen typed Structs.

This is the only module that reads ``os.environ``. Every stage calls ``load()``
and gets the whole ``Config``; each stage then uses its own section. A bad value
raises ``ConfigError`` whose text is one line naming the variable and the fix.

alertik's own variables keep their names (``ENV_EVENTS``, ``EVENTn_*``,
``STATIC_EVENTS_ENABLED``, ``TELEGRAM_BOT_TOKEN``, ``FORWARD_HOST``, ...); every
setting alertik did not have is ``ALERTIK_<WHAT>``.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import tempfile
from collections.abc import Mapping
from typing import Literal

import msgspec

NOTIFIERS = (
    "Telegram",
    "Slack",
    "Teams",
    "Discord",
    "Generic1",
    "Generic2",
    "Generic3",
    "Generic4",
)
MATCH_TYPES = ("substr", "regex")
STAGES = ("ingest", "matcher", "notify", "forwarder")

# alertik's syslog port; RouterOS needs it set explicitly (its default is 514).
DEFAULT_UDP_PORT = 5140
# Rules are cheap (a prefilter runs them all at once); the cap only stops a
# typo such as ENV_EVENTS=1000000 from allocating for nothing.
MAX_EVENTS = 10_000
# Default log budget: the alertik container mounts a 5 MB tmpfs on /log; four
# files of 1 MiB (the live one and three rotated) leave room to spare.
DEFAULT_LOG_MAX_BYTES = 1024 * 1024
DEFAULT_LOG_BACKUPS = 3
# The largest UDP payload; anything RouterOS can send fits.
DEFAULT_MAX_MESSAGE_BYTES = 65535
# alertik's wording: ", at: YYYY-MM-DD HH:MM:SS" in local time.
DEFAULT_TIME_SUFFIX = ", at: %Y-%m-%d %H:%M:%S"
DEFAULT_TELEGRAM_API_URL = "https://api.telegram.org"


class ConfigError(Exception):
    """A configuration value that cannot be used; str() is one line."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


class _Frozen(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base for configuration sections: immutable, keyword-only, no extras."""


class Rule(_Frozen, frozen=True, kw_only=True):
    """One environment event (EVENTn_*) as alertik defines it."""

    index: int
    notifier: str
    match_type: Literal["substr", "regex"]
    match_str: str
    mask: str

    @property
    def name(self) -> str:
        return f"EVENT{self.index}"


class StaticRule(_Frozen, frozen=True, kw_only=True):
    """One enabled static event (STATIC_EVENTn_NOTIFIER)."""

    index: int
    notifier: str

    @property
    def name(self) -> str:
        return f"STATIC_EVENT{self.index}"


class Endpoints(_Frozen, frozen=True, kw_only=True):
    """ZeroMQ endpoints: each stage binds its input and its tap."""

    matcher: str
    notify: str
    forwarder: str
    ingest_tap: str
    matcher_tap: str
    notify_tap: str
    forwarder_tap: str


class Curve(_Frozen, frozen=True, kw_only=True):
    """CURVE keys (Z85 text) for TCP links between hosts; empty means off."""

    secret_key: str = ""
    server_key: str = ""
    allowed_clients: tuple[str, ...] = ()
    # Without an allow-list a CURVE server refuses to start unless this says
    # that any client knowing its public key may connect.
    allow_any: bool = False

    @property
    def enabled(self) -> bool:
        return bool(self.secret_key)


class IngestConfig(_Frozen, frozen=True, kw_only=True):
    bind: str
    udp_port: int
    tcp_port: int | None
    allow_from: tuple[str, ...]
    max_message_bytes: int
    node_name: str
    tcp_max_connections: int
    tcp_idle_seconds: float


class Destination(_Frozen, frozen=True, kw_only=True):
    """Where one notifier delivers; url and token are secrets."""

    notifier: str
    url: str
    kind: Literal["telegram", "slack", "teams", "discord", "generic"]
    chat_id: str = ""
    verify_tls: bool = True
    teams_format: Literal["workflows", "legacy"] = "workflows"


class NotifyConfig(_Frozen, frozen=True, kw_only=True):
    destinations: tuple[Destination, ...]
    outbox_max_count: int
    outbox_max_age_seconds: float
    connect_timeout: float
    read_timeout: float
    retry_max_seconds: float
    digest_after: int
    generic_digest: bool


class ForwarderConfig(_Frozen, frozen=True, kw_only=True):
    host: str
    port: str
    protocol: Literal["udp", "tcp"]
    buffer_messages: int
    resolve_seconds: float


class Config(_Frozen, frozen=True, kw_only=True):
    rules: tuple[Rule, ...]
    static_rules: tuple[StaticRule, ...]
    ingest: IngestConfig
    notify: NotifyConfig
    forwarder: ForwarderConfig | None
    endpoints: Endpoints
    curve: Curve
    run_dir: str
    state_dir: str
    log_file: str | None
    log_max_bytes: int
    log_backups: int
    log_level: str
    time_suffix: str
    drain_seconds: float

    @property
    def stages(self) -> tuple[str, ...]:
        """The stages this configuration runs in one container."""
        names = ["ingest", "matcher", "notify"]
        if self.forwarder is not None:
            names.append("forwarder")
        return tuple(names)


# --- converters: each returns a value or raises ConfigError naming the variable


def _integer(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip(), 10)
    except ValueError:
        raise ConfigError(name, f"{raw!r} is not a whole number") from None
    if not lo <= value <= hi:
        raise ConfigError(name, f"{value} is out of range; use {lo} to {hi}")
    return value


def _number(
    env: Mapping[str, str], name: str, default: float, lo: float, hi: float
) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigError(name, f"{raw!r} is not a number") from None
    if not lo <= value <= hi:
        raise ConfigError(name, f"{value:g} is out of range; use {lo:g} to {hi:g}")
    return value


def _boolean(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    text = raw.strip().lower()
    if text in ("1", "yes", "true", "on"):
        return True
    if text in ("0", "no", "false", "off"):
        return False
    raise ConfigError(name, f"{raw!r} is not a yes/no value; use yes or no")


def _port(env: Mapping[str, str], name: str, default: int | None) -> int | None:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    if raw.strip().lower() in ("off", "no", "none"):
        return None
    return _integer(env, name, 0, 0, 65535)


def _choice(
    env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]
) -> str:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw not in choices:
        raise ConfigError(name, f"{raw!r} is not one of {', '.join(choices)}")
    return raw


def _endpoint(env: Mapping[str, str], name: str, default: str) -> str:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not re.match(r"^(tcp|ipc|inproc)://\S+$", raw):
        raise ConfigError(
            name,
            f"{raw!r} is not a ZeroMQ endpoint; use tcp://HOST:PORT or ipc:///PATH",
        )
    return raw


def _is_z85_key(text: str) -> bool:
    """A CURVE key as Z85 text: 40 characters that decode to 32 bytes."""
    from zmq.utils import z85

    try:
        return len(text) == 40 and len(z85.decode(text.encode("ascii"))) == 32
    except (KeyError, ValueError, UnicodeEncodeError):
        return False


def _list(raw: str) -> tuple[str, ...]:
    return tuple(item for item in re.split(r"[\s,]+", raw.strip()) if item)


def _url(env: Mapping[str, str], name: str) -> str:
    raw = env.get(name)
    if raw is None:
        raise ConfigError(name, "is not set; set it to the webhook URL")
    url = raw.strip()
    if not re.match(r"^https?://[^/\s]+", url):
        # Never echo the value: webhook URLs are credentials.
        raise ConfigError(name, "is not an http:// or https:// URL; check its value")
    return url


# --- events -----------------------------------------------------------------


def _env_event_count(env: Mapping[str, str]) -> int:
    raw = env.get("ENV_EVENTS")
    if raw is None or raw.strip() == "":
        return 0
    return _integer(env, "ENV_EVENTS", 0, 0, MAX_EVENTS)


def _rules(env: Mapping[str, str]) -> tuple[Rule, ...]:
    rules = []
    for i in range(_env_event_count(env)):
        values: dict[str, str] = {}
        for field in ("MATCH_TYPE", "NOTIFIER", "MATCH_STR", "MASK_MSG"):
            name = f"EVENT{i}_{field}"
            if name not in env:
                raise ConfigError(
                    name,
                    f"is not set, but ENV_EVENTS={env['ENV_EVENTS'].strip()} "
                    f"counts events 0 to {_env_event_count(env) - 1}",
                )
            values[field] = env[name]
        if values["MATCH_TYPE"] not in MATCH_TYPES:
            raise ConfigError(
                f"EVENT{i}_MATCH_TYPE",
                f"{values['MATCH_TYPE']!r} is not a match type; use substr or regex",
            )
        if values["NOTIFIER"] not in NOTIFIERS:
            raise ConfigError(
                f"EVENT{i}_NOTIFIER",
                f"{values['NOTIFIER']!r} is not a notifier; use one of "
                + ", ".join(NOTIFIERS),
            )
        rules.append(
            Rule(
                index=i,
                notifier=values["NOTIFIER"],
                match_type=values["MATCH_TYPE"],  # type: ignore[arg-type]
                match_str=values["MATCH_STR"],
                mask=values["MASK_MSG"],
            )
        )
    return tuple(rules)


# Static events that exist; matcher/static.py defines them.
STATIC_EVENT_COUNT = 1


def _static_rules(env: Mapping[str, str]) -> tuple[StaticRule, ...]:
    raw = env.get("STATIC_EVENTS_ENABLED", "")
    if raw.strip() == "":
        return ()
    seen: list[int] = []
    for item in raw.split(","):
        item = item.strip()
        if not item.isdigit():
            raise ConfigError(
                "STATIC_EVENTS_ENABLED",
                f"{item!r} is not an event number; use a comma list such as 0",
            )
        number = int(item)
        if number >= STATIC_EVENT_COUNT:
            raise ConfigError(
                "STATIC_EVENTS_ENABLED",
                f"there is no static event {number}; the events are 0 to "
                f"{STATIC_EVENT_COUNT - 1}",
            )
        if number not in seen:
            seen.append(number)
    rules = []
    for number in seen:
        name = f"STATIC_EVENT{number}_NOTIFIER"
        notifier = env.get(name)
        if notifier is None:
            raise ConfigError(name, "is not set; name the notifier for this event")
        if notifier not in NOTIFIERS:
            raise ConfigError(
                name,
                f"{notifier!r} is not a notifier; use one of " + ", ".join(NOTIFIERS),
            )
        rules.append(StaticRule(index=number, notifier=notifier))
    return tuple(rules)


def _destination(
    env: Mapping[str, str], notifier: str, insecure: set[str]
) -> Destination:
    verify = notifier not in insecure
    if notifier == "Telegram":
        for name in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_CHAT_ID"):
            if not env.get(name, "").strip():
                raise ConfigError(
                    name,
                    "is not set; Telegram needs both "
                    "TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID",
                )
        token = env["TELEGRAM_BOT_TOKEN"].strip()
        if "/" in token or any(c.isspace() for c in token):
            raise ConfigError(
                "TELEGRAM_BOT_TOKEN",
                "is not a bot token; copy it from @BotFather as 123456:ABC...",
            )
        api = env.get("TELEGRAM_API_URL", "").strip() or DEFAULT_TELEGRAM_API_URL
        if not re.match(r"^https?://[^/\s]+", api):
            raise ConfigError("TELEGRAM_API_URL", "is not an http:// or https:// URL")
        return Destination(
            notifier=notifier,
            kind="telegram",
            url=f"{api.rstrip('/')}/bot{token}/sendMessage",
            chat_id=env["TELEGRAM_CHAT_ID"].strip(),
            verify_tls=verify,
        )
    if notifier == "Teams":
        fmt = _choice(env, "TEAMS_WEBHOOK_FORMAT", "workflows", ("workflows", "legacy"))
        return Destination(
            notifier=notifier,
            kind="teams",
            url=_url(env, "TEAMS_WEBHOOK_URL"),
            verify_tls=verify,
            teams_format=fmt,  # type: ignore[arg-type]
        )
    if notifier == "Slack":
        return Destination(
            notifier=notifier,
            kind="slack",
            url=_url(env, "SLACK_WEBHOOK_URL"),
            verify_tls=verify,
        )
    if notifier == "Discord":
        return Destination(
            notifier=notifier,
            kind="discord",
            url=_url(env, "DISCORD_WEBHOOK_URL"),
            verify_tls=verify,
        )
    n = notifier[-1]
    return Destination(
        notifier=notifier,
        kind="generic",
        url=_url(env, f"GENERIC{n}_WEBHOOK_URL"),
        verify_tls=verify,
    )


def _insecure(env: Mapping[str, str]) -> set[str]:
    names = set(_list(env.get("ALERTIK_TLS_INSECURE", "")))
    for name in names:
        if name not in NOTIFIERS:
            raise ConfigError(
                "ALERTIK_TLS_INSECURE",
                f"{name!r} is not a notifier; use names such as Generic1,Teams",
            )
    return names


def destination(notifier: str, environ: Mapping[str, str] | None = None) -> Destination:
    """One notifier's destination, whether or not an event names it."""
    env = os.environ if environ is None else environ
    return _destination(env, notifier, _insecure(env))


def _notify(env: Mapping[str, str], used: list[str]) -> NotifyConfig:
    insecure = _insecure(env)
    return NotifyConfig(
        destinations=tuple(_destination(env, n, insecure) for n in used),
        outbox_max_count=_integer(env, "ALERTIK_OUTBOX_MAX", 100_000, 10, 10_000_000),
        outbox_max_age_seconds=_number(
            env, "ALERTIK_OUTBOX_MAX_AGE", 7 * 86400.0, 60.0, 365 * 86400.0
        ),
        connect_timeout=_number(env, "ALERTIK_HTTP_CONNECT_TIMEOUT", 5.0, 0.1, 120.0),
        read_timeout=_number(env, "ALERTIK_HTTP_READ_TIMEOUT", 15.0, 0.1, 600.0),
        retry_max_seconds=_number(env, "ALERTIK_RETRY_MAX_DELAY", 300.0, 0.05, 3600.0),
        digest_after=_integer(env, "ALERTIK_DIGEST_AFTER", 5, 1, 100_000),
        generic_digest=_boolean(env, "ALERTIK_GENERIC_DIGEST", False),
    )


def _forwarder(env: Mapping[str, str]) -> ForwarderConfig | None:
    host = env.get("FORWARD_HOST")
    port = env.get("FORWARD_PORT")
    if host is None and port is None:
        return None
    if host is None or not host.strip():
        raise ConfigError(
            "FORWARD_HOST", "is not set but FORWARD_PORT is; set both or neither"
        )
    if port is None or not port.strip():
        raise ConfigError(
            "FORWARD_PORT", "is not set but FORWARD_HOST is; set both or neither"
        )
    port = port.strip()
    if port.isdigit():
        if not 1 <= int(port) <= 65535:
            raise ConfigError("FORWARD_PORT", f"{port} is out of range; use 1 to 65535")
    else:
        try:
            socket.getservbyname(port, "udp")
        except OSError:
            raise ConfigError(
                "FORWARD_PORT", f"{port!r} is neither a port number nor a service name"
            ) from None
    return ForwarderConfig(
        host=host.strip().strip("[]"),
        port=port,
        protocol=_choice(env, "FORWARD_PROTOCOL", "udp", ("udp", "tcp")),  # type: ignore[arg-type]
        buffer_messages=_integer(env, "ALERTIK_FORWARD_BUFFER", 10_000, 1, 10_000_000),
        resolve_seconds=_number(
            env, "ALERTIK_FORWARD_RESOLVE_EVERY", 30.0, 0.05, 86400.0
        ),
    )


def _allow_from(env: Mapping[str, str]) -> tuple[str, ...]:
    items = _list(env.get("ALERTIK_ALLOW_FROM", ""))
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ConfigError(
                "ALERTIK_ALLOW_FROM",
                f"{item!r} is not an address or CIDR range; "
                "use e.g. 192.0.2.1,10.0.0.0/8",
            ) from None
    return items


def _default_run_dir(env: Mapping[str, str]) -> str:
    base = env.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return os.path.join(base, f"alertik-{os.getuid()}")


def _default_state_dir(env: Mapping[str, str]) -> str:
    base = env.get("XDG_STATE_HOME") or os.path.join(
        env.get("HOME") or tempfile.gettempdir(), ".local", "state"
    )
    return os.path.join(base, "alertik")


def _default_log_file() -> str | None:
    # As in the alertik container: RouterOS mounts a tmpfs on /log.
    if os.path.isdir("/log") and os.access("/log", os.W_OK):
        return "/log/log.txt"
    return None


# Each Endpoints field: the variable that sets it, and the name of its default
# ipc socket under ALERTIK_RUN_DIR.
ENDPOINT_VARIABLES = {
    "matcher": ("ALERTIK_MATCHER_ADDR", "matcher"),
    "notify": ("ALERTIK_NOTIFY_ADDR", "notify"),
    "forwarder": ("ALERTIK_FORWARDER_ADDR", "forwarder"),
    "ingest_tap": ("ALERTIK_INGEST_TAP", "tap-ingest"),
    "matcher_tap": ("ALERTIK_MATCHER_TAP", "tap-matcher"),
    "notify_tap": ("ALERTIK_NOTIFY_TAP", "tap-notify"),
    "forwarder_tap": ("ALERTIK_FORWARDER_TAP", "tap-forwarder"),
}


def _ipc(run_dir: str, name: str) -> str:
    return f"ipc://{os.path.join(run_dir, name)}"


def load(environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate the whole configuration; raise ConfigError."""
    env = os.environ if environ is None else environ
    rules = _rules(env)
    static_rules = _static_rules(env)
    used: list[str] = []
    for notifier in [r.notifier for r in static_rules] + [r.notifier for r in rules]:
        if notifier not in used:
            used.append(notifier)
    run_dir = env.get("ALERTIK_RUN_DIR", "").strip() or _default_run_dir(env)
    run_dir = os.path.abspath(run_dir)
    state_dir = os.path.abspath(
        env.get("ALERTIK_STATE_DIR", "").strip() or _default_state_dir(env)
    )
    raw_log = env.get("ALERTIK_LOG_FILE")
    if raw_log is None:
        log_file = _default_log_file()
    elif raw_log.strip() in ("", "-"):
        log_file = None
    else:
        log_file = os.path.abspath(raw_log.strip())
    secret = env.get("ALERTIK_CURVE_SECRET_KEY", "").strip()
    curve = Curve(
        secret_key=secret,
        server_key=env.get("ALERTIK_CURVE_SERVER_KEY", "").strip(),
        allowed_clients=_list(env.get("ALERTIK_CURVE_ALLOWED_CLIENTS", "")),
        allow_any=_boolean(env, "ALERTIK_CURVE_ALLOW_ANY", False),
    )
    for name, key in (
        ("ALERTIK_CURVE_SECRET_KEY", curve.secret_key),
        ("ALERTIK_CURVE_SERVER_KEY", curve.server_key),
        *(("ALERTIK_CURVE_ALLOWED_CLIENTS", k) for k in curve.allowed_clients),
    ):
        if key and not _is_z85_key(key):
            raise ConfigError(
                name,
                "is not a Z85 CURVE key (40 characters); make one with alertik keygen",
            )
    if (curve.server_key or curve.allowed_clients) and not curve.secret_key:
        raise ConfigError(
            "ALERTIK_CURVE_SECRET_KEY",
            "is not set but other CURVE keys are; set this stage's secret key",
        )
    level = env.get("ALERTIK_LOG_LEVEL", "INFO").strip().upper() or "INFO"
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(
            "ALERTIK_LOG_LEVEL",
            f"{level!r} is not a level; use DEBUG, INFO, WARNING or ERROR",
        )
    bind = env.get("ALERTIK_BIND", "").strip() or "::"
    try:
        ipaddress.ip_address(bind.strip("[]"))
    except ValueError:
        raise ConfigError(
            "ALERTIK_BIND", f"{bind!r} is not an IP address; use :: or 0.0.0.0"
        ) from None
    return Config(
        rules=rules,
        static_rules=static_rules,
        ingest=IngestConfig(
            bind=bind.strip("[]"),
            udp_port=_integer(env, "ALERTIK_UDP_PORT", DEFAULT_UDP_PORT, 0, 65535),
            tcp_port=_port(env, "ALERTIK_TCP_PORT", None),
            allow_from=_allow_from(env),
            max_message_bytes=_integer(
                env,
                "ALERTIK_MAX_MESSAGE_BYTES",
                DEFAULT_MAX_MESSAGE_BYTES,
                64,
                16 * 1024 * 1024,
            ),
            node_name=env.get("ALERTIK_NODE_NAME", "").strip() or socket.gethostname(),
            tcp_max_connections=_integer(
                env, "ALERTIK_TCP_MAX_CONNECTIONS", 1024, 1, 100_000
            ),
            tcp_idle_seconds=_number(
                env, "ALERTIK_TCP_IDLE_TIMEOUT", 600.0, 1.0, 7 * 86400.0
            ),
        ),
        notify=_notify(env, used),
        forwarder=_forwarder(env),
        endpoints=Endpoints(
            **{
                name: _endpoint(env, variable, _ipc(run_dir, file))
                for name, (variable, file) in ENDPOINT_VARIABLES.items()
            }
        ),
        curve=curve,
        run_dir=run_dir,
        state_dir=state_dir,
        log_file=log_file,
        log_max_bytes=_integer(
            env, "ALERTIK_LOG_MAX_BYTES", DEFAULT_LOG_MAX_BYTES, 0, 1 << 40
        ),
        log_backups=_integer(env, "ALERTIK_LOG_BACKUPS", DEFAULT_LOG_BACKUPS, 0, 100),
        log_level=level,
        time_suffix=env.get("ALERTIK_TIME_SUFFIX", DEFAULT_TIME_SUFFIX),
        drain_seconds=_number(env, "ALERTIK_DRAIN_SECONDS", 3.0, 0.0, 8.0),
    )


def is_own_variable(name: str) -> bool:
    """Whether alertik reads the environment variable name (tests and benches
    start alertik without inheriting any of them)."""
    return (
        name.startswith(("EVENT", "STATIC_EVENT", "ALERTIK_", "FORWARD_", "TELEGRAM_"))
        or name.endswith("_WEBHOOK_URL")
        or name in ("ENV_EVENTS", "TEAMS_WEBHOOK_FORMAT")
    )


def redacted(cfg: Config) -> dict[str, object]:
    """The effective configuration as plain data, with every secret hidden."""
    data = msgspec.to_builtins(cfg)
    notify = data["notify"]
    for dest in notify["destinations"]:
        dest["url"] = redact_url(dest["url"])
    curve = data["curve"]
    if curve["secret_key"]:
        curve["secret_key"] = "<set>"
    return data  # type: ignore[no-any-return]


def redact_url(url: str) -> str:
    """Keep scheme and host of a URL, hide the path (webhook URLs are secrets)."""
    m = re.match(r"^(https?://[^/\s?#]+)", url)
    host = m.group(1) if m else "<url>"
    # A user:password@ part is a secret too.
    host = re.sub(r"//[^@/]*@", "//", host)
    return f"{host}/<redacted>"
