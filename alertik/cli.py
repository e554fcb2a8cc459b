"""The ``alertik`` command: run the pipeline, one stage, or a tool."""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from alertik import __version__
from alertik.common import config as config_mod
from alertik.common.config import STAGES, Config, ConfigError

if TYPE_CHECKING:
    import argparse

    from alertik.matcher.rules import RuleSet

log = logging.getLogger(__name__)

USAGE_EXIT = 2
# Subcommands that parse their own arguments: main(argv) of alertik.<name>.
TOOLS = ("tap", "keygen", "cert")


def _load() -> tuple[Config, RuleSet]:
    """Load the configuration and compile every rule: what every command needs."""
    from alertik.matcher.rules import compile_rules

    cfg = config_mod.load()
    return cfg, compile_rules(cfg.rules, cfg.static_rules, cfg.rules_file)


def _config_error(exc: ConfigError) -> int:
    print(f"error: {exc}", file=sys.stderr)
    return 2


def cmd_run(args: argparse.Namespace) -> int:
    """Validate, bind the UDP port, then keep supervisord and its stages."""
    from alertik import run

    try:
        cfg, _ = _load()
    except ConfigError as exc:
        return _config_error(exc)
    found = config_mod.warnings()
    if found:
        # Here, once, rather than by every stage as it starts.
        from alertik.common.lifecycle import setup_logging

        setup_logging(cfg.log_level)
        for warning in found:
            log.warning("%s", warning)
    return run.run(cfg, args)


def cmd_health(args: argparse.Namespace) -> int:
    """Exit 0 when every stage of the running alertik answers; else say why."""
    from alertik import health

    return health.main()


def stage_main(name: str) -> int:
    """Run one stage in the foreground until it is stopped."""
    from alertik.common.lifecycle import run_stage

    module = importlib.import_module(f"alertik.{name}.stage")
    code: int = run_stage(getattr(module, name.capitalize()))
    return code


def cmd_stage(name: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        return stage_main(name)

    return run


def cmd_check(args: argparse.Namespace) -> int:
    """Validate the configuration and print it with every secret hidden."""
    from alertik.matcher import musl
    from alertik.matcher.rulecompile import lint

    try:
        cfg, rules = _load()
    except ConfigError as exc:
        return _config_error(exc)
    print(json.dumps(config_mod.redacted(cfg), indent=2, sort_keys=True))
    warnings = 0
    for found in config_mod.warnings():
        print(f"warning: {found}", file=sys.stderr)
        warnings += 1
    for problem in run_checks(cfg):
        print(f"warning: {problem}", file=sys.stderr)
        warnings += 1
    for rule in cfg.rules:
        if rule.match_type != "regex":
            continue
        for warning in musl.lint(rule.match_str):
            print(f"warning: {rule.name}_MATCH_STR: {warning}", file=sys.stderr)
            warnings += 1
    for file_rule in rules.file_rules:
        for key, warning in lint(file_rule):
            where = file_rule.where + (f", key {key}" if key else "")
            print(f"warning: {where}: {warning}", file=sys.stderr)
            warnings += 1
    if not len(rules):
        print(
            "warning: no events are configured: messages will be logged, "
            "nothing will be notified",
            file=sys.stderr,
        )
    from_file = (
        f", {len(rules.file_rules)} rules in {cfg.rules_path}" if cfg.rules_path else ""
    )
    print(
        f"configuration OK: {len(cfg.rules)} events, {len(cfg.static_rules)} static "
        f"events{from_file}, stages {','.join(cfg.stages)}"
        + (f", {warnings} warnings" if warnings else ""),
        file=sys.stderr,
    )
    return 0


def run_checks(cfg: Config) -> list[str]:
    """What would stop `alertik run` on this host now: ports, directories."""
    from alertik import run

    return run.preflight(cfg)


def cmd_test(args: argparse.Namespace) -> int:
    """Show which rules match each line, their captures and the exact text.

    File rules also show the excludes that vetoed them, the conditions that
    failed, threshold progress and what holds them (the lines count as
    arriving now, one after the other), and the exact payload each
    destination would get. ``--json`` prints the same as one JSON object
    (the status page's workbench reads it).
    """
    try:
        cfg, rules = _load()
    except ConfigError as exc:
        return _config_error(exc)
    if not len(rules):
        print(
            "alertik test: no rules are configured, so no line can match; set "
            "ENV_EVENTS and EVENT0_* (README.md, Rules), STATIC_EVENTS_ENABLED, "
            "or ALERTIK_RULES_FILE (docs/RULES.md)",
            file=sys.stderr,
        )
        return 1
    if args.lines:
        lines: Sequence[bytes] = [os.fsencode(line) for line in args.lines]
    else:
        lines = [line.rstrip(b"\r\n") for line in sys.stdin.buffer]
    results = _try_lines(cfg, rules, lines, args.sender)
    matched = sum(1 for r in results if r["matches"])
    if args.json:
        names = [r.name for r in cfg.rules] + [r.name for r in cfg.static_rules]
        names += [r.name for r in rules.file_rules]
        print(json.dumps({"rules": names, "lines": results}, ensure_ascii=False))
        return 0 if matched else 1
    for result in results:
        if not result["matches"]:
            print(f"no match: {result['line']}")
        else:
            print(f"line: {result['line']}")
        for m in result["matches"]:
            print(f"  {m['rule']} -> {', '.join(m['destinations'])}")
            for i, c in enumerate(m["captures"], start=1):
                print(f"    @{i} = {'(unset)' if c is None else repr(c)}")
            if not m["file"]:
                print(f"    text: {m['text']}")
                continue
            if m["key"]:
                print(f"    key: {m['key']}")
            for note in m["notes"]:
                print(f"    {note}")
            for d in m["deliveries"]:
                print(f"    to {d['destination']}: {_shown_payload(d)}")
        for missed in result["missed"]:
            print(f"  {missed['rule']}: {missed['why']}")
    return 0 if matched else 1


def _try_lines(
    cfg: Config, rules: RuleSet, lines: Sequence[bytes], sender: str
) -> list[dict[str, Any]]:
    """What `alertik test` says of each line, as plain data."""
    import time

    from alertik.common.schema import SyslogEvent
    from alertik.matcher.alerts import alert_text, release_alerts
    from alertik.matcher.gate import Gate, Notes
    from alertik.matcher.rulefile import Hit, Record

    gate = Gate(rules.file_rules, suffix=cfg.time_suffix, max_keys=cfg.rule_keys_max)
    destinations = {d.name: d for d in cfg.notify.destinations}
    results = []
    for seq, raw in enumerate(lines, start=1):
        now = time.time()
        record = Record(raw, sender, cfg.ingest.node_name)
        matches, hits = rules.scan(record)
        found: list[dict[str, Any]] = []
        for m in matches:
            text = alert_text(cfg, m, now)
            found.append(
                {
                    "rule": m.rule,
                    "file": False,
                    "destinations": [m.notifier],
                    "captures": list(m.captures[1:]),
                    "text": text,
                    "deliveries": [
                        _delivery(destinations.get(m.notifier), m.notifier, text, "")
                    ],
                }
            )
        event = SyslogEvent(
            raw=raw,
            received=now,
            sender=sender,
            sender_port=0,
            node=cfg.ingest.node_name,
            seq=seq,
        )
        for hit in hits:
            notes: Notes = []
            alerts = release_alerts(gate.offer(hit, event, notes))
            found.append(
                {
                    "rule": hit.rule.name,
                    "file": True,
                    "destinations": list(hit.rule.notifiers),
                    "captures": [
                        None if b is None else b.decode("utf-8", "replace")
                        for b in hit.captures[1:]
                    ],
                    "key": hit.key,
                    "notes": list(notes or ()),
                    "deliveries": [
                        _delivery(
                            destinations.get(a.notifier), a.notifier, a.text, a.address
                        )
                        for a in alerts
                    ],
                }
            )
        # Why each file rule whose pattern matched did not hit.
        missed = [
            {"rule": r.name, "why": str(why)}
            for r in rules.file_rules
            if r not in {h.rule for h in hits}
            and (why := r.check(record)) != "no match"
            and not isinstance(why, Hit)
        ]
        results.append(
            {
                "line": raw.decode("utf-8", "replace"),
                "matches": found,
                "missed": missed,
            }
        )
    return results


def _delivery(dest: Any, name: str, text: str, address: str) -> dict[str, Any]:
    """What one destination would get for text: the body of each message it
    carries (a long text goes in several, as notify sends it), with every
    secret of the destination hidden; messages is None when it is not
    configured."""
    shown: dict[str, Any] = {"destination": name, "text": text, "how": "http"}
    if dest is None:
        shown["messages"] = None
        return shown
    from alertik.notify import services
    from alertik.notify.scrub import scrub, secrets_for

    if services.service_of(dest).order is not None:
        shown.update(how="action", address=address, messages=[])
        return shown
    secrets = secrets_for(dest)
    try:
        shown["messages"] = [
            scrub(services.request(dest, part).body.decode("utf-8", "replace"), secrets)
            for part in services.parts(dest.kind, text)
        ]
    except ValueError:  # not sent over HTTP (e-mail, Apprise): the text
        shown.update(how="text", messages=[text])
    return shown


def _shown_payload(delivery: dict[str, Any]) -> str:
    """A delivery as `alertik test` prints it."""
    if delivery["messages"] is None:
        return "(not configured)"
    if delivery["how"] == "action":
        return f"(an action) address {delivery.get('address') or '(none)'}"
    if delivery["how"] == "text":
        return json.dumps(delivery["text"], ensure_ascii=False)
    return " + ".join(delivery["messages"])


def cmd_send_test(args: argparse.Namespace) -> int:
    from alertik.notify.sendtest import main as send_test

    result: int = send_test(args.rest)
    return result


def build_parser() -> argparse.ArgumentParser:
    import argparse

    parser = argparse.ArgumentParser(
        prog="alertik",
        description="Syslog server and event notifier for MikroTik RouterOS. "
        "Configuration comes from environment variables (see README.md).",
    )
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("run", help="run the configured stages under supervisord")
    p.add_argument(
        "--stages",
        help="comma list of stages to run here (default: all configured), "
        "e.g. matcher,notify for the server half of a split set-up",
    )
    p.set_defaults(func=cmd_run)
    for stage in STAGES:
        p = sub.add_parser(stage, help=f"run the {stage} stage in the foreground")
        p.set_defaults(func=cmd_stage(stage))
    p = sub.add_parser(
        "health",
        help="exit 0 when every stage of the running alertik answers (for "
        "HEALTHCHECK); otherwise print what is wrong and exit 1",
    )
    p.set_defaults(func=cmd_health)
    p = sub.add_parser("check", help="validate the configuration and print it")
    p.set_defaults(func=cmd_check)
    p = sub.add_parser(
        "test", help="show which rules match the given lines (or stdin lines)"
    )
    p.add_argument("lines", nargs="*", help="log lines; read stdin when none")
    p.add_argument("--sender", default="192.0.2.1", help="sender address for @{sender}")
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object: each line's matches, captures, text and "
        "the body each destination would get",
    )
    p.set_defaults(func=cmd_test)
    p = sub.add_parser(
        "send-test", help="send one test notification: send-test NOTIFIER [TEXT]"
    )
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_send_test)
    p = sub.add_parser(
        "tap",
        add_help=False,
        help="print what a running stage emits as JSON lines: tap STAGE "
        "[--run-dir DIR | --addr ENDPOINT] [--count N] [--timeout S]",
    )
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p = sub.add_parser(
        "keygen", add_help=False, help="print a new CURVE key pair for ALERTIK_CURVE_*"
    )
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p = sub.add_parser(
        "cert",
        add_help=False,
        help="make a self-signed certificate and key for ALERTIK_TLS_PORT: "
        "cert NAME [NAME ...] [--out DIR] [--days N] [--port N] [--force]",
    )
    p.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if len(words) == 1 and words[0] in STAGES:
        # A stage as supervisord starts it, without argparse: every module a
        # stage loads costs memory for as long as it runs.
        return stage_main(words[0])
    if words and words[0] in TOOLS:
        # Handed over whole, so that `alertik tap --help` is the tool's help.
        tool = importlib.import_module(f"alertik.{words[0]}")
        code: int = tool.main(words[1:])
        return code
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result
