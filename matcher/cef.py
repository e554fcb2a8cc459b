"""CEF records as RouterOS and other devices send them: pure.

A record is ``CEF:Version|Vendor|Product|Version|Class ID|Name|Severity|``
and an extension of ``key=value`` pairs; ``cef_fields`` reads both (the
header fields under their names, then the extension's keys, unescaped). The
syslog header in front of a record, and where the record starts, are read by
``formats.py``.

RouterOS writes its topics as the CEF name (``system,error,critical``) and
its level as Low, Medium or High; ``cef_topics`` and ``cef_severity`` turn
them into the topics and syslog severity the other formats give.
"""

from __future__ import annotations

import re

# A RouterOS topics list: comma-separated topic names.
_TOPIC = r"[a-z][a-z0-9-]*"
TOPICS = re.compile(_TOPIC + r"(?:," + _TOPIC + r")*")
# The topics that are levels.
LEVELS = frozenset(("debug", "info", "warning", "error", "critical"))
# CEF severities as RouterOS writes them (Low for info/debug, Medium for
# warning, High for error) and ArcSight's Very-High.
_SEVERITY = {"low": 6, "medium": 4, "high": 3, "very-high": 2, "very high": 2}

# RouterOS's topics (the manual's list of log topics), for telling a CEF name
# that is a topics list from one that is an event's name ("worm", "login").
ROUTEROS_TOPICS = LEVELS | frozenset(
    [
        "account",
        "async",
        "backup",
        "bfd",
        "bgp",
        "bridge",
        "calc",
        "caps",
        "certificate",
        "container",
        "ddns",
        "dhcp",
        "disk",
        "dns",
        "dot1x",
        "dude",
        "e-mail",
        "event",
        "fetch",
        "firewall",
        "gps",
        "gsm",
        "health",
        "hotspot",
        "igmp-proxy",
        "interface",
        "ipsec",
        "iscsi",
        "isdn",
        "isis",
        "kvm",
        "l2tp",
        "ldp",
        "lora",
        "lte",
        "manager",
        "mme",
        "mpls",
        "natpmp",
        "netinstall",
        "netwatch",
        "ntp",
        "ospf",
        "ovpn",
        "packet",
        "pim",
        "poe-out",
        "ppp",
        "pppoe",
        "pptp",
        "ptp",
        "queue",
        "radius",
        "radvd",
        "raw",
        "read",
        "rip",
        "route",
        "rpki",
        "rsvp",
        "script",
        "sertcp",
        "simulator",
        "smb",
        "sms",
        "snmp",
        "ssh",
        "sstp",
        "state",
        "store",
        "stp",
        "system",
        "telephony",
        "tftp",
        "timer",
        "tr069",
        "update",
        "upnp",
        "ups",
        "vpls",
        "vrrp",
        "watchdog",
        "web-proxy",
        "wifi",
        "wireguard",
        "wireless",
        "write",
        "zerotier",
    ]
)

# A CEF extension key, after the start or a space, followed by an unescaped
# "=" (keys never contain a backslash, so "\=" cannot end one).
_KEY = re.compile(r"(?:^|(?<= ))([A-Za-z0-9_.\[\]-]+)=")
# The CEF specification's escapes in extension values: \= \\ and, for
# multi-line values, \n and \r. Any other backslash is kept as written.
_ESCAPE = re.compile(r"\\([\\=nr])")
_UNESCAPED = {"\\": "\\", "=": "=", "n": "\n", "r": "\r"}
_HEADER_ESCAPE = re.compile(r"\\([\\|])")
_HEADER_KEYS = ("cef", "vendor", "product", "version", "class_id", "name")


def cef_topics(name: str, vendor: str) -> tuple[str, ...]:
    """The topics in a CEF name, when it is a RouterOS topics list.

    RouterOS puts its topics there (``system,error,critical``); other vendors
    put the event's name, which may also be one lower-case word ("worm"). So
    a name from another vendor counts only when it holds a level or consists
    of RouterOS topics.
    """
    if TOPICS.fullmatch(name) is None:
        return ()
    parts = tuple(name.split(","))
    if vendor.lower() == "mikrotik" or any(p in LEVELS for p in parts):
        return parts
    return parts if all(p in ROUTEROS_TOPICS for p in parts) else ()


def cef_severity(value: str) -> int | None:
    value = value.strip().lower()
    if value.isdigit() and len(value) <= 2:
        number = int(value)  # ArcSight 0-3 low, 4-6 medium, 7-8 high, 9-10
        return 6 if number <= 3 else 4 if number <= 6 else 3 if number <= 8 else 2
    return _SEVERITY.get(value)


def cef_fields(record: str) -> dict[str, str]:
    """CEF header fields and extension pairs; record starts with "CEF:"."""
    parts: list[str] = []
    begin = 0
    i = len("CEF:")
    n = len(record)
    while i < n and len(parts) < 7:
        ch = record[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "|":
            parts.append(record[begin:i])
            begin = i + 1
        i += 1
    # Whitespace after the last value is padding, not part of it (a line
    # break that belongs to a value is written as the escape \n).
    extension = record[begin:].rstrip(" \t\r\n") if len(parts) == 7 else ""
    if len(parts) < 7:
        parts.append(record[begin:])
    fields = _extension(extension)
    # Header fields win over extension keys of the same name.
    keys = (*_HEADER_KEYS, "severity")
    for key, value in zip(keys, parts, strict=False):
        fields[key] = _HEADER_ESCAPE.sub(r"\1", value)
    fields["cef"] = fields["cef"].removeprefix("CEF:")
    return fields


def _extension(extension: str) -> dict[str, str]:
    """key=value pairs of a CEF extension, with \\= \\\\ \\n \\r unescaped."""
    pairs: dict[str, str] = {}
    keys = list(_KEY.finditer(extension))
    for i, key in enumerate(keys):
        # A value runs to the space before the next key.
        end = keys[i + 1].start() - 1 if i + 1 < len(keys) else len(extension)
        pairs[key.group(1)] = _ESCAPE.sub(_unescape, extension[key.end() : end])
    return pairs


def _unescape(escape: re.Match[str]) -> str:
    return _UNESCAPED[escape.group(1)]
