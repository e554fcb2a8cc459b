"""Silence alerts: one "silent" and one "back" per silence, for routers and
for the pipeline as a whole. Pure: times are arguments."""

from __future__ import annotations

from pathlib import Path

from alertik.common.metrics import OTHER
from alertik.matcher.silence import Notice, Silence, span

T0 = 1_700_000_000.0


class Feed:
    """Messages and checks as the matcher stage makes them."""

    def __init__(self, after: float = 60.0, **windows: float | None) -> None:
        self.last: dict[str, float] = {}
        self.silence = Silence(after, self.last, T0, windows or None)
        self.said: list[Notice] = []

    def send(self, router: str, at: float) -> None:
        if self.silence.watching(router):
            self.said += self.silence.heard(router, T0 + at, self.last.get(router))
        self.last[router] = T0 + at

    def check(self, at: float) -> None:
        self.said += self.silence.check(T0 + at)

    def kinds(self) -> list[tuple[str, str]]:
        return [(n.kind, n.router) for n in self.said]


def test_a_router_that_goes_quiet_is_reported_once_and_once_back() -> None:
    feed = Feed()
    for at in range(0, 50, 5):
        feed.send("192.0.2.1", at)
        feed.send("192.0.2.2", at)
        feed.check(at)
    for at in range(50, 200):  # .2 keeps sending, .1 stops after 45 s
        feed.send("192.0.2.2", at)
        feed.check(at)
    assert feed.kinds() == [("silent", "192.0.2.1")]
    assert "192.0.2.1 for 1m" in feed.said[0].text
    feed.send("192.0.2.1", 200)
    feed.check(201)
    assert feed.kinds() == [("silent", "192.0.2.1"), ("back", "192.0.2.1")]
    assert "sending again after 2m" in feed.said[1].text


def test_when_everything_goes_quiet_one_alert_names_the_routers() -> None:
    feed = Feed()
    feed.send("192.0.2.1", 0)
    feed.send("192.0.2.2", 1)
    for at in range(2, 300):
        feed.check(at)
    assert feed.kinds() == [("silent", "")]
    assert "192.0.2.1, 192.0.2.2" in feed.said[0].text
    feed.send("192.0.2.2", 300)
    assert feed.kinds() == [("silent", ""), ("back", "")]
    assert "first from 192.0.2.2" in feed.said[1].text
    # .1 is still quiet while .2 sends: now it gets its own alert, and later
    # its own "back".
    feed.check(301)
    assert feed.kinds()[2:] == [("silent", "192.0.2.1")]
    feed.send("192.0.2.2", 302)
    feed.check(302)
    feed.send("192.0.2.1", 303)
    assert feed.kinds()[3:] == [("back", "192.0.2.1")]


def test_routers_that_come_back_together_after_a_pipeline_silence_say_so_once() -> None:
    feed = Feed()
    feed.send("192.0.2.1", 0)
    feed.send("192.0.2.2", 0)
    for at in range(1, 100):
        feed.check(at)
    feed.send("192.0.2.1", 100)
    feed.send("192.0.2.2", 100.5)
    for at in range(101, 130):
        feed.send("192.0.2.1", at)
        feed.send("192.0.2.2", at)
        feed.check(at)
    assert feed.kinds() == [("silent", ""), ("back", "")]


def test_nothing_at_all_since_start_up_is_reported() -> None:
    feed = Feed(after=900)
    for at in range(0, 2000, 10):
        feed.check(at)
    assert feed.kinds() == [("silent", "")]
    assert "nothing received in the 15m since start-up" in feed.said[0].text


def test_a_router_with_its_own_window_or_none_is_judged_by_it() -> None:
    feed = Feed(after=600, **{"192.0.2.1": 60.0, "192.0.2.9": None})
    for router in ("192.0.2.1", "192.0.2.2", "192.0.2.9"):
        feed.send(router, 0)
    for at in range(1, 500):
        feed.send("192.0.2.3", at)  # keeps the pipeline alive
        feed.check(at)
    assert feed.kinds() == [("silent", "192.0.2.1")]
    for at in range(500, 1000):
        feed.send("192.0.2.3", at)
        feed.check(at)
    assert feed.kinds() == [("silent", "192.0.2.1"), ("silent", "192.0.2.2")]


def test_routers_past_the_label_bound_count_only_for_the_pipeline() -> None:
    feed = Feed()
    feed.send(OTHER, 0)
    feed.send("192.0.2.1", 0)
    for at in range(1, 120):
        feed.send("192.0.2.1", at)
        feed.check(at)
    assert feed.kinds() == []


def test_spans_read_as_people_write_them() -> None:
    assert span(45) == "45s"
    assert span(900) == "15m"
    assert span(3600 + 300) == "1h 5m"
    assert span(86400) == "1d"


def test_without_a_global_window_only_the_routers_given_one_are_watched() -> None:
    feed = Feed(after=None, **{"192.0.2.1": 60.0})  # type: ignore[arg-type]
    feed.send("192.0.2.1", 0)
    feed.send("192.0.2.2", 0)
    for at in range(1, 1000, 5):
        feed.check(at)
    assert feed.kinds() == [("silent", "192.0.2.1")]


def test_the_rules_file_sets_a_routers_window_and_destinations(tmp_path: Path) -> None:
    from alertik.common.config import ConfigError, load

    rules = tmp_path / "rules.toml"
    rules.write_text(
        '[routers."192.0.2.1"]\nsilence_after = "1h30m"\n'
        'silence_notify = ["Generic2"]\n\n'
        '[routers."192.0.2.9"]\nsilence_after = "off"\n'
    )
    env = {
        "ALERTIK_RUN_DIR": str(tmp_path / "run"),
        "ALERTIK_RULES_FILE": str(rules),
        "ALERTIK_SILENCE_AFTER": "15m",
        "ALERTIK_SILENCE_NOTIFY": "Generic1",
        "GENERIC1_WEBHOOK_URL": "http://127.0.0.1:9/a",
        "GENERIC2_WEBHOOK_URL": "http://127.0.0.1:9/b",
    }
    cfg = load(env)
    assert cfg.rules_file is not None
    routers = {r.address: r for r in cfg.rules_file.routers}
    assert routers["192.0.2.1"].silence_after == 5400
    assert routers["192.0.2.1"].silence_notify == ("Generic2",)
    assert routers["192.0.2.9"].silence_after == 0
    assert {d.name for d in cfg.notify.destinations} == {"Generic1", "Generic2"}
    for bad, words in (
        ('[routers."core"]\nsilence_after = "1h"\n', "is not an IP address"),
        ('[routers."192.0.2.1"]\nsilence = "1h"\n', "is not a router setting"),
        ('[routers."192.0.2.1"]\nsilence_after = "soon"\n', "is not a time span"),
        ('[routers."192.0.2.1"]\nsilence_notify = ["Nobody"]\n', "not a destination"),
    ):
        rules.write_text(bad)
        try:
            load(env)
        except ConfigError as exc:
            assert exc.variable == "ALERTIK_RULES_FILE" and words in str(exc), exc
        else:
            raise AssertionError(f"{bad!r} was taken")
