"""Retry, wait and pacing rules, and the scrubbing of secrets (pure)."""

from __future__ import annotations

import email.utils

import pytest

from alertik.common.destinations import (
    GenericDestination,
    SlackDestination,
    parse,
)
from alertik.common.retry import backoff
from alertik.notify.delivery import (
    BACKOFF_BASE,
    MAX_SERVER_WAIT,
    Pacer,
    classify,
    server_wait,
)
from alertik.notify.scrub import excerpt, scrub, secrets_of
from alertik.notify.services import (
    Attempt,
    discord_bucket as bucket_wait,
    pace_seconds,
)


def answer(status: int, body: bytes = b"", **headers: str) -> Attempt:
    return Attempt(status, {k.replace("_", "-"): v for k, v in headers.items()}, body)


@pytest.mark.parametrize(
    ("kind", "attempt", "action"),
    [
        ("generic", answer(200), "delivered"),
        ("teams", answer(202), "delivered"),
        ("discord", answer(204), "delivered"),
        ("generic", answer(500), "retry"),
        ("generic", answer(502), "retry"),
        ("generic", answer(503), "retry"),
        ("generic", answer(408), "retry"),
        ("slack", answer(429), "retry"),
        ("generic", Attempt(None, {}, b"", "ConnectionError: refused"), "retry"),
        ("generic", answer(400), "failed"),
        ("telegram", answer(401), "failed"),
        ("slack", answer(403), "failed"),
        ("slack", answer(404), "failed"),
        ("generic", answer(410), "failed"),
        ("generic", answer(302), "failed"),
        ("discord", answer(404), "disabled"),
    ],
)
def test_each_answer_is_classified_by_the_service_rules(
    kind: str, attempt: Attempt, action: str
) -> None:
    assert classify(kind, attempt).action == action


def test_telegram_429_waits_for_parameters_retry_after() -> None:
    body = (
        b'{"ok":false,"error_code":429,"description":"Too Many Requests: retry '
        b'after 41","parameters":{"retry_after":41}}'
    )
    verdict = classify("telegram", answer(429, body))
    assert (verdict.action, verdict.wait) == ("retry", 41.0)


def test_discord_429_prefers_the_precise_json_retry_after() -> None:
    body = (
        b'{"message":"You are being rate limited.","retry_after":0.35,"global":false}'
    )
    assert classify("discord", answer(429, body, Retry_After="1")).wait == 0.35


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after": "2.5"}, 2.5),
        ({"Retry-After": "-1"}, None),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "99999999"}, MAX_SERVER_WAIT),
        ({}, None),
    ],
)
def test_retry_after_header_in_seconds(
    headers: dict[str, str], wait: float | None
) -> None:
    assert server_wait("slack", headers, b"") == wait


def test_retry_after_header_as_an_http_date() -> None:
    date = email.utils.formatdate(1_000_030, usegmt=True)
    assert server_wait("slack", {"Retry-After": date}, b"", now=1_000_000) == 30.0


def test_a_429_without_any_hint_falls_back_to_backoff() -> None:
    assert classify("slack", answer(429)).wait is None


def test_a_503_retry_after_is_honoured() -> None:
    assert classify("generic", answer(503, Retry_After="3")).wait == 3.0


@pytest.mark.parametrize(
    ("attempt", "low", "high"),
    [(1, 0.5, 1.0), (2, 1.0, 2.0), (3, 2.0, 4.0), (10, 5.0, 10.0), (1000, 5.0, 10.0)],
)
def test_backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half(
    attempt: int, low: float, high: float
) -> None:
    assert backoff(attempt, BACKOFF_BASE, 10.0, 0.0) == low
    assert low <= backoff(attempt, BACKOFF_BASE, 10.0, 0.5) <= high
    assert backoff(attempt, BACKOFF_BASE, 10.0, 0.999999) == pytest.approx(
        high, rel=1e-5
    )


def test_discord_bucket_headers_hold_requests_only_when_empty() -> None:
    empty = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": "1.5"}
    assert bucket_wait(empty) == 1.5
    assert bucket_wait({**empty, "X-RateLimit-Remaining": "3"}) is None
    assert bucket_wait({}) is None


def test_the_pacer_spaces_requests_and_honours_holds() -> None:
    pacer = Pacer(1.0)
    assert pacer.delay(100.0) == 0.0
    pacer.sent(100.0)
    assert pacer.delay(100.25) == 0.75
    pacer.hold(100.5, 5.0)
    assert pacer.delay(101.0) == 4.5
    pacer.sent(101.0)  # a request sent early does not shorten a hold
    assert pacer.delay(105.5) == 0.0


@pytest.mark.parametrize(
    ("kind", "chat_id", "seconds"),
    [
        ("telegram", "12345", 1.0),
        ("telegram", "-100123", 3.0),
        ("telegram", "@channel", 3.0),
        ("slack", "", 1.0),
        ("teams", "", 0.25),
        ("discord", "", 0.0),
        ("generic", "", 0.0),
    ],
)
def test_pacing_follows_each_service_documented_limit(
    kind: str, chat_id: str, seconds: float
) -> None:
    if kind == "telegram":
        raw = {"type": kind, "name": "X", "bot_token": "1:x", "chat_id": chat_id}
    else:
        raw = {"type": kind, "name": "X", "url": "https://x/y"}
    assert pace_seconds(parse(raw)) == seconds


TOKEN_URL = "https://api.telegram.org/bot123456:AAF-secret_Token/sendMessage"
SLACK_URL = "https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX"


def test_a_requests_error_loses_the_telegram_token() -> None:
    raw = (
        "ConnectionError: HTTPSConnectionPool(host='api.telegram.org', port=443): "
        "Max retries exceeded with url: /bot123456:AAF-secret_Token/sendMessage "
        "(Caused by NameResolutionError(...))"
    )
    clean = scrub(raw, secrets_of(TOKEN_URL))
    assert "123456:AAF-secret_Token" not in clean
    assert "AAF-secret" not in clean
    assert "api.telegram.org" in clean
    assert "NameResolutionError" in clean


def test_scrubbing_catches_the_url_its_path_and_its_secret_parts() -> None:
    secrets = secrets_of(SLACK_URL)
    for leak in (SLACK_URL, "/services/T000/B000/XXXXsecretXXXX", "XXXXsecretXXXX"):
        assert "XXXXsecretXXXX" not in scrub(f"oops {leak} oops", secrets)


def test_scrubbing_catches_a_token_in_a_query_string() -> None:
    secrets = secrets_of("https://gotify.example/message?token=AbCdEf123456")
    assert "AbCdEf123456" not in scrub("bad url ?token=AbCdEf123456", secrets)


def test_a_body_excerpt_is_short_one_line_and_scrubbed() -> None:
    body = b"error:\n  token XXXXsecretXXXX is invalid " + b"x" * 1000
    text = excerpt(body, secrets_of(SLACK_URL))
    assert "\n" not in text
    assert "XXXXsecretXXXX" not in text
    assert text.startswith("error: token <redacted> is invalid")
    assert len(text) <= 320


def test_sessions_read_proxy_settings_once_and_then_ignore_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from alertik.notify.transport import make_session

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.test:3128")
    monkeypatch.setenv("NO_PROXY", "internal.test")
    out = make_session(SlackDestination(name="Slack", url="https://hooks.slack.test/x"))
    inside = make_session(
        GenericDestination(name="Generic1", url="https://internal.test/h")
    )
    assert out.proxies.get("https") == "http://proxy.test:3128"
    assert "https" not in inside.proxies
    assert out.trust_env is False
    assert out.verify  # True, or the REQUESTS_CA_BUNDLE path when one is set
    insecure = make_session(
        GenericDestination(name="Generic2", url="https://x.test/", verify_tls=False)
    )
    assert insecure.verify is False
    for session in (out, inside, insecure):
        session.close()


@pytest.mark.parametrize(
    "leak",
    [
        "123456%3AAAF-secret_Token",
        "123456%3aAAF-secret_Token",
        "123456%253AAAF-secret_Token",
        "https:\\/\\/api.telegram.org\\/bot123456:AAF-secret_Token\\/sendMessage",
        "".join(f"\\u{ord(c):04x}" for c in "AAF-secret_Token"),
        "123456&#58;AAF&#x2d;secret_Token",
        "AAF-secret_Token",
    ],
)
def test_scrubbing_catches_every_encoding_a_url_takes(leak: str) -> None:
    clean = scrub(f"echo: {leak} end", secrets_of(TOKEN_URL))
    assert "secret" not in clean
    assert clean.startswith("echo: ") and clean.endswith(" end")


def test_a_secret_is_scrubbed_before_the_excerpt_is_cut() -> None:
    body = b"e" * 285 + b" 123456:AAF-secret_Token"
    text = excerpt(body, secrets_of(TOKEN_URL))
    assert "AAF" not in text and "secr" not in text


def test_the_end_of_a_body_read_in_part_is_dropped() -> None:
    # What was read ends inside the token: it cannot be recognised, so the
    # end of what was read is never shown.
    body = b" " * 4000 + b"123456:AAF-sec"
    assert "AAF" not in excerpt(body, secrets_of(TOKEN_URL), truncated=True)
    assert "AAF" in excerpt(body, [], truncated=True)
