"""Reading the rules file again while the matcher runs (SIGHUP, or the file
changed): read and compiled in a thread, one reading at a time, so the loop
never waits for it; the matcher switches to the new rules between two
messages once a reading is done (``Matcher.switch``).
"""

from __future__ import annotations

import logging
import threading
import time

from alertik.common import config, rulesfile
from alertik.common.config import Config, ConfigError
from alertik.matcher.rulefile import FileRule
from alertik.matcher.rules import RuleSet, compile_rules

log = logging.getLogger(__name__)


class Reloads:
    """The watch on the rules file and the reading under way, if any."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.watcher = rulesfile.Watcher(path) if path else None
        self.job: Reload | None = None
        self.count = 0  # rules switched to
        self.errors = 0  # readings that kept the rules in use

    def changed(self) -> bool:
        """Whether the file changed since it was last read (looked at now and then)."""
        return self.watcher is not None and self.watcher.poll(time.monotonic())

    def start(self, cfg: Config, why: str, reuse: list[FileRule]) -> None:
        """Read and compile the rules file in a thread; switch when it is done."""
        if not self.path:
            log.info("no ALERTIK_RULES_FILE to reload (%s)", why)
            return
        if self.job is not None:
            self.job.again = why  # once this one is done
            return
        if self.watcher is not None:
            self.watcher.taken()
        self.job = Reload(cfg, why, reuse)

    def failed(self, job: Reload, error: ConfigError, in_use: int) -> None:
        """Count and log a reading that keeps the rules in use."""
        self.errors += 1
        log.error(
            "rules file not reloaded (%s); the %d rules in use stay: %s",
            job.why,
            in_use,
            error,
        )

    def switched(
        self, job: Reload, cfg: Config, rules: RuleSet, kept: int, released: int
    ) -> None:
        """Count and log a reading the matcher switched to."""
        self.count += 1
        log.info(
            "rules reloaded (%s): %d rules, %d from %s, compiled in %.2f s; "
            "state kept for %d rules%s",
            job.why,
            len(rules),
            len(rules.file_rules),
            cfg.rules_path,
            job.took,
            kept,
            f", {released} summaries sent early" if released else "",
        )

    def finished(self) -> Reload | None:
        """The reading that is done, once; None while none is."""
        job = self.job
        if job is None or not job.done.is_set():
            return None
        self.job = None
        return job


class Reload:
    """One reading of the rules file, compiled in a thread of its own."""

    def __init__(self, cfg: Config, why: str, reuse: list[FileRule]) -> None:
        self.why = why
        self.again = ""  # asked again meanwhile: why
        self.result: tuple[Config, RuleSet] | ConfigError | None = None
        self.took = 0.0  # seconds to read and compile
        self.done = threading.Event()
        threading.Thread(
            target=self._run, args=(cfg, reuse), name="rules-reload", daemon=True
        ).start()

    def _run(self, cfg: Config, reuse: list[FileRule]) -> None:
        started = time.monotonic()
        try:
            new = config.reload_rules(cfg)
            self.result = (
                new,
                compile_rules(new.rules, new.static_rules, new.rules_file, reuse=reuse),
            )
        except ConfigError as exc:
            self.result = exc
        except Exception:
            log.exception("rules file not reloaded (%s): unexpected error", self.why)
        finally:
            self.took = time.monotonic() - started
            self.done.set()
