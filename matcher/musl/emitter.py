"""Emitting RE2 syntax: a rewritten tree spelled as an equivalent RE2 pattern."""

from __future__ import annotations

import math

from alertik.matcher.musl.bytesets import _re2_set
from alertik.matcher.musl.tree import _Alt, _Assert, _Cat, _Group, _Node, _Repeat, _Set


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
        if (
            isinstance(child, _Group)
            and hi == -1
            and lo <= 1
            and not prefix
            and self.resplit
        ):
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
