"""The parser: musl's tre_parse / parse_atom / parse_dup, step for step.

Brackets are read by the _BracketParser half (brackets.py). Parsing builds the
tree (tree.py) and collects the notes lint() reports; a pattern musl rejects
raises RegexError quoting musl's own error text.
"""

from __future__ import annotations

import os
from typing import Final

from alertik.matcher.musl.brackets import _BracketParser
from alertik.matcher.musl.bytesets import _ALL, _HIGH_BASE, _MACROS, _fold
from alertik.matcher.musl.errors import (
    _BADBR,
    _BADRPT,
    _EBRACE,
    _EESCAPE,
    _EPAREN,
    RegexError,
    _Note,
)
from alertik.matcher.musl.tree import (
    _alt,
    _Assert,
    _cat,
    _Dropped,
    _Empty,
    _Group,
    _groups_in,
    _Node,
    _Repeat,
    _Set,
)

# musl's RE_DUP_MAX: the largest count allowed in {n,m}.
_DUP_MAX: Final = 255


class _Parser(_BracketParser):
    """Parses one pattern the way musl's regcomp(REG_EXTENDED) does."""

    def __init__(self, pattern: bytes, icase: bool = False) -> None:
        """Prepare to parse pattern (raw bytes, no NUL); icase: REG_ICASE."""
        super().__init__(pattern, icase)
        self.ngroups = 0
        self.parents: list[int] = [0]  # parents[g] = enclosing group of group g
        self.top_bars: list[int] = []  # offsets of the '|' outside any group

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
            return self.set(_ALL), i + 1
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
        return self.literal(c), i + 1

    def literal(self, c: int) -> _Set:
        """One literal character; with REG_ICASE, either case of a letter."""
        return self.set(_fold(1 << c) if self.icase else 1 << c)

    def set(self, mask: int) -> _Set:
        """A one-character node (marked as made under REG_ICASE when it is)."""
        return _Set(mask, folded=self.icase)

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
            return self.set(macro), i + 2
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
        return self.literal(d), i + 2

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
        elif value >= 0x80 and not 0xDF80 <= value <= 0xDFFF:
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
        return self.set(mask), j

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


def _parse(pattern: str, icase: bool = False) -> tuple[_Parser, _Group]:
    """Parse an EVENTn_MATCH_STR text as musl would; raises RegexError.

    icase is musl's REG_ICASE: a letter written in the pattern, alone, escaped
    or in brackets (classes too), matches either case; \\xHH stays one byte.
    """
    raw = os.fsencode(pattern)
    if b"\0" in raw:
        raise RegexError("the pattern contains a NUL character, which musl cannot see")
    parser = _Parser(raw, icase)
    root = parser.parse()
    assert isinstance(root, _Group)
    return parser, root
