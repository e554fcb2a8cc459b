"""The rules file (``ALERTIK_RULES_FILE``): TOML, read here, located line by line.

The file holds ``[[rules]]`` (each one rule), ``[destinations.NAME]`` (each
one named destination) and ``[routers."ADDRESS"]`` (settings of one router).
This module reads it with the standard library's ``tomllib``, refuses
top-level tables it does not know, and keeps, for every rule and every key in
it, the line where the file says it, so that an error
can name the file, the line, the rule and the key. It checks what the other
stages need from the rules: each rule's ``name`` and ``notify`` (which
destinations exist, which of alertik's environment notifiers are used). The
matcher decodes the rest of each rule into typed structs
(``matcher/rulecompile.py``); both end in ``ConfigError`` for
``ALERTIK_RULES_FILE`` whose text is one line::

    ALERTIK_RULES_FILE: /etc/alertik/rules.toml line 14, rule "ssh", key
    threshold.window: '60' is not a duration; write a number and a unit: ...

A running matcher and notify re-read the file when it changes (``Watcher``)
or on SIGHUP.

The top level is a table of named sections so that new ones can be added
without breaking a file; ``[routers."ADDRESS"]`` is one: the silence alerts'
settings of one router (``silence_after``, ``silence_notify``).
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from typing import Any

from alertik.common import destinations as dests
from alertik.common.converters import ConfigError, Duration, Frozen, Invalid
from alertik.common.destinations import Destination, DestinationError
from alertik.common.events import NOTIFIERS

VARIABLE = "ALERTIK_RULES_FILE"
# The top-level sections a rules file may have, and what each one is.
SECTIONS = {
    "rules": "[[rules]], one rule each",
    "destinations": "[destinations.NAME], one named destination each",
    "routers": '[routers."ADDRESS"], settings of one router (silence_after, '
    "silence_notify)",
}
# The keys of a [routers."ADDRESS"] table.
ROUTER_KEYS = ("silence_after", "silence_notify")
# The longest silence window a router may have: as ALERTIK_SILENCE_AFTER.
SILENCE_MAX = Duration(lo=1, hi=30 * 86400)
# Rule and destination names: shown in logs and alerts, used as keys.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# alertik's environment rules are named so; a file rule may not be.
_ENV_NAME = re.compile(r"(STATIC_)?EVENT[0-9]+")
# A rules file larger than this is a mistake (a log file named by accident).
MAX_BYTES = 16 << 20


class RawRule(Frozen, frozen=True, kw_only=True):
    """One ``[[rules]]`` table as written, and where it is."""

    index: int  # its position among the rules, from 0
    line: int  # the line of its [[rules]] header; 0 when unknown
    keys: dict[str, int]  # the line of each key it sets
    table: dict[str, Any]  # the TOML values

    @property
    def name(self) -> str:
        return str(self.table["name"])

    @property
    def notify(self) -> tuple[str, ...]:
        value = self.table["notify"]
        return (value,) if isinstance(value, str) else tuple(value)


class RouterSettings(Frozen, frozen=True, kw_only=True):
    """A ``[routers."ADDRESS"]`` table: what this router gets, unlike the rest."""

    address: str  # as ingest shows the sender
    # None: not set here (ALERTIK_SILENCE_AFTER applies); 0: never watched.
    silence_after: float | None = None
    silence_notify: tuple[str, ...] | None = None  # None: ALERTIK_SILENCE_NOTIFY


class RulesFile(Frozen, frozen=True, kw_only=True):
    """The rules file as read: its rules and what they send to."""

    path: str
    rules: tuple[RawRule, ...] = ()
    # The [destinations.NAME] tables; they hold secrets: never log them, use
    # Destination.shown() or redacted().
    destinations: tuple[Destination, ...] = ()
    # The names of alertik's environment notifiers (Telegram, Generic1...)
    # that rules send to, in order of first use.
    notifiers: tuple[str, ...] = ()
    routers: tuple[RouterSettings, ...] = ()

    def where(self, rule: RawRule | None = None, key: str = "") -> str:
        """The file, the line, the rule and the key, for an error message."""
        return where(self.path, rule, key)


def where(path: str, rule: RawRule | None = None, key: str = "") -> str:
    """``PATH line N, rule "NAME", key KEY``, as much of it as is known."""
    parts = [path]
    if rule is not None:
        top = key.split(".")[0].split("[")[0]
        line = rule.keys.get(top, rule.line) if key else rule.line
        if line:
            parts[0] += f" line {line}"
        name = rule.table.get("name")
        parts.append(
            f"rule {name!r}"
            if isinstance(name, str) and name
            else f"rule {rule.index + 1} (no name)"
        )
    if key:
        parts.append(f"key {key}")
    return ", ".join(parts)


def error(path: str, rule: RawRule | None, key: str, problem: str) -> ConfigError:
    """The ConfigError for a problem at rule and key of the file at path."""
    return ConfigError(VARIABLE, f"{where(path, rule, key)}: {problem}")


# --- reading --------------------------------------------------------------------


def read(path: str) -> RulesFile:
    """Read and check the rules file at path; raise ConfigError naming the line."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(
            VARIABLE,
            f"cannot read {path}: {exc.strerror or exc}; check the path and its "
            "permissions",
        ) from None
    if len(data) > MAX_BYTES:
        raise ConfigError(
            VARIABLE,
            f"{path} is larger than {MAX_BYTES >> 20} MiB; is it the rules file?",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            VARIABLE, f"{path} line {line}: not UTF-8 text; save the file as UTF-8"
        ) from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib says "... (at line 3, column 7)"; keep its words, ours first.
        message = str(exc)
        found = re.search(r"\(at line ([0-9]+), column ([0-9]+)\)$", message)
        if found:
            message = message[: found.start()].rstrip()
            place = f"{path} line {found.group(1)}, column {found.group(2)}"
        else:
            place = path
        raise ConfigError(
            VARIABLE, f"{place}: not valid TOML: {message}; fix the syntax"
        ) from None
    return parse(path, text, document)


def parse(path: str, text: str, document: Mapping[str, Any]) -> RulesFile:
    """The rules file from its text and its TOML document; ConfigError."""
    lines = _Lines(text)
    for section in document:
        if section not in SECTIONS:
            raise ConfigError(
                VARIABLE,
                f"{path}{lines.at(section)}: unknown section {section!r}; a rules "
                "file has " + " and ".join(SECTIONS.values()),
            )
    tables = document.get("rules", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(
            VARIABLE,
            f"{path}{lines.at('rules')}: 'rules' must be a list of tables; write "
            "[[rules]] (two brackets) above each rule",
        )
    rules = tuple(
        RawRule(
            index=i,
            line=lines.rule_line(i),
            keys=lines.rule_keys(i),
            table=dict(table),
        )
        for i, table in enumerate(tables)
    )
    declared = _destinations(path, lines, document.get("destinations", {}))
    destinations = {d.name for d in declared}
    notifiers: list[str] = []
    seen: dict[str, RawRule] = {}
    for rule in rules:
        name = _rule_name(path, rule)
        if name in seen:
            raise error(
                path,
                rule,
                "name",
                f"{name!r} is also the name of the rule at line "
                f"{seen[name].line}; give each rule its own name",
            )
        seen[name] = rule
        for target in _notify(path, rule):
            if target in destinations:
                continue
            if target not in NOTIFIERS:
                known = sorted(destinations) + list(NOTIFIERS)
                raise error(
                    path,
                    rule,
                    "notify",
                    f"{target!r} is not a destination; use one of " + ", ".join(known),
                )
            if target not in notifiers:
                notifiers.append(target)
    routers = _routers(path, lines, document.get("routers", {}))
    for router in routers:
        for target in router.silence_notify or ():
            if target in destinations:
                continue
            if target not in NOTIFIERS:
                known = sorted(destinations) + list(NOTIFIERS)
                raise ConfigError(
                    VARIABLE,
                    f"{path}{lines.at('routers')}, router {router.address!r}, key "
                    f"silence_notify: {target!r} is not a destination; use one of "
                    + ", ".join(known),
                )
            if target not in notifiers:
                notifiers.append(target)
    return RulesFile(
        path=path,
        rules=rules,
        destinations=declared,
        notifiers=tuple(notifiers),
        routers=routers,
    )


def _tables(
    path: str, lines: _Lines, section: str, tables: object, fix: str
) -> dict[str, dict[str, object]]:
    """A section of named tables ([section.NAME]), or a ConfigError saying fix."""
    if not isinstance(tables, dict) or not all(
        isinstance(t, dict) for t in tables.values()
    ):
        raise ConfigError(VARIABLE, f"{path}{lines.at(section)}: {fix}")
    return tables


def _routers(path: str, lines: _Lines, tables: object) -> tuple[RouterSettings, ...]:
    """The [routers."ADDRESS"] tables: silence settings per router."""
    tables = _tables(
        path,
        lines,
        "routers",
        tables,
        'write each router as a table [routers."192.0.2.1"] with its settings, '
        'e.g. silence_after = "1h"',
    )
    found = []
    for address, table in tables.items():

        def fail(key: str, problem: str, address: str = address) -> ConfigError:
            at = f"{path}{lines.at('routers')}, router {address!r}"
            return ConfigError(
                VARIABLE, f"{at}{', key ' + key if key else ''}: {problem}"
            )

        try:
            shown = str(ipaddress.ip_address(address))
        except ValueError:
            raise fail(
                "",
                "is not an IP address; name routers by the address they send "
                "from, as the log archive shows it",
            ) from None
        for key in table:
            if key not in ROUTER_KEYS:
                raise fail(
                    key, "is not a router setting; use " + ", ".join(ROUTER_KEYS)
                )
        after: float | None = None
        if "silence_after" in table:
            value = table["silence_after"]
            try:
                if not isinstance(value, str):
                    raise Invalid(f'{value!r} is not text; write e.g. "1h" or "off"')
                after = SILENCE_MAX(value)
            except Invalid as exc:
                raise fail("silence_after", str(exc)) from None
            if after is None:
                after = 0.0  # "off": this router is not watched
        notify: tuple[str, ...] | None = None
        if "silence_notify" in table:
            names = table["silence_notify"]
            if isinstance(names, str):
                names = [names]
            if not isinstance(names, list) or not all(
                isinstance(n, str) for n in names
            ):
                raise fail("silence_notify", 'write a list of names, e.g. ["Telegram"]')
            notify = tuple(names)
        found.append(
            RouterSettings(address=shown, silence_after=after, silence_notify=notify)
        )
    return tuple(found)


def _destinations(path: str, lines: _Lines, tables: object) -> tuple[Destination, ...]:
    """The [destinations.NAME] tables, typed (DestinationError as ConfigError)."""
    tables = _tables(
        path,
        lines,
        "destinations",
        tables,
        "write each destination as a table [destinations.NAME] with its type, "
        'e.g. type = "telegram"',
    )
    found = []
    for name, table in tables.items():
        line, keys = lines.destinations.get(name, (0, {}))

        def fail(
            key: str,
            problem: str,
            name: str = name,
            line: int = line,
            keys: dict[str, int] = keys,
        ) -> ConfigError:
            at = keys.get(key.split(".")[0], line) if key else line
            place = f"{path} line {at}" if at else path
            where = f"{place}, destination {name!r}" + (f", key {key}" if key else "")
            return ConfigError(VARIABLE, f"{where}: {problem}")

        if not NAME.fullmatch(name):
            raise fail(
                "",
                "the name must be 1 to 64 letters, digits, '-', '_' or '.', "
                "starting with a letter or digit",
            )
        if name in NOTIFIERS:
            raise fail(
                "",
                f"{name!r} is alertik's name for the destination set by "
                "environment variables; give this one another name",
            )
        kind = table.get("type")
        if not isinstance(kind, str) or kind not in dests.KINDS:
            raise fail("type", "must be one of " + ", ".join(dests.KINDS))
        if "name" in table:
            raise fail(
                "name",
                f"is not a key here: the name is the table's, [destinations.{name}]",
            )
        try:
            # A relative <key>_file is taken from the rules file's folder.
            dest = dests.parse({**table, "name": name}, os.path.dirname(path))
        except DestinationError as exc:
            raise fail(exc.key, exc.problem) from None
        found.append(dest)
    return tuple(found)


def _rule_name(path: str, rule: RawRule) -> str:
    name = rule.table.get("name")
    if name is None:
        raise error(path, rule, "", 'has no name; add name = "..." to the rule')
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise error(
            path,
            rule,
            "name",
            "must be 1 to 64 letters, digits, '-', '_' or '.', starting with a "
            'letter or digit, e.g. name = "ssh-bruteforce"',
        )
    if _ENV_NAME.fullmatch(name):
        raise error(
            path,
            rule,
            "name",
            f"{name!r} is how alertik names its environment events; choose "
            "another name",
        )
    return name


def _notify(path: str, rule: RawRule) -> Sequence[str]:
    value = rule.table.get("notify")
    if value is None:
        raise error(
            path,
            rule,
            "",
            'has no notify; add notify = ["Telegram"] (the destinations to send to)',
        )
    items = [value] if isinstance(value, str) else value
    if (
        not isinstance(items, list)
        or not items
        or not all(isinstance(v, str) for v in items)
    ):
        raise error(
            path,
            rule,
            "notify",
            'must be a destination name or a list of them, e.g. notify = ["ops"]',
        )
    for item in items:
        if items.count(item) > 1:
            raise error(path, rule, "notify", f"names {item!r} twice; name it once")
    return items


# --- where things are -------------------------------------------------------------

_BARE = r"[A-Za-z0-9_-]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"|\'[^\']*\''
_PART = f"(?:{_BARE}|{_QUOTED})"
_DOTTED = rf"{_PART}(?:\s*\.\s*{_PART})*"
_HEADER = re.compile(rf"\s*(\[\[?)\s*({_DOTTED})\s*\]\]?\s*(?:#.*)?")
_KEY = re.compile(rf"\s*({_DOTTED})\s*=")


def _split(dotted: str) -> list[str]:
    parts = re.findall(_PART, dotted)
    return [p[1:-1] if p[:1] in "\"'" else p for p in parts]


class _Lines:
    """Where the file says what: rule headers, their keys, top-level names.

    A light scan of the text beside tomllib (which gives no positions):
    headers and ``key =`` at the start of a line, outside multi-line
    strings. What it cannot place (rules written as an inline array) has
    no line, and errors then name the rule and key only.
    """

    def __init__(self, text: str) -> None:
        self.top: dict[str, int] = {}
        self.rules: list[tuple[int, dict[str, int]]] = []
        self.destinations: dict[str, tuple[int, dict[str, int]]] = {}
        table: list[str] = []
        keys: dict[str, int] | None = None
        in_string = ""
        for number, line in enumerate(text.splitlines(), start=1):
            if in_string:
                if line.count(in_string) % 2:
                    in_string = ""
                continue
            header = _HEADER.fullmatch(line)
            if header is not None:
                table = _split(header.group(2))
                self.top.setdefault(table[0], number)
                keys = None
                if table == ["rules"] and header.group(1) == "[[":
                    keys = {}
                    self.rules.append((number, keys))
                elif table[0] == "rules" and len(table) > 1 and self.rules:
                    # [rules.threshold]: a sub-table of the last rule.
                    self.rules[-1][1].setdefault(table[1], number)
                elif table[0] == "destinations" and len(table) == 2:
                    keys = {}
                    self.destinations[table[1]] = (number, keys)
                continue
            key = _KEY.match(line)
            if key is not None:
                name = _split(key.group(1))[0]
                if not table:
                    self.top.setdefault(name, number)
                elif keys is not None:
                    keys.setdefault(name, number)
            for quote in ('"""', "'''"):
                if line.count(quote) % 2:
                    in_string = quote
                    break

    def at(self, name: str) -> str:
        """`` line N`` for a top-level name, or nothing when unknown."""
        line = self.top.get(name)
        return f" line {line}" if line else ""

    def rule_line(self, index: int) -> int:
        return self.rules[index][0] if index < len(self.rules) else 0

    def rule_keys(self, index: int) -> dict[str, int]:
        return dict(self.rules[index][1]) if index < len(self.rules) else {}


# --- noticing a change --------------------------------------------------------------


Signature = tuple[int, int, int, int] | None


def signature(path: str) -> Signature:
    """What changes when the file is edited or replaced (None: cannot stat)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns)


class Watcher:
    """Says when the rules file changed and has stayed the same since.

    ``poll(now)`` looks at the file at most every ``every`` seconds; it
    answers True once per change, when two looks in a row saw the same new
    version: an editor that truncates and then writes is read whole.
    """

    def __init__(self, path: str, every: float = 0.4) -> None:
        self.path = path
        self.every = every
        self.seen = signature(path)  # the version in use
        self._candidate: Signature = self.seen
        self._next = 0.0

    def poll(self, now: float) -> bool:
        if now < self._next:
            return False
        self._next = now + self.every
        current = signature(self.path)
        if current == self.seen:
            self._candidate = current
            return False
        if current != self._candidate:
            self._candidate = current  # still changing: look again
            return False
        self.seen = current
        return current is not None

    def taken(self) -> None:
        """The file was just read (on SIGHUP): its version is the one in use."""
        self.seen = self._candidate = signature(self.path)
