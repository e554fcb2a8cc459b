"""Tests for matcher/musl/: musl's POSIX ERE dialect, exactly, in linear time.

Every expected value here is musl's own answer (regcomp(REG_EXTENDED) + regexec in
the C locale, as in alertik's static musl image):

* the hand-picked edge cases of the dialect notes (the "section 7" table below);
* tests/data/musl_cases.json, several hundred (pattern, RouterOS line) pairs that
  tests/oracle/musl_oracle.c answered. Regenerate it (needs musl-gcc from Debian's
  musl-tools) from the repository root with

      python tests/oracle/generate_cases.py

* ``pytest -m oracle`` builds that oracle at test time and compares live, on the
  table and on fresh random cases (ALERTIK_ORACLE_SEED=<n> replays a seed).
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import shutil
import time
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from alertik.matcher.musl import engine as mr

# The checked-in musl answers and the script that makes them, next to this folder.
HERE = Path(__file__).resolve().parent
TABLE_FILE = HERE.parent / "data" / "musl_cases.json"
ICASE_TABLE_FILE = HERE.parent / "data" / "musl_icase_cases.json"
GENERATOR_FILE = HERE.parent / "oracle" / "generate_cases.py"

# A search on hostile input must end within this (RE2 needs well under 1 ms; the
# margin only absorbs slow CI machines).
BUDGET_S = 0.050

# Fresh random patterns per live oracle run (each meets 5 lines): ~600 cases, <1 s.
FRESH_PATTERNS = 120

# Where alertik deliberately differs from musl, each with the reason. Keep it short.
KNOWN_DIVERGENCES: dict[tuple[bytes, bytes], str] = {
    (b"(a|ab)(c|bcd)(d*)", b"abcd"): (
        "TRE quirk: musl splits abcd as a|bcd|'' although ab|c|d is as long and "
        "POSIX prefers it; RE2 with longest-first alternatives gives ab|c|d"
    ),
}

# Patterns musl accepts that alertik refuses at start-up, with words the message has.
REFUSED: dict[bytes, str] = {
    b"(x{255}){4}": "nested counted repetitions",
}

# The README's sample lines and rules (alertik's documented examples), verbatim.
README_INPUT = (
    b"input: in:WANinterface out:(unknown 0), connection-state:new src-mac "
    b"18:3d:5e:79:42:a5, proto TCP (SYN), 192.0.2.1:45624->198.51.100.2:80, len 60"
)
README_FORWARD = (
    b"forward: in:WANinterface out:mybridge, connection-state:new,dnat src-mac "
    b"18:3d:5e:79:42:a5, proto TCP (SYN), 34.148.164.203:47202->10.0.0.4:22, NAT "
    b"34.148.164.203:47202->(192.168.100.30:30292->10.0.0.4:22), len 60"
)
FW_INPUT = (
    r"input: in:.*src-mac [0-9a-f:]+, proto [^,]+, ((\d{1,3}\.?)+):(\d{1,5})->"
    r"((\d{1,3}\.?)+):(\d{1,5})"
)
FW_FORWARD = "forward" + FW_INPUT[len("input") :]
SSH = r"login failure for user ([A-Za-z]+) from (\d{1,3}.*) via ssh"
LINK = r"([a-zA-Z0-9]+) link up \(speed (\d+Mbps), full duplex\)"


def rx(pattern: str | bytes, icase: bool = False) -> mr.MuslRegex:
    """Compile a pattern given as text or as the env var's raw bytes."""
    if isinstance(pattern, bytes):
        pattern = os.fsdecode(pattern)
    return mr.compile(pattern, icase)


def captures(pattern: str | bytes, subject: bytes) -> list[bytes | None] | None:
    """What each group captured (None if unset), or None if there is no match."""
    spans = rx(pattern).search(subject)
    if spans is None:
        return None
    return [subject[s:e] if s >= 0 else None for s, e in spans]


# ---------------------------------------------------------------------------
# The dialect notes' hand-picked cases (section 7), musl's answers

NO_MATCH = None  # musl's REG_NOMATCH
# (row, pattern, subject, what each group captured or None if unset) from the notes.
SECTION_7 = [
    (1, SSH, b"login failure for user john_doe from 192.168.1.10 via ssh", NO_MATCH),
    (
        2,
        SSH,
        b"system,error,critical login failure for user admin from 192.168.1.10 via ssh",
        [
            b"login failure for user admin from 192.168.1.10 via ssh",
            b"admin",
            b"192.168.1.10",
        ],
    ),
    (
        3,
        LINK,
        b"eth0 link up (speed 100Mbps, full duplex)",
        [b"eth0 link up (speed 100Mbps, full duplex)", b"eth0", b"100Mbps"],
    ),
    (4, LINK, b"ether1 link up (speed 1Gbps, full duplex)", NO_MATCH),
    (
        5,
        FW_INPUT,
        README_INPUT,
        [
            README_INPUT[: README_INPUT.index(b", len")],
            b"192.0.2.1",
            b"1",
            b"45624",
            b"198.51.100.2",
            b"2",
            b"80",
        ],
    ),
    (
        6,
        FW_FORWARD,
        README_FORWARD,
        [
            README_FORWARD[: README_FORWARD.index(b", NAT")],
            b"34.148.164.203",
            b"203",
            b"47202",
            b"10.0.0.4",
            b"4",
            b"22",
        ],
    ),
    (7, FW_INPUT, README_FORWARD, NO_MATCH),
    (8, r"a\d+b", b"xa12b", [b"a12b"]),
    (9, r"(\w+)", b"caf\xe9_1", [b"caf", b"caf"]),
    (10, r"a(\s+)b", b"a\x0b\x0c b", [b"a\x0b\x0c b", b"\x0b\x0c "]),
    (11, r"([[:alpha:]]+)", b"caf\xe9", [b"caf", b"caf"]),
    (12, r"^caf(.)", b"caf\xc3\xa9", [b"caf\xc3", b"\xc3"]),
    (13, r"a(.)b", b"a\nb", [b"a\nb", b"\n"]),
    (14, r"a$", b"a\n", NO_MATCH),
    (15, r"^b", b"a\nb", NO_MATCH),
    (16, r"([\.]+)", b"a\\.b", [b"\\.", b"\\."]),
    (17, r"([\d]+)", b"12d\\", [b"d\\", b"d\\"]),
    (18, r"(a)\1", b"aa a1", [b"a1", b"a"]),
    (19, r"(a.*?b)", b"aXbYb", [b"aXbYb", b"aXbYb"]),
    (20, r"(a+?)(a*)", b"aaa", [b"aaa", b"aaa", b""]),
    (21, r"x\ey", b"x\x1by", [b"x\x1by"]),
    (22, r"\x{41}(\x42)", b"AB", [b"AB", b"B"]),
    (23, r"(\v)", b"\x0bv", [b"v", b"v"]),
    (24, r"(\A)", b"xA", [b"A", b"A"]),
    (25, r"\k(.)", b"kz", [b"kz", b"z"]),
    (26, r"(a))", b"a)", [b"a)", b"a"]),
    (27, r"(ab)**c", b"ababc", [b"ababc", b"ab"]),
    (28, r"^*(a)", b"a", [b"a", b"a"]),
    (29, r"(|a)b", b"ab", [b"ab", b"a"]),
    (30, r"|a", b"xa", [b""]),
    (31, r"(a){0}b", b"ab", [b"b", b""]),
    (32, r"(\b )", b" a", [b" ", b" "]),
    (33, r"\b(foo)\b", b"a foo b", [b"foo", b"foo"]),
    (34, r"(a)|b", b"b", [b"b", None]),
    (35, r"(a{255})", b"a" * 255, [b"a" * 255, b"a" * 255]),
    (36, r"(a{2,})", b"aaaa", [b"aaaa", b"aaaa"]),
    (
        52,
        r"via (web|webfig|winbox|ssh)",
        b"user admin logged in from 10.0.0.245 via webfig",
        [b"via webfig", b"webfig"],
    ),
    (
        53,
        r"^(system|system,error)",
        b"system,error,critical login failure",
        [b"system,error", b"system,error"],
    ),
    (
        54,
        r"speed ([0-9]+|[0-9.]+)",
        b"ether1 link up (speed 2.5G, full duplex)",
        [b"speed 2.5", b"2.5"],
    ),
    (
        55,
        r"(ether|ether1)([0-9]*) link (up|down)",
        b"ether12 link down",
        [b"ether12 link down", b"ether1", b"2", b"down"],
    ),
    (56, r"(x|xx)(x*)", b"xxx", [b"xxx", b"xx", b"x"]),
    (57, r"a(b|bc)(c|d)?", b"abcd", [b"abcd", b"bc", b"d"]),
    (58, r"(a|ab)(bc|c)", b"abc", [b"abc", b"ab", b"c"]),
    (
        59,
        r"((\d{1,3}\.?)+):(\d+)",
        b"192.168.88.1:8291",
        [b"192.168.88.1:8291", b"192.168.88.1", b"1", b"8291"],
    ),
    (
        60,
        r"(([0-9A-F]{2}:?)+)@([^:]+):",
        b"36:7F:7F:07:C4:B0@honeypot: disconnected",
        [b"36:7F:7F:07:C4:B0@honeypot:", b"36:7F:7F:07:C4:B0", b"B0", b"honeypot"],
    ),
    (61, r"((a)|(ab))*c", b"abac", [b"abac", b"a", b"a", None]),
    (62, r"(a(b)?)+", b"aba", [b"aba", b"a", None]),
    (63, r"(a*)*", b"aa", [b"aa", b"aa"]),
    (
        64,
        r"(.*) (.*) (.*)",
        b"one two three four",
        [b"one two three four", b"one two", b"three", b"four"],
    ),
]

# (row, pattern, musl's regerror text) for the rows musl's regcomp rejects.
SECTION_7_REJECTS = [
    (37, r"(?:ab)+", "Repetition not preceded by valid expression"),
    (38, r"(?i)ab", "Repetition not preceded by valid expression"),
    (39, r"a{,2}b", "Invalid contents of {}"),
    (40, r"a{256}", "Invalid contents of {}"),
    (41, r"a{", "Invalid contents of {}"),
    (42, r"{a", "Repetition not preceded by valid expression"),
    (43, r"*a", "Repetition not preceded by valid expression"),
    (44, r"a|*b", "Repetition not preceded by valid expression"),
    (45, r"[[.a.]]", "Unknown collating element"),
    (46, r"[[:foo:]]", "Unknown character class name"),
    (47, r"[z-a]", "Invalid character range"),
    (48, r"(a", "Missing ')'"),
    (49, r"[a", "Missing ']'"),
    (50, "a\\", "Trailing backslash"),
    (51, r"\p{L}", "Invalid contents of {}"),
]


@pytest.mark.parametrize(
    ("pattern", "subject", "expected"),
    [pytest.param(p, s, e, id=f"row{n}") for n, p, s, e in SECTION_7],
)
def test_each_section_7_row_gives_musls_captures(
    pattern: str, subject: bytes, expected: list[bytes | None] | None
) -> None:
    assert captures(pattern, subject) == expected


def test_section_7_firewall_rows_match_the_lengths_musl_reports() -> None:
    assert rx(FW_INPUT).search(README_INPUT)[0] == (0, 137)  # type: ignore[index]
    assert rx(FW_FORWARD).search(README_FORWARD)[0] == (0, 142)  # type: ignore[index]


@pytest.mark.parametrize(
    ("pattern", "musl_error"),
    [pytest.param(p, e, id=f"row{n}") for n, p, e in SECTION_7_REJECTS],
)
def test_each_section_7_reject_row_raises_regex_error_quoting_musl(
    pattern: str, musl_error: str
) -> None:
    with pytest.raises(mr.RegexError) as info:
        mr.compile(pattern)
    assert f"musl rejects it ({musl_error})" in str(info.value)


@pytest.mark.xfail(strict=True, reason=KNOWN_DIVERGENCES[b"(a|ab)(c|bcd)(d*)", b"abcd"])
def test_section_7_row_65_tre_quirk_is_a_known_divergence() -> None:
    assert captures(r"(a|ab)(c|bcd)(d*)", b"abcd") == [b"abcd", b"a", b"bcd", b""]


# ---------------------------------------------------------------------------
# Linear time: hostile input never stalls a search


def hostile_cases(n: int) -> list[tuple[str, bytes]]:
    """Patterns that make backtracking engines explode, with n-byte crafted lines."""
    return [
        (r"(a+)+$", b"a" * (n - 1) + b"!"),
        (r"(a|aa)+$", b"a" * (n - 1) + b"b"),
        (r"(x+x+)+y", b"x" * n),
        (r"(.*a){20}", b"a" * 19 + b"b" * (n - 19)),
        (r"(.*),(.*),(.*),(.*)x", b"," * n),
        (r"([a-z]+ ?)+$", b"word " * (n // 5) + b"!"),
        (FW_INPUT, b"input: in:x src-mac 0a, proto TCP, " + b"1" * (n - 35)),
        (r"((\d{1,3}\.?)+):", b"1" * n),
        (r"(\w+\s?)*!", b"ab " * (n // 3)),
        (r"((a+|b)+c)+$", b"ab" * (n // 2) + b"!"),
    ]


def timed_search(pattern: str, subject: bytes) -> tuple[float, Any]:
    """Seconds one search() takes (compiled beforehand), and its result."""
    compiled = rx(pattern)
    start = time.perf_counter()
    result = compiled.search(subject)
    return time.perf_counter() - start, result


@pytest.mark.parametrize("size", [2047, 65536])
@pytest.mark.parametrize("case", range(len(hostile_cases(2047))))
def test_hostile_lines_without_a_match_are_searched_within_budget(
    case: int, size: int
) -> None:
    pattern, subject = hostile_cases(size)[case]
    elapsed, result = timed_search(pattern, subject)
    assert result is None
    assert elapsed < BUDGET_S, f"{pattern!r} took {elapsed * 1e3:.1f} ms"


@pytest.mark.parametrize(
    ("pattern", "subject"),
    [
        (r"(.*),(.*),(.*),(.*)", b"," * 2047),
        (r"((\d{1,3}\.?)+)", b"1" * 2047),
        (r"(a{1,3})+", b"a" * 2047),
        (r"([a-z]+|[a-z]+_[a-z]+)(.*)", b"a" * 2047),
        (r"(a+)+", b"a" * 2047),
    ],
)
def test_hostile_lines_that_match_are_searched_within_budget(
    pattern: str, subject: bytes
) -> None:
    elapsed, result = timed_search(pattern, subject)
    assert result is not None
    assert elapsed < BUDGET_S, f"{pattern!r} took {elapsed * 1e3:.1f} ms"


def test_the_matching_worst_case_captures_like_musl() -> None:
    spans = rx(r"(.*),(.*),(.*),(.*)").search(b"," * 2047)
    assert spans == [(0, 2047), (0, 2044), (2045, 2045), (2046, 2046), (2047, 2047)]


# ---------------------------------------------------------------------------
# The deliberate improvements: whole messages, NUL is an ordinary byte


def test_the_whole_message_is_searched_not_only_its_first_2047_bytes() -> None:
    assert captures(r"needle(.)", b"x" * 3000 + b"needle!") == [b"needle!", b"!"]


def test_a_nul_byte_does_not_end_the_message() -> None:
    assert captures(r"needle", b"abc\0needle") == [b"needle"]


def test_dot_and_negated_sets_match_nul_too() -> None:
    assert captures(r"a(.)b", b"a\0b") == [b"a\0b", b"\0"]
    assert captures(r"a([^x])b", b"a\0b") == [b"a\0b", b"\0"]
    assert captures(r"a\Wb", b"a\0b") == [b"a\0b"]
    assert captures(r"a[[:cntrl:]]b", b"a\0b") == [b"a\0b"]
    assert captures(r"a\x00b", b"a\0b") == [b"a\0b"]


def test_nul_is_not_a_word_character() -> None:
    assert captures(r"a\b", b"a\0") == [b"a"]
    assert captures(r"\<b", b"\0b") == [b"b"]


def test_a_pattern_with_a_nul_is_refused() -> None:
    with pytest.raises(mr.RegexError, match="NUL"):
        mr.compile("a\0b")


# ---------------------------------------------------------------------------
# The table of musl's answers (tests/data/musl_cases.json)


@cache
def load_table() -> list[dict[str, Any]]:
    """The checked-in musl answers."""
    records: list[dict[str, Any]] = json.loads(TABLE_FILE.read_text(encoding="ascii"))
    return records


@cache
def load_icase_table() -> list[dict[str, Any]]:
    """The checked-in musl answers with REG_ICASE."""
    records: list[dict[str, Any]] = json.loads(
        ICASE_TABLE_FILE.read_text(encoding="ascii")
    )
    return records


def divergence(record: dict[str, Any], icase: bool = False) -> str | None:
    """How alertik's answer differs from musl's recorded one, or None."""
    pattern = record["pattern"].encode("latin-1")
    subject = record["subject"].encode("latin-1")
    try:
        compiled = rx(pattern, icase)
    except mr.RegexError as exc:
        if "error" in record and f"({record['error']})" in str(exc):
            return None
        if pattern in REFUSED and REFUSED[pattern] in str(exc):
            return None
        return f"{pattern!r}: refused ({exc}) but musl says {record}"
    if "error" in record:
        return f"{pattern!r}: accepted but musl rejects it ({record['error']})"
    if pattern in REFUSED:
        return f"{pattern!r}: should be refused ({REFUSED[pattern]})"
    if compiled.groups != record["nsub"]:
        return f"{pattern!r}: {compiled.groups} groups, musl {record['nsub']}"
    spans = compiled.search(subject)
    got = None if spans is None else [list(span) for span in spans[:32]]
    if got == record["spans"] or (pattern, subject) in KNOWN_DIVERGENCES:
        return None
    return f"{pattern!r} on {subject!r}: got {got}, musl {record['spans']}"


def test_matches_musl_table() -> None:
    failures = [f for f in map(divergence, load_table()) if f is not None]
    assert not failures, "\n".join(failures)


def test_case_insensitive_patterns_match_musl_with_reg_icase() -> None:
    records = load_icase_table()
    assert len(records) >= 200
    assert sum(bool(r.get("spans")) for r in records) >= 50
    failures = [f for r in records if (f := divergence(r, icase=True)) is not None]
    assert not failures, "\n".join(failures)


def test_icase_folds_letters_and_brackets_but_not_hex_escapes() -> None:
    assert rx("Login FAILURE", icase=True).search(b"x login failure") == [(2, 15)]
    assert rx("Login FAILURE").search(b"x login failure") is None
    assert rx("[^a]", icase=True).search(b"A") is None
    assert rx("[[:upper:]]+", icase=True).search(b"abC") == [(0, 3)]
    assert rx(r"\x41", icase=True).search(b"a") is None


def test_the_musl_table_covers_matches_misses_and_rejections() -> None:
    records = load_table()
    assert 400 <= len(records) <= 1000
    assert sum("error" in r for r in records) >= 30
    assert sum(bool(r.get("spans")) for r in records) >= 150
    assert sum(r.get("spans", 0) is None for r in records) >= 150


def test_known_divergences_really_differ_from_musls_table() -> None:
    recorded = {(r["pattern"], r["subject"]): r for r in load_table()}
    for pattern, subject in KNOWN_DIVERGENCES:
        record = recorded[pattern.decode("latin-1"), subject.decode("latin-1")]
        spans = rx(pattern).search(subject)
        assert spans is not None
        assert [list(s) for s in spans] != record["spans"]


# ---------------------------------------------------------------------------
# The live musl oracle (pytest -m oracle; needs musl-gcc)


def load_generator() -> ModuleType:
    """tests/oracle/generate_cases.py as a module."""
    spec = importlib.util.spec_from_file_location("generate_cases", GENERATOR_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModuleType, Path]:
    """The generator module and a freshly built musl oracle binary."""
    if shutil.which("musl-gcc") is None:
        pytest.skip("musl-gcc not found; apt-get install musl-tools to run the oracle")
    generator = load_generator()
    return generator, generator.build_oracle(tmp_path_factory.mktemp("oracle"))


@pytest.mark.oracle
def test_the_checked_in_table_is_still_what_musl_answers(
    oracle: tuple[ModuleType, Path],
) -> None:
    generator, binary = oracle
    cases = [
        (r["pattern"].encode("latin-1"), r["subject"].encode("latin-1"), r["what"])
        for r in load_table()
    ]
    assert generator.run_oracle(binary, cases) == load_table()


@pytest.mark.oracle
def test_the_checked_in_icase_table_is_still_what_musl_answers(
    oracle: tuple[ModuleType, Path],
) -> None:
    generator, binary = oracle
    assert (
        generator.run_oracle(binary, generator.icase_cases(), icase=True)
        == load_icase_table()
    )


@pytest.mark.oracle
def test_fresh_random_routeros_cases_match_live_musl(
    oracle: tuple[ModuleType, Path],
) -> None:
    generator, binary = oracle
    seed = int(os.environ.get("ALERTIK_ORACLE_SEED", random.randrange(1 << 30)))
    records = generator.run_oracle(
        binary, generator.realistic_cases(seed, FRESH_PATTERNS)
    )
    failures = [f for f in map(divergence, records) if f is not None]
    assert not failures, f"ALERTIK_ORACLE_SEED={seed}\n" + "\n".join(failures)


# Every class and escape whose members the live test checks byte by byte.
CLASS_PATTERNS = [
    *(f"[[:{name}:]]" for name in (
        "alnum", "alpha", "blank", "cntrl", "digit", "graph", "lower", "print",
        "punct", "space", "upper", "xdigit",
    )),
    ".", r"\w", r"\W", r"\s", r"\S", r"\d", r"\D", "[^a]", r"[\x{DFE9}]",
    r"\x{DFE9}", r"[^[:alpha:]]", "[a-\xe9]",
]  # fmt: skip


@pytest.mark.oracle
def test_every_class_holds_the_same_bytes_as_musls(
    oracle: tuple[ModuleType, Path],
) -> None:
    generator, binary = oracle
    cases = [
        (os.fsencode(p), bytes([b]), "class")
        for p in CLASS_PATTERNS
        for b in range(1, 256)
    ]
    failures = [f for f in map(divergence, generator.run_oracle(binary, cases)) if f]
    assert not failures, "\n".join(failures)


# ---------------------------------------------------------------------------
# API


def test_compile_keeps_the_pattern_and_reports_musls_group_count() -> None:
    compiled = mr.compile(FW_INPUT)
    assert compiled.pattern == FW_INPUT
    assert compiled.groups == 6
    assert isinstance(compiled.translated, bytes)


def test_the_translation_is_a_valid_re2_pattern_for_set_prefiltering() -> None:
    import re2

    patterns = [FW_INPUT, SSH, LINK, r"\<admin\>", r"(a){0}b"]
    prefilter = re2.Set.SearchSet(mr.OPTIONS)
    for pattern in patterns:
        prefilter.Add(mr.compile(pattern).translated)
    prefilter.Compile()
    line = b"ether1 link up (speed 100Mbps, full duplex)"
    assert sorted(prefilter.Match(line)) == [2, 4]  # LINK, and (a){0}b is just b


def test_options_are_leftmost_longest_latin1_and_quiet() -> None:
    import re2

    assert mr.OPTIONS.longest_match is True
    assert mr.OPTIONS.encoding == re2.Options.Encoding.LATIN1
    assert mr.OPTIONS.log_errors is False
    assert mr.OPTIONS.max_mem == mr.MAX_MEM


def test_no_match_is_none_and_unset_groups_are_minus_one() -> None:
    compiled = mr.compile(r"(a)|(b)")
    assert compiled.search(b"zzz") is None
    assert compiled.search(b"b") == [(0, 1), (-1, -1), (0, 1)]


def test_regex_error_is_a_value_error_with_a_one_line_reason() -> None:
    with pytest.raises(ValueError) as info:
        mr.compile(r"(?:ab)+")
    message = str(info.value)
    assert isinstance(info.value, mr.RegexError)
    assert "\n" not in message
    assert message.startswith("position 1: (?: is not POSIX; musl rejects it")
    assert "use a plain group (...)" in message


def test_non_utf8_pattern_bytes_from_the_environment_are_kept() -> None:
    pattern = os.fsdecode(b"caf\xe9 (.)")  # what os.environ holds for a Latin-1 byte
    assert captures(pattern, b"un caf\xe9 !") == [b"caf\xe9 !", b"!"]


def test_utf8_pattern_characters_match_as_their_bytes() -> None:
    assert captures("caf\u00e9", "un caf\u00e9".encode()) == ["caf\u00e9".encode()]
    assert captures(r"\x{DFE9}", b"caf\xe9") == [b"\xe9"]
    assert captures(r"\xe9", b"caf\xe9") is None


def test_more_than_32_groups_are_all_reported() -> None:
    compiled = mr.compile("(a)" * 40)
    spans = compiled.search(b"a" * 40)
    assert compiled.groups == 40
    assert spans is not None and len(spans) == 41 and spans[40] == (39, 40)


def test_the_fast_path_uses_re2s_own_match_method() -> None:
    assert not isinstance(mr._re2_compile(b"(a)", 1), mr._PublicSearch)


def test_the_public_api_fallback_gives_the_same_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cases = [(FW_INPUT, README_INPUT), (r"(a{1,3})+", b"aaaaa"), (r"(x)?y", b"zy")]
    expected = [rx(p).search(s) for p, s in cases]
    monkeypatch.setattr(mr, "_ANCHORS", None)  # as if re2 dropped its private API
    assert isinstance(mr._re2_compile(b"(a)", 1), mr._PublicSearch)
    assert [rx(p).search(s) for p, s in cases] == expected
    assert rx("b").search(b"a") is None


# ---------------------------------------------------------------------------
# TRE's own rules that RE2 needs help with


@pytest.mark.parametrize(
    ("pattern", "subject", "expected"),
    [
        # A nullable part is skipped along one fixed path, assertions included.
        (r"x$?", b"xy", None),
        (r"(a|$)?b", b"b", None),
        (r"a(\b|c*)d", b"ad", None),
        (r"a(c*|\b)d", b"ad", [b"ad", b""]),
        (r"^{0,2}x", b"ax", [b"x"]),
        # The last iteration of (x)+ is as long as it can be.
        (r"(a{1,3})+", b"aaaaa", [b"aaaaa", b"aaa"]),
        (r"from ((\d{1,3}\.?)+)", b"from 2001:db8::1", [b"from 2001", b"2001", b"001"]),
        (r"(a{1,3})+a", b"aaaaa", [b"aaaaa", b"aaa"]),
        # Each group, left to right, is as long as it can be.
        (r"([a-z]+|[a-z]+_[a-z]+).*", b"api_user x", [b"api_user x", b"api_user"]),
        # Groups dropped by {0} report the start of the match.
        (r"c(a){0}b", b"xcb", [b"cb", b""]),
        (r"(b(a){0}c)+", b"xbcbc", [b"bcbc", b"bc", b""]),
    ],
)
def test_tre_specific_choices_are_reproduced(
    pattern: str, subject: bytes, expected: list[bytes | None] | None
) -> None:
    assert captures(pattern, subject) == expected


def test_a_group_dropped_by_zero_repetitions_sits_at_the_match_start() -> None:
    assert rx(r"c(a){0}b").search(b"xcb") == [(1, 3), (1, 1)]
    assert rx(r"x|(a){0}b").search(b"x") == [(0, 1), (0, 0)]


# ---------------------------------------------------------------------------
# Word assertions: \b, and \< \> \B where RE2 has an exact form


@pytest.mark.parametrize(
    ("pattern", "subject", "expected"),
    [
        (r"\<admin\>", b"user admin logged", [b"admin"]),
        (r"\<admin\>", b"user admins", None),
        (r"\<admin", b"xadmin", None),
        (r"\<(ssh|winbox)\>", b"via winbox", [b"winbox", b"winbox"]),
        (
            r"user \<([[:alpha:]_]+)\>",
            b"user john_doe in",
            [b"user john_doe", b"john_doe"],
        ),
        (r"(web)fig\>", b"via webfigs", None),
        (r"^\<ok", b"ok go", [b"ok"]),
        (r" \<", b"a b", [b" "]),
        (r"-\>", b"a-b", None),
        (r"\Bing\b", b"logging in", [b"ing"]),
        (r"o\B", b"foo", [b"o"]),
        (r"o\B", b"fo", None),
        (r"\b ", b" a", [b" "]),
        (r" \b", b"a ", [b" "]),
        (r"a\<b", b"ab", None),
    ],
)
def test_word_assertions_behave_as_in_musl(
    pattern: str, subject: bytes, expected: list[bytes | None] | None
) -> None:
    assert captures(pattern, subject) == expected


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        (r"\<", "start of word"),
        (r"\<[0-9.]+", "start of word"),
        (r"x*\>", "end of word"),
        (r"a*\B", "not a word boundary"),
        (r"\B.", "not a word boundary"),
    ],
)
def test_word_assertions_without_an_exact_form_are_refused_with_advice(
    pattern: str, words: str
) -> None:
    with pytest.raises(mr.RegexError) as info:
        mr.compile(pattern)
    message = str(info.value)
    assert words in message and "position" in message
    assert "\\b" in message or "explicit characters" in message


def test_word_assertions_in_the_translation_use_re2s_word_boundary() -> None:
    assert mr.compile(r"\<admin\>").translated == rb"\badmin\b"
    assert mr.compile(r"\bx").translated == rb"(?:^|\b)x"
    assert mr.compile(r"x\Bx").translated == rb"x\Bx"


# ---------------------------------------------------------------------------
# What musl accepts but alertik refuses (always at start-up, never a crash)


def test_nested_counts_beyond_re2s_limit_are_refused_clearly() -> None:
    with pytest.raises(mr.RegexError, match=r"at most 1000 copies.*\(x\{255\}\)\{4\}"):
        mr.compile(r"(x{255}){4}")
    assert mr.compile(r"(x{250}){4}").search(b"x" * 1000) is not None


def test_a_pattern_too_big_for_re2s_memory_budget_is_refused() -> None:
    with pytest.raises(mr.RegexError, match="too large"):
        mr.compile("(a{250}){4}" * 1000)


def test_absurdly_deep_nesting_is_refused() -> None:
    with pytest.raises(mr.RegexError, match="nests groups"):
        mr.compile("(" * 300 + "a" + ")" * 300)
    assert mr.compile("(" * 50 + "a" + ")" * 50).groups == 50


def test_an_empty_path_through_an_assertion_next_to_another_empty_branch() -> None:
    with pytest.raises(mr.RegexError, match="empty string"):
        mr.compile(r"x(\b|a*b*)y")
    assert captures(r"-(\<|x*)-", b"-x-") == [b"-x-", b"x"]
    assert captures(r"-(\<|x*)-", b"--") is None


# ---------------------------------------------------------------------------
# Error messages for what musl rejects


@pytest.mark.parametrize(
    ("pattern", "musl_error", "advice"),
    [
        (r"(?i)ab", "Repetition not preceded by valid expression", "plain group"),
        (r"*a", "Repetition not preceded by valid expression", r"\*"),
        (r"a|+b", "Repetition not preceded by valid expression", "after '|'"),
        (r"a{,2}", "Invalid contents of {}", "{0,m}"),
        (r"a{300}", "Invalid contents of {}", "up to 255"),
        (r"a{3,2}", "Invalid contents of {}", "n <= m"),
        (r"a{x}", "Invalid contents of {}", r"\{"),
        (r"\p{L}", "Invalid contents of {}", "Unicode property"),
        (r"\x{41", "Missing '}'", "closing '}'"),
        (r"[[:digit]]", "Unknown character class name", "[:digit:]"),
        (r"[[:word:]]", "Unknown character class name", "[:word:]"),
        (r"[a-c-e]", "Invalid character range", "'-'"),
        (r"[a-", "Invalid character range", "cut off"),
        (r"[[=a=]]", "Unknown collating element", "[=a=]"),
        (r"x(a|(b)", "Missing ')'", "position 2"),
        (r"[]", "Missing ']'", "']' right after '['"),
        ("\\", "Trailing backslash", r"\\"),
    ],
)
def test_rejections_quote_musl_and_say_how_to_fix_them(
    pattern: str, musl_error: str, advice: str
) -> None:
    with pytest.raises(mr.RegexError) as info:
        mr.compile(pattern)
    message = str(info.value)
    assert f"musl rejects it ({musl_error})" in message
    assert advice in message


def test_lint_raises_the_same_error_for_a_pattern_musl_rejects() -> None:
    with pytest.raises(mr.RegexError, match="Missing"):
        mr.lint("(a")


# ---------------------------------------------------------------------------
# lint()


@pytest.mark.parametrize(
    "pattern",
    [
        SSH,
        LINK,
        FW_INPUT,
        r"(ether|ether1)([0-9]*) link (up|down)",
        r"\<admin\>",
        r"(^|,)x($|,)",
        r"[[:digit:]]+",
        r"\d{1,3}(\.\d{1,3}){3}",
        r"[\\.]",
        "honeypot: disconnected, unicast key exchange timeout",
    ],
)
def test_lint_is_silent_on_clean_patterns(pattern: str) -> None:
    assert mr.lint(pattern) == []


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        (r"[\d.]+", "write [0-9.]"),
        (r"[\w-]+", "write [0-9A-Za-z_-]"),
        (r"[^\s]+", "write [^[:space:]]"),
        (r"[a\]]", "put it first"),
        (r"from (.*?) via", "'*?' is not lazy"),
        (r"\d+?", "'+?' is not lazy"),
        (r"(a)\1", "not a back-reference"),
        (r"\v", "letter v"),
        (r"\k", "matches the character k"),
        (r"[:digit:]", "write [[:digit:]]"),
        (r"[A-z]", "write separate ranges such as [A-Za-z]"),
        (r"a)", r"write \)"),
        (r"\xE9", r"\x{DFE9}"),
        (r"\x", "NUL byte"),
        (r"a^b", r"write \^"),
        (r"a$b", r"write \$"),
        (r"a\<b", "can never hold"),
        (r"a|", "matches every message"),
        ("", "matches every message"),
        ("caf\u00e9+", "write (\u00e9)+"),
    ],
)
def test_lint_warns_with_a_suggested_rewrite(pattern: str, words: str) -> None:
    warnings = mr.lint(pattern)
    assert len(warnings) == 1, warnings
    assert words in warnings[0]
    assert warnings[0].startswith("position ")


def test_lint_lists_each_warning_in_pattern_order() -> None:
    warnings = mr.lint(r"\1 [\d] .*?")
    assert [w.split(":")[0] for w in warnings] == [
        "position 1",
        "position 4",
        "position 10",
    ]


def test_lint_does_not_raise_for_valid_patterns_alertik_refuses() -> None:
    assert mr.lint(r"\<[0-9.]+") == []
    assert mr.lint(r"(x{255}){4}") == []
    assert mr.lint("(" * 300 + "a" + ")" * 300) == []
