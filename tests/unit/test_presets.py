"""The presets, through the rules-file engine: what an admin who names one gets.

A rules file with one rule per preset (``preset = "NAME"``) is compiled by the
real engine (matcher/rulecompile.py); each of our RouterOS lines in
tests/data/presets/ (default, syslog and CEF formats) goes through the rule
set's scan and the threshold gate, and must fire its own preset only, with the
captures and the exact text listed in the file; no line of unrelated.txt may
fire any. The presets themselves must be valid rule tables, lint clean, and
match docs/RULES.md.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from alertik.common import rulesfile
from alertik.common.schema import SyslogEvent
from alertik.matcher import musl
from alertik.matcher.formats import parse
from alertik.matcher.gate import Gate, Release
from alertik.matcher.presets import (
    DESCRIPTIONS,
    PRESETS,
    markdown,
    toml_table,
    with_section,
)
from alertik.matcher.rulecompile import compile_file, lint
from alertik.matcher.rulefile import FIELDS, FileRule, Hit, Record
from alertik.matcher.rules import RuleSet
from tests import preset_lines
from tests.preset_lines import Line
from tests.support import REPO

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


SENDER = "192.0.2.1"  # the router a line comes from: @{router} without identity
T0 = 1_800_000_000.0
LINES = {name: preset_lines.read(name) for name in preset_lines.names()}
UNRELATED = preset_lines.read(preset_lines.UNRELATED)
ALL_LINES = [line for lines in LINES.values() for line in lines]


def excludes(name: str) -> list[str]:
    value = PRESETS[name].get("exclude", [])
    assert isinstance(value, list) and all(isinstance(x, str) for x in value)
    return value


@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory) -> list[FileRule]:
    """A rules file naming every preset, once each, compiled by the engine."""
    path = tmp_path_factory.mktemp("presets") / "rules.toml"
    path.write_text(
        "".join(
            f'[[rules]]\nname = "{name}"\npreset = "{name}"\nnotify = "Slack"\n\n'
            for name in PRESETS
        ),
        encoding="utf-8",
    )
    return compile_file(rulesfile.read(str(path)))


@pytest.fixture(scope="module")
def ruleset(rules: list[FileRule]) -> RuleSet:
    return RuleSet([], [], rules)


def scan(ruleset: RuleSet, raw: bytes, sender: str = SENDER) -> list[Hit]:
    """The file rules that fire on raw, as the matcher stage finds them."""
    matches, hits = ruleset.scan(Record(raw, sender, "node"))
    assert matches == []
    return hits


class Sender:
    """Lines through a rule set and a gate on a fixed clock: the alerts they make."""

    def __init__(self, rules: list[FileRule], ruleset: RuleSet) -> None:
        self.gate = Gate(rules, suffix="", max_keys=10_000, clock=lambda: T0)
        self.ruleset = ruleset
        self.seq = 0

    def send(self, raw: bytes, sender: str = SENDER) -> list[Release]:
        out: list[Release] = []
        for hit in scan(self.ruleset, raw, sender):
            self.seq += 1
            event = SyslogEvent(
                raw=raw,
                received=T0 + self.seq * 0.001,
                sender=sender,
                sender_port=514,
                node="node",
                seq=self.seq,
            )
            out += self.gate.offer(hit, event)
        return out


def count_of(name: str) -> int:
    threshold = PRESETS[name].get("threshold")
    return int(threshold["count"]) if isinstance(threshold, dict) else 1


@pytest.mark.parametrize("name", PRESETS)
def test_each_preset_is_a_rule_table_with_known_keys_and_no_name_or_notify(
    name: str,
) -> None:
    preset = PRESETS[name]
    assert set(preset) <= RULE_KEYS
    assert ("regex" in preset) != ("substr" in preset)
    assert isinstance(preset["text"], str) and preset["text"]
    assert DESCRIPTIONS.get(name)
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
def test_each_preset_text_and_key_use_only_groups_its_regex_has_and_known_fields(
    name: str,
) -> None:
    preset = PRESETS[name]
    groups = musl.compile(str(preset["regex"])).groups
    masks = [str(preset["text"])]
    threshold = preset.get("threshold")
    if isinstance(threshold, dict):
        masks.append(str(threshold["key"]))
    for mask in masks:
        used = [int(n) for n in MASK_GROUP.findall(mask)]
        assert all(1 <= n <= groups for n in used), mask
        assert set(MASK_FIELD.findall(mask)) <= set(FIELDS), mask
    text = str(preset["text"])
    assert MASK_GROUP.search(text) or "@{message}" in text, "says what happened"


def test_every_preset_compiles_as_a_rule_the_engine_does_not_warn_about(
    rules: list[FileRule],
) -> None:
    assert [r.name for r in rules] == list(PRESETS)
    assert {r.name: lint(r) for r in rules} == {name: [] for name in PRESETS}


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
def test_each_line_fires_its_own_preset_only_with_its_captures_and_text(
    line: Line, rules: list[FileRule], ruleset: RuleSet
) -> None:
    """1. Scan the line (and the line with CEF's CRLF) with every preset's rule.
    2. Send it through the gate as often as the preset's threshold needs.

    Result: only its own preset fires, with the listed captures, and the gate
    releases exactly the listed text once, on the last of those sends; with a
    cooldown, one more send is held.
    """
    assert len(line.texts) == 1, "each line lists the text it gives"
    count = count_of(line.file)
    for raw in (line.raw.encode(), line.raw.encode() + b"\r\n"):
        hits = scan(ruleset, raw)
        assert [h.rule.name for h in hits] == [line.file]
        captures = [c.decode() if c is not None else None for c in hits[0].captures]
        for group, value in line.groups.items():
            assert captures[group] == value, f"@{group}"
        sender = Sender(rules, ruleset)
        for _ in range(count - 1):
            assert sender.send(raw) == []
        assert [r.text for r in sender.send(raw)] == line.texts
        if "cooldown" in PRESETS[line.file]:
            assert sender.send(raw) == []


@pytest.mark.parametrize("line", UNRELATED, ids=str)
def test_no_preset_fires_on_an_unrelated_routeros_line(
    line: Line, ruleset: RuleSet
) -> None:
    for raw in (line.raw.encode(), line.raw.encode() + b"\r\n"):
        assert scan(ruleset, raw) == []


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


def test_login_failure_alerts_once_on_the_fifth_failure_from_one_address_in_any_format(
    rules: list[FileRule], ruleset: RuleSet
) -> None:
    """1. Four failures from 192.0.2.8 and five from 192.0.2.7, interleaved, in
    the default, syslog and CEF formats (one router).
    2. Two more from 192.0.2.7.

    Result: one alert, naming 192.0.2.7 and the five failures; the two later
    ones are held by the cooldown.
    """
    lines = {
        "default": "system,error,critical login failure for user {u} from {a} via ssh",
        "syslog": "<27>Nov 14 03:12:09 gw login failure for user {u} from {a} via ssh",
        "cef": "Nov 14 03:12:09 gw CEF:0|MikroTik|CHR|7.19.4 (stable)|10|"
        "system,error,critical|High|dvchost=gw dvc=192.0.2.1 msg=login failure "
        "for user {u} from {a} via ssh app=ssh duser={u} outcome=failure src={a}",
    }
    formats = list(lines.values())
    sender = Sender(rules, ruleset)
    out: list[Release] = []
    for i in range(4):
        for address in ("192.0.2.7", "192.0.2.8"):
            line = formats[i % 3].format(u=f"user{i}", a=address)
            out += sender.send(line.encode())
    assert out == []
    out += sender.send(formats[1].format(u="root", a="192.0.2.7").encode())
    assert [r.text for r in out] == [
        "Repeated failed logins on gw from 192.0.2.7 (last: user root via ssh)"
    ]
    for i in range(2):
        assert sender.send(formats[i].format(u="admin", a="192.0.2.7").encode()) == []


# Per stateful preset: lines sent in order, each with its sender and whether it
# makes an alert: what the preset's threshold key keeps apart and what it
# holds together.
KEYED = {
    "login-new-address": [
        ("system,info,account user admin logged in from 192.0.2.10 via winbox", 1),
        ("system,info,account user admin logged in from 192.0.2.10 via ssh", 0),
        ("system,info,account user admin logged in from 192.0.2.99 via winbox", 1),
        ("system,info,account user noc logged in from 192.0.2.10 via winbox", 1),
        ("<30>Nov 14 09:01:02 gw2 user admin logged in from 192.0.2.10 via web", 1),
    ],
    "denied-connect": [
        ("warning denied winbox/dude connect from 203.0.113.200", 1),
        ("warning denied winbox/dude connect from 198.51.100.7", 0),
        ("<28>Nov 14 11:40:00 gw2 denied winbox/dude connect from 198.51.100.7", 1),
    ],
    "interface-link": [
        ("interface,info ether1 link down", 1),
        ("interface,info ether1 link up (speed 1G, full duplex)", 1),
        ("interface,info ether1 link down", 0),
        ("interface,info ether2 link down", 1),
    ],
    "dhcp-pool-exhausted": [
        ("dhcp,error dhcp1 failed to give out IP address: pool <p1> is empty", 1),
        ("dhcp,error dhcp1 failed to give out IP address: pool <p1> is empty", 0),
        ("dhcp,error guest failed to give out IP address: pool <p2> is empty", 1),
    ],
    "firewall-prefix": [
        (
            "firewall,info DROP-WAN input: in:ether1 out:(unknown 0), proto TCP "
            "(SYN), 203.0.113.9:51515->192.0.2.1:8291, len 60",
            1,
        ),
        (
            "firewall,info DROP-WAN input: in:ether1 out:(unknown 0), proto UDP, "
            "198.51.100.3:5060->192.0.2.1:5060, len 420",
            0,
        ),
        (
            "firewall,info ssh brute input: in:ether1 out:(unknown 0), proto TCP "
            "(SYN), 198.51.100.7:40022->192.0.2.1:22, len 60",
            1,
        ),
    ],
}


@pytest.mark.parametrize("name", KEYED)
def test_each_stateful_preset_holds_repeats_of_a_key_and_alerts_on_a_new_one(
    name: str, rules: list[FileRule], ruleset: RuleSet
) -> None:
    sender = Sender(rules, ruleset)
    made = [len(sender.send(line.encode())) for line, _ in KEYED[name]]
    assert made == [alerts for _, alerts in KEYED[name]]


def test_every_preset_with_a_cooldown_is_covered_by_the_keyed_tests() -> None:
    stateful = {n for n, p in PRESETS.items() if "cooldown" in p}
    assert stateful == set(KEYED) | {"login-failure"}


def test_the_preset_examples_in_docs_rules_md_compile_with_the_engine(
    tmp_path: Path,
) -> None:
    doc = (REPO / "docs" / "RULES.md").read_text(encoding="utf-8")
    section = doc[doc.index("## Presets") : doc.index("### Every format")]
    blocks = re.findall(r"```toml\n(.*?)```", section, re.S)
    assert len(blocks) == 2
    destinations = "".join(
        f'[destinations.{name}]\ntype = "generic"\nurl = "http://127.0.0.1:9/"\n\n'
        for name in ("ops", "noc", "security")
    )
    for i, block in enumerate(blocks):
        path = tmp_path / f"example{i}.toml"
        path.write_text(destinations + block, encoding="utf-8")
        compiled = compile_file(rulesfile.read(str(path)))
        assert compiled and all(lint(r) == [] for r in compiled)
