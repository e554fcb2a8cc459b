"""Silence: notice when routers, or all of them, stop sending. Pure: the clock
is an argument.

A notifier that stops receiving looks like a quiet network, so the matcher,
which sees every message, watches for silence (``ALERTIK_SILENCE_AFTER``):

* a **router** that was sending and then says nothing for the window gets
  one "silent" alert; its next message gets one "back" alert;
* the **pipeline**: when no router at all has sent anything for the window
  (counted from start-up too, so a listener that never hears anything is
  reported), one "silent" alert names the routers that went quiet together,
  instead of one alert each, and one "back" alert follows the first message.
  A router is therefore reported on its own only once some other router has
  been heard after its window ran out: until then nobody can tell its
  silence from everyone's.
  Routers that are still quiet once others send again then get their own
  "silent" alert (and later their "back" alert), so each router's silence
  is said once, one way or the other.

A router heard once is watched from then on; after a restart of the matcher
a router counts as sending once it is heard from again. Routers past the
label bound (``common/metrics.py``'s OTHER) are not watched one by one, but
count for the pipeline.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Literal

import msgspec

from alertik.common.metrics import OTHER
from alertik.common.rulesfile import RouterSettings

Kind = Literal["silent", "back"]


class Notice(msgspec.Struct, frozen=True, kw_only=True):
    """One silence alert to send: about a router, or the pipeline (router "")."""

    kind: Kind
    router: str
    text: str  # without the time suffix


def span(seconds: float) -> str:
    """``15m``, ``1h 5m``, ``45s``: a span as the alert texts say it."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else ""]
    parts.append(f"{minutes}m" if minutes or not (days or hours) else "")
    return " ".join(p for p in parts if p)


def _clock(when: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))


class Silence:
    """Which routers are silent; what to say when that changes.

    ``last`` is the matcher's own map of router -> last message (wall clock);
    ``after`` the window for the pipeline and every router unless ``windows``
    gives a router its own (None: that router is not watched; ``after`` None:
    only the routers ``windows`` names are watched, and not the pipeline).
    """

    def __init__(
        self,
        after: float | None,
        last: dict[str, float],
        started: float,
        windows: dict[str, float | None] | None = None,
    ) -> None:
        self.after = after
        self.last = last
        self.started = started
        self.windows = windows or {}
        self.pipeline_silent = False
        self.pipeline_since = 0.0  # last message of any router when it went quiet
        # Routers not sending: "reported" (they had their own alert) or
        # "covered" (the pipeline's alert named them).
        self.quiet: dict[str, str] = {}

    def window(self, router: str) -> float | None:
        return self.windows.get(router, self.after)

    def watching(self, router: str) -> bool:
        """Whether a message from router may change anything (the fast check)."""
        return self.pipeline_silent or router in self.quiet

    def heard(self, router: str, now: float, before: float | None) -> list[Notice]:
        """A message from router, whose previous one was at before."""
        notices = []
        if self.pipeline_silent:
            self.pipeline_silent = False
            gap = now - self.pipeline_since
            notices.append(
                Notice(
                    kind="back",
                    router="",
                    text=f"alertik: receiving again after {span(gap)} of silence "
                    f"(first from {router})",
                )
            )
            # Those the pipeline's alert named are watched one by one again:
            # the next check reports those still quiet.
            for name, how in list(self.quiet.items()):
                if how == "covered":
                    del self.quiet[name]
        how = self.quiet.pop(router, "")
        if how == "reported" and before is not None:
            notices.append(
                Notice(
                    kind="back",
                    router=router,
                    text=f"alertik: {router} is sending again after "
                    f"{span(now - before)} of silence",
                )
            )
        return notices

    def check(self, now: float) -> list[Notice]:
        """Routers (or the pipeline) that went quiet since the last check."""
        notices = []
        latest = max(self.last.values(), default=self.started)
        after = self.after
        if after is not None and not self.pipeline_silent and now - latest >= after:
            self.pipeline_silent = True
            self.pipeline_since = latest
            named = []
            for router in self.last:
                window = self.window(router)
                if router == OTHER or router in self.quiet or window is None:
                    continue
                self.quiet[router] = "covered"
                named.append(router)
            if self.last:
                quiet = f" (last from {', '.join(sorted(named)) or 'any router'} "
                quiet += f"at {_clock(latest)})"
                what = f"no router has sent anything for {span(after)}"
            else:
                quiet = ""
                what = f"nothing received in the {span(after)} since start-up"
            notices.append(
                Notice(kind="silent", router="", text=f"alertik: {what}{quiet}")
            )
            return notices
        for router, when in self.last.items():
            if router == OTHER or router in self.quiet:
                continue
            window = self.window(router)
            if window is None or now - when < window:
                continue
            if after is not None and latest < when + window:
                # Nobody has been heard since this router's window ran out:
                # either it alone went quiet (someone else is heard soon) or
                # everything did (the pipeline's alert, soon, names it).
                continue
            if self.pipeline_silent:
                self.quiet[router] = "covered"
                continue
            self.quiet[router] = "reported"
            notices.append(
                Notice(
                    kind="silent",
                    router=router,
                    text=f"alertik: no messages from {router} for "
                    f"{span(window)} (last at {_clock(when)})",
                )
            )
        return notices


def configure(
    silence: Silence | None,
    after: float | None,
    routers: Iterable[RouterSettings],
    last: dict[str, float],
    now: float,
) -> tuple[Silence | None, dict[str, tuple[str, ...]]]:
    """What ALERTIK_SILENCE_AFTER (after) and the rules file's
    [routers."ADDRESS"] tables ask for: the Silence to keep (silence, updated,
    when there is one; None when nothing is watched) and each router's own
    silence_notify."""
    windows: dict[str, float | None] = {}
    notify: dict[str, tuple[str, ...]] = {}
    for router in routers:
        if router.silence_after is not None:
            windows[router.address] = router.silence_after or None
        if router.silence_notify is not None:
            notify[router.address] = router.silence_notify
    if after is None and not any(windows.values()):
        return None, notify
    if silence is None:
        return Silence(after, last, now, windows), notify
    silence.after = after
    silence.windows = windows
    return silence, notify
