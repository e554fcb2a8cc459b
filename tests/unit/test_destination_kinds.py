"""The destinations issue 16 added: their keys, their checks, their secrets,
the environment's ALERTIK_<SERVICE>_* variables, and each service's request
and answers, field by field (pure: no sockets)."""

from __future__ import annotations

import base64
import json
import tomllib
from pathlib import Path
from urllib.parse import parse_qs, unquote

import pytest

from alertik.common.converters import ConfigError
from alertik.common.destinations import (
    AddressListDestination,
    AppriseDestination,
    DestinationBase,
    DestinationError,
    EmailDestination,
    GotifyDestination,
    MatrixDestination,
    NtfyDestination,
    PushoverDestination,
    check_references,
    destination,
    parse,
)
from alertik.common.schema import Alert
from alertik.notify import mail, routeros, services
from alertik.notify.delivery import classify
from alertik.notify.scrub import excerpt, scrub, secrets_for
from alertik.notify.services import Attempt, Order

PUSH_USER = "uQiRzpo4DXghDmr9QzzfQu27cmVRsG"
PUSH_TOKEN = "azGDORePK8gMaC0QOYAMyEEuzJnyUi"
NTFY_TOKEN = "tk_AgQdq7mVBoFD37zQVN29RhuMzNIz2"
MATRIX_TOKEN = "syt_YWxlcnRpaw_SecretMatrixToken_0x"

TABLES = f"""
[destinations.phone]
type = "ntfy"
url = "https://ntfy.example.test"
topic = "router_alerts"
priority = 4
title = "Router"
tags = ["warning", "skull"]
click = "https://router.example.test/"
token = "{NTFY_TOKEN}"

[destinations.gotify]
type = "gotify"
url = "https://gotify.example.test/base/"
token = "AbCdEf.123"
priority = 8

[destinations.pager]
type = "pushover"
user = "{PUSH_USER}"
token = "{PUSH_TOKEN}"
priority = 2
retry = 60
expire = 3600
sound = "siren"

[destinations.room]
type = "matrix"
homeserver = "https://matrix.example.test"
room = "!AbCdEf:example.test"
access_token = "{MATRIX_TOKEN}"

[destinations.mail]
type = "email"
host = "smtp.example.test"
security = "tls"
user = "alertik"
password = "mail-pa55word"
from = "alertik <alertik@example.test>"
to = ["ops@example.test", "Night Shift <night@example.test>"]

[destinations.block]
type = "routeros-address-list"
url = "https://192.0.2.1"
user = "alertik"
password = "r0uter-pa55"
list = "blocked"
timeout = "12h"
address = "@2"
allow = ["10.0.0.0/8", "192.0.2.100", "2001:db8::/32"]
report = "phone"

[destinations.many]
type = "apprise"
url = "tgram://123456:SECRETapprisetoken/-100123"
"""


def tables() -> dict[str, dict[str, object]]:
    found: dict[str, dict[str, object]] = tomllib.loads(TABLES)["destinations"]
    return found


def made(name: str) -> object:
    return parse({**tables()[name], "name": name})


def test_every_new_kind_decodes_from_its_table_with_each_key() -> None:
    phone = made("phone")
    assert phone == NtfyDestination(
        name="phone",
        url="https://ntfy.example.test",
        topic="router_alerts",
        priority=4,
        title="Router",
        tags=("warning", "skull"),
        click="https://router.example.test/",
        token=NTFY_TOKEN,
    )
    assert made("gotify") == GotifyDestination(
        name="gotify", url="https://gotify.example.test/base/", token="AbCdEf.123",
        priority=8,
    )  # fmt: skip
    assert made("pager") == PushoverDestination(
        name="pager", user=PUSH_USER, token=PUSH_TOKEN, priority=2, retry=60,
        expire=3600, sound="siren",
    )  # fmt: skip
    room = made("room")
    assert isinstance(room, MatrixDestination)
    assert room.msgtype == "m.notice"  # the default: bots notice, people text
    mail_dest = made("mail")
    assert isinstance(mail_dest, EmailDestination)
    assert mail_dest.sender == "alertik <alertik@example.test>"
    assert mail_dest.smtp_port == 465  # implicit TLS
    block = made("block")
    assert isinstance(block, AddressListDestination)
    assert (block.list_name, block.timeout, block.address) == ("blocked", "12h", "@2")
    assert block.rest_url == "https://192.0.2.1/rest"
    assert block.audit is False
    assert isinstance(made("many"), AppriseDestination)


@pytest.mark.parametrize(
    ("name", "change", "key"),
    [
        ("phone", {"priority": 6}, "priority"),
        ("phone", {"topic": "no spaces"}, "topic"),
        ("phone", {"user": "me"}, "token"),
        ("gotify", {"priority": 11}, "priority"),
        ("gotify", {"token": "has space"}, "token"),
        ("pager", {"retry": 10}, "retry"),
        ("pager", {"expire": 10801}, "expire"),
        ("pager", {"user": "short"}, "user"),
        ("pager", {"priority": 3}, "priority"),
        ("room", {"room": "#alias:example.test"}, "room"),
        ("room", {"msgtype": "m.emote"}, "msgtype"),
        ("mail", {"security": "none"}, "security"),
        ("mail", {"to": []}, "to"),
        ("mail", {"to": ["not an address"]}, "to"),
        ("mail", {"from": "x\nBcc: all@example.test"}, "from"),
        ("mail", {"port": 0}, "port"),
        ("block", {"timeout": "a day"}, "timeout"),
        ("block", {"allow": ["10.0.0.0/33"]}, "allow"),
        ("block", {"address": "2"}, "address"),
        ("block", {"url": "ftp://192.0.2.1"}, "url"),
        ("block", {"ca_file": "/nonexistent/ca.pem"}, "ca_file"),
        ("block", {"audit": True, "report": ""}, "report"),
        ("block", {"list": ""}, "list"),
        ("many", {"url": "not a url"}, "url"),
    ],
)
def test_a_bad_value_names_its_key_and_never_a_secret(
    name: str, change: dict[str, object], key: str
) -> None:
    with pytest.raises(DestinationError) as info:
        parse({**tables()[name], "name": name, **change})
    assert info.value.key == key
    for secret in (NTFY_TOKEN, PUSH_TOKEN, MATRIX_TOKEN, "r0uter-pa55", "pa55word"):
        assert secret not in str(info.value)


def test_a_matrix_room_id_of_room_version_12_has_no_server_part() -> None:
    # As a real Synapse (1.163) creates rooms by default.
    room = "!Vpu0a1YBKCyCWnRpnDE3L7wU-uKgW6DfdCyVDz_85sE"
    dest = parse({**tables()["room"], "name": "r", "room": room})
    assert isinstance(dest, MatrixDestination) and dest.room == room


def test_pushover_emergency_needs_retry_and_expire() -> None:
    table = {**tables()["pager"], "name": "p"}
    del table["retry"]
    with pytest.raises(DestinationError) as info:
        parse(table)
    assert info.value.key == "retry"
    assert "30" in info.value.problem
    # Without priority 2, neither is needed (nor sent).
    table.update(priority=1)
    form = parse_qs(services.request(parse(table), "x").body.decode())
    assert "retry" not in form and "expire" not in form


def test_a_secret_key_may_be_read_from_a_file_next_to_the_rules(
    tmp_path: Path,
) -> None:
    (tmp_path / "ntfy.token").write_text(NTFY_TOKEN + "\n")
    table = {**tables()["phone"], "name": "phone"}
    del table["token"]
    dest = parse({**table, "token_file": "ntfy.token"}, base=str(tmp_path))
    assert isinstance(dest, NtfyDestination) and dest.token == NTFY_TOKEN
    with pytest.raises(DestinationError) as both:
        parse({**table, "token": NTFY_TOKEN, "token_file": "ntfy.token"})
    assert both.value.key == "token_file"
    with pytest.raises(DestinationError) as missing:
        parse({**table, "token_file": "absent"}, base=str(tmp_path))
    assert missing.value.key == "token_file"
    assert "absent" in missing.value.problem
    # ca_file names a file, but is no secret: it stays a path.
    (tmp_path / "ca.pem").write_text("x")
    block = {**tables()["block"], "name": "b", "ca_file": str(tmp_path / "ca.pem")}
    assert isinstance(parse(block), AddressListDestination)


def test_what_may_be_shown_of_each_new_kind_holds_no_secret() -> None:
    for name in tables():
        dest = made(name)
        assert isinstance(dest, DestinationBase)
        shown = dest.shown() + json.dumps(dest.redacted())
        assert dest.secrets()
        for secret in dest.secrets():
            assert secret not in shown, (name, secret)
    block = made("block")
    assert isinstance(block, AddressListDestination)
    assert block.redacted()["list"] == "blocked"  # the key as written
    assert made("mail").shown() == "mail (smtp smtp.example.test:465, tls)"  # type: ignore[attr-defined]
    assert made("many").shown() == "many (apprise tgram://<redacted>)"  # type: ignore[attr-defined]


def test_a_report_must_name_a_destination_that_takes_messages() -> None:
    block = made("block")
    phone = made("phone")
    check_references([block, phone])  # type: ignore[list-item]
    with pytest.raises(DestinationError, match="no destination is named"):
        check_references([block])  # type: ignore[list-item]
    other = parse({**tables()["block"], "name": "phone", "report": ""})
    with pytest.raises(DestinationError, match="is an action"):
        check_references([block, other])  # type: ignore[list-item]


# --- ALERTIK_<SERVICE>_* ----------------------------------------------------------


def test_one_destination_of_each_new_kind_from_its_variables(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text(MATRIX_TOKEN + "\n")
    env = {
        "ALERTIK_NTFY_URL": "https://ntfy.example.test",
        "ALERTIK_NTFY_TOPIC": "router_alerts",
        "ALERTIK_NTFY_PRIORITY": "4",
        "ALERTIK_NTFY_TAGS": "warning, skull",
        "ALERTIK_PUSHOVER_USER": PUSH_USER,
        "ALERTIK_PUSHOVER_TOKEN": PUSH_TOKEN,
        "ALERTIK_PUSHOVER_PRIORITY": "2",
        "ALERTIK_PUSHOVER_RETRY": "30",
        "ALERTIK_PUSHOVER_EXPIRE": "600",
        "ALERTIK_MATRIX_HOMESERVER": "https://matrix.example.test",
        "ALERTIK_MATRIX_ROOM": "!AbCdEf:example.test",
        "ALERTIK_MATRIX_ACCESS_TOKEN_FILE": str(secret),
        "ALERTIK_EMAIL_HOST": "smtp.example.test",
        "ALERTIK_EMAIL_FROM": "alertik@example.test",
        "ALERTIK_EMAIL_TO": "Ops Team <ops@example.test>, night@example.test",
        "ALERTIK_TELEGRAM_BOT_TOKEN_FILE": str(tmp_path / "tg"),
        "TELEGRAM_CHAT_ID": "-1001234567890",
        "ALERTIK_TELEGRAM_THREAD_ID": "42",
    }
    (tmp_path / "tg").write_text("123456:SECRETtokenVALUE-xyz")
    ntfy = destination("Ntfy", env)
    assert isinstance(ntfy, NtfyDestination)
    assert (ntfy.priority, ntfy.tags) == (4, ("warning", "skull"))
    pushover = destination("Pushover", env)
    assert isinstance(pushover, PushoverDestination)
    assert (pushover.priority, pushover.retry, pushover.expire) == (2, 30, 600)
    matrix = destination("Matrix", env)
    assert isinstance(matrix, MatrixDestination)
    assert matrix.access_token == MATRIX_TOKEN
    email = destination("Email", env)
    assert isinstance(email, EmailDestination)
    assert email.to == ("Ops Team <ops@example.test>", "night@example.test")
    assert (email.security, email.smtp_port) == ("starttls", 587)
    telegram = destination("Telegram", env)
    assert json.loads(services.request(telegram, "hi").body) == {
        "chat_id": -1001234567890,
        "message_thread_id": 42,
        "text": "hi",
    }


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"ALERTIK_NTFY_PRIORITY": "4"}, "ALERTIK_NTFY_TOPIC"),
        ({"ALERTIK_NTFY_TOPIC": "t", "ALERTIK_NTFY_PRIORITY": "high"},
         "ALERTIK_NTFY_PRIORITY"),
        ({"ALERTIK_NTFY_TOPIC": "t", "ALERTIK_NTFY_PRIORITY": "٤"},
         "ALERTIK_NTFY_PRIORITY"),
        ({"ALERTIK_NTFY_TOPIC": "t", "ALERTIK_NTFY_PRIORITY": "9"},
         "ALERTIK_NTFY_PRIORITY"),
        ({"ALERTIK_NTFY_TOPIC": "t", "ALERTIK_NTFY_TOKEN": NTFY_TOKEN,
          "ALERTIK_NTFY_TOKEN_FILE": "/etc/hostname"}, "ALERTIK_NTFY_TOKEN_FILE"),
        ({"ALERTIK_NTFY_TOPIC": "t", "ALERTIK_NTFY_TOKEN_FILE": "/nonexistent/t"},
         "ALERTIK_NTFY_TOKEN_FILE"),
        ({"ALERTIK_NTFY_TOPIC": "t", "ALERTIK_NTFY_URL": "ntfy.sh"},
         "ALERTIK_NTFY_URL"),
    ],
)  # fmt: skip
def test_a_bad_variable_is_named_and_its_secret_is_not_shown(
    env: dict[str, str], variable: str
) -> None:
    with pytest.raises(ConfigError) as info:
        destination("Ntfy", env)
    assert info.value.variable == variable
    assert NTFY_TOKEN not in str(info.value)


# --- requests, field by field ------------------------------------------------


def test_ntfy_publishes_json_to_the_server_root_with_its_token() -> None:
    req = services.request(made("phone"), "login failure 😀")  # type: ignore[arg-type]
    assert (req.method, req.url) == ("POST", "https://ntfy.example.test/")
    assert req.headers["Authorization"] == f"Bearer {NTFY_TOKEN}"
    assert json.loads(req.body) == {
        "topic": "router_alerts",
        "message": "login failure 😀",
        "title": "Router",
        "priority": 4,
        "tags": ["warning", "skull"],
        "click": "https://router.example.test/",
    }
    basic = parse(
        {"type": "ntfy", "name": "n", "topic": "t", "user": "me", "password": "pw é"}
    )
    header = services.request(basic, "x").headers["Authorization"]
    assert base64.b64decode(header.removeprefix("Basic ")) == "me:pw é".encode()
    assert "pw é" in secrets_for(basic)
    assert header.removeprefix("Basic ") in secrets_for(basic)


def test_gotify_posts_to_message_with_the_token_in_a_header() -> None:
    req = services.request(made("gotify"), "x")  # type: ignore[arg-type]
    assert req.url == "https://gotify.example.test/base/message"
    assert req.headers["X-Gotify-Key"] == "AbCdEf.123"
    assert "token" not in req.url
    assert json.loads(req.body) == {"message": "x", "priority": 8}


def test_pushover_posts_a_form_with_emergency_retry_and_expire() -> None:
    req = services.request(made("pager"), "a&b=c é")  # type: ignore[arg-type]
    assert req.url == "https://api.pushover.net/1/messages.json"
    assert req.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(req.body.decode("ascii")) == {
        "token": [PUSH_TOKEN], "user": [PUSH_USER], "message": ["a&b=c é"],
        "priority": ["2"], "retry": ["60"], "expire": ["3600"], "sound": ["siren"],
    }  # fmt: skip


def test_matrix_puts_a_notice_whose_transaction_id_is_the_message_key() -> None:
    room = made("room")
    first = services.request(room, "hello", "k1")  # type: ignore[arg-type]
    again = services.request(room, "hello", "k1")  # type: ignore[arg-type]
    other = services.request(room, "hello", "k2")  # type: ignore[arg-type]
    assert first.method == "PUT"
    assert first.url == again.url != other.url
    assert unquote(first.url) == (
        "https://matrix.example.test/_matrix/client/v3/rooms/!AbCdEf:example.test"
        "/send/m.room.message/alertik-k1"
    )
    assert first.headers["Authorization"] == f"Bearer {MATRIX_TOKEN}"
    assert json.loads(first.body) == {"msgtype": "m.notice", "body": "hello"}


def test_the_address_list_puts_the_address_with_comment_and_timeout() -> None:
    block = made("block")
    order = services.routeros_order(alert_for("192.0.2.7"))
    req = services.request(block, order)  # type: ignore[arg-type]
    assert (req.method, req.url) == (
        "PUT",
        "https://192.0.2.1/rest/ip/firewall/address-list",
    )
    assert json.loads(req.body) == {
        "list": "blocked",
        "address": "192.0.2.7",
        "comment": "alertik: ssh-bruteforce",
        "timeout": "12h",
    }
    auth = req.headers["Authorization"].removeprefix("Basic ")
    assert base64.b64decode(auth) == b"alertik:r0uter-pa55"
    assert auth in secrets_for(block)  # type: ignore[arg-type]
    v6 = services.request(block, services.routeros_order(alert_for("2001:db8::7")))  # type: ignore[arg-type]
    assert v6.url.endswith("/rest/ipv6/firewall/address-list")
    static = parse({**tables()["block"], "name": "b", "timeout": "none"})
    assert "timeout" not in json.loads(services.request(static, order).body)


def alert_for(address: str, rule: str = "ssh-bruteforce") -> Alert:
    return Alert(
        id="n/1/1/0/x", notifier="block", text="brute force from x", rule=rule,
        received=0.0, sender="192.0.2.1", node="n", address=address,
    )  # fmt: skip


# --- answers -------------------------------------------------------------------


def answer(status: int | None, body: object = b"") -> Attempt:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Attempt(status, {}, raw)


def test_telegram_says_where_a_group_moved_and_that_is_followed() -> None:
    moved = answer(
        400,
        {
            "ok": False,
            "error_code": 400,
            "description": "Bad Request: group chat was upgraded to a supergroup chat",
            "parameters": {"migrate_to_chat_id": -1009876543210},
        },
    )
    verdict = classify("telegram", moved)
    assert verdict.action == "moved"
    assert verdict.change == {"chat_id": -1009876543210}
    assert classify("telegram", answer(400, {"ok": False})).action == "failed"


def test_matrix_429_waits_retry_after_ms() -> None:
    limited = answer(429, {"errcode": "M_LIMIT_EXCEEDED", "retry_after_ms": 2500})
    verdict = classify("matrix", limited)
    assert (verdict.action, verdict.wait) == ("retry", 2.5)
    assert classify("matrix", answer(403, {"errcode": "M_FORBIDDEN"})).action == (
        "failed"
    )


def test_pushover_waits_at_least_5_s_after_a_server_error() -> None:
    assert classify("pushover", answer(500)).wait == 5.0
    assert classify("pushover", answer(400, {"status": 0})).action == "failed"


def test_smtp_codes_decide_for_e_mail() -> None:
    assert classify("email", answer(250)).action == "delivered"
    assert classify("email", answer(451)).action == "retry"
    assert classify("email", answer(550)).action == "failed"
    assert classify("email", answer(None)).action == "retry"


def test_an_address_already_listed_counts_as_added() -> None:
    listed = answer(
        400,
        {
            "error": 400,
            "message": "Bad Request",
            "detail": "failure: already have such entry",
        },
    )
    verdict = classify("routeros-address-list", listed)
    assert (verdict.action, verdict.reason) == ("delivered", "already on the list")
    other = answer(400, {"error": 400, "detail": "input does not match any value"})
    assert classify("routeros-address-list", other).action == "failed"
    assert classify("routeros-address-list", answer(401)).action == "failed"


# --- limits -------------------------------------------------------------------


def test_each_new_service_splits_at_its_own_limit() -> None:
    # ntfy counts bytes: 2000 two-byte characters do not fit in 4096... once.
    assert len(services.parts("ntfy", "é" * 2000)) == 1
    assert len(services.parts("ntfy", "é" * 2100)) == 2
    assert len(services.parts("pushover", "x" * 1024)) == 1
    assert len(services.parts("pushover", "x" * 1025)) == 2
    # An order is never cut, however long its text.
    order = services.routeros_order(alert_for("192.0.2.7"))
    assert services.parts("routeros-address-list", order * 100) == [order * 100]


# --- the address-list action's own decisions ------------------------------------


@pytest.mark.parametrize(
    ("address", "done"),
    [
        ("192.0.2.7", "192.0.2.7"),
        (" 2001:DB8:1::7 ", None),  # inside 2001:db8::/32: allow-listed
        ("2001:db9::7", "2001:db9::7"),
        ("10.1.2.3", None),
        ("192.0.2.100", None),
        ("admin", None),
        ("", None),
    ],
)
def test_only_an_address_outside_the_allow_list_is_added(
    address: str, done: str | None
) -> None:
    block = made("block")
    assert isinstance(block, AddressListDestination)
    added, verdict = routeros.decide(block, Order(address=address, rule="r"))
    if done is None:
        assert verdict is not None and verdict.action == "skipped"
    else:
        assert verdict is None and added == done


def test_audit_mode_adds_nothing_and_says_what_it_would_have_added() -> None:
    block = parse({**tables()["block"], "name": "b", "audit": True})
    assert isinstance(block, AddressListDestination)
    order = Order(address="192.0.2.7", rule="login-failure", text="5 failures")
    _, verdict = routeros.decide(block, order)
    assert verdict is not None and verdict.action == "skipped"
    report = routeros.report_text(block, order, "skipped", verdict.reason)
    assert report == (
        "AUDIT, nothing changed: alertik would add 192.0.2.7 to address list "
        "'blocked' on 192.0.2.1 for 12h (rule login-failure): 5 failures"
    )
    real = made("block")
    assert isinstance(real, AddressListDestination)
    assert routeros.report_text(real, order, "delivered", "") == (
        "alertik added 192.0.2.7 to address list 'blocked' on 192.0.2.1 for 12h "
        "(rule login-failure): 5 failures"
    )
    assert routeros.report_text(real, order, "delivered", "already on the list") is None


# --- e-mail messages ------------------------------------------------------------


def test_an_e_mail_is_plain_utf8_text_with_a_subject_from_its_first_line() -> None:
    dest = made("mail")
    assert isinstance(dest, EmailDestination)
    text = "login failure for user é\rBcc: evil@example.test\r\nfrom 192.0.2.7\nmore"
    msg = mail.message(dest, text, "k1")
    # A carriage return in a log line makes no header of its own.
    assert msg["Subject"] == "alertik: login failure for user é Bcc: evil@example.test"
    assert msg["Bcc"] is None
    assert msg["To"] == "ops@example.test, Night Shift <night@example.test>"
    assert msg["Message-ID"] == "<k1.alertik@example.test>"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg.get_content_type() == "text/plain"
    body = msg.get_content().rstrip("\n")
    assert body.splitlines() == text.splitlines()
    assert mail.subject("12 alerts:\nx\ny") == "alertik: 12 alerts"
    assert len(mail.subject("x" * 500)) <= len("alertik: ") + mail.SUBJECT_CHARS


def test_scrubbing_covers_the_new_secrets() -> None:
    for name in ("phone", "pager", "room", "mail", "block", "many"):
        dest = made(name)
        secrets = secrets_for(dest)  # type: ignore[arg-type]
        body = json.dumps({"echo": " ".join(dest.secrets())}).encode()  # type: ignore[attr-defined]
        shown = excerpt(body, secrets)
        for secret in dest.secrets():  # type: ignore[attr-defined]
            assert secret not in shown
            assert secret not in scrub(f"error at {secret}", secrets)
