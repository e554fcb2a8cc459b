"""alertik's events from the environment: ``EVENTn_*`` and ``STATIC_EVENTn_*``.

``ENV_EVENTS`` counts the environment events; each has four variables,
``EVENTn_NOTIFIER``, ``EVENTn_MATCH_TYPE``, ``EVENTn_MATCH_STR`` and
``EVENTn_MASK_MSG``. ``STATIC_EVENTS_ENABLED`` lists the built-in events to
turn on, each with its ``STATIC_EVENTn_NOTIFIER``. A match string may hold
bytes that are not UTF-8 (it matches the bytes as written); a mask may not,
since it becomes the text of a notification.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal

from alertik.common.converters import (
    ConfigError,
    ConfigWarning,
    Frozen,
    Integer,
    Invalid,
    check_utf8,
)

NOTIFIERS = (
    "Telegram",
    "Slack",
    "Teams",
    "Discord",
    "Generic1",
    "Generic2",
    "Generic3",
    "Generic4",
    # Set by ALERTIK_<SERVICE>_* (common/destinations.py).
    "Ntfy",
    "Gotify",
    "Pushover",
    "Matrix",
    "Email",
    "Apprise",
)
MATCH_TYPES = ("substr", "regex")
FIELDS = ("MATCH_TYPE", "NOTIFIER", "MATCH_STR", "MASK_MSG")
# Rules are cheap (a prefilter runs them all at once); the cap only stops a
# typo such as ENV_EVENTS=1000000 from allocating for nothing.
MAX_EVENTS = 10_000
# Static events that exist; matcher/static.py defines them.
STATIC_EVENT_COUNT = 1

_EVENT_VARIABLE = re.compile(r"EVENT([0-9]+)_(.*)", re.DOTALL)


class Rule(Frozen, frozen=True, kw_only=True):
    """One environment event (EVENTn_*) as alertik defines it."""

    index: int
    notifier: str
    match_type: Literal["substr", "regex"]
    match_str: str
    mask: str

    @property
    def name(self) -> str:
        return f"EVENT{self.index}"


class StaticRule(Frozen, frozen=True, kw_only=True):
    """One enabled static event (STATIC_EVENTn_NOTIFIER)."""

    index: int
    notifier: str

    @property
    def name(self) -> str:
        return f"STATIC_EVENT{self.index}"


def event_count(env: Mapping[str, str]) -> int:
    """ENV_EVENTS as a number; unset or empty is 0."""
    raw = env.get("ENV_EVENTS")
    if raw is None or raw.strip() == "":
        return 0
    try:
        count: int = Integer(lo=0, hi=MAX_EVENTS)(raw)
    except Invalid as exc:
        raise ConfigError("ENV_EVENTS", str(exc)) from None
    return count


def _notifier(name: str, value: str) -> str:
    if value not in NOTIFIERS:
        raise ConfigError(
            name, f"{value!r} is not a notifier; use one of " + ", ".join(NOTIFIERS)
        )
    return value


def rules(env: Mapping[str, str]) -> tuple[Rule, ...]:
    """EVENT0_* to EVENT<ENV_EVENTS - 1>_*, checked; raise ConfigError."""
    count = event_count(env)
    found = []
    for i in range(count):
        values: dict[str, str] = {}
        for field in FIELDS:
            name = f"EVENT{i}_{field}"
            if name not in env:
                raise ConfigError(
                    name,
                    f"is not set, but ENV_EVENTS={env['ENV_EVENTS'].strip()} "
                    f"counts events 0 to {count - 1}",
                )
            values[field] = env[name]
        if values["MATCH_TYPE"] not in MATCH_TYPES:
            raise ConfigError(
                f"EVENT{i}_MATCH_TYPE",
                f"{values['MATCH_TYPE']!r} is not a match type; use substr or regex",
            )
        found.append(
            Rule(
                index=i,
                notifier=_notifier(f"EVENT{i}_NOTIFIER", values["NOTIFIER"]),
                match_type=values["MATCH_TYPE"],  # type: ignore[arg-type]
                match_str=values["MATCH_STR"],
                mask=check_utf8(f"EVENT{i}_MASK_MSG", values["MASK_MSG"]),
            )
        )
    return tuple(found)


def static_rules(env: Mapping[str, str]) -> tuple[StaticRule, ...]:
    """The static events STATIC_EVENTS_ENABLED turns on; raise ConfigError."""
    raw = env.get("STATIC_EVENTS_ENABLED", "")
    if raw.strip() == "":
        return ()
    seen: list[int] = []
    for item in raw.split(","):
        item = item.strip()
        # ASCII digits only: '²' and '٣' are digits to str.isdigit().
        if not re.fullmatch(r"[0-9]+", item):
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
    found = []
    for number in seen:
        name = f"STATIC_EVENT{number}_NOTIFIER"
        notifier = env.get(name)
        if notifier is None:
            raise ConfigError(name, "is not set; name the notifier for this event")
        found.append(StaticRule(index=number, notifier=_notifier(name, notifier)))
    return tuple(found)


def warnings(env: Mapping[str, str]) -> list[ConfigWarning]:
    """Event variables that start but are probably not what was meant."""
    found: list[ConfigWarning] = []
    numbers: dict[int, list[str]] = {}
    for name in env:
        m = _EVENT_VARIABLE.fullmatch(name)
        if m is None:
            continue
        number, field = int(m.group(1)), m.group(2)
        if m.group(1) != str(number):
            found.append(
                ConfigWarning(
                    variable=name,
                    problem=f"is ignored: event numbers have no leading zeros; "
                    f"did you mean EVENT{number}_{field}?",
                )
            )
            continue
        numbers.setdefault(number, []).append(name)
        if field not in FIELDS:
            import difflib

            close = difflib.get_close_matches(field, FIELDS, n=1)
            found.append(
                ConfigWarning(
                    variable=name,
                    problem="is not an event variable and is ignored"
                    + (f"; did you mean EVENT{number}_{close[0]}?" if close else ""),
                )
            )
    try:
        count = event_count(env)
    except ConfigError:
        return found  # load() refuses it
    if not env.get("ENV_EVENTS", "").strip() and numbers:
        found.append(
            ConfigWarning(
                variable="ENV_EVENTS",
                problem=f"is not set, so {_events(sorted(numbers))} are ignored; "
                f"set ENV_EVENTS={max(numbers) + 1} to use them",
            )
        )
        return found
    for number in sorted(n for n in numbers if n >= count):
        found.append(
            ConfigWarning(
                variable=", ".join(sorted(numbers[number])),
                problem=f"ignored: ENV_EVENTS={count} counts {_counted(count)}; "
                f"set ENV_EVENTS={number + 1} to use EVENT{number}",
            )
        )
    for i in range(count):
        if env.get(f"EVENT{i}_MATCH_STR") == "":
            found.append(
                ConfigWarning(
                    variable=f"EVENT{i}_MATCH_STR",
                    problem=f"is empty, so EVENT{i} matches every message",
                )
            )
    return found


def _counted(count: int) -> str:
    """What ENV_EVENTS=count takes in, for a warning."""
    return (
        ("no events", "event 0 only")[count]
        if count < 2
        else f"events 0 to {count - 1}"
    )


def _events(numbers: list[int]) -> str:
    """EVENT0_* and EVENT2_*, for a warning."""
    names = [f"EVENT{n}_*" for n in numbers[:3]] + (["..."] if numbers[3:] else [])
    return ", ".join(names)
