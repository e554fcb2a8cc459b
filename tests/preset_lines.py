"""Our RouterOS test lines for the presets (tests/data/presets/), read once.

A file per preset holds lines it must match, each followed by the capture
groups its text uses and the text a rule naming the preset sends;
unrelated.txt holds lines no preset may match. The format is described in
tests/data/presets/README.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

DATA = Path(__file__).parent / "data" / "presets"
UNRELATED = "unrelated"


@dataclass(frozen=True)
class Line:
    """One test line: where it is, the raw text, and the captures it must give."""

    file: str
    number: int
    raw: str
    groups: dict[int, str | None] = field(default_factory=dict)
    texts: list[str] = field(default_factory=list)  # at most one: the text

    def __str__(self) -> str:
        return f"{self.file}.txt:{self.number}"


def read(name: str) -> list[Line]:
    """The lines of tests/data/presets/<name>.txt."""
    lines: list[Line] = []
    path = DATA / f"{name}.txt"
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not text.strip() or text.startswith("#"):
            continue
        if text.startswith("  "):
            if not lines:
                raise ValueError(f"{path}:{number}: an expectation before any line")
            what, _, value = text[2:].partition(" ")
            if what == "text":
                lines[-1].texts.append(json.loads(value))
            elif what.startswith("@"):
                lines[-1].groups[int(what[1:])] = json.loads(value)
            else:
                raise ValueError(f"{path}:{number}: not @N or text: {what!r}")
            continue
        lines.append(Line(name, number, text))
    return lines


def names() -> list[str]:
    """Every preset that has a file of lines."""
    return sorted(p.stem for p in DATA.glob("*.txt") if p.stem != UNRELATED)
