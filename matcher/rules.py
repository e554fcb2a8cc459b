"""The rule engine: compile alertik's events, match a message, build the texts.

Pure: no sockets, no clock (the receive time is an argument). Used by the
matcher stage, by ``alertik test`` and by ``alertik check``.

Masks (EVENTn_MASK_MSG):

* ``@N`` / ``@NN`` is capture group N of a regex rule; two digits are read
  greedily, as alertik does, so ``@10`` is group 10. A group that matched
  nothing or did not take part expands to nothing.
* ``@@`` is a literal ``@`` in every mask (alertik kept ``@@`` as is in substr
  masks and in regex masks without groups, unlike its README).
* ``@{sender}`` is the address of the router that sent the message and
  ``@{node}`` the name of the ingest node that received it.
* ``@`` followed by anything else is a literal ``@`` (alertik silently sent
  nothing for a mask such as ``admin@example.com``).
* ``@N`` past the regex's group count, ``@0``, or any ``@N`` in a substr rule is
  a configuration error naming EVENTn_MASK_MSG.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from typing import Any, Protocol

import msgspec

from alertik.common.config import ConfigError, Rule, RulesFile, StaticRule
from alertik.matcher import musl, static
from alertik.matcher.musl import MuslRegex, RegexError
from alertik.matcher.rulecompile import compile_file
from alertik.matcher.rulefile import FileRule, Hit, Part, Presets, Record, split_mask

log = logging.getLogger(__name__)

_MASK_TOKEN = re.compile(r"@(?:([0-9][0-9]?)|(@)|\{(sender|node)\})")


# A piece of an environment rule's mask: the rules file's Part.
MaskPart = Part


class Match(msgspec.Struct, frozen=True, kw_only=True):
    """One rule that matched one message."""

    rule: str  # EVENTn or STATIC_EVENTn
    notifier: str
    body: str  # the expanded mask, before the time suffix
    captures: tuple[str | None, ...] = ()  # group 0..n; None = did not take part
    static: bool = False  # a static event: alertik words its time suffix apart
    notifiers: tuple[str, ...] = ()  # a file rule's destinations (notifier first)


def parse_mask(mask: str) -> tuple[MaskPart, ...]:
    """Split a mask into literal text, group references and placeholders."""
    return split_mask(mask, _MASK_TOKEN)


def expand(
    parts: Sequence[MaskPart],
    captures: Sequence[bytes | None],
    fields: dict[str, str],
) -> str:
    """Build a mask's text from its parts, the captured bytes and the fields."""
    out: list[str] = []
    for p in parts:
        if p.group >= 0:
            value = captures[p.group]
            if value:
                out.append(value.decode("utf-8", "replace"))
        elif p.field:
            out.append(fields.get(p.field, ""))
        else:
            out.append(p.literal)
    return "".join(out)


def time_suffix(fmt: str, received: float) -> str:
    """The text after the mask: alertik's ``, at: YYYY-MM-DD HH:MM:SS`` by default."""
    if not fmt:
        return ""
    return time.strftime(fmt, time.localtime(received))


class CompiledRule:
    """An environment event ready to match."""

    __slots__ = ("name", "needle", "parts", "regex", "rule")

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.name = rule.name
        self.needle: bytes = b""
        self.regex: MuslRegex | None = None
        if rule.match_type == "regex":
            try:
                self.regex = musl.compile(rule.match_str)
            except RegexError as exc:
                raise ConfigError(f"{rule.name}_MATCH_STR", str(exc)) from None
            groups = self.regex.groups
        else:
            self.needle = _env_bytes(rule.match_str)
            groups = 0
        self.parts = parse_mask(rule.mask)
        for p in self.parts:
            if p.group < 0:
                continue
            if p.group == 0:
                raise ConfigError(
                    f"{rule.name}_MASK_MSG",
                    "@0 is not a capture group; groups count from @1, "
                    "and @@ is a literal @",
                )
            if rule.match_type == "substr":
                raise ConfigError(
                    f"{rule.name}_MASK_MSG",
                    f"@{p.group} names a capture group, but substr rules have none; "
                    "write @@ for a literal @ or use a regex rule",
                )
            if p.group > groups:
                raise ConfigError(
                    f"{rule.name}_MASK_MSG",
                    f"@{p.group} names capture group {p.group}, but the regex has "
                    f"{groups}; use @1 to @{groups}"
                    if groups
                    else f"@{p.group} names a capture group, but the regex has none; "
                    "add ( ) around what to capture, or write @@ for a literal @",
                )

    def literal_pattern(self) -> bytes:
        """This rule as an RE2 pattern for the prefilter set."""
        if self.regex is not None:
            return self.regex.translated
        return b"".join(b"\\x%02x" % b for b in self.needle)

    def apply(self, raw: bytes, fields: dict[str, str]) -> Match | None:
        """Match this rule against raw; the Match, or None."""
        if self.regex is None:
            if self.needle not in raw:
                return None
            return Match(
                rule=self.name,
                notifier=self.rule.notifier,
                body=expand(self.parts, (), fields),
            )
        spans = self.regex.search(raw)
        if spans is None:
            return None
        captures = tuple(None if s < 0 else raw[s:e] for s, e in spans)
        return Match(
            rule=self.name,
            notifier=self.rule.notifier,
            body=expand(self.parts, captures, fields),
            captures=tuple(
                None if c is None else c.decode("utf-8", "replace") for c in captures
            ),
        )


def _env_bytes(text: str) -> bytes:
    """An environment string back to the bytes the user wrote."""
    return text.encode("utf-8", "surrogateescape")


class RuleSet:
    """All configured rules: static events, ``EVENTn_*``, then the rules file.

    ``scan`` tries every one against a message; ``match`` is the same for the
    stateless view (``alertik test``, the tests), file rules included as
    if each hit were an alert.
    """

    def __init__(
        self,
        rules: Sequence[Rule],
        static_rules: Sequence[StaticRule],
        file_rules: Sequence[FileRule] = (),
    ):
        self.rules = [CompiledRule(r) for r in rules]
        self.file_rules = list(file_rules)
        self.static = [static.EVENTS[s.index] for s in static_rules]
        self.static_notifiers = [s.notifier for s in static_rules]
        self._prefilter: Prefilter | None = None
        patterns: list[_Patterned] = [*self.rules, *self.file_rules]
        if len(patterns) > PREFILTER_FROM:
            self._prefilter = Prefilter.build(patterns)

    def __len__(self) -> int:
        return len(self.rules) + len(self.static) + len(self.file_rules)

    def scan(self, record: Record) -> tuple[list[Match], list[Hit]]:
        """Every rule that matches record: static events first, as alertik,
        then the EVENTn_* matches, then the rules file's hits."""
        raw = record.raw
        out: list[Match] = []
        if self.static:
            for event, notifier in zip(self.static, self.static_notifiers, strict=True):
                body = event.handle(raw)
                if body is not None:
                    out.append(
                        Match(
                            rule=event.name, notifier=notifier, body=body, static=True
                        )
                    )
        # Most messages end at the prefilter: no rule can match them.
        rules: Sequence[CompiledRule] = self.rules
        file_rules: Sequence[FileRule] = self.file_rules
        if self._prefilter is not None:
            found = self._prefilter.hits(raw)
            if found is not None:
                if not found:
                    return out, []
                n = len(rules)
                rules = [rules[i] for i in found if i < n]
                file_rules = [file_rules[i - n] for i in found if i >= n]
        if rules:
            fields = {"sender": record.sender, "node": record.node}
            for rule in rules:
                m = rule.apply(raw, fields)
                if m is not None:
                    out.append(m)
        hits: list[Hit] = []
        for file_rule in file_rules:
            hit = file_rule.check(record)
            if isinstance(hit, Hit):
                hits.append(hit)
        return out, hits

    def match(self, raw: bytes, fields: dict[str, str]) -> list[Match]:
        """Every rule that matches raw: static events first, as alertik."""
        record = Record(raw, fields.get("sender", ""), fields.get("node", ""))
        out, hits = self.scan(record)
        for hit in hits:
            out.append(
                Match(
                    rule=hit.rule.name,
                    notifier=hit.rule.notifiers[0],
                    body=hit.text(),
                    captures=tuple(
                        None if c is None else c.decode("utf-8", "replace")
                        for c in hit.captures
                    ),
                    notifiers=hit.rule.notifiers,
                )
            )
        return out


# Below this many rules, trying each one costs less than a set scan.
PREFILTER_FROM = 4
# Set parts are halved at most this often when RE2 refuses one (its program
# would pass MAX_MEM): 2**8 parts, beyond which rules are tried one by one.
MAX_SPLITS = 8
# The sentinel pattern every set holds: it matches any text, so a scan that
# reports nothing at all means RE2's DFA gave up (out of memory), never "no
# rule matches".
SENTINEL = b""


class Prefilter:
    """RE2 sets over every rule: a message is scanned once per set, not per rule.

    Normally one set holds every rule. When RE2 refuses to compile a set (too
    large), it is split in halves until each part compiles; a rule that no
    set takes is tried on every message. ``hits`` answers None when a set
    could not finish its scan (RE2's DFA ran out of its memory budget on that
    message): the caller then tries every rule, slower but never wrong.
    Matching stays linear in the message's length either way (RE2 has no
    backtracking), and messages are at most ALERTIK_MAX_MESSAGE_BYTES long.
    """

    def __init__(self, parts: list[tuple[Any, list[int]]], always: list[int]) -> None:
        self.parts = parts  # (compiled set, rule index of each set position)
        self.always = always  # rules no set could take
        self.gave_up = 0  # messages on which a set could not finish its scan
        # The usual case, one set and nothing else, gets a shortcut in hits().
        self._single = parts[0][0].Match if len(parts) == 1 and not always else None
        self._single_indices = parts[0][1]

    @classmethod
    def build(cls, rules: Sequence[_Patterned]) -> Prefilter | None:
        """Sets over rules, or None when not even halves of halves compile."""
        parts: list[tuple[Any, list[int]]] = []
        always: list[int] = []
        pending = [(list(range(len(rules))), 0)]
        while pending:
            indices, depth = pending.pop()
            compiled, error = _compile_set([rules[i] for i in indices])
            if compiled is not None:
                parts.append((compiled, indices))
            elif len(indices) > 1 and depth < MAX_SPLITS:
                half = len(indices) // 2
                pending.append((indices[half:], depth + 1))
                pending.append((indices[:half], depth + 1))
            else:
                always.extend(indices)
                log.warning(
                    "rule prefilter: %d rules (%s...) are tried one by one: %s",
                    len(indices),
                    rules[indices[0]].name,
                    error,
                )
        if not parts:
            return None
        if len(parts) > 1:
            log.info("rule prefilter: %d rules in %d sets", len(rules), len(parts))
        parts.sort(key=lambda p: p[1][0])
        return cls(parts, sorted(always))

    def hits(self, raw: bytes) -> list[int] | None:
        """Indices of the rules that may match raw, in order; None: try them all."""
        single = self._single
        if single is not None:
            found = single(raw)
            if not found:
                self._gave_up()
                return None
            if len(found) == 1:
                return []  # the sentinel alone
            indices = self._single_indices
            sentinel = len(indices)
            return sorted(indices[i] for i in found if i != sentinel)
        out = list(self.always)
        for compiled, indices in self.parts:
            found = compiled.Match(raw)
            if not found:
                self._gave_up()
                return None
            sentinel = len(indices)
            out.extend(indices[i] for i in found if i != sentinel)
        out.sort()
        return out

    def _gave_up(self) -> None:
        self.gave_up += 1
        if self.gave_up == 1:
            log.warning(
                "rule prefilter: RE2 ran out of memory scanning a message; such "
                "messages are matched rule by rule (slower, same result)"
            )
        return None


def _compile_set(rules: Sequence[_Patterned]) -> tuple[Any, str]:
    """One RE2 set over rules, plus the sentinel last; (None, why) if refused."""
    import re2

    s = re2.Set.SearchSet(musl.OPTIONS)
    try:
        for i, r in enumerate(rules):
            if s.Add(r.literal_pattern()) != i:
                raise re2.error(f"{r.name} got another index")
        s.Add(SENTINEL)
        s.Compile()
    except re2.error as exc:
        return None, str(exc)
    return s, ""


class _Patterned(Protocol):
    """What the prefilter needs of a rule."""

    name: str

    def literal_pattern(self) -> bytes: ...


def compile_rules(
    rules: Sequence[Rule],
    static_rules: Sequence[StaticRule],
    file: RulesFile | None = None,
    presets: Presets | None = None,
    reuse: Sequence[FileRule] = (),
) -> RuleSet:
    """Compile every rule; raise ConfigError naming the first bad variable
    (or the file, line, rule and key of the first bad rule in the file).
    reuse: file rules in use, whose compiled patterns rules that read the
    same take (compile_file)."""
    file_rules = compile_file(file, presets, reuse) if file is not None else []
    return RuleSet(rules, static_rules, file_rules)
