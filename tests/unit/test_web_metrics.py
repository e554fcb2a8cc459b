"""Metrics: bounded labels, the keeper's answer as Prometheus text, the checks
on every request. Pure: no sockets."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from alertik.common import metrics
from alertik.common.config import ConfigError, load
from alertik.common.converters import HostPort, Invalid
from alertik.web import collect
from alertik.web.server import authorized, is_loopback_host


def test_router_labels_past_the_bound_are_counted_as_other() -> None:
    bounded = metrics.Bounded(cap=3)
    labels = [bounded.label(f"192.0.2.{i}") for i in range(10)]
    assert labels[:3] == ["192.0.2.0", "192.0.2.1", "192.0.2.2"]
    assert labels[3:] == [metrics.OTHER] * 7
    assert bounded.label("192.0.2.1") == "192.0.2.1"  # known ones keep theirs


def test_every_metric_follows_prometheus_naming() -> None:
    names = [m.name for m in metrics.TABLE]
    assert len(names) == len(set(names))
    for m in metrics.TABLE:
        assert re.fullmatch(r"alertik_[a-z_]+", m.name), m.name
        assert m.name.endswith("_total") == (m.kind == "counter"), m.name
        assert m.help and not m.help[0].isupper(), m.name


def test_docs_list_every_metric() -> None:
    from tests.support import REPO

    text = (REPO / "docs" / "OBSERVABILITY.md").read_text()
    listed = set(re.findall(r"^\| `(alertik_[a-z_]+)` \|", text, re.M))
    assert listed == {m.name for m in metrics.TABLE} | {"alertik_build_info"}


def answer(**stages: dict[str, Any]) -> dict[str, Any]:
    return {
        "stages": {
            name: {"age": 0.4, "pid": 100 + i, "status": {"pid": 100 + i, **s}}
            for i, (name, s) in enumerate(stages.items())
        },
        "expected": ["ingest", "matcher", "notify"],
        "failure": "",
        "spawns": {"ingest": 3, "matcher": 1, "notify": 1},
    }


def exposed(data: dict[str, Any]) -> dict[tuple[str, tuple[Any, ...]], float]:
    class Fixed:
        def collect(self) -> Any:
            return collect.families(json.loads(json.dumps(data)))

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Fixed())
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_heartbeat_rows_become_labelled_samples_and_bad_rows_are_skipped() -> None:
    data = answer(
        ingest={
            "metrics": {
                "alertik_messages_received_total": [
                    ["192.0.2.1", "udp", 7],
                    ["192.0.2.2", "tcp", 2],
                    ["192.0.2.3", 5],  # too short: another version's shape
                    ["192.0.2.4", "udp", "many"],  # not a number
                ],
                "alertik_messages_refused_total": [[4]],
            }
        },
        matcher={"metrics": {"alertik_malformed_messages_total": [["matcher", 1]]}},
        notify={"metrics": {"alertik_malformed_messages_total": [["notify", 2]]}},
    )
    m = exposed(data)
    received = "alertik_messages_received_total"
    assert m[(received, (("router", "192.0.2.1"), ("transport", "udp")))] == 7
    assert m[(received, (("router", "192.0.2.2"), ("transport", "tcp")))] == 2
    assert sum(v for (n, _), v in m.items() if n == received) == 9
    assert m[("alertik_messages_refused_total", ())] == 4
    malformed = "alertik_malformed_messages_total"
    assert m[(malformed, (("stage", "matcher"),))] == 1
    assert m[(malformed, (("stage", "notify"),))] == 2


def test_the_keeper_view_gives_up_restarts_and_heartbeat_age() -> None:
    data = answer(ingest={}, matcher={})
    data["stages"]["matcher"]["age"] = 9.0  # frozen
    m = exposed(data)
    assert m[("alertik_stage_up", (("stage", "ingest"),))] == 1
    assert m[("alertik_stage_up", (("stage", "matcher"),))] == 0
    assert m[("alertik_stage_up", (("stage", "notify"),))] == 0  # never seen
    assert m[("alertik_stage_restarts_total", (("stage", "ingest"),))] == 2
    assert m[("alertik_stage_restarts_total", (("stage", "notify"),))] == 0
    assert m[("alertik_stage_heartbeat_age_seconds", (("stage", "matcher"),))] == 9
    assert [k for k in m if k[0] == "alertik_build_info"]


def test_listen_addresses_are_address_and_port_or_off() -> None:
    convert = HostPort()
    assert convert("127.0.0.1:9140") == ("127.0.0.1", 9140)
    assert convert("[::1]:0") == ("::1", 0)
    assert convert("localhost:9140") == ("127.0.0.1", 9140)
    assert convert("off") is None
    for bad in ("9140", "example.com:9140", "127.0.0.1:", "127.0.0.1:70000"):
        try:
            convert(bad)
        except Invalid:
            continue
        raise AssertionError(f"{bad!r} was taken")


def test_a_metrics_address_away_from_loopback_needs_a_password() -> None:
    env = {"ALERTIK_METRICS_ADDR": "0.0.0.0:9140", "ALERTIK_RUN_DIR": "/tmp/x"}
    try:
        load(env)
    except ConfigError as exc:
        assert exc.variable == "ALERTIK_WEB_PASSWORD"
    else:
        raise AssertionError("0.0.0.0 without a password was taken")
    cfg = load({**env, "ALERTIK_WEB_PASSWORD": "s3cret"})
    assert "web" in cfg.stages
    assert "web" not in load({"ALERTIK_RUN_DIR": "/tmp/x"}).stages


def test_the_password_is_taken_as_bearer_or_basic_with_any_user() -> None:
    basic = base64.b64encode(b"anyone:s3cret").decode()
    assert authorized("Bearer s3cret", "s3cret")
    assert authorized(f"Basic {basic}", "s3cret")
    assert not authorized("Bearer s3cre", "s3cret")
    assert not authorized("Basic !!!", "s3cret")
    assert not authorized("", "s3cret")


def test_only_loopback_host_names_are_answered_without_a_password() -> None:
    for host in ("127.0.0.1:9140", "localhost:9140", "[::1]:9140", "LOCALHOST"):
        assert is_loopback_host(host), host
    for host in ("attacker.example:9140", "192.0.2.1", "", "[::2]:1"):
        assert not is_loopback_host(host), host
