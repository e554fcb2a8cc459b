"""Bracket expressions: musl's parse_bracket, and advice about likely mistakes.

_BracketParser is the half of the parser (parser.py) that reads [...]: the
classes, ranges and negation musl accepts, its errors, and lint notes for Perl
habits such as [\\d.] or [:digit:] without the outer brackets.
"""

from __future__ import annotations

from typing import Final

from alertik.matcher.musl.bytesets import (
    _ALL,
    _ALNUM,
    _CLASSES,
    _DIGIT,
    _LOWER,
    _SPACE,
    _UPPER,
    _WORD,
    _code_point,
    _cp_range_mask,
    _fold,
    _mask,
    _ranges,
)
from alertik.matcher.musl.errors import (
    _EBRACK,
    _ECOLLATE,
    _ECTYPE,
    _ERANGE,
    _ESPACE,
    _Note,
    _Reader,
)
from alertik.matcher.musl.tree import _Node, _Set

# musl's CHARCLASS_NAME_MAX: how far it looks for the ':' that ends [:name:].
_CLASS_NAME_MAX: Final = 14

# musl's MAX_NEG_CLASSES: a negated bracket may name at most this many classes.
_MAX_NEG_CLASSES: Final = 64


class _BracketParser(_Reader):
    """Reads bracket expressions the way musl's parse_bracket does."""

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
        if self.icase:
            # musl adds the other case of every listed character and tests a
            # class against both cases of the input, before any negation.
            items, excluded = _fold(items), _fold(excluded)
        mask = _ALL & ~items & ~excluded if negate else items
        self.note_bracket(opening, i, backslash, negate)
        return _Set(mask, folded=self.icase), i

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
        if not (lo >= 0x20 and hi <= 0x7E):
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
