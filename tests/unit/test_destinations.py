"""Destinations: the typed union, its checks, and what may be shown (pure)."""

from __future__ import annotations

import json
import tomllib

import pytest
import requests
from hypothesis import given, settings, strategies as st

from alertik.common.converters import ConfigError
from alertik.common.destinations import (
    NOTIFIERS,
    Destination,
    DestinationError,
    TeamsDestination,
    TelegramDestination,
    destination,
    parse,
    url_problem,
)
from alertik.notify import services

TOKEN = "123456:SECRETtokenVALUE-xyz"
HOOK = "https://hooks.example.test/services/T000/B000/secretpart"

RULES_FILE = f"""
[destinations.ops]
type = "telegram"
bot_token = "{TOKEN}"
chat_id = "-1001234567890"
message_thread_id = 42

[destinations.chat]
type = "teams"
url = "{HOOK}"
format = "legacy"
verify_tls = false
"""


def test_a_toml_table_decodes_into_the_union_by_its_type() -> None:
    tables = tomllib.loads(RULES_FILE)["destinations"]
    ops = parse({**tables["ops"], "name": "ops"})
    chat = parse({**tables["chat"], "name": "chat"})
    assert ops == TelegramDestination(
        name="ops",
        bot_token=TOKEN,
        chat_id="-1001234567890",
        message_thread_id=42,
    )
    assert chat == TeamsDestination(
        name="chat", url=HOOK, format="legacy", verify_tls=False
    )
    assert (ops.kind, chat.kind) == ("telegram", "teams")


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"type": "pager", "url": HOOK}, "type"),
        ({"url": HOOK}, "type"),
        ({"type": "slack"}, "url"),
        ({"type": "slack", "url": HOOK, "channel": "#x"}, "channel"),
        ({"type": "slack", "url": 42}, "url"),
        ({"type": "telegram", "bot_token": TOKEN}, "chat_id"),
        (
            {
                "type": "telegram",
                "bot_token": TOKEN,
                "chat_id": 1,
                "message_thread_id": 0,
            },
            "message_thread_id",
        ),
        ({"type": "telegram", "bot_token": "12/34", "chat_id": 1}, "bot_token"),
        ({"type": "telegram", "bot_token": TOKEN, "chat_id": "my chat"}, "chat_id"),
        ({"type": "teams", "url": HOOK, "format": "card"}, "format"),
        ({"type": "discord", "url": "https://d.test:99999/x"}, "url"),
        (
            {"type": "telegram", "bot_token": TOKEN, "chat_id": 1, "api_url": "x"},
            "api_url",
        ),
    ],
)
def test_a_bad_table_names_its_key_and_never_the_secret(
    table: dict[str, object], key: str
) -> None:
    with pytest.raises(DestinationError) as info:
        parse({"name": "x", **table})
    assert info.value.key == key
    assert "secretpart" not in str(info.value)
    assert "SECRETtoken" not in str(info.value)


def test_a_telegram_forum_topic_gets_message_thread_id() -> None:
    dest = parse(
        {
            "type": "telegram",
            "name": "ops",
            "bot_token": TOKEN,
            "chat_id": "-1009",
            "message_thread_id": 42,
        }
    )
    req = services.request(dest, "hi")
    assert json.loads(req.body) == {
        "chat_id": -1009,
        "message_thread_id": 42,
        "text": "hi",
    }
    assert req.url == f"https://api.telegram.org/bot{TOKEN}/sendMessage"


def test_what_may_be_shown_holds_no_secret() -> None:
    tg = parse({"type": "telegram", "name": "T", "bot_token": TOKEN, "chat_id": 7})
    hook = parse({"type": "generic", "name": "G", "url": HOOK})
    auth = parse({"type": "slack", "name": "S", "url": "https://u:pw0rd123@s.test/x"})
    for dest in (tg, hook, auth):
        shown = dest.shown() + repr(dest.redacted())
        for secret in dest.secrets():
            assert secret not in shown
    assert tg.redacted()["bot_token"] == "<set>"
    assert hook.redacted()["url"] == "https://hooks.example.test/<redacted>"
    assert tg.shown() == "T (https://api.telegram.org/<redacted>)"
    assert "pw0rd123" in auth.secrets()


def test_every_notifier_name_maps_to_a_destination_kind_with_a_service() -> None:
    env = {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_CHAT_ID": "42",
        **{f"{n.upper()}_WEBHOOK_URL": HOOK for n in NOTIFIERS},
        "ALERTIK_TLS_INSECURE": "Generic3",
        "ALERTIK_NTFY_TOPIC": "alerts",
        "ALERTIK_GOTIFY_URL": "https://gotify.test",
        "ALERTIK_GOTIFY_TOKEN": "AbC.123",
        "ALERTIK_PUSHOVER_USER": "u" * 30,
        "ALERTIK_PUSHOVER_TOKEN": "a" * 30,
        "ALERTIK_MATRIX_HOMESERVER": "https://matrix.test",
        "ALERTIK_MATRIX_ROOM": "!room:matrix.test",
        "ALERTIK_MATRIX_ACCESS_TOKEN": "syt_secret",
        "ALERTIK_EMAIL_HOST": "smtp.test",
        "ALERTIK_EMAIL_FROM": "alertik@example.test",
        "ALERTIK_EMAIL_TO": "ops@example.test",
        "ALERTIK_APPRISE_URL": "json://127.0.0.1/x",
    }
    made: list[Destination] = [destination(n, env) for n in NOTIFIERS]
    assert [d.name for d in made] == list(NOTIFIERS)
    # Every kind but the router action, which only a rules file can define.
    assert {d.kind for d in made} == set(services.SERVICES) - {"routeros-address-list"}
    assert [d.verify_tls for d in made].count(False) == 1
    for kind, service in services.SERVICES.items():
        assert service.kind == kind


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GENERIC1_WEBHOOK_URL", "https://h.test:99999/x"),
        ("GENERIC1_WEBHOOK_URL", "https://h.test:0/x"),
        ("GENERIC1_WEBHOOK_URL", "https://h.test:８０/x"),
        ("GENERIC1_WEBHOOK_URL", "https://h.test/x\udcff"),
        ("GENERIC1_WEBHOOK_URL", "https:///nohost"),
        ("GENERIC1_WEBHOOK_URL", "https://*.h.test/x"),
        ("TELEGRAM_CHAT_ID", "-100\udcff"),
        ("TELEGRAM_CHAT_ID", "５１４０"),
        ("TELEGRAM_API_URL", "https://[::1/x"),
    ],
)
def test_a_value_that_could_never_be_sent_is_refused_naming_its_variable(
    variable: str, value: str
) -> None:
    name = "Telegram" if variable.startswith("TELEGRAM") else "Generic1"
    env = {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_CHAT_ID": "42", variable: value}
    with pytest.raises(ConfigError) as info:
        destination(name, env)
    assert info.value.variable == variable
    assert value not in str(info.value)
    str(info.value).encode("ascii")  # prints anywhere


PIECES = st.sampled_from(
    [
        "http://", "https://", "HTTPS://", "ftp://", "h", "host.test", "ä", "ß",
        "\ufb01", "²", "xn--", ".", "*", ":", "80", "99999", "0", "[", "]", "::1",
        "fe80::1%25eth0", "@", "u:p@", "ü:p@", "/", "?", "#", "%", "%41", "%zz",
        "é", "-", "_", "1.2.3.4", "a..b", "!", "~",
    ]
)  # fmt: skip


@pytest.mark.parametrize(
    "url", ["https://\\@0", "https://a\\b@host.test/", "https://\u00b7\\@0"]
)
def test_a_backslash_before_the_path_is_refused(url: str) -> None:
    """The HTTP library reads it as the start of the path: the request would
    go to another host than the one checked (found by the property below)."""
    assert url_problem(url) == "has a backslash before its path; check its value"


@settings(max_examples=500, deadline=None)
@given(
    st.lists(PIECES, max_size=8).map("".join)
    | st.text(max_size=16).map("https://".__add__)
)
def test_a_url_accepted_here_is_one_the_http_library_can_send_to(url: str) -> None:
    if url_problem(url) is None:
        prepared = requests.Request("POST", url).prepare()
        assert prepared.url
