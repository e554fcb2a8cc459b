"""The settings alertik added (``ALERTIK_*`` and a few more), as one table.

Each row names a variable, the converter that turns its text into a value
(with the bounds), the default, the help text and the ``Config`` field it
fills. ``config.load()`` reads the environment through the table, ``alertik
check`` warns about ``ALERTIK_*`` names that are not in it, and README.md's
"New settings" table is generated from it, so each default and bound is
written once, here::

    python -m alertik.common.settings --markdown         # print the table
    python -m alertik.common.settings --write README.md  # update README.md

Before a converter sees a value, bytes that are not UTF-8 (os.environ shows
them as surrogate escapes) are refused: every stage sends its text as UTF-8
and would crash on them later.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from alertik.common import paths
from alertik.common.converters import (
    Address,
    Boolean,
    Choice,
    ConfigError,
    ConfigWarning,
    Converter,
    CurveKey,
    CurveKeys,
    Directory,
    Duration,
    Elsewhere,
    Endpoint,
    File,
    Frozen,
    HostPort,
    Integer,
    Invalid,
    LogFile,
    Names,
    Networks,
    Number,
    Port,
    Text,
    TimeFormat,
    check_utf8,
)
from alertik.common.destinations import ENV_VARIABLES as DESTINATION_VARIABLES

STAGES = ("ingest", "matcher", "notify", "forwarder", "web")
# The stages of the pipeline proper, each with a tap (the web stage watches).
PIPELINE = ("ingest", "matcher", "notify", "forwarder")

# alertik's wording: ", at: YYYY-MM-DD HH:MM:SS" in local time.
DEFAULT_TIME_SUFFIX = ", at: %Y-%m-%d %H:%M:%S"


# --- defaults worked out from the environment (as text, converted as a value)

Compute = Callable[[Mapping[str, str], Mapping[str, Any]], str]


def _tempdir() -> str:
    # tempfile (with shutil, bz2, lzma and random) only when a default needs it.
    import tempfile

    return tempfile.gettempdir()


def _default_run_dir(env: Mapping[str, str], values: Mapping[str, Any]) -> str:
    return paths.default_run_dir(env)


def _default_state_dir(env: Mapping[str, str], values: Mapping[str, Any]) -> str:
    base = env.get("XDG_STATE_HOME") or os.path.join(
        env.get("HOME") or _tempdir(), ".local", "state"
    )
    return os.path.join(base, "alertik")


def _default_log_file(env: Mapping[str, str], values: Mapping[str, Any]) -> str:
    # As in the alertik container: RouterOS mounts a tmpfs on /log.
    if os.path.isdir("/log") and os.access("/log", os.W_OK):
        return "/log/log.txt"
    return "-"


def _host_name(env: Mapping[str, str], values: Mapping[str, Any]) -> str:
    return socket.gethostname()


class UnderRunDir(Frozen, frozen=True, kw_only=True):
    """The default endpoint: an ipc socket of this name in the run directory."""

    file: str

    def __call__(self, env: Mapping[str, str], values: Mapping[str, Any]) -> str:
        return f"ipc://{os.path.join(values['run_dir'], self.file)}"


class Setting(Frozen, frozen=True, kw_only=True):
    """One variable: how to read it, its default, and what it means."""

    name: str
    convert: Converter
    help: str
    field: str = ""  # the Config field it fills ("ingest.udp_port"); "": elsewhere
    default: str = ""  # text used when unset or blank, converted like a value
    compute: Compute | None = None  # a default worked out from the environment
    shown: str = ""  # the README's default, when `default` as is would not do
    blank_is_default: bool = True  # False: an empty value means something

    def read(self, env: Mapping[str, str], values: Mapping[str, Any]) -> Any:
        """This setting's value in env; values holds the fields read before it."""
        text = env.get(self.name)
        if text is None or (self.blank_is_default and not text.strip()):
            text = self.compute(env, values) if self.compute else self.default
        check_utf8(self.name, text)
        try:
            return self.convert(text)
        except Invalid as exc:
            raise ConfigError(self.name, str(exc)) from None


def _endpoint(name: str, field: str, file: str, help: str) -> Setting:
    return Setting(
        name=name,
        convert=Endpoint(),
        field=f"endpoints.{field}",
        compute=UnderRunDir(file=file),
        shown="ipc under the run dir",
        help=help,
    )


_ONE_DAY = 86400.0

TABLE: tuple[Setting, ...] = (
    # alertik's syslog port; RouterOS needs it set explicitly (its default is 514).
    Setting(
        name="ALERTIK_UDP_PORT",
        convert=Integer(lo=0, hi=65535),
        default="5140",
        field="ingest.udp_port",
        help="UDP port to listen on",
    ),
    Setting(
        name="ALERTIK_TCP_PORT",
        convert=Port(),
        default="off",
        field="ingest.tcp_port",
        help="TCP port to listen on",
    ),
    Setting(
        name="ALERTIK_BIND",
        convert=Address(),
        default="::",
        field="ingest.bind",
        help="address to listen on; `::` takes IPv4 and IPv6 (IPv4 only where "
        "the host has no IPv6)",
    ),
    Setting(
        name="ALERTIK_ALLOW_FROM",
        convert=Networks(),
        field="ingest.allow_from",
        shown="everyone",
        help="addresses and CIDR ranges allowed to send",
    ),
    # The largest UDP payload: anything RouterOS can send fits.
    Setting(
        name="ALERTIK_MAX_MESSAGE_BYTES",
        convert=Integer(lo=64, hi=16 << 20),
        default="65535",
        field="ingest.max_message_bytes",
        help="longer messages are cut at a UTF-8 boundary and flagged",
    ),
    Setting(
        name="ALERTIK_TCP_MAX_CONNECTIONS",
        convert=Integer(lo=1, hi=100_000),
        default="1024",
        field="ingest.tcp_max_connections",
        help="TCP connections at once; at the cap a new one replaces the idlest "
        "of the sender holding the most",
    ),
    # RouterOS opens one connection per server; 32 leaves room for routers
    # behind one NAT address, and keeps one attacker to 32.
    Setting(
        name="ALERTIK_TCP_MAX_PER_SOURCE",
        convert=Integer(lo=1, hi=100_000),
        default="32",
        field="ingest.tcp_max_per_source",
        help="TCP connections from one address (IPv6: one /64); past it a new "
        "one replaces that sender's idlest",
    ),
    Setting(
        name="ALERTIK_TCP_IDLE_TIMEOUT",
        convert=Number(lo=1, hi=7 * _ONE_DAY),
        default="600",
        field="ingest.tcp_idle_seconds",
        help="seconds without a complete message before a TCP connection is closed",
    ),
    Setting(
        name="ALERTIK_TLS_PORT",
        convert=Port(),
        default="off",
        field="ingest.tls_port",
        help="TLS port to listen on (syslog over TLS; 6514 is its usual port); "
        "needs `ALERTIK_TLS_CERT`",
    ),
    Setting(
        name="ALERTIK_TLS_CERT",
        convert=File(),
        field="ingest.tls_cert",
        shown="none",
        help="the TLS listener's certificate (PEM, chain included); `alertik "
        "cert` makes one; read again on SIGHUP",
    ),
    Setting(
        name="ALERTIK_TLS_KEY",
        convert=File(),
        field="ingest.tls_key",
        shown="in `ALERTIK_TLS_CERT`",
        help="its private key (PEM, no passphrase); read again on SIGHUP",
    ),
    Setting(
        name="ALERTIK_TLS_CLIENT_CA",
        convert=File(),
        field="ingest.tls_client_ca",
        shown="off",
        help="CA certificates (PEM): TLS clients must then present a "
        "certificate they issued; RouterOS cannot, so this is for relays",
    ),
    Setting(
        name="ALERTIK_LOG_FILE",
        convert=LogFile(),
        field="log_file",
        compute=_default_log_file,
        blank_is_default=False,
        shown="`/log/log.txt` if `/log` is writable, else none",
        help="the log archive: every message received, one line each, control "
        "characters shown as escapes (`\\x1b`); a file deleted or rotated away "
        "is replaced at once; empty or `-` for stderr",
    ),
    # The alertik container mounts a 5 MB tmpfs on /log: four files of 1 MiB
    # (the live one and three rotated) leave room to spare.
    Setting(
        name="ALERTIK_LOG_MAX_BYTES",
        convert=Integer(lo=0, hi=1 << 40),
        default="1048576",
        field="log_max_bytes",
        help="rotate the archive at this size (0: never)",
    ),
    Setting(
        name="ALERTIK_LOG_BACKUPS",
        convert=Integer(lo=0, hi=100),
        default="3",
        field="log_backups",
        help="rotated files kept (the defaults fit "
        "alertik's 5 MB tmpfs); `0` starts the file afresh at the size limit",
    ),
    Setting(
        name="ALERTIK_LOG_LEVEL",
        convert=Choice(choices=("DEBUG", "INFO", "WARNING", "ERROR"), upper=True),
        default="INFO",
        field="log_level",
        help="level of the stages' own messages",
    ),
    Setting(
        name="ALERTIK_TIME_SUFFIX",
        convert=TimeFormat(),
        default=DEFAULT_TIME_SUFFIX,
        field="time_suffix",
        blank_is_default=False,
        help="added to every notification; empty drops it",
    ),
    Setting(
        name="ALERTIK_NODE_NAME",
        convert=Text(),
        compute=_host_name,
        field="ingest.node_name",
        shown="the host name",
        help="this ingest node's name, for `@{node}`",
    ),
    Setting(
        name="ALERTIK_RUN_DIR",
        convert=Directory(sockets=True),
        compute=_default_run_dir,
        field="run_dir",
        shown="`$XDG_RUNTIME_DIR/alertik-UID`, else `/run/alertik` for root, "
        "else `/tmp/alertik-UID`",
        help="sockets and pid file; created mode 700, refused if another user "
        "owns it or may write it; give two instances different ones",
    ),
    Setting(
        name="ALERTIK_STATE_DIR",
        convert=Directory(),
        compute=_default_state_dir,
        field="state_dir",
        shown="`$XDG_STATE_HOME/alertik`, else `~/.local/state/alertik`",
        help="notify's outbox",
    ),
    Setting(
        name="ALERTIK_RULES_FILE",
        convert=File(),
        field="rules_path",
        shown="none",
        help="the rules file (TOML, see docs/RULES.md), beside the `EVENTn_*` "
        "rules; re-read when it changes and on SIGHUP",
    ),
    # Each key costs about 300 bytes: 10,000 keys are about 3 MB.
    Setting(
        name="ALERTIK_RULE_KEYS_MAX",
        convert=Integer(lo=100, hi=10_000_000),
        default="10000",
        field="rule_keys_max",
        help="threshold and cooldown counters kept, all rules together; past "
        "that the least recently hit one goes (counted; a held count is "
        "summarised first)",
    ),
    # Within supervisord's stopwaitsecs (10) with the sockets' 2 s linger
    # (lifecycle.STOP_BUDGET_SECONDS).
    Setting(
        name="ALERTIK_DRAIN_SECONDS",
        convert=Number(lo=0, hi=8),
        default="3",
        field="drain_seconds",
        help="on stop, how long a stage keeps handling what is already queued",
    ),
    # 100,000 alerts of ~500 bytes: ~50 MB of disk at most, hours of a flood.
    Setting(
        name="ALERTIK_SPOOL_MAX",
        convert=Integer(lo=100, hi=10_000_000),
        default="100000",
        field="spool_max_count",
        help="alerts the matcher keeps (on disk) while notify cannot take them; "
        "past that the oldest are dropped, loudly",
    ),
    # The notifier destinations (common/config.py) read these three.
    Setting(
        name="TELEGRAM_API_URL",
        convert=Elsewhere(values="an http(s) URL"),
        default="https://api.telegram.org",
        help="Bot API server",
    ),
    Setting(
        name="TEAMS_WEBHOOK_FORMAT",
        convert=Elsewhere(values="`workflows` or `legacy`"),
        default="workflows",
        help='Teams payload: an Adaptive Card, or `{"text": ...}` (`legacy`)',
    ),
    Setting(
        name="ALERTIK_TLS_INSECURE",
        convert=Elsewhere(values="notifier names, comma-separated"),
        shown="none",
        help="notifiers whose TLS certificate is not checked, e.g. `Generic1`",
    ),
    Setting(
        name="ALERTIK_HTTP_CONNECT_TIMEOUT",
        convert=Number(lo=0.1, hi=120),
        default="5",
        field="notify.connect_timeout",
        help="seconds to connect to a notification service",
    ),
    Setting(
        name="ALERTIK_HTTP_READ_TIMEOUT",
        convert=Number(lo=0.1, hi=600),
        default="15",
        field="notify.read_timeout",
        help="seconds to wait for a notification service's answer",
    ),
    Setting(
        name="ALERTIK_RETRY_MAX_DELAY",
        convert=Number(lo=0.05, hi=3600),
        default="300",
        field="notify.retry_max_seconds",
        help="longest wait between retries, seconds",
    ),
    Setting(
        name="ALERTIK_OUTBOX_MAX",
        convert=Integer(lo=10, hi=10_000_000),
        default="100000",
        field="notify.outbox_max_count",
        help="alerts the outbox holds; the oldest go first, loudly",
    ),
    Setting(
        name="ALERTIK_OUTBOX_MAX_AGE",
        convert=Number(lo=60, hi=365 * _ONE_DAY),
        default="604800",
        field="notify.outbox_max_age_seconds",
        help="seconds an alert may wait in the outbox; older ones go, loudly",
    ),
    Setting(
        name="ALERTIK_DIGEST_AFTER",
        convert=Integer(lo=1, hi=100_000),
        default="5",
        field="notify.digest_after",
        help="a chat destination with more alerts waiting gets digests",
    ),
    Setting(
        name="ALERTIK_GENERIC_DIGEST",
        convert=Boolean(),
        default="no",
        field="notify.generic_digest",
        help="digests for generic webhooks too",
    ),
    Setting(
        name="FORWARD_PROTOCOL",
        convert=Choice(choices=("udp", "tcp")),
        default="udp",
        field="forwarder.protocol",
        help="how to forward to `FORWARD_HOST`",
    ),
    Setting(
        name="ALERTIK_FORWARD_BUFFER",
        convert=Integer(lo=1, hi=10_000_000),
        default="10000",
        field="forwarder.buffer_messages",
        help="messages held for a TCP forward target that is away",
    ),
    Setting(
        name="ALERTIK_FORWARD_RESOLVE_EVERY",
        convert=Number(lo=0.05, hi=_ONE_DAY),
        default="30",
        field="forwarder.resolve_seconds",
        help="seconds between look-ups of `FORWARD_HOST`",
    ),
    _endpoint("ALERTIK_MATCHER_ADDR", "matcher", "matcher", "the matcher's input"),
    _endpoint("ALERTIK_NOTIFY_ADDR", "notify", "notify", "notify's input"),
    _endpoint(
        "ALERTIK_FORWARDER_ADDR", "forwarder", "forwarder", "the forwarder's input"
    ),
    _endpoint(
        "ALERTIK_INGEST_TAP",
        "ingest_tap",
        "tap-ingest",
        "where ingest publishes what it emits",
    ),
    _endpoint(
        "ALERTIK_MATCHER_TAP",
        "matcher_tap",
        "tap-matcher",
        "where the matcher publishes what it emits",
    ),
    _endpoint(
        "ALERTIK_NOTIFY_TAP",
        "notify_tap",
        "tap-notify",
        "where notify publishes what it emits",
    ),
    _endpoint(
        "ALERTIK_FORWARDER_TAP",
        "forwarder_tap",
        "tap-forwarder",
        "where the forwarder publishes what it emits",
    ),
    Setting(
        name="ALERTIK_SILENCE_AFTER",
        convert=Duration(lo=1, hi=30 * _ONE_DAY),
        default="off",
        field="silence_after",
        help="alert once when a router that was sending says nothing for this "
        "long (and once when it is back), and when no router at all does",
    ),
    Setting(
        name="ALERTIK_SILENCE_NOTIFY",
        convert=Names(values="notifier names, comma-separated"),
        field="silence_notify",
        shown="none",
        help="where silence alerts go, e.g. `Telegram,Generic1`; needed with "
        "`ALERTIK_SILENCE_AFTER`",
    ),
    Setting(
        name="ALERTIK_METRICS_ADDR",
        convert=HostPort(),
        default="off",
        field="web.metrics_addr",
        help="serve Prometheus metrics of every stage on this host at "
        "`/metrics` here, e.g. `127.0.0.1:9140` (starts the web stage)",
    ),
    Setting(
        name="ALERTIK_WEB_ADDR",
        convert=HostPort(),
        default="off",
        field="web.web_addr",
        help="serve the status page and the rule workbench here, e.g. "
        "`127.0.0.1:9141` (starts the web stage)",
    ),
    Setting(
        name="ALERTIK_WEB_PASSWORD",
        convert=Text(),
        field="web.password",
        shown="none",
        help="asked for by the page and `/metrics` (HTTP basic auth, any user "
        "name, or `Authorization: Bearer`); required when either address is "
        "not loopback",
    ),
    Setting(
        name="ALERTIK_CURVE_SECRET_KEY",
        convert=CurveKey(),
        field="curve.secret_key",
        shown="off",
        help="this host's secret key: encryption between hosts",
    ),
    Setting(
        name="ALERTIK_CURVE_SERVER_KEY",
        convert=CurveKey(),
        field="curve.server_key",
        shown="off",
        help="the public key of the host this one connects to",
    ),
    Setting(
        name="ALERTIK_CURVE_ALLOWED_CLIENTS",
        convert=CurveKeys(),
        field="curve.allowed_clients",
        shown="none",
        help="public keys allowed to connect",
    ),
    Setting(
        name="ALERTIK_CURVE_ALLOW_ANY",
        convert=Boolean(),
        default="no",
        field="curve.allow_any",
        help="without allowed clients, let in any client that knows this "
        "host's public key (a CURVE server refuses to start otherwise)",
    ),
)
BY_NAME = {s.name: s for s in TABLE}

# alertik's own, though not settings: `alertik run` sets these for
# supervisord.conf, its keeper and the stages, and `alertik keygen` prints the
# public key for the peers.
NOT_SETTINGS = frozenset(
    {"ALERTIK_PYTHON", "ALERTIK_CURVE_PUBLIC_KEY", "ALERTIK_LISTEN_SOCKET"}
    | {"ALERTIK_KEEPER_UDP_FD", "ALERTIK_KEEPER_PID"}
    | {f"ALERTIK_START_{stage.upper()}" for stage in STAGES}
)


def read(env: Mapping[str, str]) -> dict[str, Any]:
    """Every table setting that fills a Config field: {field: value}."""
    values: dict[str, Any] = {}
    for setting in TABLE:
        if setting.field:
            values[setting.field] = setting.read(env, values)
    return values


def unknown_names(env: Mapping[str, str]) -> list[ConfigWarning]:
    """A warning for each ALERTIK_* name that is not a setting."""
    found = []
    for name in sorted(env):
        if (
            not name.startswith("ALERTIK_")
            or name in BY_NAME
            or name in NOT_SETTINGS
            or name in DESTINATION_VARIABLES
        ):
            continue
        # Compared without the prefix that every candidate shares.
        import difflib

        close = difflib.get_close_matches(name.removeprefix("ALERTIK_"), _BARE, n=1)
        found.append(
            ConfigWarning(
                variable=name,
                problem="is not an alertik setting and is ignored"
                + (f"; did you mean {_BARE[close[0]]}?" if close else ""),
            )
        )
    return found


# What a misspelt name is compared with: the settings, and the variables of
# the destinations set by environment (common/destinations.py).
_BARE = {
    name.removeprefix("ALERTIK_"): name
    for name in (
        *BY_NAME,
        *sorted(v for v in DESTINATION_VARIABLES if v.startswith("ALERTIK_")),
    )
}


# --- README.md's table ------------------------------------------------------

BEGIN = "<!-- settings table: python -m alertik.common.settings --write README.md -->"
END = "<!-- end of settings table -->"


def markdown() -> str:
    """README.md's "New settings" table."""
    rows = ["| variable | default | values | meaning |", "|---|---|---|---|"]
    for s in TABLE:
        default = s.shown or (f"`{s.default}`" if s.default else "empty")
        rows.append(f"| `{s.name}` | {default} | {s.convert.describe()} | {s.help} |")
    return "\n".join(rows) + "\n"


def with_table(readme: str) -> str:
    """readme with the text between BEGIN and END replaced by markdown()."""
    head, found, rest = readme.partition(BEGIN + "\n")
    _, found_end, tail = rest.partition(END)
    if not (found and found_end):
        raise ValueError(f"README has no {BEGIN} ... {END} block")
    return head + BEGIN + "\n" + markdown() + END + tail


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m alertik.common.settings",
        description="Print the settings table, or write it into README.md.",
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--markdown", action="store_true", help="print the table")
    action.add_argument("--write", metavar="README", help="update README's table")
    args = parser.parse_args(argv)
    if args.markdown:
        sys.stdout.write(markdown())
        return 0
    with open(args.write, encoding="utf-8") as f:
        text = f.read()
    with open(args.write, "w", encoding="utf-8") as f:
        f.write(with_table(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
