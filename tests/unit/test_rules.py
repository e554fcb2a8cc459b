"""The rule engine: substr and regex events, masks, static events, texts."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, strategies as st

from alertik.common.config import ConfigError, Rule, StaticRule, load
from alertik.matcher.alerts import alert_text
from alertik.matcher.rules import MaskPart, RuleSet, expand, parse_mask, time_suffix
from alertik.matcher.static import wifi_login_attempt

FIELDS = {"sender": "192.0.2.1", "node": "edge1"}


def rule(kind: str, match: str, mask: str, i: int = 0, notifier: str = "Slack") -> Rule:
    return Rule(index=i, notifier=notifier, match_type=kind, match_str=match, mask=mask)  # type: ignore[arg-type]


def bodies(rs: RuleSet, line: bytes) -> list[str]:
    return [m.body for m in rs.match(line, FIELDS)]


README_FIREWALL = (
    r"input: in:.*src-mac [0-9a-f:]+, proto [^,]+, "
    r"((\d{1,3}\.?)+):(\d{1,5})->((\d{1,3}\.?)+):(\d{1,5})"
)
INPUT_LINE = (
    b"input: in:WANinterface out:(unknown 0), connection-state:new src-mac "
    b"18:3d:5e:79:42:a5, proto TCP (SYN), 192.0.2.1:45624->198.51.100.2:80, len 60"
)


@pytest.mark.parametrize(
    ("kind", "match", "mask", "line", "expected"),
    [
        (
            "substr",
            "login failure for user admin",
            "There is a failed login attempt for user admin",
            b"system,error,critical login failure for user admin from 192.0.2.1 "
            b"via ssh",
            ["There is a failed login attempt for user admin"],
        ),
        ("substr", "Login failure", "x", b"login failure for user admin", []),
        ("substr", "", "every message", b"anything", ["every message"]),
        (
            "regex",
            r"login failure for user ([A-Za-z]+) from (\d{1,3}.*) via ssh",
            "Alert: failed user attempt to login as @1 from @2",
            b"system,error,critical login failure for user admin from 192.168.1.10 "
            b"via ssh",
            ["Alert: failed user attempt to login as admin from 192.168.1.10"],
        ),
        (
            "regex",
            r"login failure for user ([A-Za-z]+) from (\d{1,3}.*) via ssh",
            "@1",
            b"login failure for user john_doe from 192.168.1.10 via ssh",
            [],
        ),
        (
            "regex",
            r"([a-zA-Z0-9]+) link up \(speed (\d+Mbps), full duplex\)",
            "Your interface @1 is running at @2",
            b"eth0 link up (speed 100Mbps, full duplex)",
            ["Your interface eth0 is running at 100Mbps"],
        ),
        (
            "regex",
            README_FIREWALL,
            "The IP @1:@3 is trying to connect to your router @4:@6, please do "
            "something",
            INPUT_LINE,
            [
                "The IP 192.0.2.1:45624 is trying to connect to your router "
                "198.51.100.2:80, please do something"
            ],
        ),
        (
            "regex",
            r"via (web|webfig|winbox)",
            "@1",
            b"logged in via webfig",
            ["webfig"],
        ),
        ("regex", "(a)|b", "[@1]", b"b", ["[]"]),
        ("regex", "x(a*)y", "[@1]", b"xy and more", ["[]"]),
        (
            "regex",
            "user",
            "mail admin@@example.com",
            b"user",
            ["mail admin@example.com"],
        ),
        ("substr", "user", "admin@example.com", b"user", ["admin@example.com"]),
        ("substr", "user", "@@ and @", b"user", ["@ and @"]),
        (
            "substr",
            "user",
            "from @{sender} via @{node}",
            b"user",
            ["from 192.0.2.1 via edge1"],
        ),
        (
            "regex",
            "(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)",
            "@10-@1",
            b"abcdefghij",
            ["j-a"],
        ),
        ("substr", "needle", "hit", b"abc\x00needle", ["hit"]),
        ("regex", "caf(.)", "@1", b"caf\xe9", ["\ufffd"]),
    ],
)
def test_rules_give_alertik_s_texts(
    kind: str, match: str, mask: str, line: bytes, expected: list[str]
) -> None:
    assert bodies(RuleSet([rule(kind, match, mask)], []), line) == expected


def test_every_matching_rule_fires_in_order_after_the_static_events() -> None:
    rs = RuleSet(
        [rule("substr", "key", "first", 0), rule("regex", "ex(ch)", "@1", 1)],
        [StaticRule(index=0, notifier="Telegram")],
    )
    line = (
        b"wireless,info 36:7F:7F:07:C4:B0@honeypot: disconnected, unicast key "
        b"exchange timeout, signal strength -85"
    )
    assert [(m.rule, m.notifier) for m in rs.match(line, FIELDS)] == [
        ("STATIC_EVENT0", "Telegram"),
        ("EVENT0", "Slack"),
        ("EVENT1", "Slack"),
    ]


def test_a_thousand_rules_match_like_one_rule_at_a_time() -> None:
    rules = [rule("substr", f"needle{i} ", f"sub{i}", i) for i in range(500)]
    rules += [
        rule("regex", rf"re{i}x([0-9]+)", f"re{i}:@1", 500 + i) for i in range(500)
    ]
    many = RuleSet(rules, [])
    assert many._prefilter is not None
    for line in (
        b"needle7 and re42x123 and needle499 ",
        b"nothing here",
        b"re0x1 re999x77 needle0 ",
    ):
        one_by_one = [b for r in rules for b in bodies(RuleSet([r], []), line)]
        assert bodies(many, line) == one_by_one
        assert one_by_one or line == b"nothing here"


@pytest.mark.parametrize(
    ("kind", "match", "mask", "variable", "why"),
    [
        ("substr", "x", "got @1", "EVENT0_MASK_MSG", "substr rules have none"),
        ("regex", "(x)", "got @2", "EVENT0_MASK_MSG", "the regex has 1"),
        ("regex", "x", "got @1", "EVENT0_MASK_MSG", "the regex has none"),
        ("regex", "(x)", "got @0", "EVENT0_MASK_MSG", "@0"),
        ("regex", "(?:x)", "got", "EVENT0_MATCH_STR", ""),
        ("regex", "a{,2}", "got", "EVENT0_MATCH_STR", ""),
        ("regex", "(a", "got", "EVENT0_MATCH_STR", ""),
    ],
)
def test_bad_rules_are_refused_naming_the_variable(
    kind: str, match: str, mask: str, variable: str, why: str
) -> None:
    with pytest.raises(ConfigError) as info:
        RuleSet([rule(kind, match, mask)], [])
    assert info.value.variable == variable
    assert why in str(info.value)


def test_wifi_login_attempt_reports_interface_and_mac() -> None:
    line = (
        b"wireless,info 36:7F:7F:07:C4:B0@honeypot: disconnected, unicast key "
        b"exchange timeout, signal strength -85"
    )
    assert wifi_login_attempt(line) == (
        "There is someone trying to connect to your WiFi: honeypot, "
        "with the mac-address: 36:7F:7F:07:C4:B0"
    )


@pytest.mark.parametrize(
    "line",
    [
        b"unicast key exchange timeout",  # no '@'
        b"36:7F@wlan1 unicast key exchange timeout",  # no space before the '@'
        b"x 36:7F@wlan1 unicast key exchange timeout",  # no ':' after the '@'
        b"x 36:7F@wlan1: disconnected",  # not the event at all
    ],
)
def test_wifi_login_attempt_ignores_lines_it_cannot_parse(line: bytes) -> None:
    assert wifi_login_attempt(line) is None


def test_static_event_text_uses_alertik_s_own_suffix() -> None:
    cfg = load({"HOME": "/nonexistent"})
    rs = RuleSet([], [StaticRule(index=0, notifier="Telegram")])
    (m,) = rs.match(b"a 11:22@guest: x, unicast key exchange timeout", FIELDS)
    when = time.mktime((2026, 11, 26, 9, 5, 7, 0, 0, -1))
    assert alert_text(cfg, m, when) == (
        "There is someone trying to connect to your WiFi: guest, "
        "with the mac-address: 11:22, at:2026-11-26 09:05:07"
    )


def test_env_event_text_ends_with_alertik_s_time_suffix() -> None:
    cfg = load({"HOME": "/nonexistent"})
    (m,) = RuleSet([rule("substr", "x", "Hello")], []).match(b"x", FIELDS)
    when = time.mktime((2026, 1, 2, 3, 4, 5, 0, 0, -1))
    assert alert_text(cfg, m, when) == "Hello, at: 2026-01-02 03:04:05"


def test_time_suffix_can_be_changed_or_dropped() -> None:
    when = time.mktime((2026, 1, 2, 3, 4, 5, 0, 0, -1))
    assert time_suffix(" [%H:%M]", when) == " [03:04]"
    assert time_suffix("", when) == ""


# --- masks against an independent reference -------------------------------


def reference_expand(
    mask: str, groups: list[bytes | None], fields: dict[str, str]
) -> str:
    """A character-by-character reading of the documented mask rules."""
    out = []
    i = 0
    while i < len(mask):
        c = mask[i]
        if c != "@":
            out.append(c)
            i += 1
            continue
        nxt = mask[i + 1 : i + 2]
        if nxt == "@":
            out.append("@")
            i += 2
        elif nxt.isdigit() and nxt.isascii():
            j = i + 2
            if mask[j : j + 1].isdigit() and mask[j : j + 1].isascii():
                j += 1
            g = groups[int(mask[i + 1 : j])]
            out.append((g or b"").decode("utf-8", "replace"))
            i = j
        elif mask.startswith("{sender}", i + 1) or mask.startswith("{node}", i + 1):
            name = mask[i + 2 : mask.index("}", i)]
            out.append(fields[name])
            i = mask.index("}", i) + 1
        else:
            out.append("@")
            i += 1
    return "".join(out)


mask_text = st.lists(
    st.sampled_from([*list("ab @{}0123456789é٣"), "{sender}", "{node}"]),
    max_size=40,
).map("".join)


@given(
    mask=mask_text,
    groups=st.lists(
        st.one_of(st.none(), st.binary(max_size=5)), min_size=100, max_size=100
    ),
)
def test_mask_expansion_follows_the_documented_rules(
    mask: str, groups: list[bytes | None]
) -> None:
    assert expand(parse_mask(mask), groups, FIELDS) == reference_expand(
        mask, groups, FIELDS
    )


@given(mask=mask_text)
def test_parsed_masks_never_hold_empty_literals(mask: str) -> None:
    parts = parse_mask(mask)
    assert all(p.literal or p.group >= 0 or p.field for p in parts)
    assert MaskPart() not in parts


def test_alert_ids_stay_unique_when_a_restarted_ingest_reuses_pid_and_seq() -> None:
    """A container restart gives ingest the same pid and restarts its seq at 1;
    notify drops ids it has seen, so the ids must still differ."""
    from alertik.common.schema import SyslogEvent
    from alertik.matcher.alerts import build_alerts

    cfg = load({"HOME": "/nonexistent"})
    rs = RuleSet([rule("substr", "x", "hit")], [])
    ids = set()
    for boot_time in (1_700_000_000.25, 1_700_000_090.5):
        event = SyslogEvent(
            raw=b"x",
            received=boot_time,
            sender="192.0.2.1",
            sender_port=1,
            node="edge1",
            seq=1,
            pid=9,
        )
        (alert,) = build_alerts(cfg, rs, event)
        ids.add(alert.id)
    assert len(ids) == 2
