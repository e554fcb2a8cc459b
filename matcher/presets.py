"""Presets: named rules for the RouterOS events admins watch.

A rule in the rules file says ``preset = "login-failure"`` and gets the table
below of that name, key by key; any key the rule sets itself wins. Each preset
is exactly a rule's TOML table as the rules file spells it, without ``name``
and ``notify`` (the rule gives those), so ``PRESETS`` can be merged into a
rule as it stands. ``DESCRIPTIONS`` says in one line what each one matches.

How the patterns are written
----------------------------
Matching runs on the raw line, headers included, in every
``remote-log-format`` RouterOS sends (see ``formats.py``):

* ``default``: ``TOPICS MESSAGE``;
* ``syslog``: ``<PRI>TIMESTAMP IDENTITY MESSAGE``, where the topics come only
  with ``add-topics-string=yes`` (RouterOS 7.22 and later);
* ``cef``: ``TIMESTAMP IDENTITY CEF:0|MikroTik|...|TOPICS|SEVERITY|dvchost=...
  dvc=... msg=MESSAGE`` followed, for some events, by more ``key=value``
  fields, with ``=`` and ``\\`` in values escaped as ``\\=`` and ``\\\\``.

So a preset's regex finds the message wherever it sits: it is never anchored
to the end of the line (CEF may go on after ``msg``), a capture that starts a
message excludes ``=`` (or it would take ``msg=`` with it), and no preset
uses a ``topics`` or ``severity`` condition, because the ``syslog`` format
carries no topics before 7.22 and its severity is whatever
``syslog-severity`` says. Thresholds and cooldowns that need a grouping key
use ``@{router}`` with the capture groups, so two routers never share a count.

Every pattern is in alertik's musl dialect and lints clean
(``tests/unit/test_presets.py`` checks both, and runs every preset on our own
RouterOS lines in ``tests/data/presets/``). ``docs/RULES.md`` lists them; its
table is generated from this module::

    python -m alertik.matcher.presets --markdown          # print the section
    python -m alertik.matcher.presets --write docs/RULES.md
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

__all__ = ["DESCRIPTIONS", "PRESETS", "markdown", "toml_table", "with_section"]

# The firewall preset finds where the message starts, so that the log prefix
# (which may hold spaces) is everything between that and the chain:
# default: the topics word, which holds "firewall"; syslog: <PRI>, a BSD or
# ISO 8601 timestamp, a one-word identity, then the topics if
# add-topics-string=yes sends them; cef: "msg=".
_FW_TOPICS = "[a-z0-9,-]*firewall[a-z0-9,-]* "
_FW_STAMP = (
    "([A-Z][a-z][a-z] [ 0-9][0-9] [0-9:]{8}(\\.[0-9]+)?"
    "|[0-9]{4}-[0-9][0-9]-[0-9][0-9]T[^[:space:]]+)"
)
_FW_HEAD = (
    f"(^{_FW_TOPICS}|^<[0-9]{{1,3}}>{_FW_STAMP} [^[:space:]]+ ({_FW_TOPICS})?|msg=)"
)
# Group 5 is the prefix: no comma (so a topics word is never taken for one)
# and no space at its end. Then chain (6), in (7), out (8), protocol (9) and
# its details such as " (SYN)" (10), source (11), destination (12).
_FIREWALL = (
    _FW_HEAD + "([^,]*[^[:space:],]) ([a-zA-Z0-9_-]+): in:(.*) out:([^,]*), "
    ".*proto ([A-Za-z0-9-]+)( \\([^)]*\\))?, "
    "([^[:space:],]+)->([^[:space:],]+)"
)

PRESETS: dict[str, dict[str, object]] = {
    "login-failure": {
        # The user name is whatever was typed, spaces included; the address
        # and service come from the last "from ... via ..." in the line,
        # which RouterOS writes after the name, so a name cannot fake them.
        "regex": "login failure for user (.*) from ([^[:space:]]+) via ([a-z-]+)",
        "threshold": {"count": 5, "window": "60s", "key": "@2"},
        "cooldown": "10m",
        "text": "Repeated failed logins on @{router} from @2 (last: user @1 via @3)",
    },
    "login-new-address": {
        # "New": the first login of this user from this address on this
        # router since the key's cooldown last ended. count = 1 alerts on the
        # first hit; the long cooldown holds the next ones.
        "regex": "user (.*) logged in from ([^[:space:]]+) via ([a-z-]+)",
        "threshold": {"count": 1, "window": "1m", "key": "@{router} @1 @2"},
        "cooldown": "30d",
        "text": "Login on @{router}: user @1 from new address @2 via @3",
    },
    "denied-connect": {
        # An address outside the service's allowed addresses (IP > Services)
        # reached it; scanners do this all day, so one alert per router per
        # hour and a summary.
        "regex": "denied ([^[:space:]]+) connect from ([^[:space:]]+)",
        "threshold": {"count": 1, "window": "1m", "key": "@{router}"},
        "cooldown": "1h",
        "text": "Denied @1 connection to @{router} from @2",
    },
    "reboot": {
        "regex": (
            "(router (was )?rebooted( without proper shutdown"
            "(, probably power outage| by watchdog timer)?)?"
            "|kernel failure in previous boot)"
        ),
        "text": "Reboot of @{router}: @1",
    },
    "interface-link": {
        # A flapping port: the first change of each kind alerts, the rest in
        # the next 5 minutes come as one summary.
        "regex": "([^[:space:]=]+) link (up|down)( \\(speed [^)]*\\))?",
        "threshold": {"count": 1, "window": "1m", "key": "@{router} @1 @2"},
        "cooldown": "5m",
        "text": "@{router}: interface @1 link @2@3",
    },
    "netwatch": {
        "regex": "event (up|down) \\[ type: ([^,]+), host: ([^[:space:],]+)",
        "text": "Netwatch on @{router}: @3 is @1 (@2 probe)",
    },
    "config-change": {
        # RouterOS 6 writes "by admin"; 7 writes how and from where, e.g.
        # "by tcp-msg(winbox):admin@192.0.2.10/terminal/action:12", then the
        # command in parentheses. Group 3 is the user, 4 "@address", 5 the
        # command, for a rule's own text or key. What was changed comes
        # before the verb, where only the parsed message has it, so the text
        # is the message (CEF's escapes undone). Changes made by scheduled
        # scripts are not a user's.
        "regex": (
            "(added|changed|removed|moved|scheduled|add [a-z-]+"
            "|changed [a-z-]+ settings) by ([^[:space:]@]*:)?([^[:space:]@:/]+)"
            "(@[^[:space:]/]*)?[^[:space:]]*( \\(.*\\))?"
        ),
        "exclude": ["by scheduler:"],
        "text": "Config change on @{router}: @{message}",
    },
    "vpn-session": {
        # The ppp account lines of L2TP, PPTP, SSTP and OVPN servers: "NAME
        # logged in, ADDRESS[ from CALLER]" and "NAME logged out, COUNTERS[
        # from CALLER]". PPPoE writes the same lines: its topics start with
        # pppoe (default and cef formats, syslog with add-topics-string) and
        # its caller is a MAC address.
        "regex": (
            "([^[:space:]=]+) logged (in|out), ([^[:space:]]+)( [0-9]+)*"
            "( from ([^[:space:]]+))?"
        ),
        "exclude": [
            "(^|[| ])pppoe,",
            "logged (in|out), .* from ([0-9A-Fa-f][0-9A-Fa-f]:){5}[0-9A-Fa-f]",
        ],
        "text": "VPN user @1 logged @2 on @{router}@5",
    },
    "dhcp-pool-exhausted": {
        # Logged for every request it cannot answer: one alert per server
        # per hour and a summary.
        "regex": (
            "([^[:space:]=]+) failed to give out IP address: pool <([^>]*)> is empty"
        ),
        "threshold": {"count": 1, "window": "1m", "key": "@{router} @1"},
        "cooldown": "1h",
        "text": "DHCP server @1 on @{router}: pool @2 is empty",
    },
    "firewall-prefix": {
        # One alert per prefix per 10 minutes and a summary: a logging rule
        # can fire thousands of times a minute.
        "regex": _FIREWALL,
        "threshold": {"count": 1, "window": "1m", "key": "@{router} @5"},
        "cooldown": "10m",
        "text": "Firewall @5 on @{router}: @9@10 @11 -> @12 (chain @6, in @7)",
    },
}

DESCRIPTIONS: dict[str, str] = {
    "login-failure": (
        "failed logins (any service, IPv4, IPv6 or MAC address), counted per "
        "address: 5 within 60 s alert once, then one summary 10 minutes later"
    ),
    "login-new-address": (
        "a user logs in from an address not seen for that user on that "
        "router in the last 30 days"
    ),
    "denied-connect": (
        "`denied winbox/dude connect from ...`: a connection to a service "
        "from an address it does not allow"
    ),
    "reboot": (
        "the router rebooted: cleanly, after a power outage, by the watchdog, "
        "or after a kernel failure"
    ),
    "interface-link": "an interface's link went up (with its speed) or down",
    "netwatch": "a Netwatch host went up or down (RouterOS 7)",
    "config-change": (
        "a user added, changed, moved or removed configuration (RouterOS 6 and "
        "7 wording; changes by scheduled scripts are left out)"
    ),
    "vpn-session": (
        "a VPN user (L2TP, PPTP, SSTP, OpenVPN) logged in or out; PPPoE is left out"
    ),
    "dhcp-pool-exhausted": "a DHCP server had no address left in its pool",
    "firewall-prefix": (
        "a firewall rule with `log=yes` and a `log-prefix` matched a packet"
    ),
}


# --- TOML and docs/RULES.md -------------------------------------------------

BEGIN = "<!-- presets: python -m alertik.matcher.presets --write docs/RULES.md -->"
END = "<!-- end of presets -->"


def _toml_value(value: object) -> str:
    """One TOML value: strings, integers, lists and inline tables."""
    if isinstance(value, str):
        plain = value.isprintable()
        if plain and "\\" not in value and '"' not in value:
            return f'"{value}"'
        if plain and "'" not in value:
            return f"'{value}'"  # a literal string: backslashes stay as written
        return json.dumps(value)  # a basic string; JSON escapes are TOML's
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def toml_table(name: str) -> str:
    """The preset as a rule's TOML table (``[[rules]]``), keys in their order."""
    lines = ["[[rules]]", f'name = "{name}"', 'notify = ["ops"]']
    lines += [f"{k} = {_toml_value(v)}" for k, v in PRESETS[name].items()]
    return "\n".join(lines) + "\n"


def _limits(preset: dict[str, object]) -> str:
    threshold = preset.get("threshold")
    cooldown = preset.get("cooldown")
    parts = []
    if isinstance(threshold, dict):
        parts.append(
            f"{threshold['count']} in {threshold['window']} per `{threshold['key']}`"
        )
    if cooldown is not None:
        parts.append(f"cooldown {cooldown}")
    return ", ".join(parts) or "every match"


def markdown() -> str:
    """The generated part of docs/RULES.md's Presets section."""
    rows = [
        "| preset | matches | text | alerts |",
        "|---|---|---|---|",
    ]
    for name, preset in PRESETS.items():
        text = str(preset["text"]).replace("|", "\\|")
        rows.append(
            f"| `{name}` | {DESCRIPTIONS[name]} | `{text}` | {_limits(preset)} |"
        )
    blocks = []
    for name in PRESETS:
        blocks.append(toml_table(name).replace('notify = ["ops"]\n', ""))
    return (
        "\n".join(rows)
        + "\n\nEach preset in full, as the rule it stands for "
        + "(with the rule's own `name`):\n\n```toml\n"
        + "\n".join(blocks)
        + "```\n"
    )


def with_section(doc: str) -> str:
    """doc with the text between BEGIN and END replaced by markdown()."""
    head, found, rest = doc.partition(BEGIN + "\n")
    _, found_end, tail = rest.partition(END)
    if not (found and found_end):
        raise ValueError(f"the file has no {BEGIN} ... {END} block")
    return head + BEGIN + "\n" + markdown() + END + tail


def main(argv: Sequence[str] | None = None) -> int:
    import argparse  # here, not in the matcher stage that imports this module

    parser = argparse.ArgumentParser(
        prog="python -m alertik.matcher.presets",
        description="Print the presets section, or write it into docs/RULES.md.",
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--markdown", action="store_true", help="print it")
    action.add_argument("--write", metavar="RULES_MD", help="update the file")
    args = parser.parse_args(argv)
    if args.markdown:
        sys.stdout.write(markdown())
        return 0
    with open(args.write, encoding="utf-8") as f:
        text = f.read()
    with open(args.write, "w", encoding="utf-8") as f:
        f.write(with_section(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
