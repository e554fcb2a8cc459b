"""Payload builders, splitting of long texts and digest packing (pure)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from alertik.common.destinations import Destination, parse
from alertik.notify import render, services

TRICKY = 'say "hi" \\ back\\slash\nnew\tline é ☃ 😀 @everyone </b> \x01'


def dest(kind: str, **extra: str) -> Destination:
    if kind == "telegram":
        extra = {"bot_token": "1:x", "chat_id": "1", **extra}
    else:
        extra = {"url": "https://x/y", **extra}
    return parse({"type": kind, "name": kind.title(), **extra})


def slack_shows(text: str) -> str:
    """What Slack shows for the text of a message (its three entities)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def sent(destination: Destination, text: str) -> Any:
    """The JSON document that carries text to destination, as a person sees
    it (Slack's entities read back)."""
    document = json.loads(services.request(destination, text).body)
    if destination.kind == "slack":
        document["text"] = slack_shows(document["text"])
    return document


@pytest.mark.parametrize(
    ("destination", "expected"),
    [
        (dest("slack"), {"text": TRICKY}),
        (dest("generic"), {"text": TRICKY}),
        (dest("teams", format="legacy"), {"text": TRICKY}),
        (
            dest("discord"),
            {"content": TRICKY, "allowed_mentions": {"parse": []}},
        ),
        (dest("telegram", chat_id="-1009"), {"chat_id": -1009, "text": TRICKY}),
        (
            dest("telegram", chat_id="@mychannel"),
            {"chat_id": "@mychannel", "text": TRICKY},
        ),
        (
            dest("teams"),
            {
                "type": "message",
                "attachments": [
                    {
                        "contentType": "application/vnd.microsoft.card.adaptive",
                        "contentUrl": None,
                        "content": {
                            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                            "type": "AdaptiveCard",
                            "version": "1.4",
                            "body": [
                                {"type": "TextBlock", "text": TRICKY, "wrap": True}
                            ],
                        },
                    }
                ],
            },
        ),
    ],
    ids=[
        "slack",
        "generic",
        "teams-legacy",
        "discord",
        "telegram",
        "telegram-channel",
        "teams",
    ],
)
def test_each_service_gets_its_documented_document_with_the_exact_text(
    destination: Destination, expected: object
) -> None:
    assert sent(destination, TRICKY) == expected


def test_the_body_is_strict_utf8_json_without_ascii_escapes() -> None:
    body = services.request(dest("slack"), "é 😀").body
    assert body == '{"text":"é 😀"}'.encode()


def test_telegram_gets_no_parse_mode() -> None:
    assert "parse_mode" not in sent(dest("telegram", chat_id="1"), "*x*")


@given(st.text())
def test_any_text_round_trips_through_the_json_body(text: str) -> None:
    assert sent(dest("generic"), text) == {"text": text}


def test_a_text_within_the_limit_is_sent_as_is() -> None:
    assert services.parts("discord", "x" * 2000) == ["x" * 2000]


def test_a_long_text_is_split_into_labelled_parts_at_word_breaks() -> None:
    words = " ".join(f"word{i:04d}" for i in range(500))  # 4499 characters
    parts = services.parts("discord", words)
    assert len(parts) == 3
    assert [p[:6] for p in parts] == ["(1/3) ", "(2/3) ", "(3/3) "]
    assert all(len(p) <= 2000 for p in parts)
    assert " ".join(p[6:] for p in parts) == words


def test_a_text_too_long_for_the_most_parts_is_cut_with_a_marker() -> None:
    text = "y" * 20_000
    parts = services.parts("discord", text)
    assert len(parts) == render.MAX_PARTS
    assert all(len(p) <= 2000 for p in parts)
    sent = sum(len(p) - 6 for p in parts[:-1])
    last = parts[-1][6:]
    kept = last[: last.index(" [cut:")]
    assert last.endswith(f" [cut: {len(text) - sent - len(kept)} more characters]")


def test_telegram_counts_utf16_units_so_emoji_never_overflow() -> None:
    text = "😀" * 3000  # 6000 UTF-16 units, 3000 code points
    parts = services.parts("telegram", text)
    assert len(parts) == 2
    assert all(render.utf16_units(p) <= 4096 for p in parts)
    assert "".join(p[6:] for p in parts) == text


def test_teams_measures_json_bytes_of_the_text() -> None:
    text = '"' * 20_000  # 40,000 bytes once escaped
    parts = services.parts("teams", text)
    assert len(parts) == 2
    assert all(render.json_bytes(p) <= 24_000 for p in parts)


def test_generic_webhooks_get_long_texts_whole() -> None:
    assert services.parts("generic", "z" * 100_000) == ["z" * 100_000]


@settings(max_examples=200)
@given(
    st.text(alphabet=st.sampled_from('ab \n😀"\\é'), max_size=9000),
    st.sampled_from(["telegram", "discord", "teams"]),
)
def test_every_part_fits_and_nothing_is_lost_below_the_cut(
    text: str, kind: str
) -> None:
    service = services.SERVICES[kind]
    assert service.limit is not None
    parts = services.parts(kind, text)
    assert 1 <= len(parts) <= render.MAX_PARTS
    assert all(service.measure(p) <= service.limit for p in parts)
    if len(parts) == 1:
        assert parts == [text]
    elif "[cut:" not in parts[-1]:
        # Only the one whitespace character at each break is dropped.
        joined = "".join(p[6:] for p in parts)
        assert len(text) - len(joined) <= len(parts) - 1


def test_a_digest_packs_as_many_alerts_as_fit_with_a_count_header() -> None:
    texts = [f"alert number {i}, at: 2024-01-01 00:00:00" for i in range(300)]
    count = services.pack("telegram", texts)
    message = render.digest(texts[:count])
    assert render.utf16_units(message) <= 4096
    assert render.utf16_units(render.digest(texts[: count + 1])) > 4096
    lines = message.split("\n")
    assert lines[0] == f"{count} alerts:"
    assert lines[1:] == texts[:count]


def test_an_alert_too_long_for_a_digest_goes_alone() -> None:
    assert services.pack("discord", ["x" * 2500, "short"]) == 1


def test_slack_digests_stay_readable_although_single_texts_may_be_long() -> None:
    texts = ["s" * 100] * 100
    assert services.pack("slack", texts) < 40
    assert services.parts("slack", "s" * 30_000) == ["s" * 30_000]


def markdown_shows(text: str) -> str:
    """A Markdown backslash escape read back (Discord, Teams)."""
    return re.sub(r"\\([^0-9A-Za-z\s])", r"\1", text)


@given(st.text(alphabet=st.sampled_from("ab <>&[]()\\|!@#:/*_é")))
def test_each_escape_shows_the_text_exactly_and_leaves_no_markup(text: str) -> None:
    slack = render.slack_escape(text)
    assert "<" not in slack and ">" not in slack
    assert slack_shows(slack) == text
    for escape in (render.markdown_escape, render.discord_escape):
        escaped = escape(text)
        # Every bracket is escaped by an odd number of backslashes.
        assert not re.search(r"(?<!\\)(\\\\)*[\[\]]", escaped)
        assert markdown_shows(escaped) == text


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("<@123> <@!1> <@&2> <#3>", "\\<@123> \\<@!1> \\<@&2> \\<#3>"),
        (
            "</ban:99> <:x:1> <a:y:2> <t:1700000000:R>",
            "\\</ban:99> \\<:x:1> \\<a:y:2> \\<t:1700000000:R>",
        ),
        ("<https://evil.test/x>", "\\<https://evil.test/x>"),
        ("<b>x</b> <@name> <#general>", "<b>x</b> <@name> <#general>"),
    ],
)
def test_discord_tags_are_shown_as_typed_and_other_angles_left_alone(
    text: str, escaped: str
) -> None:
    assert render.discord_escape(text) == escaped


def test_a_split_counts_the_escaped_size() -> None:
    text = "<" * 50_000  # 50,000 characters, 200,000 once escaped for Slack
    parts = services.parts("slack", text)
    assert all(len(render.slack_escape(p)) <= 40_000 for p in parts)
    assert len(parts) == render.MAX_PARTS
