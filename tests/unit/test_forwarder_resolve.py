"""Looking FORWARD_HOST up: the schedule, the port, and answers that change.

The resolver's answer is changed through an injected lookup function: a real
change would need /etc/hosts or a DNS server, which tests must not touch.
"""

from __future__ import annotations

import errno
import logging
import socket
import time

import pytest

from alertik.common.net import host_port
from alertik.forwarder.resolve import (
    Address,
    Schedule,
    Target,
    describe_error,
    port_number,
)
from tests.support import wait_for

V4 = Address(socket.AF_INET, ("192.0.2.1", 514))
V4B = Address(socket.AF_INET, ("192.0.2.2", 514))
V6 = Address(socket.AF_INET6, ("2001:db8::1", 514, 0, 0))


def test_the_first_lookup_is_due_at_once_and_the_next_after_the_period() -> None:
    schedule = Schedule(every=30.0)
    assert schedule.due(100.0)
    schedule.succeeded(100.0)
    assert not schedule.due(129.9)
    assert schedule.due(130.0)


def test_failed_lookups_are_retried_sooner_doubling_up_to_the_period() -> None:
    schedule = Schedule(every=3.0, retry_min=0.5)
    waits = []
    now = 0.0
    for _ in range(5):
        schedule.failed(now)
        step = 0.0
        while not schedule.due(now + step):
            step += 0.25
        waits.append(step)
        now += step
    assert waits == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_a_success_after_failures_starts_the_backoff_over() -> None:
    schedule = Schedule(every=10.0, retry_min=0.5)
    for now in (0.0, 1.0, 2.0):
        schedule.failed(now)
    schedule.succeeded(5.0)
    schedule.failed(15.0)
    assert schedule.due(15.5)


def test_a_send_error_brings_the_next_lookup_forward_but_not_too_often() -> None:
    schedule = Schedule(every=30.0)
    schedule.succeeded(100.0)
    schedule.hurry(100.2, gap=1.0)
    assert not schedule.due(100.9)
    assert schedule.due(101.0)
    schedule.hurry(140.0, gap=1.0)  # long after the last lookup: at once
    assert schedule.due(140.0)


def test_the_retry_never_waits_longer_than_a_short_period() -> None:
    schedule = Schedule(every=0.05, retry_min=0.5)
    schedule.failed(0.0)
    assert schedule.due(0.05)


@pytest.mark.parametrize(
    ("port", "protocol", "expected"),
    [
        ("514", "udp", 514),
        ("5140", "tcp", 5140),
        ("syslog", "udp", 514),
        # /etc/services has syslog for udp only; tcp falls back to that number.
        ("syslog", "tcp", 514),
    ],
)
def test_forward_port_is_a_number_or_a_service_name(
    port: str, protocol: str, expected: int
) -> None:
    assert port_number(port, protocol) == expected


def test_an_unknown_service_name_is_an_error() -> None:
    with pytest.raises(ValueError, match="neither a port number nor a service name"):
        port_number("no-such-service-here", "udp")


def test_addresses_and_names_print_ipv6_in_brackets() -> None:
    assert str(V4) == "192.0.2.1:514"
    assert str(V6) == "[2001:db8::1]:514"
    assert host_port("::1", "514") == "[::1]:514"
    assert host_port("syslog.example", "syslog") == "syslog.example:syslog"


def test_an_error_is_described_by_its_errno_name_and_text() -> None:
    refused = ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
    assert describe_error(refused) == "ECONNREFUSED (Connection refused)"
    unknown = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    assert describe_error(unknown) == "Name or service not known"


class FakeDns:
    """An injected lookup: answers from a list that the test changes."""

    def __init__(self, *answer: Address) -> None:
        self.answer: list[Address] | OSError = list(answer)
        self.calls = 0

    def __call__(self) -> list[Address]:
        self.calls += 1
        if isinstance(self.answer, OSError):
            raise self.answer
        return list(self.answer)


def settle(target: Target, dns: FakeDns, calls: int) -> None:
    """Service target until dns has answered `calls` lookups, all taken in."""

    def done() -> bool:
        target.service(time.monotonic())
        return dns.calls >= calls and not target._background.busy

    wait_for(done, 5.0, f"{calls} lookups")


def test_a_changed_answer_replaces_the_addresses_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dns = FakeDns(V4)
    target = Target("syslog.test:514", dns, every=0.01)
    settle(target, dns, 1)
    assert target.addresses == [V4]
    dns.answer = [V4B, V6]
    wait_for(lambda: target.service(time.monotonic()), 5.0, "a changed answer")
    assert target.addresses == [V4B, V6]
    assert "now resolves to 192.0.2.2:514, [2001:db8::1]:514 (was 192.0.2.1:514)" in (
        caplog.text
    )


def test_a_failed_lookup_keeps_the_previous_answer_in_use(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    dns = FakeDns(V4)
    target = Target("syslog.test:514", dns, every=0.01)
    settle(target, dns, 1)
    dns.answer = socket.gaierror(socket.EAI_AGAIN, "Temporary failure")
    settle(target, dns, dns.calls + 1)
    assert target.addresses == [V4]
    assert "Temporary failure; using 192.0.2.1:514" in caplog.text


def test_a_name_that_starts_resolving_later_is_picked_up_without_a_restart() -> None:
    dns = FakeDns()
    dns.answer = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    target = Target("later.test:514", dns, every=0.05)
    settle(target, dns, 1)
    assert target.addresses == []
    assert target.error == "Name or service not known"
    dns.answer = [V4]
    wait_for(lambda: target.service(time.monotonic()), 5.0, "the first answer")
    assert target.addresses == [V4]


def test_an_unexpected_exception_in_a_lookup_is_raised_in_the_loop() -> None:
    def broken() -> list[Address]:
        raise RuntimeError("bug")

    target = Target("x:1", broken, every=1.0)
    target.service(time.monotonic())
    with pytest.raises(RuntimeError, match="bug"):
        wait_for(lambda: target.service(time.monotonic(), wait=0.05), 5.0, "raise")
