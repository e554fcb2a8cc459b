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
)
MATCH_TYPES = ("substr", "regex")
FIELDS = ("MATCH_TYPE", "NOTIFIER", "MATCH_STR", "MASK_MSG")
# Rules are cheap (a prefilter runs them all at once); the cap only stops a
# typo such as ENV_EVENTS=1000000 from allocating for nothing.
MAX_EVENTS = 10_000
# Static events that exist; matcher/static.py defines them.
STATIC_EVENT_COUNT = 1


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
