"""Unit tests for ingest.formats: reading RouterOS message headers.

Samples and their sources:

* The same login failure in the three RouterOS formats (identity MikroTik,
  syslog-time-format=bsd-syslog) is from our RouterOS notes, which take it from
  MikroTik's Log manual page with RouterOS 7.25beta5 examples:

      default: system,error,critical login failure for user guest from
               192.168.88.17 via ssh
      syslog:  <27>Oct  2 17:36:35 MikroTik login failure for user guest from
               192.168.88.17 via ssh
      cef:     Oct  2 17:36:35 MikroTik CEF:0|MikroTik|hAP ax^2|7.25beta5|10|
               system,error,critical|High|dvchost=MikroTik dvc=192.168.88.36
               msg=login failure ... app=ssh duser=guest outcome=failure
               src=192.168.88.17

* CEF with syslog-time-format=iso8601 and an escaped "=" (RouterOS 7.20.4), as
  quoted in the public NixOS config quentinmit/isz,
  workshop/vector/mikrotik.nix: "remote-log-format=cef
  syslog-time-format=iso8601 is 2025-11-22T21:24:35.265-0500 router.isz.wtf
  CEF:0|MikroTik|RB4011iGS+5HacQ2HnD|7.20.4 (stable)|16|dhcp,debug,packet|Low|
  dvchost=router.isz.wtf dvc=172.30.97.3 msg=    Router \\= 192.168.88.1\\r\\n".
* The firewall entry is the manual's ``/log print`` example
  ("01:01:58 firewall,info input: in:ether1 out:(none), src-mac
  00:21:29:6d:82:07, proto UDP, 10.1.101.1:520->10.1.101.255:520, len 452"),
  without the time column, which remote logging does not send.
"""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings, strategies as st

from alertik.matcher.formats import MAX_IDENTITY_WORDS, ParsedFields, classify, parse

MESSAGE = "login failure for user guest from 192.168.88.17 via ssh"
TOPICS = ("system", "error", "critical")

DEFAULT = b"system,error,critical " + MESSAGE.encode()
SYSLOG = b"<27>Oct  2 17:36:35 MikroTik " + MESSAGE.encode()
CEF = (
    b"Oct  2 17:36:35 MikroTik CEF:0|MikroTik|hAP ax^2|7.25beta5|10|"
    b"system,error,critical|High|dvchost=MikroTik dvc=192.168.88.36 "
    b"msg=" + MESSAGE.encode() + b" app=ssh duser=guest outcome=failure "
    b"src=192.168.88.17"
)
CEF_ISO = (
    b"2025-11-22T21:24:35.265-0500 router.isz.wtf CEF:0|MikroTik|"
    b"RB4011iGS+5HacQ2HnD|7.20.4 (stable)|16|dhcp,debug,packet|Low|"
    b"dvchost=router.isz.wtf dvc=172.30.97.3 msg=    Router \\= 192.168.88.1\r\n"
)


# -- the three RouterOS formats ---------------------------------------------


def test_the_default_format_gives_topics_and_message_and_nothing_else() -> None:
    p = parse(DEFAULT)
    assert p.format == "default"
    assert p.topics == TOPICS
    assert p.message == MESSAGE
    assert (p.facility, p.timestamp, p.hostname, p.cef) == (None, None, None, None)
    # syslog-severity=auto would give 3 for an error+critical entry.
    assert p.severity == 3


def test_the_syslog_format_gives_pri_timestamp_identity_and_message() -> None:
    p = parse(SYSLOG)
    assert p.format == "rfc3164"
    assert (p.facility, p.severity) == (3, 3)  # daemon, error: <27>
    assert p.timestamp == "Oct  2 17:36:35"
    assert p.hostname == "MikroTik"
    assert p.message == MESSAGE
    assert p.topics == ()


def test_the_cef_format_gives_header_fields_and_unescaped_extension() -> None:
    p = parse(CEF)
    assert p.format == "cef"
    assert p.timestamp == "Oct  2 17:36:35"
    assert p.hostname == "MikroTik"
    assert p.topics == TOPICS
    assert p.message == MESSAGE
    assert p.severity == 3  # High
    assert p.facility is None
    assert p.cef == {
        "cef": "0",
        "vendor": "MikroTik",
        "product": "hAP ax^2",
        "version": "7.25beta5",
        "class_id": "10",
        "name": "system,error,critical",
        "severity": "High",
        "dvchost": "MikroTik",
        "dvc": "192.168.88.36",
        "msg": MESSAGE,
        "app": "ssh",
        "duser": "guest",
        "outcome": "failure",
        "src": "192.168.88.17",
    }


def test_the_three_formats_agree_on_the_message() -> None:
    assert {parse(raw).message for raw in (DEFAULT, SYSLOG, CEF)} == {MESSAGE}


# -- timestamps ----------------------------------------------------------------


def test_iso8601_cef_timestamps_with_milliseconds_and_offset_are_kept_verbatim() -> (
    None
):
    p = parse(CEF_ISO)
    assert p.format == "cef"
    assert p.timestamp == "2025-11-22T21:24:35.265-0500"
    assert p.hostname == "router.isz.wtf"
    assert p.topics == ("dhcp", "debug", "packet")
    assert p.message == "    Router = 192.168.88.1"
    assert p.severity == 6  # Low
    assert p.cef is not None and p.cef["version"] == "7.20.4 (stable)"


@pytest.mark.parametrize(
    "stamp",
    [
        "Oct  2 17:36:35",
        "Oct 12 17:36:35",
        "Oct 2 17:36:35",
        "Oct  2 17:36:35.123",
        "2025-10-02T17:36:35+03:00",
        "2025-10-02T17:36:35.123Z",
        "2025-11-22T21:24:35.265-0500",
    ],
)
def test_syslog_timestamps_in_bsd_and_iso8601_forms_are_recognised(stamp: str) -> None:
    p = parse(f"<30>{stamp} MikroTik dhcp1 assigned 10.0.0.9".encode())
    assert p.format == "rfc3164"
    assert p.timestamp == stamp
    assert p.hostname == "MikroTik"
    assert p.message == "dhcp1 assigned 10.0.0.9"


def test_a_syslog_header_without_a_valid_timestamp_is_all_message() -> None:
    p = parse(b"<27>MikroTik login failure")
    assert (p.format, p.severity, p.timestamp, p.hostname) == ("rfc3164", 3, None, None)
    assert p.message == "MikroTik login failure"


def test_a_bsd_header_whose_pri_a_relay_dropped_is_still_read() -> None:
    p = parse(SYSLOG[len(b"<27>") :])
    assert (p.format, p.facility, p.severity) == ("rfc3164", None, None)
    assert (p.timestamp, p.hostname, p.message) == (
        "Oct  2 17:36:35",
        "MikroTik",
        MESSAGE,
    )


# -- identities and topics in the syslog format ----------------------------


def test_add_topics_string_puts_topics_before_the_message() -> None:
    p = parse(b"<27>Oct  2 17:36:35 MikroTik system,error,critical " + MESSAGE.encode())
    assert (p.hostname, p.topics, p.message) == ("MikroTik", TOPICS, MESSAGE)


def test_topics_reveal_an_identity_that_contains_spaces() -> None:
    p = parse(b"<27>Oct  2 17:36:35 core  router 2 system,error,critical x")
    assert p.hostname == "core  router 2"
    assert p.topics == TOPICS
    assert p.message == "x"


def test_without_topics_an_identity_with_spaces_is_cut_at_its_first_space() -> None:
    # The documented ambiguity: nothing marks where "core router" ends.
    p = parse(b"<27>Oct  2 17:36:35 core router " + MESSAGE.encode())
    assert p.hostname == "core"
    assert p.message == "router " + MESSAGE


def test_topics_are_looked_for_only_in_the_first_few_words() -> None:
    words = " ".join(f"w{i}" for i in range(MAX_IDENTITY_WORDS + 1))
    p = parse(f"<27>Oct  2 17:36:35 {words} system,info x".encode())
    assert p.hostname == "w0"
    assert p.topics == ()


def test_a_comma_list_without_a_level_is_not_taken_for_topics() -> None:
    p = parse(b"<27>Oct  2 17:36:35 MikroTik ether1,ether2 link down")
    assert p.hostname == "MikroTik"
    assert p.topics == ()
    assert p.message == "ether1,ether2 link down"


def test_a_message_with_only_an_identity_has_an_empty_message() -> None:
    p = parse(b"<27>Oct  2 17:36:35 MikroTik\n")
    assert (p.hostname, p.message) == ("MikroTik", "")


# -- default format details -------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "topics", "severity"),
    [
        (
            b"firewall,info input: in:ether1 out:(none), len 452",
            ("firewall", "info"),
            6,
        ),
        (b"route,ospf,debug,raw 02 01 00 2C", ("route", "ospf", "debug", "raw"), 7),
        (b"interface,warning ether1 link down", ("interface", "warning"), 4),
        (b"system,info,account user admin logged in", ("system", "info", "account"), 6),
        (b"script,critical boom", ("script", "critical"), 2),
        (b"ipsec,foo bar", ("ipsec", "foo"), None),
    ],
)
def test_default_format_severity_follows_routeros_auto_mapping(
    raw: bytes, topics: tuple[str, ...], severity: int | None
) -> None:
    p = parse(raw)
    assert (p.format, p.topics, p.severity) == ("default", topics, severity)


def test_the_manual_firewall_entry_parses_as_default_format() -> None:
    raw = (
        b"firewall,info input: in:ether1 out:(none), src-mac 00:21:29:6d:82:07, "
        b"proto UDP, 10.1.101.1:520->10.1.101.255:520, len 452"
    )
    p = parse(raw)
    assert p.format == "default"
    assert p.message is not None and p.message.startswith("input: in:ether1")


def test_trailing_newlines_and_nul_are_not_part_of_the_message() -> None:
    assert parse(DEFAULT + b"\r\n").message == MESSAGE
    assert parse(DEFAULT + b"\x00").message == MESSAGE


# -- CEF details ---------------------------------------------------------------


def test_cef_extension_values_unescape_equals_and_backslash() -> None:
    p = parse(
        b"CEF:0|MikroTik|CHR|7.19|1|script,info|Low|msg=a\\=b c\\\\d path=C:\\\\x"
    )
    assert p.cef is not None
    assert p.cef["msg"] == "a=b c\\d"
    assert p.cef["path"] == "C:\\x"


def test_cef_header_pipes_may_be_escaped() -> None:
    p = parse(b"CEF:0|Mikro\\|Tik|CHR|7.19|1|system,info|Medium|msg=hi")
    assert p.cef is not None
    assert p.cef["vendor"] == "Mikro|Tik"
    assert p.cef["product"] == "CHR"
    assert p.severity == 4


def test_cef_without_a_header_prefix_takes_its_identity_from_dvchost() -> None:
    p = parse(b"CEF:0|MikroTik|CHR|7.19|1|system,info|Low|dvchost=edge msg=x")
    assert (p.hostname, p.timestamp, p.message) == ("edge", None, "x")


def test_cef_identity_with_spaces_is_read_whole() -> None:
    p = parse(b"Oct  2 17:36:35 core router CEF:0|MikroTik|CHR|7.19|1|a,info|Low|msg=x")
    assert p.hostname == "core router"


@pytest.mark.parametrize(
    ("value", "severity"),
    [
        ("Low", 6),
        ("Medium", 4),
        ("High", 3),
        ("Very-High", 2),
        ("0", 6),
        ("5", 4),
        ("8", 3),
        ("10", 2),
        ("bogus", None),
    ],
)
def test_cef_severity_maps_to_a_syslog_severity(
    value: str, severity: int | None
) -> None:
    p = parse(f"CEF:0|V|P|1|1|n|{value}|msg=x".encode())
    assert p.severity == severity


def test_cef_with_missing_header_fields_still_parses() -> None:
    p = parse(b"CEF:0|MikroTik|CHR")
    assert p.format == "cef"
    assert p.cef == {"cef": "0", "vendor": "MikroTik", "product": "CHR"}
    assert p.message is None


def test_cef_in_a_syslog_header_keeps_the_pri() -> None:
    p = parse(b"<134>" + CEF)
    assert (p.format, p.facility, p.severity) == ("cef", 16, 6)
    assert (p.hostname, p.message) == ("MikroTik", MESSAGE)


def test_cef_text_inside_a_default_message_is_not_taken_for_cef() -> None:
    p = parse(b"script,info user typed CEF:0|a|b|c|d|e|f|g=h")
    assert p.format == "default"


def test_cef_newline_and_carriage_return_escapes_decode_in_extension_values() -> None:
    p = parse(
        b"CEF:0|Vendor|Box|1.0|7|script,info|Low|msg=first\\nsecond\\r\\nthird "
        b"path=C:\\\\new\\\\rules act=a\\=b"
    )
    assert p.cef is not None
    assert p.cef["msg"] == "first\nsecond\r\nthird"
    assert p.message == "first\nsecond\r\nthird"
    # An escaped backslash before n or r stays a backslash and a letter.
    assert p.cef["path"] == "C:\\new\\rules"
    assert p.cef["act"] == "a=b"


def test_other_backslashes_in_cef_values_are_kept_as_written() -> None:
    p = parse(b"CEF:0|V|P|1|1|n|Low|msg=tab\\there and \\x41 end\\")
    assert p.cef is not None
    assert p.cef["msg"] == "tab\\there and \\x41 end\\"


def test_trailing_whitespace_after_the_last_cef_value_is_dropped() -> None:
    p = parse(b"CEF:0|V|P|1|1|n|Low|spt=22 msg=done  \t \r\n")
    assert p.cef is not None
    assert p.cef["msg"] == "done"
    # Inside the extension, the spaces before the next key stay with the value
    # (all but the one that separates the pairs).
    p = parse(b"CEF:0|V|P|1|1|n|Low|msg=kept   spt=22 ")
    assert p.cef is not None
    assert (p.cef["msg"], p.cef["spt"]) == ("kept  ", "22")


def test_an_escaped_line_break_ending_the_last_cef_value_is_kept() -> None:
    p = parse(b"CEF:0|V|P|1|1|n|Low|msg=two lines\\n")
    assert p.cef is not None
    assert p.cef["msg"] == "two lines\n"


def test_a_one_word_cef_name_from_another_vendor_is_not_taken_for_topics() -> None:
    assert parse(b"CEF:0|Acme|IDS|2.1|100|worm|High|msg=x").topics == ()
    assert parse(b"CEF:0|Acme|IDS|2.1|100|trojan,worm|High|msg=x").topics == ()
    # Unless it is one: a RouterOS topic, a level, or anything MikroTik sends.
    assert parse(b"CEF:0|Acme|IDS|2.1|100|firewall|Low|msg=x").topics == ("firewall",)
    assert parse(b"CEF:0|Acme|IDS|2.1|100|login,info|Low|msg=x").topics == (
        "login",
        "info",
    )
    assert parse(b"CEF:0|MikroTik|CHR|7.19|1|container|Low|msg=x").topics == (
        "container",
    )


def test_cef_after_a_tag_glued_to_it_keeps_the_host_and_gives_the_tag() -> None:
    raw = (
        b"Sep 10 16:03:01 198.51.100.20 ASM:CEF:0|F5|ASM|11.0.0|Scraping|"
        b"Web Scraping|8|dvchost=waf.example dvc=198.51.100.20 act=alerted"
    )
    p = parse(raw)
    assert p.format == "cef"
    assert (p.timestamp, p.hostname, p.app) == (
        "Sep 10 16:03:01",
        "198.51.100.20",
        "ASM",
    )
    assert p.cef is not None and p.cef["vendor"] == "F5"
    assert p.cef["act"] == "alerted"
    assert p.severity == 3  # CEF 8


def test_cef_after_a_syslog_tag_with_a_pid_and_a_space_is_read() -> None:
    p = parse(b"<134>Oct  2 17:36:35 relay cef[812]: CEF:0|V|P|1|1|n|Low|msg=x")
    assert (p.format, p.facility, p.hostname, p.app, p.procid) == (
        "cef",
        16,
        "relay",
        "cef",
        "812",
    )
    assert p.message == "x"


def test_cef_after_another_devices_own_date_and_host_is_read() -> None:
    p = parse(b"2009-09-02 sensor7 CEF:0|V|IDS|1|100|worm stopped|10|src=192.0.2.1")
    assert p.format == "cef"
    assert p.hostname == "2009-09-02 sensor7"
    assert p.cef is not None and p.cef["src"] == "192.0.2.1"


def test_cef_after_more_words_than_an_identity_has_is_not_taken_for_cef() -> None:
    words = " ".join(f"w{i}" for i in range(MAX_IDENTITY_WORDS + 1))
    p = parse(f"{words} CEF:0|V|P|1|1|n|Low|msg=x".encode())
    assert p.format == "unknown"


# -- tolerated syslog headers --------------------------------------------------


def test_a_space_between_pri_and_the_timestamp_is_tolerated() -> None:
    p = parse(b"<38> Mar  7 19:06:53 example tag: testmessage")
    assert (p.format, p.facility, p.severity) == ("rfc3164", 4, 6)
    assert (p.timestamp, p.hostname, p.message) == (
        "Mar  7 19:06:53",
        "example",
        "tag: testmessage",
    )


def test_a_space_after_pri_without_a_timestamp_is_still_all_message() -> None:
    p = parse(b"<38> example tag: testmessage")
    assert (p.timestamp, p.hostname, p.message) == (
        None,
        None,
        " example tag: testmessage",
    )


@pytest.mark.parametrize("month", ["AUG", "aug", "aUg"])
def test_month_names_are_read_in_any_case(month: str) -> None:
    p = parse(f"<6>{month} 10 22:18:24 gw sshd[1]: accepted".encode())
    assert (p.timestamp, p.hostname, p.message) == (
        f"{month} 10 22:18:24",
        "gw",
        "sshd[1]: accepted",
    )


@pytest.mark.parametrize("lead", [b"\n", b"   ", b"\r\n\t "])
def test_whitespace_before_the_pri_is_skipped(lead: bytes) -> None:
    p = parse(lead + SYSLOG)
    assert (p.format, p.severity, p.hostname, p.message) == (
        "rfc3164",
        3,
        "MikroTik",
        MESSAGE,
    )
    p = parse(lead + b"<13>1 2019-02-13T19:48:34+00:00 h app 1 - - i am here\n   ")
    assert (p.format, p.app, p.message) == ("rfc5424", "app", "i am here")


def test_trailing_spaces_without_a_line_break_stay_in_the_message() -> None:
    assert parse(b"<13>1 - h app 1 - - padded   ").message == "padded   "


@pytest.mark.parametrize("digits", [10, 11, 62])
def test_iso_timestamps_with_more_than_nine_fraction_digits_are_recognised(
    digits: int,
) -> None:
    stamp = "2006-10-29T01:59:59." + "1" * digits + "+01:00"
    p = parse(f"<7>{stamp} bzorp syslog-ng[23323]: hello".encode())
    assert (p.timestamp, p.hostname) == (stamp, "bzorp")
    assert p.message == "syslog-ng[23323]: hello"


# -- RFC 5424 from a relay -----------------------------------------------------


def test_rfc5424_from_a_relay_gives_every_header_field() -> None:
    raw = (
        b'<30>1 2025-10-02T17:36:35.123Z relay1 MikroTik 42 ID7 [ex@32473 a="1\\]2"]'
        b" \xef\xbb\xbfsystem,error,critical " + MESSAGE.encode()
    )
    p = parse(raw)
    assert p.format == "rfc5424"
    assert (p.facility, p.severity) == (3, 6)
    assert p.timestamp == "2025-10-02T17:36:35.123Z"
    assert (p.hostname, p.app, p.procid, p.msgid) == ("relay1", "MikroTik", "42", "ID7")
    assert p.structured_data == '[ex@32473 a="1\\]2"]'
    assert (p.topics, p.message) == (TOPICS, MESSAGE)


def test_rfc5424_nil_values_become_none() -> None:
    p = parse(b"<14>1 - - - - - - hello")
    assert p.format == "rfc5424"
    assert (p.timestamp, p.hostname, p.app, p.procid, p.msgid) == (None,) * 5
    assert p.structured_data is None
    assert p.message == "hello"


def test_rfc5424_carrying_cef_is_read_as_cef_with_the_relay_header() -> None:
    raw = (
        b"<14>1 2025-10-02T17:36:35Z relay1 - - - - "
        + CEF[len(b"Oct  2 17:36:35 MikroTik ") :]
    )
    p = parse(raw)
    assert p.format == "cef"
    assert (p.hostname, p.timestamp, p.severity) == (
        "relay1",
        "2025-10-02T17:36:35Z",
        6,
    )
    assert p.message == MESSAGE


def test_truncated_rfc5424_headers_do_not_fail() -> None:
    for raw in (b"<14>1 ", b"<14>1 2025", b"<14>1 - h a p m [unterminated"):
        assert parse(raw).format == "rfc5424"
    # Without the space after it, "1" is just the start of an RFC 3164 message.
    assert parse(b"<14>1").format == "rfc3164"


# -- junk ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b"", b"\xff\xfe\xfd", b"<999>x", b"<>x", b"hello world", b" leading space"],
)
def test_unreadable_input_is_unknown_with_the_text_as_message(raw: bytes) -> None:
    p = parse(raw)
    assert p.format == "unknown"
    assert p.message == raw.decode("utf-8", "replace")


def test_parsed_fields_are_frozen_and_round_trip_through_msgpack() -> None:
    p = parse(CEF)
    with pytest.raises(AttributeError):
        p.hostname = "x"  # type: ignore[misc]
    again = msgspec.msgpack.decode(msgspec.msgpack.encode(p), type=ParsedFields)
    assert again == p
    assert ParsedFields() == ParsedFields(format="unknown")


_FRAGMENTS = st.sampled_from(
    [
        b"<",
        b">",
        b"<27>",
        b"<134>1 ",
        b"1 ",
        b"-",
        b" ",
        b"  ",
        b"Oct  2 17:36:35",
        b"2025-11-22T21:24:35.265-0500",
        b"MikroTik",
        b"system,error,critical",
        b"CEF:0|",
        b"CEF:",
        b"|",
        b"\\",
        b"=",
        b"msg=",
        b"[",
        b"]",
        b'"',
        b"\xef\xbb\xbf",
        b"\xff",
        b"\r\n",
        b"\x00",
        b"\xc3",
    ]
)


@settings(database=None, deadline=None, max_examples=500)
@given(st.binary(max_size=600))
def test_parse_never_raises_for_arbitrary_bytes(raw: bytes) -> None:
    assert isinstance(parse(raw), ParsedFields)


@settings(database=None, deadline=None, max_examples=250)
@given(st.lists(_FRAGMENTS | st.binary(max_size=8), max_size=40).map(b"".join))
def test_parse_never_raises_for_near_miss_syslog_and_cef(raw: bytes) -> None:
    p = parse(raw)
    assert isinstance(p, ParsedFields)
    assert p.message is None or isinstance(p.message, str)


@settings(database=None, deadline=None, max_examples=500)
@given(st.lists(_FRAGMENTS | st.binary(max_size=8), max_size=40).map(b"".join))
def test_classify_names_the_format_parse_finds_for_near_miss_lines(raw: bytes) -> None:
    assert classify(raw) == parse(raw).format


def test_classify_names_the_format_parse_finds_for_every_preset_line() -> None:
    from tests.support import REPO

    lines = [
        line.encode()
        for path in sorted((REPO / "tests" / "data" / "presets").glob("*.txt"))
        for line in path.read_text().splitlines()
        if line and not line.startswith((" ", "#"))
    ]
    lines += [DEFAULT, SYSLOG, CEF, CEF_ISO, b"<27>" + CEF, b"", b"hello"]
    lines.append(b"<14>1 2025-01-01T00:00:00Z host app - - - message")
    assert len(lines) > 50
    found = {classify(raw) for raw in lines}
    assert found == {"default", "rfc3164", "rfc5424", "cef", "unknown"}
    for raw in lines:
        assert classify(raw) == parse(raw).format, raw
