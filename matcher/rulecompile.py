"""From a [[rules]] table to a FileRule: decoded, checked, compiled; and linted.

Each table, merged over its preset (``{**PRESETS[name], **table}``), is
decoded with ``msgspec`` into a ``Spec`` and compiled into a ``FileRule``
(``rulefile.py``). Every error is a ConfigError for ``ALERTIK_RULES_FILE``
naming the file, the line, the rule, the key and a fix. ``lint`` says what
in a rule that compiles is probably not what its author meant.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec

from alertik.common.config import ConfigError
from alertik.common.destinations import AddressListDestination
from alertik.common.rulesfile import RawRule, RulesFile, error
from alertik.matcher import musl
from alertik.matcher.musl import RegexError
from alertik.matcher.presets import PRESETS
from alertik.matcher.rulefile import (
    FIELDS,
    KEYS,
    SEVERITIES,
    Compiled,
    FileRule,
    Part,
    Presets,
    Quiet,
    Spec,
    ThresholdSpec,
    listed,
    split_mask,
)

_TOKEN = re.compile(r"@(?:([0-9][0-9]?)|(@)|\{([^{}]*)\})")
_TOPIC = re.compile(r"[a-z0-9][a-z0-9_-]*")
_DURATION = re.compile(r"(?:[0-9]+[smhd])+")
_DURATION_PART = re.compile(r"([0-9]+)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_CLOCK = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
# A window or cooldown up to a year.
MAX_DURATION = 366 * 86400
DEFAULT_TEXT = "@{rule}: @{message}"


def compile_file(
    file: RulesFile,
    presets: Presets | None = None,
    reuse: Sequence[FileRule] = (),
) -> list[FileRule]:
    """Every rule of file, decoded and compiled; ConfigError for the first bad one.

    A rule that reads exactly as one of reuse (the rules in use, on a reload)
    takes its compiled patterns instead of compiling them again: editing one
    rule of a thousand recompiles one.
    """
    table = default_presets() if presets is None else presets
    done = {(r.spec, r.actions): r.compiled for r in reuse}
    # Actions (a RouterOS address list) get an address, a mask of their own
    # that each rule sending to them expands.
    actions = {
        d.name: d.address
        for d in file.destinations
        if isinstance(d, AddressListDestination)
    }
    return [compile_rule(file.path, raw, table, actions, done) for raw in file.rules]


def default_presets() -> Presets:
    """matcher/presets.py's PRESETS."""
    return PRESETS


Done = Mapping[tuple["Spec", tuple[tuple[str, str], ...]], "Compiled"]


def compile_rule(
    path: str,
    raw: RawRule,
    presets: Presets,
    actions: Mapping[str, str] | None = None,
    done: Done | None = None,
) -> FileRule:
    """One rule: merged over its preset, decoded, checked, compiled; actions:
    the address mask of each action destination, by name; done: what rules
    read exactly alike compiled to."""
    table = dict(raw.table)
    preset_keys: set[str] = set()
    if "preset" in table:
        name = table.pop("preset")
        if not isinstance(name, str) or name not in presets:
            names = ", ".join(sorted(presets)) or "none yet"
            raise error(
                path, raw, "preset", f"{name!r} is not a preset; use one of {names}"
            )
        base = dict(presets[name])
        # The rule's own pattern replaces the preset's, whichever kind it is.
        if "regex" in table or "substr" in table:
            base.pop("regex", None)
            base.pop("substr", None)
        preset_keys = set(base) - set(table)
        table = {**base, **table}

    def fail(key: str, problem: str) -> ConfigError:
        top = key.split(".")[0].split("[")[0]
        if top in preset_keys:
            problem += f" (the key comes from preset {raw.table['preset']!r})"
        return error(path, raw, key, problem)

    spec = _decode(table, fail)
    masks = tuple(
        (name, (actions or {})[name])
        for name in listed(spec.notify)
        if name in (actions or {})
    )
    same = (done or {}).get((spec, masks))
    if same is not None:
        return FileRule(spec, _short(path, raw), same, masks)
    compiled = _compile(spec, fail)
    groups = compiled.regex.groups if compiled.regex is not None else 0
    for name, mask in masks:
        parts = split_mask(mask, _TOKEN)

        def fail_action(
            key: str, problem: str, name: str = name, mask: str = mask
        ) -> ConfigError:
            return fail(
                key, f"sends to {name}, whose address = {mask!r} fails here: {problem}"
            )

        _check_mask("notify", parts, spec, groups, fail_action)
        compiled.addresses[name] = parts
    return FileRule(spec, _short(path, raw), compiled, masks)


def _short(path: str, raw: RawRule) -> str:
    line = f" line {raw.line}" if raw.line else ""
    return f"{path}{line}, rule {raw.name!r}"


Fail = Callable[[str, str], ConfigError]


def _decode(table: dict[str, Any], fail: Fail) -> Spec:
    try:
        return msgspec.convert(table, Spec)
    except msgspec.ValidationError as exc:
        raise _explain(str(exc), fail) from None


def _explain(message: str, fail: Fail) -> ConfigError:
    """A msgspec validation message as the rules file's words."""
    at = re.search(r" - at `\$\.?([^`]*)`$", message)
    path = at.group(1) if at else ""
    text = message[: at.start()] if at else message
    unknown = re.fullmatch(r"Object contains unknown field `([^`]*)`", text)
    if unknown:
        name = unknown.group(1)
        key = f"{path}.{name}" if path else name
        choices = _keys_at(path)
        import difflib

        close = difflib.get_close_matches(name, choices, n=1)
        hint = f"did you mean {close[0]}?" if close else "use " + ", ".join(choices)
        return fail(key, f"is not a key here; {hint}")
    missing = re.fullmatch(r"Object missing required field `([^`]*)`", text)
    if missing:
        key = f"{path}.{missing.group(1)}" if path else missing.group(1)
        return fail(key, "is missing; add it")
    expected = re.fullmatch(r"Expected `([^`]*)`, got `([^`]*)`", text)
    if expected:
        want = expected.group(1).replace("array", "list of texts")
        return fail(path, f"is a {expected.group(2)}, but must be {_article(want)}")
    return fail(path, text)


def _article(what: str) -> str:
    words = {"str": "a text", "int": "a whole number", "bool": "true or false"}
    out = what
    for word, shown in words.items():
        out = re.sub(rf"\b{word}\b", shown, out)
    out = out.replace("object", "a table").replace(" | ", " or ")
    return out


def _keys_at(path: str) -> list[str]:
    if path == "threshold":
        return list(ThresholdSpec.__struct_fields__)
    if path == "quiet_hours":
        return ["from", "to", "except_severity"]
    return list(KEYS)


def duration(text: str) -> float:
    """Seconds in a duration such as 30s, 10m, 1h, 1d or 1h30m; ValueError."""
    if not _DURATION.fullmatch(text):
        raise ValueError(
            f"{text!r} is not a duration; write a number and a unit: 30s, 10m, "
            "1h or 1d (or 1h30m)"
        )
    seconds = sum(int(n) * _UNITS[unit] for n, unit in _DURATION_PART.findall(text))
    if not 1 <= seconds <= MAX_DURATION:
        raise ValueError(f"{text!r} is out of range; use 1s to 366d")
    return float(seconds)


def _severity(key: str, name: str, fail: Fail) -> int:
    if name not in SEVERITIES:
        raise fail(
            key, f"{name!r} is not a severity; use one of " + ", ".join(SEVERITIES)
        )
    return SEVERITIES[name]


def _clock(key: str, text: str, fail: Fail) -> int:
    m = _CLOCK.fullmatch(text)
    if m is None:
        raise fail(key, f"{text!r} is not a time of day; write HH:MM, e.g. 23:00")
    return int(m.group(1)) * 60 + int(m.group(2))


def _compile(spec: Spec, fail: Fail) -> Compiled:
    out = Compiled()
    if spec.regex is not None and spec.substr is not None:
        raise fail("regex", "and substr are both set; keep one of them")
    groups = 0
    if spec.regex is not None:
        try:
            out.regex = musl.compile(spec.regex, spec.icase)
        except RegexError as exc:
            raise fail("regex", str(exc)) from None
        groups = out.regex.groups
    elif spec.substr is not None:
        needle = spec.substr.encode("utf-8")
        out.needle = needle.lower() if spec.icase else needle
    for i, pattern in enumerate(listed(spec.exclude)):
        try:
            rx = musl.compile(pattern, spec.icase)
        except RegexError as exc:
            key = "exclude" if isinstance(spec.exclude, str) else f"exclude[{i}]"
            raise fail(key, str(exc)) from None
        out.excludes += ((pattern, rx),)
    for topic in listed(spec.topics):
        if not _TOPIC.fullmatch(topic):
            raise fail(
                "topics",
                f"{topic!r} is not a RouterOS topic; topics are lower-case words "
                "such as account, firewall or error",
            )
    if spec.severity is not None:
        out.severity = _severity("severity", spec.severity, fail)
    for router in listed(spec.router):
        if not router.strip() or router != router.strip():
            raise fail("router", "must be an address or identity without spaces")
    out.text = split_mask(DEFAULT_TEXT if spec.text is None else spec.text, _TOKEN)
    out.key = split_mask(spec.threshold.key, _TOKEN) if spec.threshold else ()
    for key, parts in (("text", out.text), ("threshold.key", out.key)):
        _check_mask(key, parts, spec, groups, fail)
    if spec.threshold is not None:
        t = spec.threshold
        if t.window is None:
            if t.count > 1:
                raise fail(
                    "threshold.window",
                    f"is missing; count = {t.count} needs a window such as "
                    'window = "60s"',
                )
        else:
            out.window = _duration("threshold.window", t.window, fail)
    if spec.cooldown is not None:
        out.cooldown = _duration("cooldown", spec.cooldown, fail)
    if spec.quiet_hours is not None:
        q = spec.quiet_hours
        start = _clock("quiet_hours.from", q.start, fail)
        end = _clock("quiet_hours.to", q.end, fail)
        if start == end:
            raise fail(
                "quiet_hours.to", "is the same time as from; the hours are empty"
            )
        breaks = (
            None
            if q.except_severity is None
            else _severity("quiet_hours.except_severity", q.except_severity, fail)
        )
        out.quiet = Quiet(
            start=start, end=end, breaks_at=breaks, shown=f"{q.start}-{q.end}"
        )
    return out


def _duration(key: str, text: str, fail: Fail) -> float:
    try:
        return duration(text)
    except ValueError as exc:
        raise fail(key, str(exc)) from None


def _check_mask(
    key: str, parts: Sequence[Part], spec: Spec, groups: int, fail: Fail
) -> None:
    for p in parts:
        if p.field:
            name = p.field
            if name in FIELDS or (name.startswith("cef.") and len(name) > 4):
                continue
            raise fail(
                key,
                f"@{{{name}}} is not a field; use @{{"
                + "}, @{".join(FIELDS)
                + "}, or @@ for a literal @",
            )
        if p.group < 0:
            continue
        if p.group == 0:
            raise fail(
                key, "@0 is not a capture group; groups count from @1, and @@ is @"
            )
        if spec.regex is None:
            raise fail(
                key,
                f"@{p.group} names a capture group, but only a regex has them; "
                "write @@ for a literal @",
            )
        if p.group > groups:
            raise fail(
                key,
                f"@{p.group} names capture group {p.group}, but the regex has "
                + (f"{groups}; use @1 to @{groups}" if groups else "none")
                + " (write @@ for a literal @)",
            )


def lint(rule: FileRule) -> list[tuple[str, str]]:
    """(key, warning) for what compiles but is probably not meant."""
    found: list[tuple[str, str]] = []
    spec = rule.spec
    if spec.regex is not None:
        found += [("regex", w) for w in musl.lint(spec.regex, spec.icase)]
    for i, pattern in enumerate(listed(spec.exclude)):
        key = "exclude" if isinstance(spec.exclude, str) else f"exclude[{i}]"
        found += [(key, w) for w in musl.lint(pattern, spec.icase)]
    if spec.regex is None and spec.substr is None:
        if not rule.fields:
            found.append(
                (
                    "",
                    "has no regex, substr, topics, severity or router, so it "
                    "matches every message",
                )
            )
        elif not rule.topics:
            found.append(
                (
                    "",
                    "has no regex, substr or topics, so every message is parsed "
                    "for it (slower): add a substr or topics if you can",
                )
            )
    elif spec.substr == "" or spec.regex == "":
        found.append(
            (
                "substr" if spec.substr == "" else "regex",
                "is empty, so it matches every message",
            )
        )
    if rule.count > 1 and rule.window and rule.cooldown == 0:
        found.append(
            (
                "threshold",
                "has no cooldown, so every further run of "
                f'{rule.count} hits alerts again; add cooldown = "10m" to hold '
                "them and get one summary",
            )
        )
    return found
