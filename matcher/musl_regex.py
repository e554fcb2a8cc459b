"""musl's POSIX ERE dialect for EVENTn_MATCH_STR, exactly, on RE2 in linear time.

alertik's official image is a static musl binary: every regex event is
``regcomp(pattern, REG_EXTENDED)`` (musl's TRE) in the C locale, searched with
``regexec``. Admins' rules must keep behaving byte for byte the same here, so this
module

* parses the pattern exactly as musl's ``tre_parse`` does, accepting and rejecting
  the same patterns (a rejection raises :class:`RegexError` quoting musl's own
  error text);
* emits an explicit, unambiguous pattern for google-re2 (``import re2``), compiled
  with :data:`OPTIONS` (leftmost-longest, Latin-1, i.e. one byte is one character)
  and searched on bytes, so no input can make a search slower than linear;
* makes RE2 pick the same submatches as TRE where the two differ: fixed-string
  alternatives are emitted longest first (``(ether|ether1)`` on ``ether12``
  captures ``ether1``); a group with other alternatives, like
  ``([a-z]+|[a-z]+_[a-z]+)``, is settled by trying each branch and keeping the
  longest groups, left to right; the last iteration of ``(x)+`` is made as long
  as TRE makes it (``(a{1,3})+`` on ``aaaaa`` captures ``aaa``); a nullable part
  is skipped only along TRE's one empty path (so ``$?`` means ``$``); and after
  each match a group that is not inside its parent group's span, or whose parent
  is unset, is cleared. These extra steps cost RE2 calls only when there is a
  match; a line that does not match costs one RE2 search.

The dialect, in short (details in tests/unit/test_musl_regex.py and the musl
oracle under tests/oracle/):

* ``\\d \\D \\w \\W \\s \\S`` and all twelve ``[[:class:]]`` are ASCII only; ``\\s``
  includes ``\\v``. ``\\t \\n \\r \\f \\a \\e \\xHH \\x{H...}`` are characters; ``\\v``
  is the letter v; ``\\1``..``\\9`` are digits (no back-references in ERE); any
  other escaped character is itself. Inside brackets a backslash is a literal.
* ``.`` and negated brackets match every byte, newline and 0x80-0xFF included.
* ``*? +? ??`` are not lazy: stacked quantifiers nest and stay greedy.
* ``^``/``$`` only match at the very start/end of the message (``$`` not before a
  final newline). An unmatched ``)`` is a literal; empty groups and branches are
  allowed. ``x{0}`` drops x, but musl still reports each group inside it as an
  empty span at the start of the match, even on a branch that did not match.
* Positions in error and lint messages count bytes of the pattern, from 1.
* ``\\b`` holds at every word boundary and, a TRE quirk, always at the start and
  end of the message. ``\\<``, ``\\>`` and ``\\B`` are accepted wherever RE2 can
  express them exactly (``\\<`` right before something that can only start with a
  letter, digit or ``_``, ``\\>`` right after something that can only end with one,
  and ``\\B`` between two characters that are surely there); any other use is
  refused with a RegexError that says how to rewrite it.

Deliberate differences from alertik (which matches a NUL-terminated copy of the
first 2047 bytes): messages are searched whole, and a NUL byte is an ordinary
character. ``.``, negated brackets, ``\\D``/``\\W``/``\\S``, ``[[:cntrl:]]`` and
``\\x00`` match it, and it is not a word character, so a NUL in the middle of a
datagram no longer hides the rest of it. On lines without NUL this changes nothing.

Patterns that musl accepts but this engine refuses (always with a RegexError at
start-up, never a crash): ``\\<``/``\\>``/``\\B`` with no exact form, nested counted
repetitions beyond RE2's limit of 1000 copies (e.g. ``(x{255}){4}``), patterns whose
compiled program exceeds :data:`MAX_MEM`, and patterns nested deeper than
:data:`MAX_DEPTH` levels. One TRE quirk is not reproduced: on ``(a|ab)(c|bcd)(d*)``
musl splits ``abcd`` as a|bcd|"" where RE2 gives ab|c|d.
"""

from __future__ import annotations

import itertools
import math
import os
from typing import Final, Protocol, cast

import re2

__all__ = [
    "MAX_DEPTH",
    "MAX_MEM",
    "OPTIONS",
    "MuslRegex",
    "RegexError",
    "compile",
    "lint",
]


class RegexError(ValueError):
    """A pattern musl rejects, or one alertik cannot run exactly in linear time."""


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

    def Match(  # noqa: N802 - google-re2's own name
        self, anchor: object, text: bytes, pos: int, endpos: int, /
    ) -> list[tuple[int, int]]: ...


class _PublicSearch:
    """A _Program built on re2's public API, if its private fast path ever moves."""

    __slots__ = ("_rx", "_unset")

    def __init__(self, rx: object, groups: int) -> None:
        """Wrap a compiled re2 pattern with `groups` capture groups."""
        self._rx = rx
        self._unset = [(-1, -1)] * (groups + 1)

    def Match(  # noqa: N802 - mirrors _Program
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
# Byte sets (an int with bit b set when byte b is in the set)


def _mask(*ranges: tuple[int, int]) -> int:
    """The byte set of the given inclusive (lo, hi) byte ranges."""
    m = 0
    for lo, hi in ranges:
        m |= ((1 << (hi - lo + 1)) - 1) << lo
    return m


_ALL: Final = _mask((0x00, 0xFF))
_DIGIT: Final = _mask((0x30, 0x39))
_UPPER: Final = _mask((0x41, 0x5A))
_LOWER: Final = _mask((0x61, 0x7A))
_ALPHA: Final = _UPPER | _LOWER
_ALNUM: Final = _ALPHA | _DIGIT
_GRAPH: Final = _mask((0x21, 0x7E))
_SPACE: Final = _mask((0x09, 0x0D), (0x20, 0x20))
# TRE's IS_WORD_CHAR: '_' or iswalnum(); input bytes >= 0x80 are U+DF80.. (not alnum).
_WORD: Final = _ALNUM | _mask((0x5F, 0x5F))

# musl's wctype() names with their C-locale members. musl maps input bytes >= 0x80
# to U+DF80-U+DFFF, which no class contains, so every class is ASCII only. Byte 0 is
# code point 0 (a control character), which musl never sees but we do (NUL note).
_CLASSES: Final[dict[bytes, int]] = {
    b"alnum": _ALNUM,
    b"alpha": _ALPHA,
    b"blank": _mask((0x09, 0x09), (0x20, 0x20)),
    b"cntrl": _mask((0x00, 0x1F), (0x7F, 0x7F)),
    b"digit": _DIGIT,
    b"graph": _GRAPH,
    b"lower": _LOWER,
    b"print": _mask((0x20, 0x7E)),
    b"punct": _GRAPH & ~_ALNUM,
    b"space": _SPACE,
    b"upper": _UPPER,
    b"xdigit": _DIGIT | _mask((0x41, 0x46), (0x61, 0x66)),
}

# musl's tre_macros: backslash escapes that stand for one character or one class.
_MACROS: Final[dict[int, int]] = {
    ord("t"): 1 << 0x09,
    ord("n"): 1 << 0x0A,
    ord("r"): 1 << 0x0D,
    ord("f"): 1 << 0x0C,
    ord("a"): 1 << 0x07,
    ord("e"): 1 << 0x1B,
    ord("w"): _WORD,
    ord("W"): _ALL & ~_WORD,
    ord("s"): _SPACE,
    ord("S"): _ALL & ~_SPACE,
    ord("d"): _DIGIT,
    ord("D"): _ALL & ~_DIGIT,
}

# In the C locale musl reads a byte b >= 0x80 as the code point 0xDF00 + b.
_HIGH_BASE: Final = 0xDF00

# musl's RE_DUP_MAX: the largest count allowed in {n,m}.
_DUP_MAX: Final = 255

# musl's CHARCLASS_NAME_MAX: how far it looks for the ':' that ends [:name:].
_CLASS_NAME_MAX: Final = 14

# musl's MAX_NEG_CLASSES: a negated bracket may name at most this many classes.
_MAX_NEG_CLASSES: Final = 64

# musl's regerror() texts, quoted in our messages so admins can match them up.
_BADRPT: Final = "Repetition not preceded by valid expression"
_BADBR: Final = "Invalid contents of {}"
_EBRACE: Final = "Missing '}'"
_EBRACK: Final = "Missing ']'"
_EPAREN: Final = "Missing ')'"
_ERANGE: Final = "Invalid character range"
_ECTYPE: Final = "Unknown character class name"
_ECOLLATE: Final = "Unknown collating element"
_EESCAPE: Final = "Trailing backslash"
_ESPACE: Final = "Out of memory"


def _code_point(b: int) -> int:
    """The code point musl's C-locale mbtowc gives pattern or input byte b."""
    return b if b < 0x80 else _HIGH_BASE + b


def _cp_range_mask(lo: int, hi: int) -> int:
    """The bytes whose code points lie in [lo, hi]."""
    m = 0
    if lo <= 0x7F:
        m |= _mask((lo, min(hi, 0x7F)))
    a, b = max(lo, _HIGH_BASE + 0x80), min(hi, _HIGH_BASE + 0xFF)
    if a <= b:
        m |= _mask((a - _HIGH_BASE, b - _HIGH_BASE))
    return m


def _ranges(m: int) -> list[tuple[int, int]]:
    """The set as sorted inclusive byte ranges."""
    out: list[tuple[int, int]] = []
    b = 0
    while m >> b:
        if (m >> b) & 1:
            start = b
            while (m >> (b + 1)) & 1:
                b += 1
            out.append((start, b))
        b += 1
    return out


# RE2's metacharacters outside brackets, escaped with a backslash; other printable
# ASCII stays as is, everything else becomes \xHH (a byte, in Latin-1 mode).
_RE2_SPECIAL: Final = frozenset(b"\\.+*?()|[]{}^$")

# The same inside brackets ('[' too, so RE2 never sees a [:class:]).
_RE2_CLASS_SPECIAL: Final = frozenset(b"\\]^-[")


def _re2_byte(b: int) -> str:
    """One byte as an RE2 literal outside brackets."""
    if 0x20 <= b <= 0x7E:
        return "\\" + chr(b) if b in _RE2_SPECIAL else chr(b)
    return f"\\x{b:02x}"


def _re2_class_byte(b: int) -> str:
    """One byte inside an RE2 bracket."""
    if 0x20 <= b <= 0x7E and b not in _RE2_CLASS_SPECIAL:
        return chr(b)
    return f"\\x{b:02x}"


def _re2_set(m: int) -> str:
    """A byte set as one RE2 atom (literal, explicit class, or never-matching class)."""
    if m == 0:
        return r"[^\x00-\xff]"
    if m & (m - 1) == 0:
        return _re2_byte(m.bit_length() - 1)
    parts = []
    for lo, hi in _ranges(m):
        parts.append(_re2_class_byte(lo))
        if hi > lo:
            parts.append(("" if hi == lo + 1 else "-") + _re2_class_byte(hi))
    return "[" + "".join(parts) + "]"


# ---------------------------------------------------------------------------
# The AST (what tre_parse builds), with first/last/nullable computed on creation


class _Node:
    """A node of musl's parse tree."""

    __slots__ = ("nullable", "first", "last", "depth")

    nullable: bool  # can match the empty string
    first: int  # bytes a non-empty match can start with
    last: int  # bytes a non-empty match can end with
    depth: int  # levels of nesting below and including this node


class _Set(_Node):
    """One character out of a byte set (a literal is a one-byte set)."""

    __slots__ = ("mask",)

    def __init__(self, mask: int) -> None:
        """Match one byte of mask."""
        self.mask = mask
        self.nullable, self.first, self.last, self.depth = False, mask, mask, 1


class _Empty(_Node):
    """The empty string (empty branch, empty group body, x{0} without groups)."""

    __slots__ = ()

    def __init__(self) -> None:
        """Match the empty string."""
        self.nullable, self.first, self.last, self.depth = True, 0, 0, 1


class _Dropped(_Node):
    """x{0} with groups inside: musl drops x, but still reports its groups."""

    __slots__ = ("groups",)

    def __init__(self, groups: list[int]) -> None:
        """Match the empty string; keep the numbers of the dropped groups."""
        self.groups = groups
        self.nullable, self.first, self.last, self.depth = True, 0, 0, 1


class _Assert(_Node):
    """^, $, \\b, \\B, \\< or \\>, with the RE2 text chosen by _Analysis."""

    __slots__ = ("kind", "pos", "emit", "refusal")

    def __init__(self, kind: str, pos: int) -> None:
        """An assertion written at byte offset pos of the pattern."""
        self.kind, self.pos = kind, pos
        self.emit = {"^": "^", "$": "$"}.get(kind, "")
        self.refusal: str | None = None
        self.nullable, self.first, self.last, self.depth = True, 0, 0, 1


class _Group(_Node):
    """A capture group (musl numbers them by the position of their '(')."""

    __slots__ = ("index", "child")

    def __init__(self, index: int, child: _Node) -> None:
        """Group number index around child."""
        self.index, self.child = index, child
        self.nullable, self.first, self.last = child.nullable, child.first, child.last
        self.depth = child.depth + 1


class _Repeat(_Node):
    """child{lo,hi}; hi == -1 means unbounded."""

    __slots__ = ("child", "lo", "hi")

    def __init__(self, child: _Node, lo: int, hi: int) -> None:
        """Repeat child between lo and hi times."""
        self.child, self.lo, self.hi = child, lo, hi
        self.nullable = lo == 0 or child.nullable
        self.first, self.last = child.first, child.last
        self.depth = child.depth + 1


class _Cat(_Node):
    """A concatenation of two or more nodes."""

    __slots__ = ("items",)

    def __init__(self, items: list[_Node]) -> None:
        """Match items one after another."""
        self.items = items
        self.first = self.last = 0
        for item in items:
            self.first |= item.first
            if not item.nullable:
                break
        for item in reversed(items):
            self.last |= item.last
            if not item.nullable:
                break
        self.nullable = all(item.nullable for item in items)
        self.depth = max(item.depth for item in items) + 1


class _Alt(_Node):
    """An alternation of two or more branches, in the order RE2 should try them."""

    __slots__ = ("alts",)

    @staticmethod
    def fixed(alts: list[_Node]) -> bool:
        """Whether every branch is a fixed string (literals only)."""
        return all(_fixed_length(a) >= 0 for a in alts)

    def __init__(self, alts: list[_Node]) -> None:
        """Match any of alts."""
        fixed = [_fixed_length(a) for a in alts]
        if all(n >= 0 for n in fixed):
            # RE2 breaks submatch ties by branch order, musl prefers the longer
            # earlier group: trying longer fixed strings first makes them agree.
            order = sorted(range(len(alts)), key=lambda k: -fixed[k])
            alts = [alts[k] for k in order]
        self.alts = alts
        self.nullable = any(a.nullable for a in alts)
        self.first = self.last = 0
        for a in alts:
            self.first |= a.first
            self.last |= a.last
        self.depth = max(a.depth for a in alts) + 1


def _fixed_length(node: _Node) -> int:
    """Length of node if it is a fixed string (literals only), else -1."""
    items = node.items if isinstance(node, _Cat) else [node]
    for item in items:
        if isinstance(item, _Empty):
            continue
        if not isinstance(item, _Set) or item.mask & (item.mask - 1) or not item.mask:
            return -1
    return sum(isinstance(item, _Set) for item in items)


def _cat(items: list[_Node]) -> _Node:
    """A branch from its items (musl's catenation)."""
    items = [i for i in items if not isinstance(i, _Empty)] or [_Empty()]
    return items[0] if len(items) == 1 else _Cat(items)


def _alt(branches: list[_Node]) -> _Node:
    """A union from its branches (musl's union)."""
    return branches[0] if len(branches) == 1 else _Alt(branches)


def _groups_in(node: _Node) -> list[int]:
    """Numbers of the groups inside node, in order."""
    out: list[int] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, _Group):
            out.append(n.index)
            stack.append(n.child)
        elif isinstance(n, _Repeat):
            stack.append(n.child)
        elif isinstance(n, _Cat):
            stack.extend(n.items)
        elif isinstance(n, _Alt):
            stack.extend(n.alts)
        elif isinstance(n, _Dropped):
            out.extend(n.groups)
    return sorted(out)


# ---------------------------------------------------------------------------
# The parser: musl's tre_parse / parse_atom / parse_bracket / parse_dup, step for step


class _Note:
    """Something lint() reports: a legal construct that is likely a mistake."""

    __slots__ = ("pos", "text")

    def __init__(self, pos: int, text: str) -> None:
        """A warning about pattern byte offset pos."""
        self.pos, self.text = pos, text


class _Parser:
    """Parses one pattern the way musl's regcomp(REG_EXTENDED) does."""

    def __init__(self, pattern: bytes) -> None:
        """Prepare to parse pattern (raw bytes, no NUL)."""
        self.p = pattern
        self.ngroups = 0
        self.parents: list[int] = [0]  # parents[g] = enclosing group of group g
        self.notes: list[_Note] = []
        self.top_bars: list[int] = []  # offsets of the '|' outside any group

    def at(self, i: int) -> int:
        """Byte i of the pattern, 0 past the end (C's NUL terminator)."""
        return self.p[i] if i < len(self.p) else 0

    def fail(self, pos: int, what: str, musl: str, fix: str) -> RegexError:
        """A RegexError for a pattern musl rejects, in the house wording."""
        return RegexError(
            f"position {pos + 1}: {what}; musl rejects it ({musl}): {fix}"
        )

    def parse(self) -> _Node:
        """Parse the whole pattern into a tree whose root is group 0."""
        at = self.at
        # One frame per open '(': (finished branches, current branch, group, offset).
        stack: list[tuple[list[_Node], list[_Node], int, int]] = []
        branches: list[_Node] = []
        branch: list[_Node] = []
        i = 0
        while True:
            c = at(i)
            if c == 0x28:  # '('
                self.ngroups += 1
                self.parents.append(stack[-1][2] if stack else 0)
                stack.append((branches, branch, self.ngroups, i))
                branches, branch = [], []
                i += 1
                continue
            if c == 0x29 and stack:  # ')' closing an empty branch: "()" "(a|)"
                node: _Node = _Empty()
            else:
                node, i = self.atom(i)
            while True:  # musl's parse_iter, re-entered after each ')'
                node, i = self.repeats(node, i)
                branch.append(node)
                c = at(i)
                if not (c == 0x7C or (c == 0x29 and stack) or c == 0):
                    break
                branches.append(_cat(branch))
                branch = []
                if c == 0x7C:  # '|'
                    if not stack:
                        self.top_bars.append(i)
                    i += 1
                    break
                union = _alt(branches)
                if not stack:  # end of pattern at depth 0: done
                    self.note_empty_branches(branches)
                    return _Group(0, union)
                if c == 0:
                    pos = stack[-1][3]
                    raise self.fail(
                        pos,
                        "'(' is never closed",
                        _EPAREN,
                        "add the missing ')', or write \\( to match a literal '('",
                    )
                i += 1
                branches, branch, index, _ = stack.pop()
                node = _Group(index, union)

    def note_empty_branches(self, branches: list[_Node]) -> None:
        """Warn when a top-level branch is empty: the rule then matches every line."""
        if len(self.p) == 0:
            self.notes.append(
                _Note(0, "the pattern is empty, so it matches every message")
            )
        elif len(branches) > 1 and any(isinstance(b, _Empty) for b in branches):
            self.notes.append(
                _Note(
                    self.top_bars[0],
                    "the pattern has an empty alternative (a leading, trailing or "
                    "doubled '|'), so it matches every message: remove the extra '|'",
                )
            )

    def atom(self, i: int) -> tuple[_Node, int]:
        """musl's parse_atom: one atom starting at i."""
        at = self.at
        c = at(i)
        if c == 0x5B:  # '['
            return self.bracket(i)
        if c == 0x5C:  # '\\'
            return self.escape(i)
        if c == 0x2E:  # '.'
            return _Set(_ALL), i + 1
        if c == 0x5E:  # '^'
            return _Assert("^", i), i + 1
        if c == 0x24:  # '$'
            return _Assert("$", i), i + 1
        if c in b"*+?{":
            raise self.nothing_to_repeat(i)
        if c == 0x7C or c == 0:  # empty branch
            return _Empty(), i
        if c == 0x29:  # ')' without an open group is a literal
            self.notes.append(
                _Note(i, "this ')' closes no group, so it is a literal ')': write \\)")
            )
        return _Set(1 << c), i + 1

    def nothing_to_repeat(self, i: int) -> RegexError:
        """The REG_BADRPT error for a quantifier with nothing before it."""
        c = chr(self.at(i))
        if c == "?" and i > 0 and self.at(i - 1) == 0x28:
            return self.fail(
                i - 1,
                f"{self.p[i - 1 : i + 2].decode('latin-1')} is not POSIX",
                _BADRPT,
                "(?:...), (?i), (?P<name>...) and look-arounds do not exist here; "
                "use a plain group (...)",
            )
        where = "at the start of the pattern"
        if i > 0 and self.at(i - 1) == 0x28:
            where = "right after '('"
        elif i > 0 and self.at(i - 1) == 0x7C:
            where = "right after '|'"
        return self.fail(
            i,
            f"'{c}' {where} has nothing to repeat",
            _BADRPT,
            f"write \\{c} to match a literal '{c}'",
        )

    def escape(self, i: int) -> tuple[_Node, int]:
        """A backslash outside brackets (macros, assertions, \\x, literals)."""
        d = self.at(i + 1)
        macro = _MACROS.get(d)
        if macro is not None:
            return _Set(macro), i + 2
        if d == 0:
            raise self.fail(
                i,
                "the pattern ends with a lone backslash",
                _EESCAPE,
                "write \\\\ to match a backslash",
            )
        kind = {0x62: "b", 0x42: "B", 0x3C: "<", 0x3E: ">"}.get(d)
        if kind is not None:
            return _Assert(kind, i), i + 2
        if d == 0x78:  # 'x'
            return self.hex_escape(i)
        ch = chr(d)
        if ch in "123456789":
            self.notes.append(
                _Note(
                    i,
                    f"\\{ch} is not a back-reference: musl's extended regexes have "
                    f"none, so it matches the digit {ch}; write {ch} if that is meant",
                )
            )
        elif ch == "v":
            self.notes.append(
                _Note(
                    i,
                    "\\v is the letter v in musl, not a vertical tab; write v, or "
                    "[[:space:]] for any whitespace",
                )
            )
        elif ch.isascii() and ch.isalnum():
            self.notes.append(
                _Note(
                    i,
                    f"\\{ch} has no special meaning in musl and matches the "
                    f"character {ch}; write {ch} (musl knows \\d \\D \\w \\W \\s \\S "
                    "\\b \\B \\< \\> \\t \\n \\r \\f \\a \\e \\xHH and nothing else)",
                )
            )
        return _Set(1 << d), i + 2

    def hex_escape(self, i: int) -> tuple[_Node, int]:
        """\\xHH (up to 2 digits) or \\x{H...} (up to 8), as musl reads them."""
        j = i + 2
        width = 2
        if self.at(j) == 0x7B:  # '{'
            width = 8
            j += 1
        value = k = 0
        while k < width and value < 0x110000:
            h = self.at(j + k)
            digit = int(chr(h), 16) if chr(h) in "0123456789abcdefABCDEF" else -1
            if h == 0 or digit < 0:
                break
            value = 16 * value + digit
            k += 1
        j += k
        if width == 8:
            if self.at(j) != 0x7D:  # '}'
                raise self.fail(
                    i,
                    "\\x{ is not closed",
                    _EBRACE,
                    "write \\x{41} with at most 8 hex digits and a closing '}'",
                )
            j += 1
        text = self.p[i:j].decode("latin-1")
        if k == 0:
            self.notes.append(
                _Note(i, f"{text} has no hex digits, so it means the NUL byte")
            )
        elif 0x80 <= value and not 0xDF80 <= value <= 0xDFFF:
            hint = ""
            if value <= 0xFF:
                hint = f" (use \\x{{{_HIGH_BASE + value:X}}} for the byte 0x{value:X})"
            self.notes.append(
                _Note(
                    i,
                    f"{text} can never match: in musl's C locale input bytes "
                    f"0x80-0xFF are the code points U+DF80-U+DFFF{hint}",
                )
            )
        if value < 0x80:
            mask = 1 << value
        elif 0xDF80 <= value <= 0xDFFF:
            mask = 1 << (value - _HIGH_BASE)
        else:
            mask = 0
        return _Set(mask), j

    def repeats(self, node: _Node, i: int) -> tuple[_Node, int]:
        """musl's parse_iter: any number of stacked * + ? {n,m} after an atom."""
        at = self.at
        first = True
        lazy_noted = False
        prev_start = i
        while True:
            c = at(i)
            if c not in b"*+?{" or c == 0:
                return node, i
            start = i
            if c == 0x7B:  # '{'
                lo, hi, i = self.counts(i)
            else:
                lo, hi = (1 if c == 0x2B else 0), (1 if c == 0x3F else -1)
                i += 1
            if not first and c == 0x3F and not lazy_noted:
                lazy_noted = True  # one warning per run of stacked quantifiers
                prev = self.p[prev_start:start].decode("latin-1")
                self.notes.append(
                    _Note(
                        prev_start,
                        f"'{prev}?' is not lazy in POSIX: musl reads it as an "
                        "optional greedy repetition, still the longest match; drop "
                        "the '?', or stop at a delimiter with a negated class such as "
                        "[^,]* instead of .*?",
                    )
                )
            if first and start > 0 and at(start - 1) >= 0x80:
                note = self.multibyte_note(start, self.p[start:i].decode("latin-1"))
                if note is not None:
                    self.notes.append(_Note(start, note))
            first = False
            prev_start = start
            if hi == 0:
                groups = _groups_in(node)
                node = _Dropped(groups) if groups else _Empty()
            else:
                node = _Repeat(node, lo, hi)

    def multibyte_note(self, i: int, quantifier: str) -> str | None:
        """The warning for a quantifier after a multi-byte UTF-8 character, if any."""
        lead = i - 1
        while lead > 0 and 0x80 <= self.p[lead] <= 0xBF and i - lead < 4:
            lead -= 1  # back over UTF-8 continuation bytes to the lead byte
        try:
            char = self.p[lead:i].decode("utf-8")
        except UnicodeDecodeError:
            return None  # a lone Latin-1 byte: the quantifier repeats all of it
        return (
            f"'{quantifier}' repeats only the last byte of {char}, because musl "
            f"reads it as {i - lead} bytes: write ({char}){quantifier}"
        )

    def counts(self, i: int) -> tuple[int, int, int]:
        """musl's parse_dup for the '{' at i: (min, max or -1, offset after '}')."""
        at = self.at

        def count(j: int) -> tuple[int, int]:
            """musl's parse_dup_count: a decimal number, -1 if none."""
            if not 0x30 <= at(j) <= 0x39:
                return -1, j
            n = 0
            while True:
                n = 10 * n + at(j) - 0x30
                j += 1
                if not 0x30 <= at(j) <= 0x39 or n > _DUP_MAX:
                    return n, j

        lo, j = count(i + 1)
        hi = lo
        if at(j) == 0x2C:  # ','
            hi, j = count(j + 1)
        if (0 <= hi < lo) or hi > _DUP_MAX or lo > _DUP_MAX or lo < 0 or at(j) != 0x7D:
            raise self.bad_count(i, lo, hi)
        return lo, hi, j + 1

    def bad_count(self, i: int, lo: int, hi: int) -> RegexError:
        """The REG_BADBR error for the '{' at i, with the likeliest fix."""
        end = self.p.find(b"}", i)
        text = self.p[i : end + 1 if end >= 0 else len(self.p)].decode("latin-1")
        if i >= 2 and self.p[i - 2 : i] in (b"\\p", b"\\P"):
            return self.fail(
                i - 2,
                f"\\{chr(self.p[i - 1])}{text} is a Unicode property, which musl "
                f"does not have: it reads \\{chr(self.p[i - 1])} as a letter and "
                f"{text} as a repetition",
                _BADBR,
                "use a bracket expression such as [[:alpha:]]",
            )
        if lo < 0 and self.at(i + 1) == 0x2C:
            what, fix = f"{text} has no lower bound", "write {0,m} instead of {,m}"
        elif lo > _DUP_MAX or hi > _DUP_MAX:
            what, fix = f"{text} counts past 255", "musl allows counts up to 255"
        elif 0 <= hi < lo:
            what, fix = f"{text} has its bounds reversed", "write {n,m} with n <= m"
        else:
            what = f"'{{' must start a count like {{3}}, {{2,}} or {{1,5}} but {text!r}"
            what += " does not"
            fix = "write \\{ to match a literal '{'"
        return self.fail(i, what, _BADBR, fix)

    def bracket(self, i: int) -> tuple[_Node, int]:
        """musl's parse_bracket for the '[' at i."""
        at = self.at
        opening = i
        i += 1
        negate = at(i) == 0x5E
        if negate:
            i += 1
        start = i
        items = 0
        excluded = 0  # classes in a negated bracket (musl's neg_classes)
        n_excluded = 0
        backslash = False
        while True:
            c = at(i)
            if c == 0:
                raise self.fail(
                    opening,
                    "'[' is never closed",
                    _EBRACK,
                    "add the missing ']' (a ']' right after '[' or '[^' is a "
                    "literal), or write \\[ to match a literal '['",
                )
            if c == 0x5D and i != start:  # ']'
                i += 1
                break
            if (
                c == 0x2D
                and i != start
                and at(i + 1) != 0x5D
                and (at(i + 1) != 0x2D or at(i + 2) == 0x5D)
            ):
                raise self.fail(
                    i,
                    "'-' inside a bracket expression is neither first, last nor "
                    "part of a range",
                    _ERANGE,
                    "move the '-' to the end, e.g. [a-z0-9-]",
                )
            if c == 0x5B and at(i + 1) in (0x2E, 0x3D):  # '[.' or '['=
                raise self.fail(
                    i,
                    "collating elements like [.a.] and equivalence classes like "
                    "[=a=] are not supported",
                    _ECOLLATE,
                    "list the characters themselves, e.g. [a] instead of [[.a.]]",
                )
            if c == 0x5B and at(i + 1) == 0x3A:  # '[:'
                j = i + 2
                name: bytes | None = None
                for k in range(_CLASS_NAME_MAX):
                    if at(j + k) == 0:
                        break
                    if at(j + k) == 0x3A:
                        name = self.p[j : j + k]
                        break
                cls = _CLASSES.get(name) if name is not None else None
                if cls is None or name is None or at(j + len(name) + 1) != 0x5D:
                    shown = self.p[i : i + 2 + _CLASS_NAME_MAX].decode("latin-1")
                    if name is not None and cls is None:
                        shown = "[:" + name.decode("latin-1") + ":]"
                    raise self.fail(
                        i,
                        f"{shown} is not a character class",
                        _ECTYPE,
                        "use one of [:alnum:] [:alpha:] [:blank:] [:cntrl:] "
                        "[:digit:] [:graph:] [:lower:] [:print:] [:punct:] "
                        "[:space:] [:upper:] [:xdigit:] inside brackets, "
                        "e.g. [[:digit:]]",
                    )
                i = j + len(name) + 2
                if negate:
                    n_excluded += 1
                    if n_excluded > _MAX_NEG_CLASSES:
                        raise self.fail(
                            i,
                            "a negated bracket names more than 64 classes",
                            _ESPACE,
                            "name each class once",
                        )
                    excluded |= cls
                else:
                    items |= cls
                continue
            lo = hi = _code_point(c)
            backslash = backslash or c == 0x5C
            i += 1
            if at(i) == 0x2D and at(i + 1) != 0x5D:  # a range lo-hi
                i += 1
                d = at(i)
                hi = _code_point(d)
                if d == 0 or lo > hi:
                    what = "the range " + self.p[i - 2 : i + 1].decode("latin-1")
                    raise self.fail(
                        i - 2,
                        what + " is reversed" if d else what + " is cut off",
                        _ERANGE,
                        "write ranges low-high, e.g. [a-z]; put a literal '-' last",
                    )
                i += 1
                self.note_range(i - 3, lo, hi)
            items |= _cp_range_mask(lo, hi)
        mask = _ALL & ~items & ~excluded if negate else items
        self.note_bracket(opening, i, backslash, negate)
        return _Set(mask), i

    def note_range(self, pos: int, lo: int, hi: int) -> None:
        """Warn about ranges such as A-z that span punctuation between kinds."""

        def kind(cp: int) -> int:
            """0 digit, 1 upper, 2 lower, -1 other."""
            for k, m in enumerate((_DIGIT, _UPPER, _LOWER)):
                if cp < 0x80 and (m >> cp) & 1:
                    return k
            return -1

        if kind(lo) >= 0 and kind(hi) >= 0 and kind(lo) != kind(hi):
            between = "".join(
                chr(b) for b in range(lo, hi + 1) if not (_ALNUM >> b) & 1
            )
            fix = {(1, 2): "[A-Za-z]", (0, 2): "[0-9a-z]", (0, 1): "[0-9A-Z]"}
            self.notes.append(
                _Note(
                    pos,
                    f"the range {chr(lo)}-{chr(hi)} also matches {between}; "
                    f"write separate ranges such as "
                    f"{fix.get((kind(lo), kind(hi)), '[A-Za-z0-9]')}",
                )
            )

    def note_bracket(
        self, opening: int, end: int, backslash: bool, negate: bool
    ) -> None:
        """Warn about [\\d.]-style Perl escapes and [:digit:] without outer brackets."""
        text = self.p[opening:end]
        body = text[2 if negate else 1 : -1]
        if (
            len(body) > 2
            and body.startswith(b":")
            and body.endswith(b":")
            and body[1:-1] in _CLASSES
        ):
            self.notes.append(
                _Note(
                    opening,
                    f"{text.decode('latin-1')} is a bracket expression matching the "
                    f"characters {', '.join(sorted(set(body.decode('latin-1'))))}; "
                    f"write [{text.decode('latin-1')}] for the class",
                )
            )
        if backslash and body.endswith(b"\\") and self.at(end) == 0x5D:
            shown = text.decode("latin-1")
            self.notes.append(
                _Note(
                    opening,
                    f"in {shown}] the backslash is a literal character and the first "
                    "']' after it ends the bracket, so the second ']' is a literal "
                    "outside it; to match ']' put it first in the bracket, e.g. []a]",
                )
            )
        elif backslash and body.replace(b"\\\\", b"").count(b"\\"):
            shown = text.decode("latin-1")
            suggestion = _suggest_bracket(body, negate)
            fix = f"write {suggestion}" if suggestion else "remove the backslashes"
            self.notes.append(
                _Note(
                    opening,
                    f"in {shown} the backslash is a literal character: musl reads "
                    f"escapes like \\d or \\. as two characters inside brackets; {fix}",
                )
            )


def _suggest_bracket(body: bytes, negate: bool) -> str | None:
    """The bracket an admin who wrote Perl-style escapes inside [...] meant."""
    escapes = {
        ord("d"): _DIGIT,
        ord("w"): _WORD,
        ord("s"): _SPACE,
        ord("t"): 1 << 0x09,
        ord("n"): 1 << 0x0A,
        ord("r"): 1 << 0x0D,
    }
    meant = 0
    i = 0
    while i < len(body):
        c = body[i]
        if c == 0x5C and i + 1 < len(body):
            d = body[i + 1]
            if chr(d) in "DWS":
                return None  # a negated class cannot be listed inside a bracket
            meant |= escapes.get(d, 1 << d)
            i += 2
            continue
        if c == 0x5B and body[i + 1 : i + 2] == b":":
            end = body.find(b":]", i)
            cls = _CLASSES.get(body[i + 2 : end]) if end > 0 else None
            if cls is None:
                return None
            meant |= cls
            i = end + 2
            continue
        if i + 2 < len(body) and body[i + 1] == 0x2D and body[i + 2] != 0x5C:
            if c <= body[i + 2]:
                meant |= _mask((c, body[i + 2]))
            i += 3
            continue
        meant |= 1 << c
        i += 1
    return _render_bracket(meant, negate)


def _render_bracket(m: int, negate: bool) -> str | None:
    """A readable musl bracket for byte set m, or None if it needs unprintables."""
    parts: list[str] = []
    for piece, text in (
        (_DIGIT, "0-9"),
        (_UPPER, "A-Z"),
        (_LOWER, "a-z"),
        (_SPACE, "[:space:]"),
    ):
        if m & piece == piece:
            parts.append(text)
            m &= ~piece
    tail = ""
    head = ""
    for lo, hi in _ranges(m):
        if not (0x20 <= lo and hi <= 0x7E):
            return None
        for b in range(lo, hi + 1):
            if b == 0x5D:
                head = "]"
            elif b == 0x2D:
                tail = "-"
            else:
                parts.append(chr(b))
    if not parts and not head and not tail:
        return None
    body = head + "".join(parts) + tail
    if body.startswith("^"):
        body = body[1:] + "^" if len(body) > 1 else body
    return "[" + ("^" if negate else "") + body + "]"


# ---------------------------------------------------------------------------
# Context analysis: which \b \B \< \> have an exact RE2 form, and what it is

# A context is (bytes that may be next to the position, whether that side may be
# the edge of the text); it over-approximates, so "surely" conclusions are sound.
_Context = tuple[int, bool]

_NEVER: Final = _re2_set(0)  # an RE2 atom that matches nowhere


def _surely_word(ctx: _Context) -> bool:
    """The neighbouring character is certainly a word character."""
    return not ctx[1] and ctx[0] & ~_WORD == 0


def _surely_not_word(ctx: _Context) -> bool:
    """The neighbour is certainly not a word character (the text edge is not)."""
    return ctx[0] & _WORD == 0


class _Analysis:
    """Walks the tree with before/after contexts, choosing each assertion's RE2 form."""

    def __init__(self, root: _Node) -> None:
        """Analyse root, searched unanchored: any byte or the edge on both sides."""
        self.asserts: list[_Assert] = []
        self.walk(root, (_ALL, True), (_ALL, True))

    def walk(self, node: _Node, before: _Context, after: _Context) -> None:
        """Visit node, which is preceded by `before` and followed by `after`."""
        if isinstance(node, _Assert):
            self.decide(node, before, after)
        elif isinstance(node, _Group):
            self.walk(node.child, before, after)
        elif isinstance(node, _Alt):
            for a in node.alts:
                self.walk(a, before, after)
        elif isinstance(node, _Repeat):
            if node.hi != 1:  # a later iteration follows an earlier one
                before = (before[0] | node.child.last, before[1])
                after = (after[0] | node.child.first, after[1])
            self.walk(node.child, before, after)
        elif isinstance(node, _Cat):
            items = node.items
            befores = [before]
            for item in items[:-1]:
                befores.append(_step(befores[-1], item, item.last, "^"))
            afters = [after]
            for item in reversed(items[1:]):
                afters.append(_step(afters[-1], item, item.first, "$"))
            afters.reverse()
            for item, item_before, item_after in zip(
                items, befores, afters, strict=True
            ):
                self.walk(item, item_before, item_after)

    def decide(self, node: _Assert, before: _Context, after: _Context) -> None:
        """Pick node.emit, or set node.refusal when no exact RE2 form exists."""
        self.asserts.append(node)
        kind = node.kind
        if kind == "^" and not before[1] or kind == "$" and not after[1]:
            node.emit = _NEVER  # something is always consumed on that side
        elif kind == "b":  # TRE: a boundary, or the start, or the end of the text
            parts = ["^"] if before[1] else []
            parts.append(r"\b")
            parts += ["$"] if after[1] else []
            node.emit = parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")"
        elif kind == "<":  # previous char not a word char, next char one
            if _surely_word(before) or _surely_not_word(after):
                node.emit = _NEVER
            elif _surely_word(after) or _surely_not_word(before):
                node.emit = r"\b"
            else:
                node.refusal = (
                    "\\< (start of word) at position {pos} has no exact linear-time "
                    "form here: alertik can run it only where the character after it "
                    "is surely a letter, digit or '_' (e.g. \\<[[:alnum:]_]+ or "
                    "\\<admin) or the character before it surely is not; write \\b if "
                    "a plain word boundary is meant"
                )
        elif kind == ">":  # previous char a word char, next char not
            if _surely_not_word(before) or _surely_word(after):
                node.emit = _NEVER
            elif _surely_word(before) or _surely_not_word(after):
                node.emit = r"\b"
            else:
                node.refusal = (
                    "\\> (end of word) at position {pos} has no exact linear-time "
                    "form here: alertik can run it only where the character before "
                    "it is surely a letter, digit or '_' (e.g. [[:alnum:]_]+\\> or "
                    "admin\\>) or the character after it surely is not; write \\b if "
                    "a plain word boundary is meant"
                )
        elif kind == "B":  # TRE: never at the edges, else no word boundary
            start_ok = not before[1] or _surely_word(after)
            end_ok = not after[1] or _surely_word(before)
            if before == (0, True) or after == (0, True):
                node.emit = _NEVER  # only the text edge is possible there
            elif start_ok and end_ok:
                node.emit = r"\B"
            else:
                node.refusal = (
                    "\\B (not a word boundary) at position {pos} has no exact "
                    "linear-time form here: musl's \\B never holds at the start or "
                    "end of the message, which alertik can reproduce only between "
                    "two characters that are surely there (e.g. o\\Bo or "
                    "[a-z]\\B[a-z]); rewrite it with explicit characters"
                )


def _step(ctx: _Context, item: _Node, edge_bytes: int, anchor: str) -> _Context:
    """The context just past item, walking away from ctx (anchor pins the edge)."""
    if isinstance(item, _Assert):
        return (0, ctx[1]) if item.kind == anchor else ctx
    if item.nullable:
        return (ctx[0] | edge_bytes, ctx[1])
    return (edge_bytes, False)


# ---------------------------------------------------------------------------
# TRE's empty paths: a nullable part is skipped one way only

# TRE builds a position automaton in which a nullable part matches the empty
# string along one fixed path (tre_match_empty): a union takes its first nullable
# branch, an iteration goes through its argument when that is nullable. Every
# assertion on that path must hold, so musl's $? is $, (a|$)?b never matches b, and
# in (\b|c*) an empty match needs \b. RE2 may skip such parts any way it likes, so
# _tre() rewrites the tree until RE2's choices are musl's.


class _NoExactForm(Exception):
    """A union whose empty-path rule cannot be spelled out for RE2."""


def _empty_path_asserts(node: _Node) -> bool:
    """Whether TRE's empty path through nullable node crosses an assertion."""
    if isinstance(node, _Assert):
        return True
    if isinstance(node, _Group):
        return _empty_path_asserts(node.child)
    if isinstance(node, _Cat):
        return any(_empty_path_asserts(item) for item in node.items)
    if isinstance(node, _Alt):
        for a in node.alts:
            if a.nullable:
                return _empty_path_asserts(a)
    if isinstance(node, _Repeat):
        return node.child.nullable and _empty_path_asserts(node.child)
    return False


def _tre(node: _Node) -> _Node:
    """node rewritten so that RE2 skips nullable parts only the way TRE does."""
    if isinstance(node, _Group):
        return _Group(node.index, _tre(node.child))
    if isinstance(node, _Cat):
        return _Cat([_tre(item) for item in node.items])
    if isinstance(node, _Repeat):
        child = _tre(node.child)
        lo, hi = node.lo, node.hi
        if child.nullable and lo == 0 and hi in (1, -1):
            # TRE skips x? and x* by going through a nullable x once.
            return child if hi == 1 else _Repeat(child, 1, hi)
        if child.nullable and lo >= 2 and hi == -1:
            # TRE expands x{n,} to n copies of x then x*, which goes through x.
            return _Repeat(child, lo + 1, hi)
        # x{n,m} with m >= 2 becomes copies whose optional tail is skipped freely.
        return _Repeat(child, lo, hi)
    if isinstance(node, _Alt):
        alts = [_tre(a) for a in node.alts]
        nullable = [k for k, a in enumerate(alts) if a.nullable]
        if len(nullable) > 1 and _empty_path_asserts(alts[nullable[0]]):
            # Only the first nullable branch may match empty (with its assertions).
            for k in nullable[1:]:
                alts[k] = _non_empty(alts[k])
        return _Alt(alts)
    return node


def _pure_empty(node: _Node) -> bool:
    """node can only ever match the empty string."""
    return node.nullable and node.first == 0


def _non_empty(node: _Node) -> _Node:
    """node restricted to its non-empty matches, keeping its group numbers."""
    if not node.nullable:
        return node
    if _pure_empty(node):
        return _Cat([_Set(0), node])  # never matches; its groups stay numbered
    if isinstance(node, _Group):
        return _Group(node.index, _non_empty(node.child))
    if isinstance(node, _Alt):
        return _Alt([_non_empty(a) for a in node.alts])
    if isinstance(node, _Repeat):
        if not node.child.nullable:
            return _Repeat(node.child, max(node.lo, 1), node.hi)
        if node.lo == node.hi == 1:
            return _non_empty(node.child)
    if isinstance(node, _Cat):
        movable = [k for k, item in enumerate(node.items) if not _pure_empty(item)]
        if len(movable) == 1:
            items = list(node.items)
            items[movable[0]] = _non_empty(items[movable[0]])
            return _Cat(items)
    raise _NoExactForm


# ---------------------------------------------------------------------------
# Emitting RE2 syntax


def _length_range(node: _Node) -> tuple[float, float]:
    """Shortest and longest length node can match (inf if unbounded)."""
    if isinstance(node, _Set):
        return 1, 1
    if isinstance(node, _Group):
        return _length_range(node.child)
    if isinstance(node, _Cat):
        ranges = [_length_range(item) for item in node.items]
        return sum(r[0] for r in ranges), sum(r[1] for r in ranges)
    if isinstance(node, _Alt):
        ranges = [_length_range(a) for a in node.alts]
        return min(r[0] for r in ranges), max(r[1] for r in ranges)
    if isinstance(node, _Repeat):
        lo, hi = _length_range(node.child)
        return lo * node.lo, (hi * node.hi if node.hi >= 0 and hi else math.inf)
    return 0, 0


class _Emitter:
    """Spells a rewritten tree as RE2 text and numbers RE2's capture groups.

    RE2's group numbers differ from musl's: groups inside x{0} get none (search()
    fills them in), and each (x)+ or (x)* gets an extra group around all its
    iterations, which search() hands to a _Refiner.
    """

    def __init__(self) -> None:
        """Start with no RE2 groups."""
        self.count = 0  # RE2 capture groups so far
        self.slots: list[tuple[int, int]] = []  # (musl group, RE2 group)
        self.repeats: list[tuple[int, int, _Group]] = []  # (RE2 group, musl, node)
        self.resplit = True  # whether (x)+ gets a _Refiner here

    def root(self, root: _Group) -> str:
        """RE2 text for the whole pattern (group 0 needs no parentheses)."""
        self.slots.append((0, 0))
        body = root.child
        if isinstance(body, _Alt):
            return "|".join(self.emit(a) for a in body.alts)
        return self.emit(body)

    def emit(self, node: _Node, prefix: bool = False) -> str:
        """RE2 text for node, equivalent to musl's reading of it.

        prefix=True spells node as the earlier iterations of a re-split group:
        no captures, and every choice prefers the shorter match.
        """
        if isinstance(node, _Set):
            return _re2_set(node.mask)
        if isinstance(node, _Cat):
            return "".join(self.emit(item, prefix) for item in node.items)
        if isinstance(node, _Group):
            body = node.child
            alts = body.alts if isinstance(body, _Alt) else [body]
            if prefix:
                alts = sorted(alts, key=_length_range)  # shortest branch first
                return "(?:" + "|".join(self.emit(a, prefix) for a in alts) + ")"
            self.count += 1  # RE2 numbers groups by their '(' as musl does
            self.slots.append((node.index, self.count))
            return "(" + "|".join(self.emit(a) for a in alts) + ")"
        if isinstance(node, _Alt):
            alts = sorted(node.alts, key=_length_range) if prefix else node.alts
            return "(?:" + "|".join(self.emit(a, prefix) for a in alts) + ")"
        if isinstance(node, _Repeat):
            return self.repeat(node, prefix)
        if isinstance(node, _Assert):
            return node.emit
        return ""  # _Empty, and _Dropped whose groups search() fills in

    def repeat(self, node: _Repeat, prefix: bool) -> str:
        """RE2 text for a repetition."""
        child, lo, hi = node.child, node.lo, node.hi
        if isinstance(child, _Group) and hi == -1 and lo <= 1 and not prefix:
            if self.resplit:
                # TRE makes the last iteration of (x)+ as long as it can; capture
                # all iterations so a _Refiner can re-split them the same way.
                self.count += 1
                self.repeats.append((self.count, child.index, child))
                self.resplit = False  # nested ones are the _Refiner's business
                body = self.emit(child)
                self.resplit = True
                return "(" + body + ("+" if lo else "*") + ")"
        inner = self.emit(child, prefix)
        if not isinstance(child, _Set | _Group | _Alt):
            inner = "(?:" + inner + ")"
        lazy = "?" if prefix else ""
        if (lo, hi) == (0, -1):
            return inner + "*" + lazy
        if (lo, hi) == (1, -1):
            return inner + "+" + lazy
        if (lo, hi) == (0, 1):
            return inner + "?" + lazy
        if lo == hi:
            return f"{inner}{{{lo}}}"
        return f"{inner}{{{lo},{'' if hi < 0 else hi}}}{lazy}"


class _Refiner:
    """Re-splits the iterations of one (x)+ or (x)* the way TRE does.

    Where RE2 fills each iteration greedily, TRE keeps the same overall extent but
    makes the last iteration, the one musl reports, as long as possible:
    (a{1,3})+ on aaaaa captures aaa, and ((\\d{1,3}\\.?)+) on 2001 captures 001.
    The refiner matches x*? then (x), anchored on the extent, with the earlier
    iterations as short as possible, and takes the groups of the last one.
    """

    __slots__ = ("match", "slots", "refiners")

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

    __slots__ = ("text", "match", "slots", "refiners", "identity")

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


def _ambiguous_groups(node: _Node, repeated: bool = False) -> list[_Group]:
    """Groups (outside repetitions) that choose between branches of any kind."""
    out: list[_Group] = []
    if isinstance(node, _Group):
        body = node.child
        if (
            not repeated
            and node.index > 0
            and isinstance(body, _Alt)
            and not _Alt.fixed(body.alts)
        ):
            out.append(node)
        out += _ambiguous_groups(body, repeated)
    elif isinstance(node, _Repeat):
        out += _ambiguous_groups(node.child, repeated or node.hi != 1)
    elif isinstance(node, _Cat):
        for item in node.items:
            out += _ambiguous_groups(item, repeated)
    elif isinstance(node, _Alt):
        for a in node.alts:
            out += _ambiguous_groups(a, repeated)
    return out


def _restrict(node: _Node, choice: dict[int, int]) -> _Node:
    """node with each group in choice limited to one branch; the others never match."""
    if isinstance(node, _Group):
        body = node.child
        if node.index in choice and isinstance(body, _Alt):
            keep = choice[node.index]
            alts = [
                _restrict(a, choice) if k == keep else _Cat([_Set(0), a])
                for k, a in enumerate(body.alts)
            ]
            return _Group(node.index, _Alt(alts))
        return _Group(node.index, _restrict(body, choice))
    if isinstance(node, _Repeat):
        return _Repeat(_restrict(node.child, choice), node.lo, node.hi)
    if isinstance(node, _Cat):
        return _Cat([_restrict(item, choice) for item in node.items])
    if isinstance(node, _Alt):
        return _Alt([_restrict(a, choice) for a in node.alts])
    return node


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
        "pattern",
        "groups",
        "translated",
        "_match",
        "_plain",
        "_main",
        "_variants",
        "_dropped",
        "_nested",
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


def _parse(pattern: str) -> tuple[_Parser, _Group]:
    """Parse an EVENTn_MATCH_STR text as musl would; raises RegexError."""
    raw = os.fsencode(pattern)
    if b"\0" in raw:
        raise RegexError("the pattern contains a NUL character, which musl cannot see")
    parser = _Parser(raw)
    root = parser.parse()
    assert isinstance(root, _Group)
    return parser, root


def compile(pattern: str) -> MuslRegex:  # noqa: A001 - mirrors re.compile
    """Compile pattern as musl's regcomp(REG_EXTENDED); raises RegexError."""
    parser, root = _parse(pattern)
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


def _dropped_groups(root: _Node) -> list[int]:
    """Numbers of the groups that sit inside an x{0}."""
    out: list[int] = []
    stack = [root]
    while stack:
        n = stack.pop()
        if isinstance(n, _Dropped):
            out.extend(n.groups)
        elif isinstance(n, _Group | _Repeat):
            stack.append(n.child)
        elif isinstance(n, _Cat):
            stack.extend(n.items)
        elif isinstance(n, _Alt):
            stack.extend(n.alts)
    return sorted(out)


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


def lint(pattern: str) -> list[str]:
    """Warnings, each with a rewrite, for legal but likely-wrong constructs."""
    parser, root = _parse(pattern)
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
