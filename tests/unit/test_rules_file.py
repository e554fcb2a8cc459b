"""The rules file: reading, locating errors, decoding, matching (no state).

Errors must name the file, the line, the rule and the key, with a fix; the
conditions on the record must give the same answer whichever format the
router sends. What holds state (thresholds, cooldowns, quiet hours) is in
test_gate.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from alertik.common import rulesfile
from alertik.common.config import ConfigError
from alertik.matcher.presets import PRESETS
from alertik.matcher.rulecompile import compile_file, duration, lint
from alertik.matcher.rulefile import FileRule, Hit, Record
from alertik.matcher.rules import RuleSet
from tests import preset_lines

# One login failure as each remote-log-format sends it (add-topics-string=yes
# for syslog), identity MikroTik, from the router at 192.0.2.1.
FORMATS = {
    "default": b"system,error,critical,account login failure for user admin "
    b"from 192.0.2.7 via ssh",
    "syslog": b"<27>Oct  2 17:36:35 MikroTik system,error,critical,account login "
    b"failure for user admin from 192.0.2.7 via ssh",
    "cef": b"Oct  2 17:36:35 MikroTik CEF:0|MikroTik|hAP ax^2|7.25|10|system,error,"
    b"critical,account|High|dvchost=MikroTik dvc=192.0.2.1 msg=login failure for "
    b"user admin from 192.0.2.7 via ssh",
}
INFO = {
    "default": b"system,info,account user admin logged in from 192.0.2.7 via ssh",
    "syslog": b"<30>Oct  2 17:36:35 MikroTik system,info,account user admin logged "
    b"in from 192.0.2.7 via ssh",
    "cef": b"Oct  2 17:36:35 MikroTik CEF:0|MikroTik|hAP ax^2|7.25|10|system,info,"
    b"account|Low|dvchost=MikroTik dvc=192.0.2.1 msg=user admin logged in from "
    b"192.0.2.7 via ssh",
}


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def compiled(tmp_path: Path, text: str) -> list[FileRule]:
    return compile_file(rulesfile.read(write(tmp_path, text)))


def refused(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        compiled(tmp_path, text)
    assert info.value.variable == "ALERTIK_RULES_FILE"
    message = str(info.value)
    assert "\n" not in message
    return message


def check(rule: FileRule, line: bytes, sender: str = "192.0.2.1") -> Hit | str:
    return rule.check(Record(line, sender, "node"))


# --- reading and errors --------------------------------------------------------


def test_a_rule_error_names_the_file_the_line_the_rule_the_key_and_a_fix(
    tmp_path: Path,
) -> None:
    message = refused(
        tmp_path,
        '[[rules]]\nname = "ok"\nsubstr = "x"\nnotify = "Slack"\n\n'
        '[[rules]]\nname = "ssh"\nregex = "failure"\nnotify = ["Slack"]\n'
        'threshold = { count = 5, window = "60" }\n',
    )
    assert message == (
        f"ALERTIK_RULES_FILE: {tmp_path}/rules.toml line 10, rule 'ssh', key "
        "threshold.window: '60' is not a duration; write a number and a unit: "
        "30s, 10m, 1h or 1d (or 1h30m)"
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            'rgex = "a"',
            "line 3, rule 'x', key rgex: is not a key here; did you mean regex?",
        ),
        (
            'regex = "a("',
            "line 3, rule 'x', key regex: position 2: '(' is never "
            "closed; musl rejects it",
        ),
        ("icase = 1", "key icase: is a int, but must be true or false"),
        ('exclude = ["ok", "b["]', "line 3, rule 'x', key exclude[1]: position 2"),
        (
            'severity = "warn"',
            "key severity: 'warn' is not a severity; use one of "
            "emergency, alert, critical, error, warning, notice, info, debug",
        ),
        ('topics = ["Account"]', "key topics: 'Account' is not a RouterOS topic"),
        ('regex = "a"\nsubstr = "b"', "key regex: and substr are both set"),
        (
            'substr = "a"\ntext = "@1"',
            "key text: @1 names a capture group, but only a regex has them",
        ),
        (
            'regex = "(a)"\ntext = "@2"',
            "key text: @2 names capture group 2, but the regex has 1; use @1 to @1",
        ),
        ('text = "@{sendr}"', "key text: @{sendr} is not a field; use @{router}"),
        (
            "threshold = { count = 3 }",
            "key threshold.window: is missing; count = 3 needs a window",
        ),
        ("threshold = { count = 0, window = '1m' }", "key threshold.count: "),
        ('cooldown = "400d"', "key cooldown: '400d' is out of range"),
        (
            'quiet_hours = { from = "23:00", to = "7:00" }',
            "key quiet_hours.to: '7:00' is not a time of day; write HH:MM",
        ),
        ('quiet_hours = { from = "23:00" }', "key quiet_hours.to: is missing"),
        (
            'preset = "nope"',
            "key preset: 'nope' is not a preset; use one of config-change, ",
        ),
    ],
)
def test_bad_keys_are_refused_with_the_line_and_a_fix(
    tmp_path: Path, body: str, expected: str
) -> None:
    message = refused(tmp_path, f'[[rules]]\nname = "x"\n{body}\nnotify = "Slack"\n')
    assert expected in message


def test_toml_syntax_errors_name_the_line_and_column(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=r"rules.toml line 3, column 12: not "
        r"valid TOML: .*; fix the syntax",
    ):
        rulesfile.read(write(tmp_path, '[[rules]]\nname = "x"\nregex = "a(\n'))


def test_a_missing_file_is_refused_with_its_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read .*nope\.toml: No such file"):
        rulesfile.read(str(tmp_path / "nope.toml"))


def test_an_unknown_section_is_refused_and_names_the_known_ones(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError) as info:
        rulesfile.read(
            write(
                tmp_path,
                '[[rules]]\nname="a"\nnotify="Slack"\n[silence]\nafter = "1h"\n',
            )
        )
    assert "rules.toml line 4: unknown section 'silence'; a rules file has " in str(
        info.value
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[[rules]]\nsubstr = "a"\nnotify = "Slack"\n',
            "line 1, rule 1 (no name): has no name",
        ),
        ('[[rules]]\nname = "a b"\nnotify = "Slack"\n', "key name: must be 1 to 64"),
        (
            '[[rules]]\nname = "EVENT3"\nnotify = "Slack"\n',
            "'EVENT3' is how alertik names its environment events",
        ),
        (
            '[[rules]]\nname = "a"\nnotify = "Slack"\n[[rules]]\nname = "a"\n'
            'notify = "Slack"\n',
            "line 5, rule 'a', key name: 'a' is also the name of the rule at line 1",
        ),
        ('[[rules]]\nname = "a"\nsubstr = "x"\n', "rule 'a': has no notify"),
        ('[[rules]]\nname = "a"\nnotify = []\n', "key notify: must be a destination"),
        (
            '[[rules]]\nname = "a"\nnotify = ["ops"]\n',
            "key notify: 'ops' is not a destination; use one of Telegram, Slack",
        ),
        (
            '[rules]\nname = "a"\n',
            "line 1: 'rules' must be a list of tables; write [[rules]]",
        ),
    ],
)
def test_names_and_destinations_are_checked_where_the_file_is_read(
    tmp_path: Path, text: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as info:
        rulesfile.read(write(tmp_path, text))
    assert expected in str(info.value)


def test_keys_in_sub_tables_and_multiline_strings_keep_their_lines(
    tmp_path: Path,
) -> None:
    message = refused(
        tmp_path,
        '[[rules]]\nname = "a"\ntext = """\nname = 1\n"""\nsubstr = "x"\n'
        'notify = "Slack"\n[rules.threshold]\ncount = 2\nwindow = "1x"\n',
    )
    assert "line 8, rule 'a', key threshold.window" in message


def test_the_environment_notifiers_that_rules_use_are_listed(tmp_path: Path) -> None:
    file = rulesfile.read(
        write(
            tmp_path,
            '[[rules]]\nname = "a"\nnotify = ["Slack", "Generic2"]\n'
            '[[rules]]\nname = "b"\nnotify = "Slack"\n',
        )
    )
    assert file.notifiers == ("Slack", "Generic2")
    assert [r.notify for r in file.rules] == [("Slack", "Generic2"), ("Slack",)]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("10m", 600), ("1h", 3600), ("1d", 86400), ("1h30m", 5400)],
)
def test_durations_are_a_number_and_a_unit(text: str, seconds: float) -> None:
    assert duration(text) == seconds


@pytest.mark.parametrize("text", ["60", "1.5h", "m", "1 h", "-1s", "0s", "1w"])
def test_anything_else_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError):
        duration(text)


# --- presets ----------------------------------------------------------------------


def test_a_preset_gives_its_keys_and_the_rule_overrides_them_one_by_one(
    tmp_path: Path,
) -> None:
    (rule,) = compiled(
        tmp_path,
        '[[rules]]\nname = "ssh"\npreset = "login-failure"\nnotify = "Slack"\n'
        'threshold = { count = 3, window = "5m", key = "@2" }\n',
    )
    assert rule.count == 3 and rule.window == 300
    assert rule.cooldown == 600  # the preset's
    hit = check(rule, FORMATS["syslog"])
    assert isinstance(hit, Hit)
    assert (
        hit.text() == "Repeated failed logins on MikroTik from 192.0.2.7 (last: "
        "user admin via ssh)"
    )


def test_a_rule_with_its_own_substr_drops_the_presets_regex(tmp_path: Path) -> None:
    (rule,) = compiled(
        tmp_path,
        '[[rules]]\nname = "ssh"\npreset = "login-failure"\nnotify = "Slack"\n'
        'substr = "via ssh"\ntext = "ssh: @{message}"\n'
        'threshold = { count = 5, window = "60s" }\n',
    )
    assert rule.regex is None and rule.needle == b"via ssh"


def test_an_error_in_a_preset_key_says_it_came_from_the_preset(
    tmp_path: Path,
) -> None:
    message = refused(
        tmp_path,
        '[[rules]]\nname = "ssh"\npreset = "login-failure"\nnotify = "Slack"\n'
        'regex = "login failure"\n',
    )
    assert "key text: @2 names capture group 2, but the regex has none" in message
    assert "(the key comes from preset 'login-failure')" in message


# --- matching ---------------------------------------------------------------------


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_topics_and_severity_decide_alike_in_every_format(
    tmp_path: Path, fmt: str
) -> None:
    (rule,) = compiled(
        tmp_path,
        '[[rules]]\nname = "acct"\ntopics = ["account"]\nseverity = "warning"\n'
        'notify = "Slack"\ntext = "@{severity} @{topics} on @{router}: @{message}"\n',
    )
    hit = check(rule, FORMATS[fmt])
    assert isinstance(hit, Hit)
    router = "192.0.2.1" if fmt == "default" else "MikroTik"
    assert hit.text() == (
        f"error system,error,critical,account on {router}: login failure for "
        "user admin from 192.0.2.7 via ssh"
    )
    assert check(rule, INFO[fmt]) == "severity info is below warning"


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_router_matches_the_sender_in_every_format_and_the_identity_where_sent(
    tmp_path: Path, fmt: str
) -> None:
    by_address, by_name = compiled(
        tmp_path,
        '[[rules]]\nname = "a"\nsubstr = "login failure"\nrouter = "192.0.2.1"\n'
        'notify = "Slack"\n[[rules]]\nname = "b"\nsubstr = "login failure"\n'
        'router = ["mikrotik", "core-1"]\nnotify = "Slack"\n',
    )
    assert isinstance(check(by_address, FORMATS[fmt]), Hit)
    assert check(by_address, FORMATS[fmt], sender="192.0.2.9") == (
        "router " + ("192.0.2.9" if fmt == "default" else "MikroTik") + " is not listed"
    )
    named = check(by_name, FORMATS[fmt])
    assert isinstance(named, Hit) == (fmt != "default")


def test_missing_topics_are_named(tmp_path: Path) -> None:
    (rule,) = compiled(
        tmp_path,
        '[[rules]]\nname = "a"\nsubstr = "login"\ntopics = ["firewall"]\n'
        'notify = "Slack"\n',
    )
    assert check(rule, FORMATS["default"]) == (
        "topics (system,error,critical,account) lack firewall"
    )


def test_an_exclude_vetoes_a_match(tmp_path: Path) -> None:
    (rule,) = compiled(
        tmp_path,
        '[[rules]]\nname = "a"\nregex = "from ([0-9.]+)"\n'
        "exclude = ['from 10\\.0\\.0\\.', 'user guest']\nnotify = \"Slack\"\n",
    )
    assert isinstance(check(rule, FORMATS["default"]), Hit)
    line = FORMATS["default"].replace(b"192.0.2.7", b"10.0.0.7")
    assert check(rule, line) == "vetoed by exclude from 10\\.0\\.0\\."


def test_icase_applies_to_the_pattern_and_the_excludes(tmp_path: Path) -> None:
    regex, substr = compiled(
        tmp_path,
        '[[rules]]\nname = "a"\nregex = "LOGIN (FAILURE)"\nicase = true\n'
        'exclude = "USER GUEST"\nnotify = "Slack"\ntext = "@1"\n'
        '[[rules]]\nname = "b"\nsubstr = "Login Failure"\nicase = true\n'
        'notify = "Slack"\n',
    )
    hit = check(regex, FORMATS["default"])
    assert isinstance(hit, Hit) and hit.text() == "failure"
    assert isinstance(check(substr, FORMATS["default"]), Hit)
    vetoed = check(regex, b"login failure for user guest")
    assert isinstance(vetoed, str) and vetoed.startswith("vetoed")


def test_a_rule_without_text_sends_its_name_and_the_message(tmp_path: Path) -> None:
    (rule,) = compiled(
        tmp_path, '[[rules]]\nname = "any"\nsubstr = "login"\nnotify = "Slack"\n'
    )
    hit = check(rule, FORMATS["cef"])
    assert isinstance(hit, Hit)
    assert hit.text() == "any: login failure for user admin from 192.0.2.7 via ssh"


def test_cef_fields_and_the_line_are_fields_of_the_text(tmp_path: Path) -> None:
    (rule,) = compiled(
        tmp_path,
        '[[rules]]\nname = "a"\nsubstr = "CEF:"\nnotify = "Slack"\n'
        'text = "@{cef.dvc} @{cef.product} @{cef.none}| @{format} @@ @{line}"\n',
    )
    hit = check(rule, FORMATS["cef"])
    assert isinstance(hit, Hit)
    assert hit.text() == "192.0.2.1 hAP ax^2 | cef @ " + FORMATS["cef"].decode()


def test_an_rfc_5424_header_gives_its_fields_to_the_text(tmp_path: Path) -> None:
    (rule,) = compiled(
        tmp_path,
        '[[rules]]\nname = "a"\nsubstr = "login"\nnotify = "Slack"\n'
        'text = "@{app}/@{procid}/@{msgid}/@{facility}/@{timestamp}/'
        '@{structured_data}"\n',
    )
    line = (
        b'<38>1 2026-11-30T10:00:00.123Z gw sshd 812 AUTH [origin ip="192.0.2.1"] '
        b"login failure for user admin from 192.0.2.7 via ssh"
    )
    hit = check(rule, line)
    assert isinstance(hit, Hit)
    assert hit.text() == (
        'sshd/812/AUTH/4/2026-11-30T10:00:00.123Z/[origin ip="192.0.2.1"]'
    )


def test_the_rule_set_prefilters_file_rules_with_the_environment_ones(
    tmp_path: Path,
) -> None:
    rules = compiled(
        tmp_path,
        "".join(
            f'[[rules]]\nname = "r{i}"\nsubstr = "needle{i} "\nnotify = "Slack"\n'
            for i in range(20)
        )
        + '[[rules]]\nname = "topic"\ntopics = ["account"]\nnotify = "Slack"\n'
        '[[rules]]\nname = "ci"\nsubstr = "NEEDLE7"\nicase = true\nnotify = "Slack"\n',
    )
    rs = RuleSet([], [], rules)
    assert rs._prefilter is not None
    record = Record(b"system,account x needle7 y", "192.0.2.1", "n")
    _, hits = rs.scan(record)
    assert [h.rule.name for h in hits] == ["r7", "topic", "ci"]
    assert rs.scan(Record(b"system,info nothing", "192.0.2.1", "n")) == ([], [])


def test_a_line_is_parsed_only_when_a_rule_needs_its_header(tmp_path: Path) -> None:
    plain, conditioned = compiled(
        tmp_path,
        '[[rules]]\nname = "a"\nsubstr = "x1"\nnotify = "Slack"\ntext = "@{line}"\n'
        '[[rules]]\nname = "b"\nsubstr = "y1"\nseverity = "error"\nnotify = "Slack"\n',
    )
    record = Record(b"system,error x1", "192.0.2.1", "n")
    assert isinstance(plain.check(record), Hit)
    assert record.was_parsed is None
    assert conditioned.check(record) == "no match"
    assert record.was_parsed is None
    record = Record(b"system,error y1", "192.0.2.1", "n")
    assert isinstance(conditioned.check(record), Hit)
    assert record.was_parsed is not None


def test_lint_warns_about_rules_that_match_everything_or_never_stop(
    tmp_path: Path,
) -> None:
    everything, parsed, loud = compiled(
        tmp_path,
        '[[rules]]\nname = "a"\nnotify = "Slack"\n'
        '[[rules]]\nname = "b"\nseverity = "error"\nnotify = "Slack"\n'
        '[[rules]]\nname = "c"\nregex = "x\\\\v"\nnotify = "Slack"\n'
        'threshold = { count = 2, window = "1m" }\n',
    )
    assert lint(everything)[0][1].endswith("so it matches every message")
    assert "every message is parsed for it" in lint(parsed)[0][1]
    keys = [key for key, _ in lint(loud)]
    assert keys == ["regex", "threshold"]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_decodes_as_a_rule_and_fires_on_its_lines(
    tmp_path: Path, name: str
) -> None:
    (rule,) = compiled(
        tmp_path, f'[[rules]]\nname = "p"\npreset = "{name}"\nnotify = "Slack"\n'
    )
    lines = preset_lines.read(name)
    assert lines
    for line in lines:
        hit = check(rule, line.raw.encode())
        assert isinstance(hit, Hit), (line, hit)
        assert hit.text()
    for line in preset_lines.read(preset_lines.UNRELATED):
        assert not isinstance(check(rule, line.raw.encode()), Hit), line


# --- named destinations ------------------------------------------------------------

TELEGRAM = """
[destinations.ops]
type = "telegram"
bot_token_file = "TOKEN_FILE"
chat_id = "-1001234567890"
message_thread_id = 42

[destinations.hook]
type = "generic"
url = "https://hooks.example.com/secret-path-123"
verify_tls = false

[[rules]]
name = "a"
substr = "x"
notify = ["ops", "hook", "Generic1"]
"""
SECRET = "123456:AAE-secret-token_value"


def test_named_destinations_are_typed_and_secrets_may_come_from_files(
    tmp_path: Path,
) -> None:
    token = tmp_path / "tg"
    token.write_text(SECRET + "\n")
    file = rulesfile.read(write(tmp_path, TELEGRAM.replace("TOKEN_FILE", str(token))))
    ops, hook = file.destinations
    assert ops.kind == "telegram" and hook.kind == "generic"
    assert ops.name == "ops" and ops.bot_token == SECRET  # type: ignore[union-attr]
    assert ops.message_thread_id == 42  # type: ignore[union-attr]
    assert not hook.verify_tls
    assert file.notifiers == ("Generic1",)
    assert SECRET not in ops.shown() and "secret-path" not in hook.shown()


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        (
            'type = "fax"',
            "line 2, destination 'ops', key type: must be one of "
            "telegram, slack, teams, discord, generic",
        ),
        ('type = "slack"', "destination 'ops', key url: Object missing required"),
        (
            'type = "slack"\nurl = "ftp://x/secret-path-123"',
            "line 3, destination 'ops', key url: is not an http:// or https:// URL",
        ),
        (
            'type = "slack"\nurl_file = "/nonexistent/secret-path-123"',
            "key url_file: cannot read /nonexistent/secret-path-123 (No such file",
        ),
        (
            'type = "slack"\nurl = "https://a/b"\nurl_file = "x"',
            "key url_file: is set, and so is url; use one",
        ),
        (
            'type = "telegram"\nchat_id_file = "x"',
            "key chat_id_file: Object contains unknown field",
        ),
        (
            'type = "telegram"\nbot_token = "123:secret-path-123/x"\nchat_id = 1',
            "key bot_token: is not a bot token; copy it from @BotFather",
        ),
        (
            'type = "slack"\nname = "x"\nurl = "https://a/b"',
            "key name: is not a key here: the name is the table's, [destinations.ops]",
        ),
        (
            'type = "slack"\nurl = "https://a/b"\nchannel = "#x"',
            "key channel: Object contains unknown field",
        ),
    ],
)
def test_bad_destinations_name_the_line_and_key_and_never_the_secret(
    tmp_path: Path, table: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as info:
        rulesfile.read(write(tmp_path, f"[destinations.ops]\n{table}\n"))
    message = str(info.value)
    assert expected in message
    if "_file" not in table:
        assert "secret-path-123" not in message


def test_a_destination_may_not_take_an_environment_notifier_name(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError, match="'Slack' is alertik's name for the "):
        rulesfile.read(
            write(tmp_path, '[destinations.Slack]\ntype = "slack"\nurl = "https://a/b"')
        )


def test_the_configuration_gives_notify_every_destination_and_hides_secrets(
    tmp_path: Path,
) -> None:
    from alertik.common import config

    token = tmp_path / "tg"
    token.write_text(SECRET)
    path = write(tmp_path, TELEGRAM.replace("TOKEN_FILE", str(token)))
    cfg = config.load(
        {
            "ALERTIK_RULES_FILE": path,
            "GENERIC1_WEBHOOK_URL": "http://127.0.0.1:9/env-secret",
            "ALERTIK_RUN_DIR": str(tmp_path / "run"),
            "ALERTIK_STATE_DIR": str(tmp_path / "state"),
        }
    )
    assert [d.name for d in cfg.notify.destinations] == ["ops", "hook", "Generic1"]
    shown = repr(config.redacted(cfg))
    for secret in (SECRET, "secret-path-123", "env-secret"):
        assert secret not in shown


def test_a_reload_recompiles_only_the_rules_that_changed(tmp_path: Path) -> None:
    text = (
        '[[rules]]\nname = "a"\nregex = "a(b)"\nnotify = "Slack"\n'
        '[[rules]]\nname = "b"\nregex = "c(d)"\nnotify = "Slack"\n'
    )
    before = compiled(tmp_path, text)
    edited = text.replace("c(d)", "c(e)")
    after = compile_file(rulesfile.read(write(tmp_path, "\n\n" + edited)), reuse=before)
    assert after[0].compiled is before[0].compiled
    assert after[0].where.endswith("line 3, rule 'a'")  # where it is now
    assert after[1].compiled is not before[1].compiled
    assert after[1].regex is not None and after[1].regex.pattern == "c(e)"
