"""compile() and lint(): musl's parse, analysed and emitted, run on google-re2.

This module holds the RE2 side: the options every pattern is compiled with, the
compiled program search() calls, the translations whose spans are read back as
musl's groups (re-splitting (x)+ and trying each branch choice where TRE and RE2
differ), and MuslRegex itself. The package's __init__ re-exports its public names;
the unit tests import this module itself to reach the RE2 binding (_re2_compile and
its public-API fallback).
"""

from __future__ import annotations

import itertools
import math
from typing import Final, Protocol, cast

import re2

from alertik.matcher.musl.analysis import (
    _NEVER,
    _ambiguous_groups,
    _Analysis,
    _NoExactForm,
    _restrict,
    _tre,
)
from alertik.matcher.musl.emitter import _Emitter
from alertik.matcher.musl.errors import RegexError, _Note
from alertik.matcher.musl.parser import _parse, _Parser
from alertik.matcher.musl.tree import _Alt, _dropped_groups, _Group

__all__ = [
    "MAX_DEPTH",
    "MAX_MEM",
    "OPTIONS",
    "MuslRegex",
    "RegexError",
    "compile",
    "lint",
]

# ---------------------------------------------------------------------------
# Engine options

# RE2's memory budget per pattern. Real rules compile to a few KiB; 8 MiB (RE2's
# default) lets even (x{255}){3}-sized patterns through, while a pattern that would
# need more fails at start-up instead of eating a small router's RAM later.
MAX_MEM: Final = 8 << 20

# Deepest AST nesting (groups, alternations, stacked quantifiers) we translate; the
# translator recurses once per level, and no real rule comes near it.
MAX_DEPTH: Final = 200


def _make_options() -> re2.Options:
    """The one RE2 configuration every translated pattern is compiled with."""
    options = re2.Options()
    options.longest_match = True  # POSIX leftmost-longest, as musl's regexec
    options.encoding = re2.Options.Encoding.LATIN1  # one byte = one char (C locale)
    options.log_errors = False  # errors become RegexError, not stderr noise
    options.max_mem = MAX_MEM
    return options


OPTIONS: re2.Options = _make_options()


class _Program(Protocol):
    """The slice of google-re2's compiled RE2 object that search() calls."""

    def Match(
        self, anchor: object, text: bytes, pos: int, endpos: int, /
    ) -> list[tuple[int, int]]: ...


class _PublicSearch:
    """A _Program built on re2's public API, if its private fast path ever moves."""

    __slots__ = ("_rx", "_unset")

    def __init__(self, rx: object, groups: int) -> None:
        """Wrap a compiled re2 pattern with `groups` capture groups."""
        self._rx = rx
        self._unset = [(-1, -1)] * (groups + 1)

    def Match(
        self, anchor: object, text: bytes, pos: int, endpos: int, /
    ) -> list[tuple[int, int]]:
        """Search (or fully match) text[pos:endpos]; all (-1, -1) if no match."""
        if anchor == _ANCHOR_BOTH:
            m = self._rx.fullmatch(text, pos, endpos)  # type: ignore[attr-defined]
        else:
            m = self._rx.search(text, pos, endpos)  # type: ignore[attr-defined]
        if m is None:
            return list(self._unset)
        return [m.span(i) for i in range(len(self._unset))]


# re2.search() goes through a generator and a Match object per call; the pybind11
# object's Match(anchor, text, pos, endpos) returns the spans directly and is ~30 %
# faster on the hot path. These are its anchors (stand-ins if re2 ever drops them).
_ANCHORS: Final[object] = getattr(re2, "_Anchor", None)
_UNANCHORED: Final[object] = getattr(_ANCHORS, "UNANCHORED", "unanchored")
_ANCHOR_BOTH: Final[object] = getattr(_ANCHORS, "ANCHOR_BOTH", "both")


def _re2_compile(translated: bytes, groups: int) -> _Program:
    """Compile for RE2 with OPTIONS; raises re2.error."""
    rx = re2.compile(translated, OPTIONS)
    raw = getattr(rx, "_regexp", None)
    if _ANCHORS is not None and callable(getattr(raw, "Match", None)):
        return cast(_Program, raw)
    return _PublicSearch(rx, groups)


# ---------------------------------------------------------------------------
# Reading musl's groups back from RE2's spans


class _Refiner:
    """Re-splits the iterations of one (x)+ or (x)* the way TRE does.

    Where RE2 fills each iteration greedily, TRE keeps the same overall extent but
    makes the last iteration, the one musl reports, as long as possible:
    (a{1,3})+ on aaaaa captures aaa, and ((\\d{1,3}\\.?)+) on 2001 captures 001.
    The refiner matches x*? then (x), anchored on the extent, with the earlier
    iterations as short as possible, and takes the groups of the last one.
    """

    __slots__ = ("match", "refiners", "slots")

    def __init__(self, group: _Group) -> None:
        """Compile the re-split pattern for the repeated group (raises re2.error)."""
        emitter = _Emitter()
        earlier = "(?:" + emitter.emit(group, prefix=True) + ")*?"
        text = (earlier + emitter.emit(group)).encode("latin-1")
        self.match = _re2_compile(text, emitter.count).Match
        self.slots = emitter.slots
        self.refiners = [(g, m, _Refiner(n)) for g, m, n in emitter.repeats]

    def apply(
        self, data: bytes, start: int, end: int, out: list[tuple[int, int]]
    ) -> None:
        """Re-split data[start:end], all iterations of the group, into out."""
        spans = self.match(_ANCHOR_BOTH, data, start, end)
        if spans[0][0] < 0:
            return  # cannot happen: the first pass matched exactly this text
        for group, slot in self.slots:
            out[group] = spans[slot]
        for slot, group, refiner in self.refiners:
            s, e = spans[slot]
            if s < e and out[group][0] != s:
                refiner.apply(data, s, e, out)


class _Translation:
    """One tree compiled for RE2, with what it takes to read musl's groups back."""

    __slots__ = ("identity", "match", "refiners", "slots", "text")

    def __init__(self, root: _Group, groups: int) -> None:
        """Emit and compile root, which has musl groups 1..groups (raises re2.error)."""
        emitter = _Emitter()
        self.text = emitter.root(root).encode("latin-1")
        self.match = _re2_compile(self.text, emitter.count).Match
        slots = [0] * (groups + 1)  # groups inside x{0} read group 0 (fixed later)
        for group, slot in emitter.slots:
            slots[group] = slot
        self.slots = tuple(slots)
        self.refiners = tuple((s, g, _Refiner(n)) for s, g, n in emitter.repeats)
        self.identity = self.slots == tuple(range(groups + 1)) and not self.refiners

    def resolve(
        self, data: bytes, spans: list[tuple[int, int]]
    ) -> list[tuple[int, int]]:
        """musl's group spans from RE2's spans of a match of this translation."""
        out = [spans[slot] for slot in self.slots]
        for slot, group, refiner in self.refiners:
            s, e = spans[slot]
            if s < e and out[group][0] != s:
                refiner.apply(data, s, e, out)
        return out


# At most this many variants are tried for groups like ([a-z]+|[a-z]+_[a-z]+):
# one per combination of their branches, each a further RE2 call per match.
_MAX_VARIANTS: Final = 16

# ... and only for patterns up to this size (RE2 text), so that a huge pattern is
# not compiled 17 times: each copy may take up to MAX_MEM.
_MAX_VARIANT_TEXT: Final = 4096


def _variants(
    main: _Translation, root: _Group, groups: int
) -> tuple[_Translation, ...]:
    """One translation per branch choice of the ambiguous groups, in RE2's order."""
    ambiguous = _ambiguous_groups(root)
    count = math.prod(_count_alts(g) for g in ambiguous)
    if not ambiguous or count > _MAX_VARIANTS or len(main.text) > _MAX_VARIANT_TEXT:
        return ()
    out = []
    for combo in itertools.product(*(range(_count_alts(g)) for g in ambiguous)):
        choice = {g.index: k for g, k in zip(ambiguous, combo, strict=True)}
        variant = _restrict(root, choice)
        assert isinstance(variant, _Group)
        out.append(_Translation(variant, groups))
    return tuple(out)


def _count_alts(group: _Group) -> int:
    """How many branches the alternation directly inside group has."""
    return len(cast(_Alt, group.child).alts)


# ---------------------------------------------------------------------------
# The public API

_UNSET: Final = (-1, -1)  # regexec's rm_so == rm_eo == -1: the group did not take part


class MuslRegex:
    """One EVENTn_MATCH_STR pattern, compiled; search() answers as musl's regexec."""

    __slots__ = (
        "_dropped",
        "_main",
        "_match",
        "_nested",
        "_plain",
        "_variants",
        "groups",
        "pattern",
        "translated",
    )

    pattern: str
    groups: int
    translated: bytes

    def __init__(self, pattern: str, parser: _Parser, root: _Group) -> None:
        """Use compile() instead; raises re2.error if RE2 refuses the translation."""
        self.pattern = pattern
        self.groups = parser.ngroups  # musl's re_nsub
        self._main = _Translation(root, self.groups)
        self.translated = self._main.text
        self._match = self._main.match
        # musl makes each group, left to right, as long as it can; where RE2 would
        # settle a group's branches by their order, every choice is tried instead.
        self._variants = _variants(self._main, root, self.groups)
        # Groups inside x{0}: musl reports them from tag 0, the match start.
        self._dropped = tuple(_dropped_groups(root))
        # musl clears a group that is not inside its parent group (e.g. one left
        # over from an earlier iteration of the parent): (group, parent) to check.
        self._nested = tuple(
            (g, p)
            for g, p in enumerate(parser.parents)
            if g > 0 and p > 0 and g not in self._dropped
        )
        self._plain = self._main.identity and not (
            self._variants or self._dropped or self._nested
        )

    def __repr__(self) -> str:
        """The pattern as given."""
        return f"MuslRegex({self.pattern!r})"

    def search(self, data: bytes) -> list[tuple[int, int]] | None:
        """None if no match; else spans for group 0..groups, (-1, -1) for unset groups (byte offsets)."""  # noqa: E501 - the API's own wording
        spans = self._match(_UNANCHORED, data, 0, len(data))
        if spans[0][0] < 0:
            return None
        if self._plain:
            return spans
        return self._finish(data, spans)

    def _finish(
        self, data: bytes, spans: list[tuple[int, int]]
    ) -> list[tuple[int, int]]:
        """Turn RE2's spans of a match into musl's (see _Translation, _variants)."""
        start, end = spans[0]
        out = self._main.resolve(data, spans)
        best: tuple[int, ...] | None = None
        for variant in self._variants:
            found = variant.match(_ANCHOR_BOTH, data, start, end)
            if found[0][0] < 0:
                continue
            candidate = variant.resolve(data, found)
            key = tuple(e - s if s >= 0 else -1 for s, e in candidate[1:])
            if best is None or key > best:
                best, out = key, candidate
        for g in self._dropped:
            out[g] = (start, start)
        for g, parent in self._nested:
            s, e = out[g]
            if s >= 0:
                ps, pe = out[parent]
                if s < ps or e > pe:
                    out[g] = _UNSET
        return out


def compile(pattern: str, icase: bool = False) -> MuslRegex:
    """Compile pattern as musl's regcomp(REG_EXTENDED), with REG_ICASE when
    icase; raises RegexError. (The name mirrors re.compile.)"""
    parser, root = _parse(pattern, icase)
    if root.depth > MAX_DEPTH:
        raise RegexError(
            f"the pattern nests groups and repetitions more than {MAX_DEPTH} levels "
            "deep; alertik refuses it (musl would accept it): simplify the pattern"
        )
    try:
        root = _Group(0, _tre(root.child))
    except _NoExactForm:
        raise RegexError(
            "an alternation has a branch that can match the empty string across "
            "^, $, \\b, \\B, \\< or \\>, followed by another branch that can also "
            "match the empty string; musl only ever uses the first of them for an "
            "empty match, which alertik cannot reproduce here: make the later branch "
            "match at least one character (e.g. a+ instead of a*)"
        ) from None
    for a in _Analysis(root).asserts:
        if a.refusal is not None:
            raise RegexError(a.refusal.format(pos=a.pos + 1))
    try:
        return MuslRegex(pattern, parser, root)
    except re2.error as exc:
        raise _re2_refusal(exc) from None


def _re2_refusal(exc: Exception) -> RegexError:
    """Explain why RE2 refused a translated pattern that musl accepts."""
    detail = exc.args[0] if exc.args else ""
    if isinstance(detail, bytes):
        detail = detail.decode("latin-1")
    if "repetition" in str(detail):
        return RegexError(
            "nested counted repetitions repeat too much: the linear-time engine "
            "allows at most 1000 copies in total, e.g. (x{255}){4} asks for 1020 "
            f"(musl would accept it; RE2 says: {detail}); use + or * for long runs"
        )
    if "too large" in str(detail) or "too big" in str(detail):
        return RegexError(
            "the pattern is too large for the linear-time engine (more than "
            f"{MAX_MEM >> 20} MiB compiled; musl would accept it): shorten it or "
            "replace long counted repetitions with + or *"
        )
    return RegexError(f"the linear-time engine refused the pattern: {detail}")


def lint(pattern: str, icase: bool = False) -> list[str]:
    """Warnings, each with a rewrite, for legal but likely-wrong constructs."""
    parser, root = _parse(pattern, icase)
    notes = list(parser.notes)
    if root.depth <= MAX_DEPTH:
        for a in _Analysis(root).asserts:
            if a.emit != _NEVER:
                continue
            if a.kind in "^$":
                edge, side = ("start", "before") if a.kind == "^" else ("end", "after")
                text = (
                    f"{a.kind} only matches at the very {edge} of the message, but "
                    f"something always comes {side} it here, so this part never "
                    f"matches: write \\{a.kind} for a literal '{a.kind}'"
                )
            else:
                text = (
                    f"\\{a.kind} can never hold here, so this part of the pattern "
                    "never matches: check the characters around it"
                )
            notes.append(_Note(a.pos, text))
    notes.sort(key=lambda n: n.pos)
    return [f"position {n.pos + 1}: {n.text}" for n in notes]
