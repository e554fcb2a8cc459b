"""``ALERTIK_METRICS_ADDR``: one /metrics for the whole pipeline, end to end."""

from __future__ import annotations

import base64
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import (
    Proc,
    Reply,
    WebhookServer,
    base_env,
    events_env,
    send_from,
    udp_port_of,
    wait_for,
)

pytestmark = pytest.mark.e2e

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str, headers: dict[str, str] | None = None) -> Samples:
    """Every sample at url, parsed by prometheus_client's own parser."""
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=5) as answer:
        text = answer.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of name's samples whose labels include labels."""
    return sum(
        value
        for (found, have), value in samples.items()
        if found == name and set(labels.items()) <= set(have)
    )


def metrics_url(proc: Proc) -> str:
    line = proc.wait_line("web listening on ")
    match = re.search(r"(http://\S+/metrics)", line)
    assert match, line
    return match.group(1)


LOGIN = b"system,error,critical login failure for user admin from 10.0.0.9 via ssh"
LINK = b"<30>Oct  2 17:36:35 MikroTik interface,info ether1 link up"
CHANGE = b"system,info config changed by admin"


def test_metrics_count_what_was_sent_archived_matched_and_delivered(
    tmp_path: Path,
    spawn: Callable[..., Proc],
    make_webhook: Callable[[], WebhookServer],
) -> None:
    """1. `alertik run` with /metrics on an ephemeral port, two rules, one
    webhook that fails once then takes everything, one that refuses all;
    2. two routers send 11 messages in two formats, 7 of them matching;
    3. scrape /metrics until notify is done.
    Result: per router and transport, per format, per rule and per
    destination the counters are exactly what happened; the archive holds as
    many lines as it says; nothing waits in the outbox; every stage is up and
    was never restarted."""
    good, bad = make_webhook(), make_webhook()
    good.replies = [Reply(status=503), Reply()]
    bad.replies = [Reply(status=400, body=b'{"error": "no"}')]
    env = base_env(
        tmp_path,
        ALERTIK_METRICS_ADDR="127.0.0.1:0",
        GENERIC1_WEBHOOK_URL=f"{good.url}/hook",
        GENERIC2_WEBHOOK_URL=f"{bad.url}/hook",
        **events_env(
            ("Generic1", "regex", r"login failure for user (\w+)", "login: @1"),
            ("Generic2", "substr", "config changed", "changed"),
        ),
    )
    run = spawn("run", env=env)
    port = udp_port_of(run)
    url = metrics_url(run)
    for stage in ("notify", "matcher", "ingest", "web"):
        run.wait_line(f"success: {stage} entered RUNNING state")
    send_from("127.0.0.1", port, *[LOGIN] * 5, *[LINK] * 3)
    send_from("127.0.0.2", port, CHANGE, CHANGE, LINK)

    good.wait(6)  # five alerts, one of them twice (503, then 200)
    bad.wait(2)

    def settled() -> Samples | None:
        samples = scrape(url)
        done = (
            total(samples, "alertik_alerts_delivered_total") == 5
            and total(samples, "alertik_alerts_failed_total") == 2
            and total(samples, "alertik_messages_received_total") == 11
            and total(samples, "alertik_lines_archived_total") == 11 + 7
        )
        return samples if done else None

    m = wait_for(settled, 15, "the counters of the whole run")
    received = "alertik_messages_received_total"
    assert total(m, received, router="127.0.0.1", transport="udp") == 8
    assert total(m, received, router="127.0.0.2", transport="udp") == 3
    assert total(m, received, transport="tcp") == 0
    assert total(m, "alertik_messages_matched_total", format="default") == 7
    assert total(m, "alertik_messages_matched_total", format="rfc3164") == 4
    assert total(m, "alertik_lines_archived_total", kind="message") == 11
    assert total(m, "alertik_lines_archived_total", kind="note") == 7
    archive = (tmp_path / "log.txt").read_text().splitlines()
    assert len(archive) == total(m, "alertik_lines_archived_total")
    assert total(m, "alertik_lines_lost_total") == 0
    assert total(m, "alertik_rule_matches_total", rule="EVENT0") == 5
    assert total(m, "alertik_rule_matches_total", rule="EVENT1") == 2
    assert total(m, "alertik_router_alerts_total", router="127.0.0.1") == 5
    assert total(m, "alertik_router_alerts_total", router="127.0.0.2") == 2
    assert total(m, "alertik_alerts_raised_total", destination="Generic1") == 5
    assert total(m, "alertik_alerts_accepted_total", destination="Generic2") == 2
    assert total(m, "alertik_alerts_delivered_total", destination="Generic1") == 5
    assert total(m, "alertik_alerts_retried_total", destination="Generic1") == 1
    assert total(m, "alertik_alerts_failed_total", destination="Generic2") == 2
    assert total(m, "alertik_alerts_discarded_total") == 0
    assert total(m, "alertik_outbox_pending") == 0
    assert total(m, "alertik_outbox_oldest_age_seconds") == 0
    assert total(m, "alertik_messages_refused_total") == 0
    assert total(m, "alertik_messages_dropped_total") == 0
    assert total(m, "alertik_malformed_messages_total") == 0
    state = "alertik_destination_state"
    assert total(m, state, destination="Generic1", state="ok") == 1
    for stage in ("ingest", "matcher", "notify", "web"):
        assert total(m, "alertik_stage_up", stage=stage) == 1, stage
        assert total(m, "alertik_stage_restarts_total", stage=stage) == 0, stage
    assert any(name == "alertik_build_info" for name, _ in m)
    assert run.terminate() == 0


def test_metrics_away_from_loopback_need_the_password(
    tmp_path: Path, spawn: Callable[..., Proc]
) -> None:
    """1. `alertik run` with /metrics on 0.0.0.0 and no password: refused at
    start, naming ALERTIK_WEB_PASSWORD;
    2. with a password: a scrape without it gets 401, with it (bearer or
    basic) the metrics.
    Result: nobody reads the metrics without the password; it is never
    printed."""
    env = base_env(tmp_path, ALERTIK_METRICS_ADDR="0.0.0.0:0")
    refused = spawn("check", env=env)
    assert refused.popen.wait(30) == 2
    assert "ALERTIK_WEB_PASSWORD" in refused.output
    secret = "correct horse battery staple"
    env["ALERTIK_WEB_PASSWORD"] = secret
    run = spawn("run", env=env)
    url = metrics_url(run).replace("0.0.0.0", "127.0.0.1")
    run.wait_line("success: web entered RUNNING state")
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        with pytest.raises(urllib.error.HTTPError) as err:
            scrape(url, headers)
        err.value.close()
        assert err.value.code == 401
    samples = wait_for(
        lambda: scrape(url, {"Authorization": f"Bearer {secret}"}),
        10,
        "metrics with the token",
    )
    assert any(name == "alertik_stage_up" for name, _ in samples)

    basic = base64.b64encode(f"prometheus:{secret}".encode()).decode()
    assert scrape(url, {"Authorization": f"Basic {basic}"})
    assert run.terminate() == 0
    assert secret not in run.output


def test_routers_past_the_bound_share_one_label_and_still_count(
    tmp_path: Path, spawn: Callable[..., Proc]
) -> None:
    """1. `alertik run` with /metrics;
    2. 230 loopback addresses send one line each, the first 10 twice.
    Result: 200 routers have a label of their own, the rest count as
    "other", and every message is counted."""
    env = base_env(tmp_path, ALERTIK_METRICS_ADDR="127.0.0.1:0")
    run = spawn("run", env=env)
    port = udp_port_of(run)
    url = metrics_url(run)
    run.wait_line("success: web entered RUNNING state")
    sources = [f"127.0.{i // 250 + 1}.{i % 250 + 1}" for i in range(230)]
    for source in sources[:10]:
        send_from(source, port, LINK)
    for source in sources:
        send_from(source, port, LINK)
    received = "alertik_messages_received_total"
    seen = "alertik_router_last_message_seconds"

    def routers_of(samples: Samples, name: str) -> set[str]:
        return {dict(labels)["router"] for n, labels in samples if n == name}

    # ingest counts what it received, the matcher when it last heard each
    # router: their heartbeats reach /metrics independently, so wait for both.
    def counted() -> Samples | None:
        samples = scrape(url)
        if total(samples, received) != 240 or len(routers_of(samples, seen)) < 201:
            return None
        return samples

    m = wait_for(counted, 15, "240 messages counted by ingest and matcher")
    routers = routers_of(m, received)
    assert len(routers) == 201 and "other" in routers
    assert total(m, received, router="other") == 30
    assert total(m, received, router=sources[0]) == 2
    assert routers_of(m, seen) == routers
    assert run.terminate() == 0
