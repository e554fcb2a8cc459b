"""Rules from the rules file: decoded into typed structs, checked, compiled.

Pure: no sockets, no clock. ``common/rulesfile.py`` reads the file and knows
where each rule and key is; here each ``[[rules]]`` table, merged over its
preset (``{**PRESETS[name], **table}``), is decoded with ``msgspec`` into a
``Spec`` and compiled into a ``FileRule``. Every error is a ConfigError for
``ALERTIK_RULES_FILE`` naming the file, the line, the rule, the key and a fix.

A ``FileRule`` matches in steps, cheapest first, and stops at the first that
says no: the pattern (``regex`` or ``substr``; the RuleSet's prefilter has
usually ruled the line out already), the ``exclude`` patterns, then the
conditions on the record (``topics``, ``severity``, ``router``), which need the
header parsed: a line is parsed once, and only when a rule that needs it got
that far. What follows a match (threshold, cooldown, quiet hours) holds state
and is in ``gate.py``.

Texts and keys are masks: ``@N`` (capture group N), ``@@`` (a literal ``@``)
and ``@{field}``, one of FIELDS; ``@{cef.KEY}`` is a CEF field.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any

import msgspec

from alertik.common.config import ConfigError
from alertik.common.destinations import AddressListDestination
from alertik.common.rulesfile import RawRule, RulesFile, error
from alertik.common.schema import ParsedFields
from alertik.matcher import musl
from alertik.matcher.formats import parse
from alertik.matcher.musl import MuslRegex, RegexError
from alertik.matcher.presets import PRESETS

# Syslog severities by name (RFC 5424), most severe first; RouterOS topics
# use debug, info, warning, error and critical.
SEVERITIES = {
    "emergency": 0,
    "alert": 1,
    "critical": 2,
    "error": 3,
    "warning": 4,
    "notice": 5,
    "info": 6,
    "debug": 7,
}
SEVERITY_NAMES = {level: name for name, level in SEVERITIES.items()}

# What @{...} may name in a text or a key, and what each one is.
FIELDS = {
    "router": "the router's identity from the header, else its address",
    "sender": "the address the message came from",
    "hostname": "the identity in the header (empty if none)",
    "topics": "the RouterOS topics, comma-separated",
    "severity": "the severity's name (error, warning, ...)",
    "message": "the message without its header",
    "line": "the whole line as received",
    "format": "default, rfc3164, rfc5424, cef or unknown",
    "timestamp": "the time in the header, as the router wrote it (empty if none)",
    "facility": "the syslog facility's number (empty if none)",
    "app": "RFC 5424's APP-NAME, or the BSD tag (empty if none)",
    "procid": "RFC 5424's PROCID, or the BSD tag's [pid] (empty if none)",
    "msgid": "RFC 5424's MSGID (empty if none)",
    "structured_data": "RFC 5424's STRUCTURED-DATA, as sent (empty if none)",
    "rule": "the rule's name",
    "node": "the name of the ingest node that received it",
    "count": "how many hits the threshold counted (1 without one)",
    "cef.KEY": "a CEF field, e.g. @{cef.src} (empty if absent)",
}
# The fields that need the header parsed.
_HEADER = ("timestamp", "app", "procid", "msgid", "structured_data")
_PARSED = frozenset(
    {"router", "hostname", "topics", "severity", "message", "format", "facility"}
    | set(_HEADER)
)
_TOKEN = re.compile(r"@(?:([0-9][0-9]?)|(@)|\{([^{}]*)\})")
_TOPIC = re.compile(r"[a-z0-9][a-z0-9_-]*")
_DURATION = re.compile(r"(?:[0-9]+[smhd])+")
_DURATION_PART = re.compile(r"([0-9]+)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_CLOCK = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
# Bounds: a window or cooldown up to a year; a threshold count up to 1,000
# (each key keeps the times of its last `count` hits).
MAX_DURATION = 366 * 86400
MAX_COUNT = 1000
DEFAULT_TEXT = "@{rule}: @{message}"

Presets = Mapping[str, Mapping[str, object]]


# --- the typed form of a rule ---------------------------------------------------


class _Spec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of the rule structs: immutable, keyword-only, no unknown keys."""


class ThresholdSpec(_Spec, frozen=True, kw_only=True):
    count: Annotated[int, msgspec.Meta(ge=1, le=MAX_COUNT)]
    window: str | None = None
    key: str = ""


class QuietSpec(
    _Spec, frozen=True, kw_only=True, rename={"start": "from", "end": "to"}
):
    start: str
    end: str
    except_severity: str | None = None


class Spec(_Spec, frozen=True, kw_only=True):
    """One [[rules]] table, typed (the key names are the file's)."""

    name: str
    notify: str | tuple[str, ...]
    regex: str | None = None
    substr: str | None = None
    icase: bool = False
    exclude: str | tuple[str, ...] = ()
    topics: str | tuple[str, ...] = ()
    severity: str | None = None
    router: str | tuple[str, ...] = ()
    threshold: ThresholdSpec | None = None
    cooldown: str | None = None
    quiet_hours: QuietSpec | None = None
    text: str | None = None


KEYS = (*tuple(Spec.__struct_fields__), "preset")


def _listed(value: str | tuple[str, ...]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else value


# --- the parts of a compiled rule -------------------------------------------------


class Part(msgspec.Struct, frozen=True):
    """A piece of a mask: literal text, a capture group, or a field."""

    literal: str = ""
    group: int = -1
    field: str = ""


class Quiet(msgspec.Struct, frozen=True, kw_only=True):
    """Quiet hours in minutes after local midnight; end may be before start."""

    start: int
    end: int
    breaks_at: int | None  # this severity or a more severe one goes through
    shown: str  # "23:00-07:00"

    def active(self, minute: int) -> bool:
        """Whether minute (after local midnight) is within the quiet hours."""
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end

    def breaks_through(self, severity: int | None) -> bool:
        return (
            self.breaks_at is not None
            and severity is not None
            and severity <= self.breaks_at
        )


class Record:
    """One message as the rules see it; its header is parsed on first use."""

    __slots__ = ("_parsed", "node", "raw", "sender")

    def __init__(self, raw: bytes, sender: str, node: str) -> None:
        self.raw = raw
        self.sender = sender
        self.node = node
        self._parsed: ParsedFields | None = None

    @property
    def parsed(self) -> ParsedFields:
        if self._parsed is None:
            self._parsed = parse(self.raw)
        return self._parsed

    @property
    def was_parsed(self) -> ParsedFields | None:
        return self._parsed

    def field(self, name: str) -> str:
        """The value of @{name} for this record (rule and count are the rule's)."""
        if name == "sender":
            return self.sender
        if name == "node":
            return self.node
        if name == "line":
            return self.raw.decode("utf-8", "replace").rstrip("\r\n\x00")
        p = self.parsed
        if name == "router":
            return p.hostname or self.sender
        if name == "hostname":
            return p.hostname or ""
        if name == "topics":
            return ",".join(p.topics)
        if name == "severity":
            return SEVERITY_NAMES.get(p.severity, "") if p.severity is not None else ""
        if name == "message":
            return p.message or ""
        if name == "format":
            return p.format
        if name == "facility":
            return "" if p.facility is None else str(p.facility)
        if name in _HEADER:
            return getattr(p, name) or ""
        if name.startswith("cef."):
            return (p.cef or {}).get(name[4:], "")
        return ""


class Hit:
    """A FileRule that matched a record, with its captures."""

    __slots__ = ("captures", "key", "record", "rule")

    def __init__(
        self, rule: FileRule, record: Record, captures: Sequence[bytes | None]
    ) -> None:
        self.rule = rule
        self.record = record
        self.captures = captures
        self.key = rule.expand(rule.key, self, 1) if rule.key else ""

    def text(self, count: int = 1) -> str:
        return self.rule.expand(self.rule.text, self, count)

    @property
    def severity(self) -> int | None:
        return self.record.parsed.severity


class FileRule:
    """A rule of the rules file, ready to match."""

    __slots__ = (
        "actions",
        "addresses",
        "compiled",
        "cooldown",
        "count",
        "excludes",
        "fields",
        "icase",
        "identity",
        "key",
        "messages",
        "name",
        "needle",
        "notifiers",
        "quiet",
        "regex",
        "routers",
        "severity",
        "spec",
        "text",
        "topics",
        "where",
        "window",
    )

    def __init__(
        self,
        spec: Spec,
        where: str,
        compiled: _Compiled,
        actions: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.name = spec.name
        self.spec = spec
        self.compiled = compiled  # shared with a reload's rule that reads alike
        self.actions = actions  # (name, address mask) of its action destinations
        self.where = where  # "rules.toml line 12, rule 'x'": for log lines
        self.notifiers = _listed(spec.notify)
        # The actions among them, each with its address mask, and the rest,
        # which take messages (summaries and digests go to those only).
        self.addresses = compiled.addresses
        self.messages = tuple(n for n in self.notifiers if n not in self.addresses)
        self.needle = compiled.needle
        self.regex = compiled.regex
        self.icase = spec.icase
        self.excludes = compiled.excludes
        self.topics = _listed(spec.topics)
        self.severity = compiled.severity
        self.routers = tuple(r.casefold() for r in _listed(spec.router))
        self.text = compiled.text
        self.key = compiled.key
        self.count = spec.threshold.count if spec.threshold else 1
        self.window = compiled.window
        self.cooldown = compiled.cooldown
        self.quiet = compiled.quiet
        # Whether matching needs the header: the conditions do.
        self.fields = bool(self.topics or self.severity is not None or self.routers)
        self.identity = _identity(spec)

    def __repr__(self) -> str:
        return f"FileRule({self.name!r})"

    @property
    def stateful(self) -> bool:
        """Whether hits are counted or held (threshold, cooldown)."""
        return self.count > 1 or self.cooldown > 0

    def literal_pattern(self) -> bytes:
        """This rule as an RE2 pattern for the prefilter set: a superset of
        the lines it can match (a rule without a pattern: its first topic,
        which every format writes in the line; else every line)."""
        if self.regex is not None:
            return self.regex.translated
        needle = self.needle
        if not needle and self.topics:
            needle = self.topics[0].encode()
        pattern = b"".join(b"\\x%02x" % b for b in needle)
        return b"(?i)" + pattern if self.icase and needle else pattern

    def check(self, record: Record) -> Hit | str:
        """The Hit if this rule matches record, else why not (for alertik test)."""
        raw = record.raw
        captures: Sequence[bytes | None] = ()
        if self.regex is not None:
            spans = self.regex.search(raw)
            if spans is None:
                return "no match"
            captures = tuple(None if s < 0 else raw[s:e] for s, e in spans)
        elif self.needle:
            if self.icase:
                if self.needle not in raw.lower():
                    return "no match"
            elif self.needle not in raw:
                return "no match"
        for pattern, rx in self.excludes:
            if rx.search(raw) is not None:
                return f"vetoed by exclude {pattern}"
        if self.fields:
            why = self._conditions(record)
            if why:
                return why
        return Hit(self, record, captures)

    def _conditions(self, record: Record) -> str:
        p = record.parsed
        for topic in self.topics:
            if topic not in p.topics:
                shown = ",".join(p.topics) or "none"
                return f"topics ({shown}) lack {topic}"
        if self.severity is not None:
            if p.severity is None:
                return "the line has no severity"
            if p.severity > self.severity:
                return (
                    f"severity {SEVERITY_NAMES[p.severity]} is below "
                    f"{SEVERITY_NAMES[self.severity]}"
                )
        if self.routers:
            names = {record.sender.casefold()}
            if p.hostname:
                names.add(p.hostname.casefold())
            if not names.intersection(self.routers):
                return f"router {p.hostname or record.sender} is not listed"
        return ""

    def expand(self, parts: Sequence[Part], hit: Hit, count: int) -> str:
        out: list[str] = []
        for p in parts:
            if p.group >= 0:
                value = hit.captures[p.group] if p.group < len(hit.captures) else None
                if value:
                    out.append(value.decode("utf-8", "replace"))
            elif p.field == "rule":
                out.append(self.name)
            elif p.field == "count":
                out.append(str(count))
            elif p.field:
                out.append(hit.record.field(p.field))
            else:
                out.append(p.literal)
        return "".join(out)


class _Compiled(msgspec.Struct, kw_only=True):
    addresses: dict[str, tuple[Part, ...]] = {}
    needle: bytes = b""
    regex: MuslRegex | None = None
    excludes: tuple[tuple[str, MuslRegex], ...] = ()
    severity: int | None = None
    text: tuple[Part, ...] = ()
    key: tuple[Part, ...] = ()
    window: float = 0.0
    cooldown: float = 0.0
    quiet: Quiet | None = None


def _identity(spec: Spec) -> str:
    """What makes two versions of a rule the same rule for its counters: its
    name, what it matches and how it keys its hits (not count, window,
    cooldown, text, notify or quiet hours)."""
    key = spec.threshold.key if spec.threshold else ""
    data = msgspec.json.encode(
        [
            spec.name,
            spec.regex,
            spec.substr,
            spec.icase,
            _listed(spec.exclude),
            _listed(spec.topics),
            spec.severity,
            _listed(spec.router),
            key,
        ]
    )
    import hashlib  # only with a rules file: it costs a stage 4 MiB otherwise

    return spec.name + "/" + hashlib.sha256(data).hexdigest()[:16]


# --- decoding and checking ----------------------------------------------------------


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


Done = Mapping[tuple["Spec", tuple[tuple[str, str], ...]], "_Compiled"]


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
        for name in _listed(spec.notify)
        if name in (actions or {})
    )
    same = (done or {}).get((spec, masks))
    if same is not None:
        return FileRule(spec, _short(path, raw), same, masks)
    compiled = _compile(spec, fail)
    groups = compiled.regex.groups if compiled.regex is not None else 0
    for name, mask in masks:
        parts = _mask("notify", mask)

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


def _compile(spec: Spec, fail: Fail) -> _Compiled:
    out = _Compiled()
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
    for i, pattern in enumerate(_listed(spec.exclude)):
        try:
            rx = musl.compile(pattern, spec.icase)
        except RegexError as exc:
            key = "exclude" if isinstance(spec.exclude, str) else f"exclude[{i}]"
            raise fail(key, str(exc)) from None
        out.excludes += ((pattern, rx),)
    for topic in _listed(spec.topics):
        if not _TOPIC.fullmatch(topic):
            raise fail(
                "topics",
                f"{topic!r} is not a RouterOS topic; topics are lower-case words "
                "such as account, firewall or error",
            )
    if spec.severity is not None:
        out.severity = _severity("severity", spec.severity, fail)
    for router in _listed(spec.router):
        if not router.strip() or router != router.strip():
            raise fail("router", "must be an address or identity without spaces")
    out.text = _mask("text", DEFAULT_TEXT if spec.text is None else spec.text)
    out.key = _mask("threshold.key", spec.threshold.key) if spec.threshold else ()
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


def _mask(key: str, text: str) -> tuple[Part, ...]:
    parts: list[Part] = []
    literal: list[str] = []

    def flush() -> None:
        if "".join(literal):
            parts.append(Part(literal="".join(literal)))
        literal.clear()

    pos = 0
    for m in _TOKEN.finditer(text):
        literal.append(text[pos : m.start()])
        pos = m.end()
        if m.group(1) is not None:
            flush()
            parts.append(Part(group=int(m.group(1))))
        elif m.group(2) is not None:
            literal.append("@")
        else:
            flush()
            parts.append(Part(field=m.group(3)))
    literal.append(text[pos:])
    flush()
    return tuple(parts)


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
    for i, pattern in enumerate(_listed(spec.exclude)):
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
