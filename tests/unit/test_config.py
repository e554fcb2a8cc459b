"""Configuration: alertik's variables, our additions, one-line errors."""

from __future__ import annotations

import pytest

from alertik.common import config
from alertik.common.config import ConfigError, load, redacted
from alertik.common.destinations import TelegramDestination, redact_url
from alertik.common.settings import BY_NAME
from alertik.notify import services

HOOK = "https://hooks.example.test/services/T000/B000/secretpart"


def env(**extra: str) -> dict[str, str]:
    base = {"HOME": "/nonexistent", "ALERTIK_RUN_DIR": "/tmp/alertik-test-run"}
    base.update(extra)
    return base


def event(i: int, notifier: str = "Generic1", kind: str = "substr") -> dict[str, str]:
    return {
        f"EVENT{i}_NOTIFIER": notifier,
        f"EVENT{i}_MATCH_TYPE": kind,
        f"EVENT{i}_MATCH_STR": "x",
        f"EVENT{i}_MASK_MSG": "y",
    }


def test_an_empty_environment_is_a_valid_configuration_without_events() -> None:
    cfg = load(env())
    assert cfg.rules == ()
    assert cfg.static_rules == ()
    assert cfg.ingest.udp_port == 5140
    assert cfg.ingest.bind == "::"
    assert cfg.forwarder is None
    assert cfg.stages == ("ingest", "matcher", "notify")


def test_events_are_read_in_order_with_their_notifier() -> None:
    cfg = load(
        env(
            ENV_EVENTS="2",
            GENERIC1_WEBHOOK_URL=HOOK,
            SLACK_WEBHOOK_URL=HOOK,
            **event(0),
            **event(1, "Slack", "regex"),
        )
    )
    assert [(r.name, r.notifier, r.match_type) for r in cfg.rules] == [
        ("EVENT0", "Generic1", "substr"),
        ("EVENT1", "Slack", "regex"),
    ]
    assert [d.name for d in cfg.notify.destinations] == ["Generic1", "Slack"]


def test_more_than_sixteen_events_are_accepted() -> None:
    e = env(ENV_EVENTS="40", GENERIC1_WEBHOOK_URL=HOOK)
    for i in range(40):
        e.update(event(i))
    assert len(load(e).rules) == 40


@pytest.mark.parametrize(
    ("extra", "variable"),
    [
        ({"ENV_EVENTS": "1", **event(0, kind="glob")}, "EVENT0_MATCH_TYPE"),
        ({"ENV_EVENTS": "1", **event(0, notifier="generic1")}, "EVENT0_NOTIFIER"),
        ({"ENV_EVENTS": "2", **event(0)}, "EVENT1_MATCH_TYPE"),
        ({"ENV_EVENTS": "abc"}, "ENV_EVENTS"),
        ({"ENV_EVENTS": "1", **event(0)}, "GENERIC1_WEBHOOK_URL"),
        (
            {"ENV_EVENTS": "1", **event(0), "GENERIC1_WEBHOOK_URL": ""},
            "GENERIC1_WEBHOOK_URL",
        ),
        ({"ENV_EVENTS": "1", **event(0, "Telegram")}, "TELEGRAM_BOT_TOKEN"),
        ({"FORWARD_HOST": "127.0.0.1"}, "FORWARD_PORT"),
        ({"FORWARD_PORT": "514"}, "FORWARD_HOST"),
        ({"FORWARD_HOST": "h", "FORWARD_PORT": "70000"}, "FORWARD_PORT"),
        ({"FORWARD_HOST": "h", "FORWARD_PORT": "nosuchservice"}, "FORWARD_PORT"),
        ({"ALERTIK_UDP_PORT": "65536"}, "ALERTIK_UDP_PORT"),
        ({"ALERTIK_UDP_PORT": "five"}, "ALERTIK_UDP_PORT"),
        ({"ALERTIK_BIND": "localhost"}, "ALERTIK_BIND"),
        ({"ALERTIK_ALLOW_FROM": "10.0.0.0/33"}, "ALERTIK_ALLOW_FROM"),
        ({"ALERTIK_MATCHER_ADDR": "matcher:5551"}, "ALERTIK_MATCHER_ADDR"),
        ({"STATIC_EVENTS_ENABLED": "1"}, "STATIC_EVENTS_ENABLED"),
        ({"STATIC_EVENTS_ENABLED": "0"}, "STATIC_EVENT0_NOTIFIER"),
        ({"ALERTIK_LOG_LEVEL": "loud"}, "ALERTIK_LOG_LEVEL"),
        ({"ALERTIK_TLS_INSECURE": "Generic9"}, "ALERTIK_TLS_INSECURE"),
    ],
)
def test_a_bad_value_names_its_variable_in_one_line(
    extra: dict[str, str], variable: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load(env(**extra))
    assert info.value.variable == variable
    assert str(info.value).startswith(f"{variable}: ")
    assert "\n" not in str(info.value)


def test_a_bad_webhook_url_is_not_echoed_in_the_error() -> None:
    with pytest.raises(ConfigError) as info:
        load(env(ENV_EVENTS="1", GENERIC1_WEBHOOK_URL="hooks/secret-token", **event(0)))
    assert "secret-token" not in str(info.value)


def test_telegram_url_is_built_from_api_url_and_token() -> None:
    cfg = load(
        env(
            ENV_EVENTS="1",
            TELEGRAM_BOT_TOKEN="123:ABC",
            TELEGRAM_CHAT_ID="-1009",
            TELEGRAM_API_URL="http://127.0.0.1:8081/",
            **event(0, "Telegram"),
        )
    )
    (dest,) = cfg.notify.destinations
    assert isinstance(dest, TelegramDestination)
    assert services.request(dest, "").url == (
        "http://127.0.0.1:8081/bot123:ABC/sendMessage"
    )
    assert dest.chat_id == "-1009"


def test_redacted_configuration_hides_urls_and_tokens() -> None:
    cfg = load(
        env(
            ENV_EVENTS="2",
            TELEGRAM_BOT_TOKEN="123:SECRETTOKEN",
            TELEGRAM_CHAT_ID="-1009",
            GENERIC1_WEBHOOK_URL=HOOK,
            **event(0, "Telegram"),
            **event(1),
        )
    )
    text = repr(redacted(cfg))
    assert "SECRETTOKEN" not in text
    assert "secretpart" not in text
    assert "hooks.example.test" in text


def test_redact_url_keeps_only_scheme_and_host() -> None:
    assert redact_url("https://u:p@host.test:8443/a/b?c=d") == (
        "https://host.test:8443/<redacted>"
    )


def test_forwarding_turns_on_the_forwarder_stage() -> None:
    cfg = load(env(FORWARD_HOST="[::1]", FORWARD_PORT="syslog"))
    assert cfg.forwarder is not None
    assert cfg.forwarder.host == "::1"
    assert cfg.stages[-1] == "forwarder"


def test_log_file_can_be_switched_off() -> None:
    assert load(env(ALERTIK_LOG_FILE="-")).log_file is None
    assert load(env(ALERTIK_LOG_FILE="/x/y.txt")).log_file == "/x/y.txt"


def test_static_events_accept_duplicates_and_spaces() -> None:
    cfg = load(
        env(
            STATIC_EVENTS_ENABLED=" 0, 0",
            STATIC_EVENT0_NOTIFIER="Generic2",
            GENERIC2_WEBHOOK_URL=HOOK,
        )
    )
    assert [(s.index, s.notifier) for s in cfg.static_rules] == [(0, "Generic2")]


def test_the_static_event_count_matches_the_defined_events() -> None:
    from alertik.matcher import static

    assert len(static.EVENTS) == config.STATIC_EVENT_COUNT
    assert [e.index for e in static.EVENTS] == list(range(len(static.EVENTS)))


def test_every_variable_alertik_reads_counts_as_its_own() -> None:
    import re
    from pathlib import Path

    from alertik.common.config import is_own_variable

    folder = Path(config.__file__).parent
    modules = ("config", "settings", "converters", "events", "destinations")
    source = "".join((folder / f"{m}.py").read_text() for m in modules)
    names = set(re.findall(r'"((?:ALERTIK|FORWARD|TELEGRAM|TEAMS)_[A-Z_]+)"', source))
    names |= set(BY_NAME)
    names |= {"ENV_EVENTS", "EVENT3_MASK_MSG", "STATIC_EVENT0_NOTIFIER"}
    names |= {"SLACK_WEBHOOK_URL", "GENERIC4_WEBHOOK_URL"}
    assert all(is_own_variable(n) for n in names), names
    assert not any(is_own_variable(n) for n in ("HOME", "PATH", "TZ", "SUPERVISOR_X"))


# --- warnings: configurations that start, but probably not as meant ----------


def warned(**extra: str) -> dict[str, str]:
    e = env(**extra)
    load(e)  # a warning never stops start-up
    return {w.variable: w.problem for w in config.warnings(e)}


def test_a_plain_configuration_has_no_warnings() -> None:
    assert warned(ENV_EVENTS="1", GENERIC1_WEBHOOK_URL=HOOK, **event(0)) == {}


def test_events_beyond_env_events_are_named_with_the_count_that_takes_them() -> None:
    found = warned(
        ENV_EVENTS="1", GENERIC1_WEBHOOK_URL=HOOK, **event(0), **event(1), **event(3)
    )
    assert found == {
        "EVENT1_MASK_MSG, EVENT1_MATCH_STR, EVENT1_MATCH_TYPE, EVENT1_NOTIFIER": (
            "ignored: ENV_EVENTS=1 counts event 0 only; set ENV_EVENTS=2 to use EVENT1"
        ),
        "EVENT3_MASK_MSG, EVENT3_MATCH_STR, EVENT3_MATCH_TYPE, EVENT3_NOTIFIER": (
            "ignored: ENV_EVENTS=1 counts event 0 only; set ENV_EVENTS=4 to use EVENT3"
        ),
    }
    assert (
        "counts no events"
        in warned(ENV_EVENTS="0", **event(0))[
            "EVENT0_MASK_MSG, EVENT0_MATCH_STR, EVENT0_MATCH_TYPE, EVENT0_NOTIFIER"
        ]
    )


@pytest.mark.parametrize("count", [None, "", " "])
def test_events_without_env_events_say_which_count_would_use_them(
    count: str | None,
) -> None:
    extra = {**event(0), **event(1), "EVENT2_MATCH_STR": "x"}
    if count is not None:
        extra["ENV_EVENTS"] = count
    assert warned(**extra) == {
        "ENV_EVENTS": "is not set, so EVENT0_*, EVENT1_*, EVENT2_* are ignored; "
        "set ENV_EVENTS=3 to use them"
    }


def test_an_unknown_alertik_name_gets_the_closest_setting_suggested() -> None:
    assert warned(ALERTIK_DRAIN_SECOND="1") == {
        "ALERTIK_DRAIN_SECOND": "is not an alertik setting and is ignored; "
        "did you mean ALERTIK_DRAIN_SECONDS?"
    }
    # Set by alertik run for supervisord, and printed by alertik keygen.
    assert warned(ALERTIK_PYTHON="/p", ALERTIK_CURVE_PUBLIC_KEY="k") == {}


def test_a_misspelt_event_variable_gets_the_closest_field_suggested() -> None:
    found = warned(
        ENV_EVENTS="1",
        GENERIC1_WEBHOOK_URL=HOOK,
        **event(0),
        EVENT0_MASK="z",
        EVENT00_MATCH_STR="x",
    )
    assert found == {
        "EVENT0_MASK": "is not an event variable and is ignored; "
        "did you mean EVENT0_MASK_MSG?",
        "EVENT00_MATCH_STR": "is ignored: event numbers have no leading zeros; "
        "did you mean EVENT0_MATCH_STR?",
    }


@pytest.mark.parametrize("kind", ["substr", "regex"])
def test_an_empty_match_string_is_warned_about_since_it_matches_everything(
    kind: str,
) -> None:
    e = {**event(0, kind=kind), "EVENT0_MATCH_STR": ""}
    assert warned(ENV_EVENTS="1", GENERIC1_WEBHOOK_URL=HOOK, **e) == {
        "EVENT0_MATCH_STR": "is empty, so EVENT0 matches every message"
    }


def test_warnings_are_one_line_each_naming_the_variables() -> None:
    e = env(ENV_EVENTS="1", GENERIC1_WEBHOOK_URL=HOOK, ALERTIK_X="1", **event(0))
    e["EVENT0_MATCH_STR"] = ""
    for warning in config.warnings(e):
        assert str(warning) == f"{warning.variable}: {warning.problem}"
        assert "\n" not in str(warning)
