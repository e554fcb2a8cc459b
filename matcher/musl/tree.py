"""The parse tree tre_parse builds, with first/last/nullable computed on creation.

Nodes are built by parser.py, rewritten by analysis.py and spelled for RE2 by
emitter.py. The helpers below build branches and unions, and list the groups
inside a node.
"""

from __future__ import annotations


class _Node:
    """A node of musl's parse tree."""

    __slots__ = ("depth", "first", "last", "nullable")

    nullable: bool  # can match the empty string
    first: int  # bytes a non-empty match can start with
    last: int  # bytes a non-empty match can end with
    depth: int  # levels of nesting below and including this node


class _Set(_Node):
    """One character out of a byte set (a literal is a one-byte set)."""

    __slots__ = ("folded", "mask")

    def __init__(self, mask: int, folded: bool = False) -> None:
        """Match one byte of mask; folded: made under REG_ICASE, where any
        set counts as one character for _Alt's ordering (see _Alt.fixed)."""
        self.mask = mask
        self.folded = folded
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

    __slots__ = ("emit", "kind", "pos", "refusal")

    def __init__(self, kind: str, pos: int) -> None:
        """An assertion written at byte offset pos of the pattern."""
        self.kind, self.pos = kind, pos
        self.emit = {"^": "^", "$": "$"}.get(kind, "")
        self.refusal: str | None = None
        self.nullable, self.first, self.last, self.depth = True, 0, 0, 1


class _Group(_Node):
    """A capture group (musl numbers them by the position of their '(')."""

    __slots__ = ("child", "index")

    def __init__(self, index: int, child: _Node) -> None:
        """Group number index around child."""
        self.index, self.child = index, child
        self.nullable, self.first, self.last = child.nullable, child.first, child.last
        self.depth = child.depth + 1


class _Repeat(_Node):
    """child{lo,hi}; hi == -1 means unbounded."""

    __slots__ = ("child", "hi", "lo")

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
        """Whether every branch is a fixed string: literals only, or under
        icase any run of single characters (brackets, '.', letters in either
        case), which agrees with musl's REG_ICASE far more often than trying
        each branch (checked against the musl oracle on random patterns)."""
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
        if not isinstance(item, _Set) or not item.mask:
            return -1
        if item.mask & (item.mask - 1) and not item.folded:
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
