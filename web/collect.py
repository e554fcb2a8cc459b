"""From the keeper's answer to Prometheus metric families: pure.

The keeper (``alertik run``) holds each local stage's last heartbeat; each
heartbeat carries the stage's metrics as rows (``common/metrics.py``). Here
they become prometheus_client families, one per name of the table, with the
rows of every stage that reported it (the malformed count comes from several
stages, told apart by their ``stage`` label). Rows whose shape does not fit
the table (a stage of another version) are skipped, never guessed at.
"""

from __future__ import annotations

import platform
from collections.abc import Iterator
from importlib import metadata
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric as Family,
)

from alertik.common import status
from alertik.common.metrics import TABLE, Metric


def _family(metric: Metric) -> CounterMetricFamily | GaugeMetricFamily:
    if metric.kind == "counter":
        return CounterMetricFamily(metric.name, metric.help, labels=metric.labels)
    return GaugeMetricFamily(metric.name, metric.help, labels=metric.labels)


def families(answer: dict[str, Any]) -> Iterator[Family]:
    """Every metric the answer holds, then the keeper's own and build info."""
    stages: dict[str, Any] = answer.get("stages", {})
    for metric in TABLE:
        if metric.stage == "keeper":
            continue
        family = _family(metric)
        width = len(metric.labels) + 1
        for seen in stages.values():
            reported = (seen.get("status") or {}).get("metrics") or {}
            for row in reported.get(metric.name, ()):
                if not isinstance(row, list) or len(row) != width:
                    continue
                *labels, value = row
                if isinstance(value, int | float) and all(
                    isinstance(label, str) for label in labels
                ):
                    family.add_metric(labels, value)
        yield family
    yield from keeper_families(answer)


def keeper_families(answer: dict[str, Any]) -> Iterator[Family]:
    """What the keeper knows of each stage: running, restarts, last heartbeat."""
    stages: dict[str, Any] = answer.get("stages", {})
    spawns: dict[str, int] = answer.get("spawns", {})
    up = _family(_by_name("alertik_stage_up"))
    restarts = _family(_by_name("alertik_stage_restarts_total"))
    age = _family(_by_name("alertik_stage_heartbeat_age_seconds"))
    names = sorted(set(answer.get("expected", ())) | set(stages) | set(spawns))
    for name in names:
        seen = stages.get(name)
        alive = (
            seen is not None
            and seen.get("pid") is not None
            and seen.get("age", status.STALE_SECONDS + 1) <= status.STALE_SECONDS
        )
        up.add_metric([name], 1 if alive else 0)
        restarts.add_metric([name], max(0, spawns.get(name, 0) - 1))
        if seen is not None:
            age.add_metric([name], round(float(seen.get("age", 0.0)), 3))
    yield up
    yield restarts
    yield age
    info = GaugeMetricFamily(
        "alertik_build_info",
        "alertik's version and Python's; always 1",
        labels=("version", "python"),
    )
    info.add_metric([_version(), platform.python_version()], 1)
    yield info


def _by_name(name: str) -> Metric:
    return next(m for m in TABLE if m.name == name)


def _version() -> str:
    try:
        return metadata.version("alertik")
    except metadata.PackageNotFoundError:
        return "unknown"
