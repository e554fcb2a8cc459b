"""Rule matching against references: Python's ``in``, and rules one at a time.

The prefilter (RE2 sets over every rule, matcher/rules.py) must never change
which rules match: a RuleSet gives exactly the matches of its rules tried one
by one, in configuration order, whatever the rules and the message.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings, strategies as st

from alertik.common.config import Rule
from alertik.matcher.rules import PREFILTER_FROM, Prefilter, RuleSet

FIELDS = {"sender": "192.0.2.1", "node": "edge1"}

# Small alphabets make needles and lines collide often, so that matches are
# common; the odd bytes are the ones that trip up byte/text handling.
ALPHABET = b"ab:. \n\x00\xff\xc3\xa9"
needles = st.binary(max_size=4).filter(lambda b: b"\x00" not in b)
lines = st.binary(max_size=40) | st.lists(st.sampled_from(ALPHABET), max_size=40).map(
    bytes
)
# Regex rules (musl POSIX ERE) built from pieces that RE2 and musl agree on;
# each has one group, so that masks can use @1.
REGEXES = (
    "(a+)b",
    "(a|ab)(:)?",
    "^(a)",
    "(b)$",
    "([0-9]+)\\.",
    "(\\.)[^.]*\\.",
    "x(y*)z",
    "(a{2,3})",
    "( )\\b",
    "(.)\\x00",
    "(é)",
    "([[:space:]]+)",
)


def substr(i: int, needle: bytes, notifier: str = "Slack") -> Rule:
    return Rule(
        index=i,
        notifier=notifier,
        match_type="substr",
        match_str=needle.decode("utf-8", "surrogateescape"),
        mask=f"substr {i} from @{{sender}}",
    )


def regex(i: int, pattern: str) -> Rule:
    return Rule(
        index=i,
        notifier="Generic1",
        match_type="regex",
        match_str=pattern,
        mask=f"regex {i}: @1@@",
    )


@st.composite
def rule_lists(draw: Any, min_size: int = 0) -> list[Rule]:
    kinds = draw(
        st.lists(
            st.one_of(
                needles.map(lambda n: ("substr", n)),
                st.sampled_from(REGEXES).map(lambda p: ("regex", p)),
            ),
            min_size=min_size,
            max_size=24,
        )
    )
    return [
        substr(i, value) if kind == "substr" else regex(i, value)
        for i, (kind, value) in enumerate(kinds)
    ]


def one_by_one(
    rules: list[Rule], line: bytes
) -> list[tuple[str, str, tuple[Any, ...]]]:
    out = []
    for r in rules:
        for m in RuleSet([r], []).match(line, FIELDS):
            out.append((m.rule, m.body, m.captures))
    return out


def together(rs: RuleSet, line: bytes) -> list[tuple[str, str, tuple[Any, ...]]]:
    return [(m.rule, m.body, m.captures) for m in rs.match(line, FIELDS)]


@given(needle=needles, line=lines)
def test_a_substr_rule_matches_exactly_when_python_finds_the_needle(
    needle: bytes, line: bytes
) -> None:
    matches = RuleSet([substr(0, needle)], []).match(line, FIELDS)
    assert bool(matches) == (needle in line)
    if matches:
        assert matches[0].body == "substr 0 from 192.0.2.1"


@given(needles=st.lists(needles, min_size=PREFILTER_FROM + 1, max_size=40), line=lines)
def test_prefiltered_substr_rules_match_what_python_s_in_finds(
    needles: list[bytes], line: bytes
) -> None:
    rules = [substr(i, n) for i, n in enumerate(needles)]
    rs = RuleSet(rules, [])
    assert rs._prefilter is not None
    assert [m.rule for m in rs.match(line, FIELDS)] == [
        f"EVENT{i}" for i, n in enumerate(needles) if n in line
    ]


@settings(max_examples=300)
@given(rules=rule_lists(), line=lines)
def test_a_rule_set_matches_like_its_rules_tried_one_by_one(
    rules: list[Rule], line: bytes
) -> None:
    rs = RuleSet(rules, [])
    assert (rs._prefilter is not None) == (len(rules) > PREFILTER_FROM)
    assert together(rs, line) == one_by_one(rules, line)


@given(rules=rule_lists(min_size=PREFILTER_FROM + 1), line=lines)
def test_a_rule_set_split_into_several_sets_matches_the_same(
    rules: list[Rule], line: bytes
) -> None:
    rs = RuleSet(rules, [])
    half = len(rules) // 2
    first = Prefilter.build(rs.rules[:half])
    second = Prefilter.build(rs.rules[half:])
    assert first is not None and second is not None
    rs._prefilter = Prefilter(
        [
            (first.parts[0][0], list(range(half))),
            (second.parts[0][0], list(range(half, len(rules)))),
        ],
        [],
    )
    assert together(rs, line) == one_by_one(rules, line)


class GivesUp:
    """An RE2 set whose DFA ran out of memory: it reports nothing, not even
    the sentinel that matches everything."""

    def Match(self, text: bytes) -> None:
        return None


@given(rules=rule_lists(min_size=PREFILTER_FROM + 1), line=lines)
def test_a_set_that_gives_up_falls_back_to_every_rule(
    rules: list[Rule], line: bytes
) -> None:
    rs = RuleSet(rules, [])
    rs._prefilter = Prefilter([(GivesUp(), list(range(len(rules))))], [])
    assert together(rs, line) == one_by_one(rules, line)
    assert rs._prefilter.gave_up == 1


def test_rules_no_set_takes_are_tried_on_every_message() -> None:
    rules = [substr(i, f"n{i}".encode()) for i in range(8)]
    rs = RuleSet(rules, [])
    built = Prefilter.build(rs.rules[:4])
    assert built is not None
    rs._prefilter = Prefilter(built.parts, [4, 5, 6, 7])
    line = b"n1 n5 n7"
    assert together(rs, line) == one_by_one(rules, line)
    assert [m.rule for m in rs.match(line, FIELDS)] == ["EVENT1", "EVENT5", "EVENT7"]
