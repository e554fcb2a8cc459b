"""Rules from the rules file: their typed form, and compiled, ready to match.

Pure: no sockets, no clock. ``common/rulesfile.py`` reads the file and knows
where each rule and key is; ``rulecompile.py`` decodes each ``[[rules]]``
table into a ``Spec`` (defined here) and compiles it into a ``FileRule``.

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
from collections.abc import Mapping, Sequence
from typing import Annotated

import msgspec

from alertik.common.schema import ParsedFields
from alertik.matcher.formats import parse
from alertik.matcher.musl import MuslRegex

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
# A threshold count up to 1,000 (each key keeps the times of its last
# `count` hits).
MAX_COUNT = 1000

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


def listed(value: str | tuple[str, ...]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else value


# --- the parts of a compiled rule -------------------------------------------------


class Part(msgspec.Struct, frozen=True):
    """A piece of a mask: literal text, a capture group, or a field."""

    literal: str = ""
    group: int = -1  # -1: not a group reference
    field: str = ""


def split_mask(text: str, token: re.Pattern[str]) -> tuple[Part, ...]:
    """Split a mask into literal text, group references and fields.

    token matches one reference: group 1 a group number, group 2 an ``@@``
    (a literal ``@``), group 3 a field name. Environment masks and the rules
    file's texts differ only in the field names their token accepts.
    """
    parts: list[Part] = []
    literal: list[str] = []

    def flush() -> None:
        if "".join(literal):
            parts.append(Part(literal="".join(literal)))
        literal.clear()

    pos = 0
    for m in token.finditer(text):
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
        compiled: Compiled,
        actions: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.name = spec.name
        self.spec = spec
        self.compiled = compiled  # shared with a reload's rule that reads alike
        self.actions = actions  # (name, address mask) of its action destinations
        self.where = where  # "rules.toml line 12, rule 'x'": for log lines
        self.notifiers = listed(spec.notify)
        # The actions among them, each with its address mask, and the rest,
        # which take messages (summaries and digests go to those only).
        self.addresses = compiled.addresses
        self.messages = tuple(n for n in self.notifiers if n not in self.addresses)
        self.needle = compiled.needle
        self.regex = compiled.regex
        self.icase = spec.icase
        self.excludes = compiled.excludes
        self.topics = listed(spec.topics)
        self.severity = compiled.severity
        self.routers = tuple(r.casefold() for r in listed(spec.router))
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


class Compiled(msgspec.Struct, kw_only=True):
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
            listed(spec.exclude),
            listed(spec.topics),
            spec.severity,
            listed(spec.router),
            key,
        ]
    )
    import hashlib  # only with a rules file: it costs a stage 4 MiB otherwise

    return spec.name + "/" + hashlib.sha256(data).hexdigest()[:16]
