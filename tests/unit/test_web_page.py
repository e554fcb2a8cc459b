"""The status page's pieces: the last hour from growing counters, the HTML.
Pure: no sockets, no processes."""

from __future__ import annotations

from alertik.common.schema import Alert, Delivery
from alertik.web import page, workbench
from alertik.web.history import MINUTES, Hourly
from alertik.web.recent import Recent

M = 29_000_000  # a minute number (Unix time // 60)


def test_the_first_totals_of_a_process_we_found_running_are_only_a_baseline() -> None:
    hourly = Hourly()
    hourly.observe(M, {"a": 500}, epoch=1, fresh=False)
    hourly.observe(M, {"a": 503, "b": 2}, epoch=1, fresh=False)
    hourly.observe(M + 1, {"a": 510, "b": 2}, epoch=1, fresh=False)
    assert hourly.last_hour("a", M + 1)[-2:] == [3, 7]
    assert sum(hourly.last_hour("b", M + 1)) == 2


def test_a_process_that_started_after_us_counts_from_zero() -> None:
    hourly = Hourly()
    hourly.observe(M, {"a": 4}, epoch=1, fresh=True)
    assert sum(hourly.last_hour("a", M)) == 4


def test_a_restart_counts_the_new_process_from_zero() -> None:
    hourly = Hourly()
    hourly.observe(M, {"a": 100}, epoch=1, fresh=False)
    hourly.observe(M, {"a": 110}, epoch=1, fresh=False)
    hourly.observe(M, {"a": 3}, epoch=2, fresh=True)  # a new pid
    hourly.observe(M, {"a": 1}, epoch=2, fresh=True)  # went down: same pid again
    assert sum(hourly.last_hour("a", M)) == 10 + 3 + 1


def test_minutes_older_than_an_hour_fall_out() -> None:
    hourly = Hourly()
    hourly.observe(M, {"a": 0}, epoch=1, fresh=True)
    hourly.observe(M, {"a": 5}, epoch=1, fresh=True)
    hourly.observe(M + 30, {"a": 7}, epoch=1, fresh=True)
    assert sum(hourly.last_hour("a", M + MINUTES - 1)) == 7
    assert sum(hourly.last_hour("a", M + MINUTES)) == 2
    assert len(hourly.last_hour("a", M + 200)) == MINUTES


def test_the_chart_states_its_total_and_draws_a_bar_per_busy_minute() -> None:
    svg = page.chart([0.0] * 57 + [2.0, 0.0, 6.0], "messages from r")
    assert 'aria-label="messages from r: 8 in the last hour, at most 6 a minute"' in svg
    assert svg.count("<rect") == 2


def test_everything_from_the_network_is_escaped() -> None:
    hostile = "<script>alert(1)</script>"
    recent = Recent()
    recent.alert(
        Alert(
            id="x",
            notifier="Generic1",
            text=hostile,
            rule="EVENT0",
            received=0.0,
            sender='"><img src=x>',
            node="n",
        )
    )
    recent.delivery(
        Delivery(id="x", notifier="Generic1", outcome="delivered", attempts=1)
    )
    html = page.status_page(
        page.View(
            node="<b>",
            version="0",
            now=0.0,
            routers=[
                page.RouterRow(
                    name=hostile,
                    messages=[1.0] * 60,
                    alerts=[0.0] * 60,
                    last=None,
                    silent=False,
                )
            ],
            alerts=recent.newest_first(),
        )
    )
    assert "<script>" not in html and "<img" not in html and "<b>" not in html
    assert "&lt;script&gt;" in html
    assert 'class="state delivered"' in html
    bench = page.workbench_page(
        text=hostile,
        result={
            "rules": ["EVENT0"],
            "lines": [
                {
                    "line": hostile,
                    "matches": [
                        {
                            "rule": "EVENT0",
                            "file": False,
                            "destinations": ["Generic1"],
                            "captures": [hostile, None],
                            "text": hostile,
                            "deliveries": [
                                {
                                    "destination": "Generic1",
                                    "text": hostile,
                                    "how": "http",
                                    "messages": [hostile],
                                }
                            ],
                        }
                    ],
                    "missed": [],
                }
            ],
        },
    )
    assert "<script>" not in bench
    assert "@2 = <em>unset</em>" in bench


def test_the_workbench_refuses_empty_huge_and_odd_input() -> None:
    for text in ("", "  \n \n"):
        try:
            workbench.lines_of(text)
        except workbench.Refused:
            continue
        raise AssertionError(repr(text))
    try:
        workbench.lines_of("x\n" * (workbench.MAX_LINES + 1))
    except workbench.Refused as exc:
        assert "at most" in str(exc)
    else:
        raise AssertionError("too many lines were taken")
    assert workbench.lines_of("a\r\n\r\nb\n") == ["a", "b"]
    assert workbench.check_sender(" 192.0.2.7 ") == "192.0.2.7"
    try:
        workbench.check_sender("192.0.2.7; rm -rf /")
    except workbench.Refused:
        pass
    else:
        raise AssertionError("a sender that is not an address was taken")
