"""Thresholds, cooldowns and quiet hours (matcher/gate.py), on a test clock.

Time is driven by hand: hits carry their receive time, and the gate's clock
is a list the test moves forward. State that must survive a restart goes
through a real RuleStore (sqlite) in tmp_path.
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import pytest

from alertik.common import rulesfile
from alertik.common.schema import SyslogEvent
from alertik.matcher.alerts import build_alerts
from alertik.matcher.gate import Gate, Release
from alertik.matcher.rulecompile import compile_file
from alertik.matcher.rulefile import FileRule, Record
from alertik.matcher.rules import RuleSet
from alertik.matcher.rulestate import RuleStore

T0 = datetime.datetime(2026, 3, 10, 12, 0, 0).timestamp()
NIGHT = datetime.datetime(2026, 3, 10, 23, 30, 0).timestamp()
MORNING = datetime.datetime(2026, 3, 11, 7, 0, 0).timestamp()

BRUTE = """
[[rules]]
name = "ssh-bruteforce"
regex = 'login failure for user ([^ ]+) from ([0-9.]+) via'
threshold = { count = 5, window = "60s", key = "@2" }
cooldown = "10m"
notify = ["Generic1", "Slack"]
text = "Brute force from @2 (user @1), @{count} tries"
"""


def login(address: str, user: str = "admin", topics: str = "system,error") -> bytes:
    return (
        f"{topics},critical login failure for user {user} from {address} via "
        "ssh".encode()
    )


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Bench:
    """A rule set, a gate on a test clock, and events numbered in order."""

    def __init__(self, tmp_path: Path, text: str, store: bool = False, **kw: int):
        path = tmp_path / "rules.toml"
        path.write_text(text)
        self.rules = compile_file(rulesfile.read(str(path)), {})
        self.clock = Clock(T0)
        self.store = RuleStore(str(tmp_path / "state")) if store else None
        self.gate = Gate(
            self.rules,
            suffix="",
            max_keys=kw.get("max_keys", 10_000),
            clock=self.clock,
            store=self.store,
        )
        self.ruleset = RuleSet([], [], self.rules)
        self.seq = 0

    def send(self, raw: bytes, at: float) -> list[Release]:
        """Offer one line received at `at`; what the gate released."""
        self.seq += 1
        event = SyslogEvent(
            raw=raw,
            received=at,
            sender="192.0.2.1",
            sender_port=514,
            node="n",
            seq=self.seq,
        )
        self.clock.now = max(self.clock.now, at)
        _, hits = self.ruleset.scan(Record(raw, event.sender, event.node))
        out: list[Release] = []
        for hit in hits:
            out += self.gate.offer(hit, event)
        self.gate.flush()
        return out

    def advance(self, to: float) -> list[Release]:
        self.clock.now = to
        out = self.gate.due()
        self.gate.flush()
        return out


def test_five_failed_logins_from_one_address_and_four_from_another_alert_once(
    tmp_path: Path,
) -> None:
    b = Bench(tmp_path, BRUTE)
    released = []
    for i in range(5):
        released += b.send(login("192.0.2.7"), T0 + 10 * i)
        if i < 4:
            released += b.send(login("192.0.2.8"), T0 + 10 * i + 5)
    assert [r.text for r in released] == [
        "Brute force from 192.0.2.7 (user admin), 5 tries"
    ]
    assert released[0].notifiers == ("Generic1", "Slack")
    # Further hits from .7 during the cooldown are held, and so is nothing
    # else: .8 still counts towards its own threshold.
    for i in range(7):
        assert b.send(login("192.0.2.7", user=f"u{i}"), T0 + 60 + i) == []
    assert b.gate.next_due() == T0 + 40 + 600
    assert b.advance(T0 + 40 + 599) == []
    (summary,) = b.advance(T0 + 40 + 600)
    assert summary.text == (
        "ssh-bruteforce: 7 more hits for 192.0.2.7 during the 10m cooldown; the "
        "last: Brute force from 192.0.2.7 (user u6), 1 tries"
    )
    assert b.advance(T0 + 3600) == []
    assert b.gate.held_total == 7 and b.gate.summaries == 1


def test_hits_older_than_the_window_no_longer_count(tmp_path: Path) -> None:
    b = Bench(tmp_path, BRUTE)
    for i in range(4):
        assert b.send(login("192.0.2.7"), T0 + i) == []
    assert b.send(login("192.0.2.7"), T0 + 61) == []  # the first four are too old
    assert b.send(login("192.0.2.7"), T0 + 62) == []
    assert b.send(login("192.0.2.7"), T0 + 63) == []
    assert b.send(login("192.0.2.7"), T0 + 64) == []
    assert len(b.send(login("192.0.2.7"), T0 + 65)) == 1


def test_without_a_cooldown_each_run_of_count_hits_alerts_again(
    tmp_path: Path,
) -> None:
    b = Bench(tmp_path, BRUTE.replace('cooldown = "10m"\n', ""))
    released = [r for i in range(10) for r in b.send(login("192.0.2.7"), T0 + i)]
    assert len(released) == 2
    assert b.gate.keys == {} or all(not k.hits for k in b.gate.keys.values())


def test_a_cooldown_alone_sends_the_first_hit_and_summarises_the_rest(
    tmp_path: Path,
) -> None:
    b = Bench(
        tmp_path,
        '[[rules]]\nname = "link"\nregex = "(ether[0-9]+) link (up|down)"\n'
        'threshold = { count = 1, key = "@1" }\ncooldown = "5m"\n'
        'notify = "Slack"\ntext = "@1 @2"\n',
    )
    assert [r.text for r in b.send(b"interface,info ether1 link down", T0)] == [
        "ether1 down"
    ]
    assert [r.text for r in b.send(b"interface,info ether2 link down", T0 + 1)] == [
        "ether2 down"
    ]
    assert b.send(b"interface,info ether1 link up", T0 + 2) == []
    assert b.send(b"interface,info ether1 link down", T0 + 3) == []
    (summary,) = b.advance(T0 + 300)
    assert summary.text == (
        "link: 2 more hits for ether1 during the 5m cooldown; the last: ether1 down"
    )
    assert b.advance(T0 + 301) == []  # ether2 held nothing: no summary


def test_the_state_survives_a_restart(tmp_path: Path) -> None:
    b = Bench(tmp_path, BRUTE, store=True)
    for i in range(3):
        assert b.send(login("192.0.2.7"), T0 + i) == []
    assert b.store is not None
    b.store.close()
    # A new process: the same file, a new gate, the same state directory.
    b2 = Bench(tmp_path, BRUTE, store=True)
    assert b2.gate.restore() == []
    assert b2.send(login("192.0.2.7"), T0 + 3) == []
    assert len(b2.send(login("192.0.2.7"), T0 + 4)) == 1
    b2.send(login("192.0.2.7"), T0 + 5)
    assert b2.store is not None
    b2.store.close()
    b3 = Bench(tmp_path, BRUTE, store=True)
    assert b3.gate.restore() == []
    assert b3.gate.next_due() == T0 + 4 + 600  # the cooldown goes on
    (summary,) = b3.advance(T0 + 700)
    assert summary.text.startswith("ssh-bruteforce: 1 more hit for 192.0.2.7 ")


def test_a_reload_keeps_the_counters_of_rules_whose_identity_is_the_same(
    tmp_path: Path,
) -> None:
    b = Bench(tmp_path, BRUTE)
    for i in range(4):
        b.send(login("192.0.2.7"), T0 + i)
    # New text, count and destinations: the same rule.
    (tmp_path / "rules.toml").write_text(
        BRUTE.replace("@{count} tries", "new text").replace("count = 5", "count = 6")
    )
    new = compile_file(rulesfile.read(str(tmp_path / "rules.toml")), {})
    assert new[0].identity == b.rules[0].identity
    assert b.gate.rebind(new) == []
    b.ruleset = RuleSet([], [], new)
    assert b.send(login("192.0.2.7"), T0 + 5) == []  # 5 of 6
    assert [r.text for r in b.send(login("192.0.2.7"), T0 + 6)] == [
        "Brute force from 192.0.2.7 (user admin), new text"
    ]


def test_a_rule_whose_match_changed_starts_afresh_and_summarises_what_it_held(
    tmp_path: Path,
) -> None:
    b = Bench(tmp_path, BRUTE)
    for i in range(7):
        b.send(login("192.0.2.7"), T0 + i)  # 5: alert; 6, 7: held
    changed = BRUTE.replace("via'", "via ssh'")
    (tmp_path / "rules.toml").write_text(changed)
    new = compile_file(rulesfile.read(str(tmp_path / "rules.toml")), {})
    assert new[0].identity != b.rules[0].identity
    (summary,) = b.gate.rebind(new)
    assert (
        "2 more hits for 192.0.2.7 during the 10m cooldown (early: its rule "
        "changed)" in summary.text
    )
    assert b.gate.keys == {}
    assert b.gate.next_due() is None


def test_keys_past_the_cap_go_oldest_first_and_their_held_hits_are_summarised(
    tmp_path: Path,
) -> None:
    b = Bench(
        tmp_path,
        '[[rules]]\nname = "r"\nregex = "from ([0-9.]+)"\n'
        'threshold = { count = 1, key = "@1" }\ncooldown = "1h"\n'
        'notify = "Slack"\ntext = "@1"\n',
        max_keys=100,
    )
    assert len(b.send(b"x from 10.0.0.0", T0)) == 1
    assert b.send(b"x from 10.0.0.0", T0 + 1) == []  # held
    released = []
    for i in range(1, 101):
        released += b.send(f"x from 10.0.1.{i}".encode(), T0 + 1 + i)
    # 100 first alerts, and the evicted 10.0.0.0 summarised early.
    summaries = [r for r in released if "more hit" in r.text]
    assert len(released) == 101 and len(summaries) == 1
    assert summaries[0].text.startswith(
        "r: 1 more hit for 10.0.0.0 during the 1h "
        "cooldown (early: its counter had to make room)"
    )
    assert b.gate.evicted == 1 and len(b.gate.keys) == 100


def test_quiet_hours_hold_alerts_until_morning_and_send_one_digest(
    tmp_path: Path,
) -> None:
    b = Bench(
        tmp_path,
        '[[rules]]\nname = "night"\nregex = "login failure for user ([a-z]+)"\n'
        'quiet_hours = { from = "23:00", to = "07:00", except_severity = "critical" }'
        '\nnotify = ["Slack", "Generic1"]\ntext = "@1 @{severity}"\n',
        store=True,
    )
    assert [r.text for r in b.send(login("1", user="day"), T0)] == ["day error"]
    assert b.send(login("1", user="alice"), NIGHT) == []
    assert b.send(login("1", user="bob"), NIGHT + 60) == []
    # A critical one breaks through at once.
    loud = b.send(login("1", user="eve", topics="system,critical"), NIGHT + 120)
    assert [r.text for r in loud] == ["eve critical"]
    assert b.gate.next_due() == MORNING
    assert b.gate.quiet_held == 2
    # A restart during the night loses none of them.
    assert b.store is not None
    b.store.close()
    b = Bench(tmp_path, (tmp_path / "rules.toml").read_text(), store=True)
    assert b.gate.restore() == []
    assert b.advance(MORNING - 1) == []
    (digest,) = b.advance(MORNING)
    assert digest.notifiers == ("Slack", "Generic1")
    assert digest.text == (
        "night: 2 alerts held during quiet hours 23:00-07:00:\n"
        "- alice error\n- bob error"
    )
    assert b.gate.quiet_held == 0
    assert b.advance(MORNING + 86400) == []


def test_a_cooldown_summary_at_night_waits_for_the_digest(tmp_path: Path) -> None:
    b = Bench(
        tmp_path,
        BRUTE.replace(
            'cooldown = "10m"',
            'cooldown = "10m"\nquiet_hours = { from = "23:00", to = "07:00" }',
        ),
    )
    for i in range(5):
        b.send(login("192.0.2.7"), T0 + i)
    b.send(login("192.0.2.7"), T0 + 10)
    assert b.advance(T0 + 700)[0].text.startswith("ssh-bruteforce: 1 more hit")
    for i in range(6):
        b.send(login("192.0.2.7"), NIGHT + i)
    assert b.advance(NIGHT + 700) == []
    (digest,) = b.advance(MORNING)
    lines = digest.text.split("\n")
    assert lines[0] == "ssh-bruteforce: 2 alerts held during quiet hours 23:00-07:00:"
    assert lines[1].startswith("- Brute force from 192.0.2.7")
    assert lines[2].startswith("- ssh-bruteforce: 1 more hit for 192.0.2.7")


def test_build_alerts_sends_one_alert_per_destination_with_stable_ids(
    tmp_path: Path,
) -> None:
    from alertik.common import config

    (tmp_path / "rules.toml").write_text(BRUTE)
    cfg = config.load(
        {
            "ALERTIK_RULES_FILE": str(tmp_path / "rules.toml"),
            "GENERIC1_WEBHOOK_URL": "http://127.0.0.1:9/a",
            "SLACK_WEBHOOK_URL": "http://127.0.0.1:9/b",
            "ALERTIK_RUN_DIR": str(tmp_path / "run"),
            "ALERTIK_STATE_DIR": str(tmp_path / "state"),
        }
    )
    rules = compile_file(cfg.rules_file) if cfg.rules_file else []
    rs = RuleSet([], [], rules)
    gate = Gate(rules, suffix=cfg.time_suffix, max_keys=10, clock=Clock(T0))
    alerts = []
    for i in range(5):
        event = SyslogEvent(
            raw=login("192.0.2.7"),
            received=T0 + i,
            sender="192.0.2.1",
            sender_port=514,
            node="n",
            seq=i,
            pid=7,
        )
        alerts += build_alerts(cfg, rs, event, gate)
    assert [a.notifier for a in alerts] == ["Generic1", "Slack"]
    assert alerts[0].id == alerts[1].id == f"n/7/4/{T0 + 4:.6f}/ssh-bruteforce"
    assert re.fullmatch(
        r"Brute force from 192\.0\.2\.7 \(user admin\), 5 tries, at: "
        r"2026-03-10 12:00:04",
        alerts[0].text,
    )
    assert alerts[0].fields is not None and alerts[0].fields.severity == 3


@pytest.mark.parametrize("keys", [1, 3])
def test_a_threshold_key_may_combine_fields_and_groups(
    tmp_path: Path, keys: int
) -> None:
    b = Bench(
        tmp_path,
        '[[rules]]\nname = "k"\nregex = "user ([a-z]+) from ([0-9.]+)"\n'
        'threshold = { count = 2, window = "1m", key = "@{router} @1 @2" }\n'
        'notify = "Slack"\n',
    )
    rule: FileRule = b.rules[0]
    assert rule.key
    released = []
    for i in range(2 * keys):
        released += b.send(f"x user a from 10.0.0.{i % keys}".encode(), T0 + i)
    assert len(released) == keys
    assert set(b.gate.keys) == set()


ACTION = """
[destinations.block]
type = "routeros-address-list"
url = "https://192.0.2.1"
user = "alertik"
password = "pw"
list = "blocked"
address = "@2"

[[rules]]
name = "ssh"
regex = 'login failure for user ([^ ]+) from ([0-9.]+) via'
threshold = { count = 2, window = "60s", key = "@2" }
cooldown = "10m"
quiet_hours = { from = "23:00", to = "07:00" }
notify = ["block", "Slack"]
text = "@2"
"""


def test_an_action_gets_the_address_at_once_and_no_summaries_or_digests(
    tmp_path: Path,
) -> None:
    b = Bench(tmp_path, ACTION)
    assert b.rules[0].addresses and b.rules[0].messages == ("Slack",)
    b.send(login("192.0.2.7"), T0)
    (alert,) = b.send(login("192.0.2.7"), T0 + 1)
    assert alert.notifiers == ("block", "Slack")
    assert alert.addresses == {"block": "192.0.2.7"}
    b.send(login("192.0.2.7"), T0 + 2)
    (summary,) = b.advance(T0 + 1 + 600)
    assert summary.notifiers == ("Slack",) and summary.addresses == {}
    # At night the router still acts at once; the message waits for morning.
    b.send(login("192.0.2.9"), NIGHT)
    (now,) = b.send(login("192.0.2.9"), NIGHT + 1)
    assert now.notifiers == ("block",) and now.addresses == {"block": "192.0.2.9"}
    (digest,) = b.advance(MORNING)
    assert digest.notifiers == ("Slack",)


def test_a_rule_whose_groups_do_not_fit_an_actions_address_is_refused(
    tmp_path: Path,
) -> None:
    from alertik.common.config import ConfigError

    with pytest.raises(ConfigError) as info:
        Bench(
            tmp_path,
            ACTION.replace("([0-9.]+) via", "[0-9.]+ via")
            .replace('key = "@2"', 'key = "@1"')
            .replace('text = "@2"', 'text = "@1"'),
        )
    assert (
        "rule 'ssh', key notify: sends to block, whose address = '@2' fails "
        "here: @2 names capture group 2, but the regex has 1" in str(info.value)
    )
