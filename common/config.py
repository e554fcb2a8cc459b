"""Configuration: the environment, read once, into frozen typed Structs.

The ``common/`` config modules are the only code that reads ``os.environ``:
this one (the ``Config`` structs, ``load()``), ``destinations.py`` (the
notifier destinations),
``settings.py`` (the table of settings alertik added: name, converter,
default, help), ``converters.py`` (text to value) and ``events.py`` (the
``EVENTn_*`` and ``STATIC_EVENTn_*`` rules). Every stage calls ``load()`` and
gets the whole ``Config``; each stage then uses its own section. A bad value
raises ``ConfigError`` whose text is one line naming the variable and the fix;
``warnings()`` lists what starts but was probably not meant.

alertik's own variables keep their names (``ENV_EVENTS``, ``EVENTn_*``,
``STATIC_EVENTS_ENABLED``, ``TELEGRAM_BOT_TOKEN``, ``FORWARD_HOST``, ...); every
setting alertik did not have is ``ALERTIK_<WHAT>``.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Mapping
from typing import Any, Literal

import msgspec

from alertik.common import events, rulesfile, settings
from alertik.common.converters import (
    ConfigError,
    ConfigWarning,
    Frozen as _Frozen,
    check_utf8,
)
from alertik.common.destinations import (
    Destination,
    DestinationError,
    check_references,
    destination,
    environment_destinations,
)
from alertik.common.events import (
    MATCH_TYPES,
    MAX_EVENTS,
    NOTIFIERS,
    STATIC_EVENT_COUNT,
    Rule,
    StaticRule,
)
from alertik.common.rulesfile import RulesFile
from alertik.common.settings import DEFAULT_TIME_SUFFIX, PIPELINE, STAGES

__all__ = [
    "DEFAULT_TIME_SUFFIX",
    "ENDPOINT_VARIABLES",
    "MATCH_TYPES",
    "MAX_EVENTS",
    "NOTIFIERS",
    "PIPELINE",
    "STAGES",
    "STATIC_EVENT_COUNT",
    "Config",
    "ConfigError",
    "ConfigWarning",
    "Curve",
    "Destination",
    "Endpoints",
    "ForwarderConfig",
    "IngestConfig",
    "NotifyConfig",
    "Rule",
    "RulesFile",
    "StaticRule",
    "WebConfig",
    "is_own_variable",
    "load",
    "redacted",
    "reload_rules",
    "warnings",
]


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
    tcp_max_per_source: int = 32
    tls_port: int | None = None
    tls_cert: str = ""
    tls_key: str = ""  # empty: the key is in tls_cert
    tls_client_ca: str = ""  # empty: no client certificate asked for
    # Set by `alertik run` for the stages it starts: the Unix socket where it
    # hands over the UDP socket it holds (empty: ingest binds its own).
    listen_socket: str = ""


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


class WebConfig(_Frozen, frozen=True, kw_only=True):
    metrics_addr: tuple[str, int] | None = None
    web_addr: tuple[str, int] | None = None
    password: str = ""  # never logged, never shown

    @property
    def enabled(self) -> bool:
        return self.metrics_addr is not None or self.web_addr is not None


class Config(_Frozen, frozen=True, kw_only=True):
    rules: tuple[Rule, ...]
    static_rules: tuple[StaticRule, ...]
    rules_path: str  # ALERTIK_RULES_FILE; "" for none
    rules_file: RulesFile | None  # what it held when read
    ingest: IngestConfig
    notify: NotifyConfig
    forwarder: ForwarderConfig | None
    endpoints: Endpoints
    curve: Curve
    web: WebConfig = WebConfig()
    run_dir: str
    state_dir: str
    log_file: str | None
    log_max_bytes: int
    log_backups: int
    log_level: str
    time_suffix: str
    drain_seconds: float
    spool_max_count: int
    rule_keys_max: int
    # Set by `alertik run` for what it starts: its keeper's pid. A stage whose
    # parent becomes the keeper has lost its supervisord and stops.
    keeper_pid: int = 0
    silence_after: float | None = None
    silence_notify: tuple[str, ...] = ()

    @property
    def stages(self) -> tuple[str, ...]:
        """The stages this configuration runs in one container."""
        names = ["ingest", "matcher", "notify"]
        if self.forwarder is not None:
            names.append("forwarder")
        if self.web.enabled:
            names.append("web")
        return tuple(names)


def _notify(
    env: Mapping[str, str],
    used: list[str],
    values: dict[str, Any],
    file: RulesFile | None,
) -> NotifyConfig:
    destinations = list(environment_destinations(env, used))
    if file is not None:
        destinations += file.destinations
        for notifier in file.notifiers:
            if notifier not in used:
                destinations.append(_file_notifier(env, file, notifier))
        # An action may report to a notifier set by environment that no rule
        # names (its variables must then be set).
        for dest in file.destinations:
            report = getattr(dest, "report", "")
            if report in NOTIFIERS and all(d.name != report for d in destinations):
                destinations.append(destination(report, env))
    try:
        check_references(destinations)
    except DestinationError as exc:
        raise ConfigError(
            "ALERTIK_RULES_FILE", f"{file.path if file else ''}: {exc}"
        ) from None
    return NotifyConfig(destinations=tuple(destinations), **values)


def _file_notifier(
    env: Mapping[str, str], file: RulesFile, notifier: str
) -> Destination:
    """The destination of an environment notifier that only file rules use."""
    try:
        return destination(notifier, env)
    except ConfigError as exc:
        rule = next(r for r in file.rules if notifier in r.notify)
        raise ConfigError(
            exc.variable,
            f"{exc.problem} ({file.where(rule, 'notify')} sends to {notifier})",
        ) from None


def reload_rules(cfg: Config, environ: Mapping[str, str] | None = None) -> Config:
    """cfg with the rules file read again (and the destinations it needs).

    The environment of a running process does not change: only the file
    can. Raises ConfigError, naming the file and line, when it is unusable.
    """
    if not cfg.rules_path:
        return cfg
    env = os.environ if environ is None else environ
    file = rulesfile.read(cfg.rules_path)
    used: list[str] = []
    for notifier in [r.notifier for r in cfg.static_rules] + [
        r.notifier for r in cfg.rules
    ]:
        if notifier not in used:
            used.append(notifier)
    values = {
        name: getattr(cfg.notify, name)
        for name in cfg.notify.__struct_fields__
        if name != "destinations"
    }
    return msgspec.structs.replace(
        cfg, rules_file=file, notify=_notify(env, used, values, file)
    )


# --- the rest of the configuration ----------------------------------------------


def _forwarder(
    env: Mapping[str, str], values: dict[str, Any]
) -> ForwarderConfig | None:
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
    host = host.strip().strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        try:
            # What getaddrinfo() will do with the name on every look-up.
            host.encode("idna")
        except UnicodeError as exc:
            raise ConfigError(
                "FORWARD_HOST", f"{host!r} is not a host name or address ({exc})"
            ) from None
    port = port.strip()
    # ASCII digits only: '²' and '٣' are digits to str.isdigit().
    if re.fullmatch(r"[0-9]+", port):
        if not 1 <= int(port) <= 65535:
            raise ConfigError("FORWARD_PORT", f"{port} is out of range; use 1 to 65535")
    else:
        try:
            socket.getservbyname(port, "udp")
        except OSError:
            raise ConfigError(
                "FORWARD_PORT", f"{port!r} is neither a port number nor a service name"
            ) from None
    return ForwarderConfig(host=host, port=port, **values)


# Each Endpoints field: the variable that sets it, and the name of its default
# ipc socket under ALERTIK_RUN_DIR.
ENDPOINT_VARIABLES = {
    s.field.removeprefix("endpoints."): (s.name, s.compute.file)
    for s in settings.TABLE
    if isinstance(s.compute, settings.UnderRunDir)
}


def _section(values: dict[str, Any], name: str) -> dict[str, Any]:
    """The values of one Config section, by field name."""
    prefix = name + "."
    return {k[len(prefix) :]: v for k, v in values.items() if k.startswith(prefix)}


def _check_text(env: Mapping[str, str]) -> None:
    """Refuse bytes that are not UTF-8 in the variables read outside the table
    (the table's own are checked as they are read; see settings.py)."""
    for name in sorted(env):
        if (
            not is_own_variable(name)
            or name.startswith(("EVENT", "STATIC_EVENT"))  # see events.py
            or (name.startswith("ALERTIK_") and name not in settings.BY_NAME)
        ):
            continue
        check_utf8(name, env[name])


# Not a setting: `alertik run` sets it for the stages it starts.
LISTEN_SOCKET_VARIABLE = "ALERTIK_LISTEN_SOCKET"
KEEPER_PID_VARIABLE = "ALERTIK_KEEPER_PID"


def load(environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate the whole configuration; raise ConfigError."""
    env = os.environ if environ is None else environ
    _check_text(env)
    rules = events.rules(env)
    static_rules = events.static_rules(env)
    values = settings.read(env)
    path = values["rules_path"]
    file = rulesfile.read(path) if path else None
    used: list[str] = []
    for notifier in [r.notifier for r in static_rules] + [r.notifier for r in rules]:
        if notifier not in used:
            used.append(notifier)
    _check_silence(values, file)
    named = {d.name for d in file.destinations} if file is not None else set()
    for notifier in values["silence_notify"]:
        if notifier not in used and notifier not in named:
            used.append(notifier)
    curve = Curve(**_section(values, "curve"))
    if (curve.server_key or curve.allowed_clients) and not curve.secret_key:
        raise ConfigError(
            "ALERTIK_CURVE_SECRET_KEY",
            "is not set but other CURVE keys are; set this stage's secret key",
        )
    ingest = IngestConfig(
        **_section(values, "ingest"),
        listen_socket=env.get(LISTEN_SOCKET_VARIABLE, ""),
    )
    _check_tls(ingest)
    web = WebConfig(**_section(values, "web"))
    _check_web(web)
    return Config(
        rules=rules,
        static_rules=static_rules,
        rules_file=file,
        ingest=ingest,
        notify=_notify(env, used, _section(values, "notify"), file),
        forwarder=_forwarder(env, _section(values, "forwarder")),
        endpoints=Endpoints(**_section(values, "endpoints")),
        curve=curve,
        keeper_pid=_keeper_pid(env),
        web=web,
        **{k: v for k, v in values.items() if "." not in k},
    )


def _keeper_pid(env: Mapping[str, str]) -> int:
    text = env.get(KEEPER_PID_VARIABLE, "")
    return int(text) if text.isascii() and text.isdigit() else 0


def _check_silence(values: dict[str, Any], file: RulesFile | None) -> None:
    """Silence alerts need somewhere to go: notifiers, or the rules file's
    named destinations."""
    names = values["silence_notify"]
    named = [d.name for d in file.destinations] if file is not None else []
    if values["silence_after"] is not None and not names:
        raise ConfigError(
            "ALERTIK_SILENCE_NOTIFY",
            "is not set but ALERTIK_SILENCE_AFTER is; name where silence alerts "
            "go, e.g. Telegram",
        )
    for router in file.routers if file is not None else ():
        if router.silence_after and router.silence_notify is None and not names:
            raise ConfigError(
                "ALERTIK_SILENCE_NOTIFY",
                f"is not set, and {file.path if file else ''} gives router "
                f"{router.address} a silence_after but no silence_notify; set one "
                "of them",
            )
    for name in names:
        if name not in NOTIFIERS and name not in named:
            raise ConfigError(
                "ALERTIK_SILENCE_NOTIFY",
                f"{name!r} is not a notifier or a destination of the rules file; "
                f"use one of {', '.join([*named, *NOTIFIERS])}",
            )


def _check_web(web: WebConfig) -> None:
    """The page and the metrics show router addresses and alert texts: away
    from loopback they need a password."""
    if web.password:
        return
    for variable, addr in (
        ("ALERTIK_WEB_ADDR", web.web_addr),
        ("ALERTIK_METRICS_ADDR", web.metrics_addr),
    ):
        if addr is not None and not ipaddress.ip_address(addr[0]).is_loopback:
            raise ConfigError(
                "ALERTIK_WEB_PASSWORD",
                f"is not set but {variable} is not a loopback address; set a "
                "password, or bind to 127.0.0.1",
            )


def _check_tls(ingest: IngestConfig) -> None:
    """With a TLS port, its certificate and key must be usable (as ingest
    will load them); ConfigError naming the variable otherwise."""
    if ingest.tls_port is None:
        return
    # Only here: ssl and hashlib cost every stage 5 MiB that has no TLS port.
    from alertik.common import tls

    if not ingest.tls_cert:
        raise ConfigError(
            tls.CERT,
            "is not set but ALERTIK_TLS_PORT is; make a certificate and key "
            "with `alertik cert`",
        )
    tls.server_context(ingest.tls_cert, ingest.tls_key, ingest.tls_client_ca)


# common/tls.py's CERT, KEY and CLIENT_CA, named here without importing ssl.
_TLS_FILES = ("ALERTIK_TLS_CERT", "ALERTIK_TLS_KEY", "ALERTIK_TLS_CLIENT_CA")


def _tls_warnings(env: Mapping[str, str]) -> list[ConfigWarning]:
    """TLS files given for a listener that is off."""
    port = env.get("ALERTIK_TLS_PORT", "").strip().lower()
    if port not in ("", "off", "no", "none"):
        return []
    return [
        ConfigWarning(
            variable=name,
            problem="is set but ALERTIK_TLS_PORT is off: there is no TLS listener",
        )
        for name in _TLS_FILES
        if env.get(name, "").strip()
    ]


def warnings(environ: Mapping[str, str] | None = None) -> list[ConfigWarning]:
    """What load() accepts but was probably not meant: unknown ALERTIK_* names,
    event variables that ENV_EVENTS leaves out, empty match strings, TLS files
    without a TLS port."""
    env = os.environ if environ is None else environ
    return [*settings.unknown_names(env), *events.warnings(env), *_tls_warnings(env)]


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
    data["notify"]["destinations"] = [d.redacted() for d in cfg.notify.destinations]
    if cfg.rules_file is not None:
        # Listed with notify's, secrets hidden there.
        data["rules_file"]["destinations"] = [
            d.name for d in cfg.rules_file.destinations
        ]
    if data["web"]["password"]:
        data["web"]["password"] = "<set>"
    curve = data["curve"]
    if curve["secret_key"]:
        curve["secret_key"] = "<set>"
    return data  # type: ignore[no-any-return]
