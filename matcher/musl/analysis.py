"""What the tree means before it is emitted, and the rewrites that follow from it.

* Contexts: which \\b \\B \\< \\> have an exact RE2 form, and what it is (or
  why there is none); lint() also reads the assertions that can never hold.
* TRE's empty paths: a nullable part is skipped one way only.
* Branch choices: the groups whose branches RE2 and TRE may settle differently,
  and the tree restricted to one branch of each.
"""

from __future__ import annotations

from typing import Final

from alertik.matcher.musl.bytesets import _ALL, _WORD, _re2_set
from alertik.matcher.musl.tree import _Alt, _Assert, _Cat, _Group, _Node, _Repeat, _Set

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
        if (kind == "^" and not before[1]) or (kind == "$" and not after[1]):
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
# Branch choices: groups that RE2 may settle by branch order


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
