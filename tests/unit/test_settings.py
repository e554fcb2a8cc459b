"""The settings table and its converters: one place for names, defaults, bounds."""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

import msgspec
import pytest
import zmq
from hypothesis import given, strategies as st
from zmq.utils import z85

from alertik.common import config, converters, settings
from alertik.common.config import ConfigError, load
from alertik.common.converters import (
    Address,
    Boolean,
    Choice,
    CurveKey,
    CurveKeys,
    Directory,
    Endpoint,
    Integer,
    Invalid,
    LogFile,
    Networks,
    Number,
    Port,
    TimeFormat,
    check_utf8,
)
from alertik.common.destinations import DEFAULT_TELEGRAM_API_URL, TeamsDestination
from tests.support import REPO

# The Config sections the table fills, and the fields filled elsewhere.
SECTIONS: dict[str, tuple[type[msgspec.Struct], set[str]]] = {
    "": (config.Config, {"rules", "static_rules", "ingest", "notify", "forwarder",
                         "endpoints", "curve", "rules_file", "keeper_pid", "web"}),
    "ingest": (config.IngestConfig, {"listen_socket"}),
    "notify": (config.NotifyConfig, {"destinations"}),
    "forwarder": (config.ForwarderConfig, {"host", "port"}),
    "endpoints": (config.Endpoints, set()),
    "curve": (config.Curve, set()),
    "web": (config.WebConfig, set()),
}  # fmt: skip


def test_the_readme_settings_table_is_the_one_the_table_generates() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert settings.with_table(readme) == readme, (
        "README.md's settings table differs from common/settings.py; "
        "run: python -m alertik.common.settings --write README.md"
    )


def test_every_config_field_is_filled_by_exactly_one_setting() -> None:
    filled = [s.field for s in settings.TABLE if s.field]
    assert len(filled) == len(set(filled))
    expected = set()
    for section, (struct, elsewhere) in SECTIONS.items():
        for name in set(struct.__struct_fields__) - elsewhere:
            expected.add(f"{section}.{name}" if section else name)
    assert set(filled) == expected


def test_every_setting_is_named_once_and_new_ones_are_alertik_names() -> None:
    names = [s.name for s in settings.TABLE]
    assert len(names) == len(set(names))
    # alertik's own FORWARD_ and TELEGRAM_/TEAMS_ families kept their prefixes.
    for name in names:
        assert re.fullmatch(r"(ALERTIK|FORWARD|TELEGRAM|TEAMS)_[A-Z_]+", name), name
        assert config.is_own_variable(name), name


def test_every_default_is_a_value_its_converter_accepts() -> None:
    values: dict[str, Any] = {}
    for s in settings.TABLE:
        text = s.compute({}, values) if s.compute else s.default
        values[s.field] = s.convert(text)
    cfg = load({"HOME": "/nonexistent"})
    assert cfg.ingest.udp_port == 5140
    assert cfg.drain_seconds == 3.0
    assert cfg.time_suffix == settings.DEFAULT_TIME_SUFFIX
    assert cfg.notify.outbox_max_age_seconds == 7 * 86400


def test_the_defaults_shown_for_the_destinations_are_the_ones_they_use() -> None:
    """The notifier code reads these three itself; the table only shows them."""
    by_name = settings.BY_NAME
    assert by_name["TELEGRAM_API_URL"].default == DEFAULT_TELEGRAM_API_URL
    teams = TeamsDestination(name="Teams", url="https://t.test/x")
    assert by_name["TEAMS_WEBHOOK_FORMAT"].default == teams.format
    hook = {
        "ENV_EVENTS": "1",
        "EVENT0_NOTIFIER": "Teams",
        "EVENT0_MATCH_TYPE": "substr",
        "EVENT0_MATCH_STR": "x",
        "EVENT0_MASK_MSG": "y",
        "TEAMS_WEBHOOK_URL": "https://t.test/x",
    }
    (dest,) = load(hook).notify.destinations
    assert isinstance(dest, TeamsDestination)
    assert dest.format == by_name["TEAMS_WEBHOOK_FORMAT"].default


def test_the_run_directory_limit_leaves_room_for_each_socket_in_it() -> None:
    conf = resources.files("alertik").joinpath("supervisord.conf").read_text()
    names = re.findall(r"%\(ENV_ALERTIK_RUN_DIR\)s/(\S+?\.sock)\b", conf)
    names += [file for _, file in config.ENDPOINT_VARIABLES.values()]
    assert names
    assert max(len(n) for n in names) <= len(converters.LONGEST_SOCKET_NAME)
    assert converters.SUN_PATH_MAX == zmq.IPC_PATH_MAX_LEN


def test_an_unknown_alertik_name_is_told_apart_from_alertiks_own() -> None:
    env = {
        "ALERTIK_UDP_PROT": "5140",
        "ALERTIK_FROBNICATE": "1",
        "ALERTIK_PYTHON": "/usr/bin/python3",
        "ALERTIK_START_INGEST": "true",
        "ALERTIK_CURVE_PUBLIC_KEY": "x",
        "ALERTIK_UDP_PORT": "5140",
        "ALERTIK_FORWARD_PROTOCOL": "tcp",
    }
    found = {w.variable: w.problem for w in settings.unknown_names(env)}
    assert found == {
        "ALERTIK_FROBNICATE": "is not an alertik setting and is ignored",
        "ALERTIK_UDP_PROT": "is not an alertik setting and is ignored; "
        "did you mean ALERTIK_UDP_PORT?",
        "ALERTIK_FORWARD_PROTOCOL": "is not an alertik setting and is ignored; "
        "did you mean FORWARD_PROTOCOL?",
    }


def test_the_markdown_command_prints_the_table(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert settings.main(["--markdown"]) == 0
    out = capsys.readouterr().out
    assert out == settings.markdown()
    assert "| `ALERTIK_UDP_PORT` | `5140` | 0 to 65535 | UDP port to listen on |" in out


# --- converters, one class each (as supervisor's datatypes tests) -------------


def refuses(convert: Any, text: str) -> str:
    with pytest.raises(Invalid) as info:
        convert(text)
    assert "\n" not in str(info.value)
    return str(info.value)


class TestInteger:
    convert = Integer(lo=0, hi=65535)

    def test_takes_ascii_digits_with_a_sign_and_spaces_around(self) -> None:
        assert self.convert(" 5140 ") == 5140
        assert self.convert("+08") == 8
        assert self.convert("-0") == 0

    @pytest.mark.parametrize("text", ["５１４０", "٣", "²", "1_000", "0x10", "1.0", ""])
    def test_refuses_what_is_not_written_in_ascii_digits(self, text: str) -> None:
        assert refuses(self.convert, text) == f"{text!r} is not a whole number"

    def test_refuses_a_value_out_of_its_bounds_naming_them(self) -> None:
        assert refuses(self.convert, "65536") == "65536 is out of range; use 0 to 65535"


class TestNumber:
    convert = Number(lo=0.05, hi=7 * 86400)

    @pytest.mark.parametrize(
        ("text", "value"), [("3", 3.0), (" .5 ", 0.5), ("1e3", 1000.0), ("2.", 2.0)]
    )
    def test_takes_decimal_numbers(self, text: str, value: float) -> None:
        assert self.convert(text) == value

    @pytest.mark.parametrize("text", ["٣.٥", "３", "nan", "inf", "1_0", "0x1p3"])
    def test_refuses_what_a_person_would_not_write_as_a_number(self, text: str) -> None:
        assert refuses(self.convert, text) == f"{text!r} is not a number"

    def test_shows_bounds_as_written_not_in_exponent_form(self) -> None:
        assert refuses(self.convert, "0") == "0 is out of range; use 0.05 to 604800"
        assert self.convert.describe() == "0.05 to 604800"


class TestPortBooleanChoice:
    def test_a_port_may_be_off(self) -> None:
        assert Port()("off") is None
        assert Port()(" NONE ") is None
        assert Port()("5140") == 5140
        refuses(Port(), "٥١٤٠")

    @pytest.mark.parametrize(("text", "value"), [("yes", True), (" Off ", False)])
    def test_a_boolean_is_yes_or_no(self, text: str, value: bool) -> None:
        assert Boolean()(text) is value

    def test_a_choice_may_ignore_case_in_ascii_only(self) -> None:
        level = Choice(choices=("DEBUG", "INFO"), upper=True)
        assert level(" debug ") == "DEBUG"
        # Dotless ı upper-cases to I: not what anybody typed.
        assert refuses(level, "ınfo") == "'ınfo' is not one of DEBUG, INFO"
        assert refuses(Choice(choices=("udp", "tcp")), "UDP")


class TestAddresses:
    def test_an_address_loses_its_brackets(self) -> None:
        assert Address()(" [::1] ") == "::1"
        refuses(Address(), "localhost")
        refuses(Address(), "１２７.0.0.1")

    def test_networks_are_a_list(self) -> None:
        assert Networks()("192.0.2.1, 10.0.0.0/8") == ("192.0.2.1", "10.0.0.0/8")
        assert Networks()("") == ()
        refuses(Networks(), "10.0.0.0/٨")


class TestPathsAndEndpoints:
    def test_a_run_directory_leaves_room_for_its_longest_socket(self) -> None:
        at_limit = "/" + "r" * (converters.RUN_DIR_MAX - 1)
        assert Directory(sockets=True)(at_limit) == at_limit
        message = refuses(Directory(sockets=True), at_limit + "r")
        assert f"at most {converters.RUN_DIR_MAX} bytes" in message
        assert Directory()(at_limit + "r") == at_limit + "r"

    def test_a_log_file_of_dash_or_nothing_is_stderr(self) -> None:
        assert LogFile()("-") is None
        assert LogFile()(" ") is None
        assert LogFile()("/x/y.txt") == "/x/y.txt"

    def test_an_ipc_endpoint_must_fit_a_unix_socket_address(self) -> None:
        fits = "ipc:///" + "s" * (converters.SUN_PATH_MAX - 1)
        assert Endpoint()(fits) == fits
        assert "at most 107" in refuses(Endpoint(), fits + "s")
        assert Endpoint()("tcp://[::1]:5000") == "tcp://[::1]:5000"
        refuses(Endpoint(), "matcher:5551")


class TestTimeFormat:
    def test_keeps_spaces_and_accepts_unknown_directives_as_strftime_does(
        self,
    ) -> None:
        assert TimeFormat()(" at %H:%M ") == " at %H:%M "
        assert TimeFormat()("") == ""
        assert TimeFormat()("%Q") == "%Q"


class TestCurveKeys:
    def test_a_key_pair_from_zmq_is_accepted(self) -> None:
        public, secret = (k.decode() for k in zmq.curve_keypair())
        assert CurveKey()(secret) == secret
        assert CurveKeys()(f"{public}, {public}") == (public, public)
        assert CurveKey()("  ") == ""

    @pytest.mark.parametrize("key", ["~" * 40, "#" * 40, "a" * 39])
    def test_a_key_that_is_not_z85_is_refused_without_echoing_it(
        self, key: str
    ) -> None:
        message = refuses(CurveKey(), key)
        assert key not in message
        assert "Z85 CURVE key" in message

    @given(st.text(alphabet=converters._Z85, min_size=40, max_size=40))
    def test_agrees_with_zmqs_own_decoder(self, key: str) -> None:
        try:
            z85.decode(key.encode())
        except Exception:
            decodes = False
        else:
            decodes = True
        assert converters._is_z85_key(key) is decodes


def test_text_that_is_not_utf8_is_refused_without_the_value() -> None:
    assert check_utf8("X", "café") == "café"
    with pytest.raises(ConfigError) as info:
        check_utf8("TELEGRAM_CHAT_ID", "secret\udcff")
    assert str(info.value) == (
        "TELEGRAM_CHAT_ID: is not UTF-8 text (a stray byte at character 7); "
        "write the value in UTF-8"
    )
