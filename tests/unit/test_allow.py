"""Unit tests for ingest.allow: which sender addresses the allow-list admits."""

from __future__ import annotations

import pytest

from alertik.ingest.allow import CACHE_MAX, AllowList


def test_an_empty_list_allows_every_sender_even_junk() -> None:
    allow = AllowList(())
    assert allow.open
    for addr in ("192.0.2.1", "2001:db8::1", "not an address", ""):
        assert allow.allows(addr)


@pytest.mark.parametrize(
    ("items", "addr", "expected"),
    [
        (("192.0.2.1",), "192.0.2.1", True),
        (("192.0.2.1",), "192.0.2.2", False),
        (("192.0.2.0/24",), "192.0.2.200", True),
        (("192.0.2.0/24",), "198.51.100.1", False),
        (("10.0.0.0/8", "192.0.2.7"), "192.0.2.7", True),
        # A host address with bits set beyond the prefix is taken as its range.
        (("192.0.2.1/24",), "192.0.2.99", True),
        (("2001:db8::/32",), "2001:db8:1::5", True),
        (("2001:db8::/32",), "2001:db9::1", False),
        (("::1",), "::1", True),
        # An IPv4 range never admits an IPv6 sender, and the other way round.
        (("0.0.0.0/0",), "2001:db8::1", False),
        (("::/0",), "192.0.2.1", False),
    ],
)
def test_addresses_and_cidr_ranges_admit_exactly_their_senders(
    items: tuple[str, ...], addr: str, expected: bool
) -> None:
    assert AllowList(items).allows(addr) is expected


def test_an_ipv4_sender_seen_through_a_dual_stack_socket_matches_its_ipv4_range() -> (
    None
):
    allow = AllowList(("192.0.2.0/24",))
    assert allow.allows("::ffff:192.0.2.1")
    assert not allow.allows("::ffff:198.51.100.1")


def test_an_ipv4_mapped_range_in_the_list_matches_plain_ipv4_senders() -> None:
    allow = AllowList(("::ffff:192.0.2.0/120",))
    assert allow.items == ("192.0.2.0/24",)
    assert allow.allows("192.0.2.5")
    assert allow.allows("::ffff:192.0.2.5")
    assert not allow.allows("192.0.3.5")


def test_a_zone_suffix_on_the_sender_or_the_item_is_ignored() -> None:
    allow = AllowList(("fe80::/64",))
    assert allow.allows("fe80::1%eth0")
    assert AllowList(("fe80::1%eth0",)).allows("fe80::1%ovpn-in1")


def test_bracketed_ipv6_senders_are_understood() -> None:
    assert AllowList(("2001:db8::/32",)).allows("[2001:db8::1]")


def test_a_sender_that_is_not_an_address_is_refused_when_the_list_is_set() -> None:
    allow = AllowList(("192.0.2.0/24",))
    for junk in ("", "router.example", "192.0.2", "::ffff:zz", "1.2.3.4.5"):
        assert not allow.allows(junk)


def test_an_item_that_is_not_an_address_or_range_raises_value_error() -> None:
    with pytest.raises(ValueError):
        AllowList(("192.0.2.0/33",))
    with pytest.raises(ValueError):
        AllowList(("router.example",))


def test_answers_are_cached_and_the_cache_never_grows_past_its_cap() -> None:
    allow = AllowList(("10.0.0.0/8",))
    for i in range(CACHE_MAX + 500):
        addr = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
        assert allow.allows(addr)
        assert len(allow._cache) <= CACHE_MAX
    # A cached answer is the same answer.
    assert allow.allows("10.0.0.1") and allow.allows("10.0.0.1")
    assert not allow.allows("11.0.0.1") and not allow.allows("11.0.0.1")


def test_the_list_can_be_called_like_its_allows_method() -> None:
    allow = AllowList(("192.0.2.1",))
    assert allow("192.0.2.1")
    assert not allow("192.0.2.2")
