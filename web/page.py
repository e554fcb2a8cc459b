"""The status page and the workbench as HTML: pure functions of what to show.

Plain HTML and CSS, charts as inline SVG drawn here, no script at all: it
works in any browser, on a phone (one column, tables that scroll sideways),
and behind the strict Content-Security-Policy the server sends. Everything
shown is escaped; nothing shown is a secret (destinations appear by name,
message bodies come from ``alertik test``, which hides every secret).
"""

from __future__ import annotations

import time
from html import escape
from typing import Any

import msgspec

from alertik.web.recent import Shown

STYLE = """
:root { color-scheme: light dark; --muted: #777; --bar: #3b82f6; --alert: #e4572e;
  --ok: #2e9e5b; --warn: #d08c00; --bad: #d33; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  margin: 0 auto; padding: 0.8rem; max-width: 64rem; }
h1 { font-size: 1.3rem; margin: 0.2rem 0; }
h2 { font-size: 1.05rem; margin: 1.4rem 0 0.4rem; }
nav a, .muted { color: var(--muted); }
nav { margin-bottom: 0.6rem; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 0.3rem 0.5rem 0.3rem 0; vertical-align: top;
  border-bottom: 1px solid rgba(127,127,127,0.25); }
th { font-weight: 600; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
svg.chart { vertical-align: middle; margin-left: 0.4rem; }
td.captures code { white-space: nowrap; }
svg.chart rect { fill: var(--bar); }
svg.chart.alerts rect { fill: var(--alert); }
svg.chart line { stroke: rgba(127,127,127,0.5); stroke-width: 1; }
.state { font-weight: 600; white-space: nowrap; }
.ok, .delivered, .up { color: var(--ok); }
.retrying, .queued, .silent { color: var(--warn); }
.failed, .disabled, .discarded, .down { color: var(--bad); }
textarea { width: 100%; min-height: 9rem; font: 13px/1.4 ui-monospace, monospace; }
input, button { font: inherit; padding: 0.3rem 0.6rem; }
code, .mono { font: 13px/1.4 ui-monospace, monospace; overflow-wrap: anywhere; }
td.mono, th { white-space: nowrap; }
th.num { text-align: right; }
/* A phone: each row becomes a card, each cell a line with its heading. */
@media (max-width: 40rem) {
  table.cards thead { display: none; }
  table.cards tr { display: block; padding: 0.4rem 0;
    border-bottom: 1px solid rgba(127,127,127,0.35); }
  table.cards td { display: flex; justify-content: space-between; gap: 0.8rem;
    border: 0; padding: 0.1rem 0; text-align: right; }
  table.cards td::before { content: attr(data-label); color: var(--muted);
    text-align: left; white-space: nowrap; }
  table.cards td.text { display: block; text-align: left; }
  table.cards td.text::before { display: block; }
}
.match { color: var(--ok); font-weight: 600; } .nomatch { color: var(--muted); }
.error { color: var(--bad); font-weight: 600; }
"""


class StageRow(msgspec.Struct, kw_only=True):
    name: str
    up: bool
    restarts: int
    age: float | None


class RouterRow(msgspec.Struct, kw_only=True):
    name: str
    messages: list[float]  # per minute, the last hour, oldest first
    alerts: list[float]
    last: float | None  # wall clock of its last message (matcher)
    silent: bool


class DestinationRow(msgspec.Struct, kw_only=True):
    name: str
    state: str
    pending: float
    oldest: float
    delivered: float
    failed: float
    retried: float


class View(msgspec.Struct, kw_only=True):
    node: str
    version: str
    now: float
    problem: str = ""  # why the keeper could not be asked
    stages: list[StageRow] = []
    routers: list[RouterRow] = []
    destinations: list[DestinationRow] = []
    alerts: list[Shown] = []
    silence_after: float | None = None


def _page(title: str, body: str, refresh: int | None = None) -> str:
    meta = f'<meta http-equiv="refresh" content="{refresh}">' if refresh else ""
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"{meta}<title>{escape(title)}</title><style>{STYLE}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def _nav(here: str) -> str:
    links = [("/", "status"), ("/workbench", "rule workbench"), ("/metrics", "metrics")]
    return (
        "<nav>"
        + " · ".join(
            f"<strong>{text}</strong>"
            if href == here
            else f'<a href="{href}">{text}</a>'
            for href, text in links
        )
        + "</nav>"
    )


def _clock(when: float | None) -> str:
    if when is None:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    s = int(max(0.0, seconds))
    if s < 60:
        return f"{s}s ago"
    if s < 3600:
        return f"{s // 60}m ago"
    return f"{s // 3600}h {s % 3600 // 60}m ago"


def _n(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"


def chart(values: list[float], what: str, css: str = "") -> str:
    """60 minutes as bars, 2 px each; the total and peak in its label."""
    peak = max(values, default=0.0)
    total = sum(values)
    height = 24
    bars = []
    for i, value in enumerate(values):
        if value <= 0:
            continue
        h = max(1.0, round(value / peak * (height - 2), 1))
        bars.append(
            f'<rect x="{i * 2}" y="{height - h}" width="1.6" height="{h}"></rect>'
        )
    label = f"{what}: {_n(total)} in the last hour, at most {_n(peak)} a minute"
    return (
        f'<svg class="chart {css}" viewBox="0 0 120 {height}" width="120" '
        f'height="{height}" role="img" aria-label="{escape(label)}" '
        f'data-total="{_n(total)}"><title>{escape(label)}</title>'
        f'<line x1="0" y1="{height - 0.5}" x2="120" y2="{height - 0.5}"></line>'
        f"{''.join(bars)}</svg>"
    )


def status_page(view: View) -> str:
    parts = [
        f"<h1>alertik on {escape(view.node)}</h1>",
        _nav("/"),
        f"<p class=muted>{escape(_clock(view.now))} · version {escape(view.version)}"
        " · refreshes every 30 s</p>",
    ]
    if view.problem:
        parts.append(f"<p class=error>{escape(view.problem)}</p>")
    parts.append(_routers(view))
    parts.append(_destinations(view))
    parts.append(_alerts(view))
    parts.append(_stages(view))
    return _page(f"alertik · {view.node}", "".join(parts), refresh=30)


def _routers(view: View) -> str:
    head = "<h2>Routers</h2>"
    if view.silence_after is not None:
        head += (
            f"<p class=muted>Silence alerts after {_n(view.silence_after)} s "
            "without a message.</p>"
        )
    if not view.routers:
        return head + "<p class=muted>No messages yet.</p>"
    rows = []
    for r in view.routers:
        since = None if r.last is None else view.now - r.last
        status = '<span class="state silent">silent</span>' if r.silent else ""
        rows.append(
            f'<tr data-router="{escape(r.name)}">'
            f'<td class=mono data-label="router">{escape(r.name)}</td>'
            '<td class=num data-label="messages, last hour">'
            f'<span><span class="messages">{_n(sum(r.messages))}</span>'
            f"{chart(r.messages, f'messages from {r.name}')}</span></td>"
            '<td class=num data-label="alerts, last hour">'
            f'<span><span class="alerts">{_n(sum(r.alerts))}</span>'
            f"{chart(r.alerts, f'alerts from {r.name}', 'alerts')}</span></td>"
            f'<td data-label="last message">{_ago(since)} {status}</td></tr>'
        )
    return (
        head + '<div class=scroll><table id="routers" class=cards><thead><tr>'
        "<th>router</th><th class=num>messages, last hour</th>"
        "<th class=num>alerts, last hour</th><th>last message</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _destinations(view: View) -> str:
    head = "<h2>Destinations</h2>"
    if not view.destinations:
        return head + "<p class=muted>None configured (or notify not running).</p>"
    rows = "".join(
        f'<tr data-destination="{escape(d.name)}">'
        f'<td data-label="destination">{escape(d.name)}</td>'
        f'<td data-label="state"><span class="state {escape(d.state)}">'
        f"{escape(d.state)}</span></td>"
        f'<td class="num pending" data-label="waiting">{_n(d.pending)}</td>'
        f'<td class=num data-label="oldest">{_ago(d.oldest) if d.pending else "–"}</td>'
        f'<td class="num delivered" data-label="delivered">{_n(d.delivered)}</td>'
        f'<td class=num data-label="retries">{_n(d.retried)}</td>'
        f'<td class="num failed" data-label="failed">{_n(d.failed)}</td></tr>'
        for d in view.destinations
    )
    return (
        head + '<div class=scroll><table id="destinations" class=cards><thead><tr>'
        "<th>destination</th><th>state</th><th class=num>waiting</th>"
        "<th class=num>oldest</th><th class=num>delivered</th>"
        "<th class=num>retries</th><th class=num>failed</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></div>"
    )


def _alerts(view: View) -> str:
    head = "<h2>Last alerts</h2>"
    if not view.alerts:
        return head + "<p class=muted>None since this page's stage started.</p>"
    rows = "".join(
        f'<tr><td class=mono data-label="time">{escape(_clock(a.received)[11:])}</td>'
        f'<td data-label="rule">{escape(a.rule)}</td>'
        f'<td class=mono data-label="router">{escape(a.router)}</td>'
        f'<td data-label="to">{escape(a.destination)}</td>'
        f'<td data-label="outcome"><span class="state {escape(a.outcome)}">'
        f"{escape(a.outcome)}</span></td>"
        f'<td class=text data-label="text">{escape(a.text)}</td></tr>'
        for a in view.alerts
    )
    return (
        head
        + '<div class=scroll><table id="alerts" class=cards><thead><tr><th>time</th>'
        "<th>rule</th><th>router</th><th>to</th><th>outcome</th><th>text</th>"
        f"</tr></thead><tbody>{rows}</tbody></table></div>"
    )


def _stages(view: View) -> str:
    rows = "".join(
        f'<tr><td data-label="stage">{escape(s.name)}</td>'
        f'<td data-label="state"><span class="state {"up" if s.up else "down"}">'
        f"{'running' if s.up else 'not answering'}</span></td>"
        f'<td class=num data-label="restarts">{s.restarts}</td>'
        f'<td class=num data-label="last heartbeat">'
        f"{'–' if s.age is None else f'{s.age:.1f} s ago'}</td></tr>"
        for s in view.stages
    )
    return (
        '<h2>Stages</h2><div class=scroll><table id="stages" class=cards><thead><tr>'
        "<th>stage</th><th>state</th><th class=num>restarts</th>"
        "<th class=num>last heartbeat</th>"
        f"</tr></thead><tbody>{rows}</tbody></table></div>"
    )


def workbench_page(
    text: str = "",
    sender: str = "192.0.2.1",
    result: dict[str, Any] | None = None,
    error: str = "",
) -> str:
    parts = [
        "<h1>Rule workbench</h1>",
        _nav("/workbench"),
        "<p class=muted>Paste RouterOS log lines, one per line, as the router "
        "sends them. Every rule is tried on each, as <code>alertik test</code> "
        "does with the configuration and rules alertik runs with.</p>",
        '<form method=post action="/workbench">'
        f'<textarea name=lines id=lines placeholder="system,error,critical login '
        f'failure for user admin from 10.0.0.9 via ssh">{escape(text)}</textarea>'
        "<p><label>sender <input name=sender id=sender size=16 "
        f'value="{escape(sender)}"></label> <button type=submit id=try>try the '
        "rules</button></p></form>",
    ]
    if error:
        parts.append(f'<p class=error id="error">{escape(error)}</p>')
    if result is not None:
        parts.append(_results(result))
    return _page("alertik · rule workbench", "".join(parts))


def _deliveries(deliveries: list[dict[str, Any]]) -> tuple[str, str]:
    """The texts, and what each destination gets, as two cells."""
    texts = []
    bodies = []
    for d in deliveries:
        who = f"<strong>{escape(d.get('destination', ''))}</strong>: "
        texts.append(escape(d.get("text", "")))
        messages = d.get("messages")
        if messages is None:
            bodies.append(who + "<em>not configured</em>")
        elif d.get("how") == "action":
            bodies.append(who + f"an action, address {escape(d.get('address') or '')}")
        else:
            bodies.append(
                who + " + ".join(f"<code>{escape(b)}</code>" for b in messages)
            )
    unique = list(dict.fromkeys(texts))
    return "<br>".join(unique), "<br>".join(bodies)


def _results(result: dict[str, Any]) -> str:
    rules: list[str] = result.get("rules", [])
    out = ['<div id="results">']
    for i, line in enumerate(result.get("lines", []), start=1):
        matches = line.get("matches", [])
        out.append(
            f'<section class="line" data-line="{i}"><h2>line {i}: '
            f"{'<span class=match>matched</span>' if matches else 'no match'}</h2>"
            f"<p class=mono>{escape(line.get('line', ''))}</p>"
        )
        by_rule: dict[str, list[dict[str, Any]]] = {}
        for m in matches:
            by_rule.setdefault(m["rule"], []).append(m)
        why = {m["rule"]: m["why"] for m in line.get("missed", [])}
        rows = []
        for rule in rules or list(by_rule):
            found = by_rule.get(rule)
            if not found:
                result_text = escape(why.get(rule, "no match"))
                rows.append(
                    f'<tr data-rule="{escape(rule)}">'
                    f'<td data-label="rule">{escape(rule)}</td>'
                    f'<td class=nomatch data-label="result">{result_text}</td></tr>'
                )
                continue
            for m in found:
                captures = "<br>".join(
                    f"@{n} = "
                    + ("<em>unset</em>" if c is None else f"<code>{escape(c)}</code>")
                    for n, c in enumerate(m.get("captures", []), start=1)
                )
                if m.get("key"):
                    captures += f"<br>key = <code>{escape(m['key'])}</code>"
                text, bodies = _deliveries(m.get("deliveries", []))
                notes = "".join(
                    f"<br><span class=muted>{escape(n)}</span>"
                    for n in m.get("notes", [])
                )
                if not m.get("deliveries"):
                    text = "<em>nothing sent now</em>"
                destinations = ", ".join(m.get("destinations", []))
                rows.append(
                    f'<tr data-rule="{escape(rule)}" class="hit">'
                    f'<td data-label="rule">{escape(rule)}</td>'
                    '<td class=match data-label="result">'
                    f"match → {escape(destinations)}{notes}</td>"
                    f'<td class="captures" data-label="captures">{captures or "–"}</td>'
                    f'<td class="text" data-label="text">{text}</td>'
                    '<td class="text messages" data-label="what the destination gets">'
                    f"{bodies}</td></tr>"
                )
        out.append(
            "<div class=scroll><table class=cards><thead><tr><th>rule</th>"
            "<th>result</th>"
            "<th>captures</th><th>text</th><th>what the destination gets</th>"
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div></section>"
        )
    out.append("</div>")
    return "".join(out)
