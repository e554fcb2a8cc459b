"""Unit tests for alertik cert's pure parts: names to subjectAltName entries."""

from __future__ import annotations

import pytest

from alertik.cert import CN_MAX, CertError, openssl_config, subject_names


def test_addresses_and_host_names_become_ip_and_dns_entries() -> None:
    assert subject_names(["alertik.lan", "192.0.2.10", "[2001:db8::a]", "log."]) == [
        "DNS:alertik.lan",
        "IP:192.0.2.10",
        "IP:2001:db8::a",
        "DNS:log",
    ]


@pytest.mark.parametrize(
    "name", ["", "two words", "a_b", "x-.lan", "-x", "a" * 64, "a,b", "a\nb", "*"]
)
def test_what_is_neither_a_host_name_nor_an_address_is_refused(name: str) -> None:
    with pytest.raises(CertError) as caught:
        subject_names([name])
    assert caught.value.usage


def test_the_first_name_is_the_common_name_unless_too_long_for_one() -> None:
    assert "CN = alertik.lan\n" in openssl_config(["alertik.lan", "192.0.2.10"])
    long = ".".join(["a" * 60, "b" * 60])
    assert len(long) > CN_MAX
    config = openssl_config([long])
    assert "CN = alertik\n" in config
    assert f"subjectAltName = DNS:{long}\n" in config


def test_the_certificate_is_its_own_ca_for_servers() -> None:
    config = openssl_config(["localhost"])
    assert "basicConstraints = critical, CA:TRUE\n" in config
    assert "extendedKeyUsage = serverAuth\n" in config
