"""The presets: valid rule tables whose patterns find their events in every format.

Each preset's regex is compiled as the matcher compiles rules (musl dialect),
run on our own RouterOS lines in tests/data/presets/ in the default, syslog and
CEF formats, and must give the captures its text uses; no preset may match a
line that belongs to another preset or to unrelated.txt.
"""

from __future__ import annotations

import re
import tomllib

import pytest

from alertik.matcher import musl
from alertik.matcher.formats import parse
from alertik.matcher.presets import (
    DESCRIPTIONS,
    PRESETS,
    markdown,
    toml_table,
    with_section,
)
from tests import preset_lines
from tests.conftest import REPO
from tests.preset_lines import Line

# The keys of a rule in the rules file (issue 15), less the two a rule always
# gives itself (name, notify).
RULE_KEYS = {
    "regex",
    "substr",
    "icase",
    "exclude",
    "topics",
    "severity",
    "router",
    "threshold",
    "cooldown",
    "quiet_hours",
    "text",
}
DURATION = re.compile(r"[0-9]+[smhd]")
MASK_GROUP = re.compile(r"@([0-9][0-9]?)")
MASK_FIELD = re.compile(r"@\{([a-z_]+)\}")
FORMATS = {"default", "rfc3164", "cef"}  # rfc3164: remote-log-format=syslog


def excludes(name: str) -> list[str]:
    value = PRESETS[name].get("exclude", [])
    assert isinstance(value, list) and all(isinstance(x, str) for x in value)
    return value


COMPILED = {
    name: (
        musl.compile(str(PRESETS[name]["regex"])),
        [musl.compile(x) for x in excludes(name)],
    )
    for name in PRESETS
}
LINES = {name: preset_lines.read(name) for name in preset_lines.names()}
UNRELATED = preset_lines.read(preset_lines.UNRELATED)
ALL_LINES = [line for lines in LINES.values() for line in lines]


def match(name: str, raw: bytes) -> list[str | None] | None:
    """The preset's captures (group 0 first) on raw, or None if it does not fire."""
    regex, excludes = COMPILED[name]
    spans = regex.search(raw)
    if spans is None or any(x.search(raw) is not None for x in excludes):
        return None
    return [raw[s:e].decode() if s >= 0 else None for s, e in spans]


def firing(raw: bytes) -> list[str]:
    return [name for name in PRESETS if match(name, raw) is not None]


@pytest.mark.parametrize("name", PRESETS)
def test_each_preset_is_a_rule_table_with_known_keys_and_no_name_or_notify(
    name: str,
) -> None:
    preset = PRESETS[name]
    assert set(preset) <= RULE_KEYS
    assert ("regex" in preset) != ("substr" in preset)
    assert isinstance(preset["text"], str) and preset["text"]
    assert name in DESCRIPTIONS and DESCRIPTIONS[name]
    threshold = preset.get("threshold")
    if threshold is not None:
        assert isinstance(threshold, dict)
        assert set(threshold) == {"count", "window", "key"}
        assert isinstance(threshold["count"], int) and threshold["count"] >= 1
        assert DURATION.fullmatch(threshold["window"])
    if "cooldown" in preset:
        assert threshold is not None, "a cooldown needs a threshold key"
        assert DURATION.fullmatch(str(preset["cooldown"]))


def test_every_preset_has_a_description_and_a_file_of_lines_and_nothing_else_does() -> (
    None
):
    assert set(DESCRIPTIONS) == set(PRESETS)
    assert set(LINES) == set(PRESETS)


@pytest.mark.parametrize("name", PRESETS)
def test_each_preset_pattern_and_exclude_compiles_in_the_musl_dialect_and_lints_clean(
    name: str,
) -> None:
    for pattern in [str(PRESETS[name]["regex"]), *excludes(name)]:
        musl.compile(pattern)
        assert musl.lint(pattern) == [], pattern


@pytest.mark.parametrize("name", PRESETS)
def test_each_preset_text_and_key_use_only_groups_its_regex_has(name: str) -> None:
    preset = PRESETS[name]
    groups = COMPILED[name][0].groups
    masks = [str(preset["text"])]
    threshold = preset.get("threshold")
    if isinstance(threshold, dict):
        masks.append(str(threshold["key"]))
    for mask in masks:
        used = [int(n) for n in MASK_GROUP.findall(mask)]
        assert all(1 <= n <= groups for n in used), mask
        assert set(MASK_FIELD.findall(mask)) <= {"router"}, mask
    assert MASK_GROUP.search(str(preset["text"])), "the text names what happened"


@pytest.mark.parametrize("name", PRESETS)
def test_no_preset_depends_on_topics_or_severity_which_syslog_may_not_carry(
    name: str,
) -> None:
    """RouterOS's syslog format sends no topics before add-topics-string (7.22)."""
    assert "topics" not in PRESETS[name]
    assert "severity" not in PRESETS[name]


@pytest.mark.parametrize("name", sorted(LINES))
def test_each_preset_has_lines_in_the_default_syslog_and_cef_formats(
    name: str,
) -> None:
    formats = {parse(line.raw.encode()).format for line in LINES[name]}
    assert formats == FORMATS


@pytest.mark.parametrize("line", ALL_LINES, ids=str)
def test_each_line_fires_its_own_preset_only_with_the_expected_captures(
    line: Line,
) -> None:
    for raw in (line.raw.encode(), line.raw.encode() + b"\r\n"):
        assert firing(raw) == [line.file]
        captures = match(line.file, raw)
        assert captures is not None
        for group, value in line.groups.items():
            assert captures[group] == value, f"@{group}"


@pytest.mark.parametrize("line", UNRELATED, ids=str)
def test_no_preset_fires_on_an_unrelated_routeros_line(line: Line) -> None:
    for raw in (line.raw.encode(), line.raw.encode() + b"\r\n"):
        assert firing(raw) == []


def test_the_unrelated_lines_cover_every_format() -> None:
    assert {parse(line.raw.encode()).format for line in UNRELATED} == FORMATS


@pytest.mark.parametrize("name", PRESETS)
def test_each_preset_written_as_toml_reads_back_as_the_same_rule(name: str) -> None:
    (rule,) = tomllib.loads(toml_table(name))["rules"]
    assert rule.pop("name") == name
    assert rule.pop("notify") == ["ops"]
    assert rule == PRESETS[name]


def test_docs_rules_md_presets_section_is_the_one_the_module_generates() -> None:
    doc = (REPO / "docs" / "RULES.md").read_text(encoding="utf-8")
    assert with_section(doc) == doc, (
        "docs/RULES.md's presets section differs from matcher/presets.py; "
        "run: python -m alertik.matcher.presets --write docs/RULES.md"
    )


def test_the_generated_section_names_every_preset_and_its_text() -> None:
    section = markdown()
    for name, preset in PRESETS.items():
        assert f"| `{name}` |" in section
        assert str(preset["text"]).replace("|", "\\|") in section
