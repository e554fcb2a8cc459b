"""The shape of the package: data flows one way, and no stage imports another.

Read from the source with ``ast``, so an import hidden inside a function
counts as much as one at the top of a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support import REPO

STAGES = ("ingest", "matcher", "notify", "forwarder", "web")
PACKAGES = ("common", *STAGES)


def imported_modules(path: Path) -> set[str]:
    """Every alertik.* module a file imports, at any depth."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("alertik.")}


def package_of(module: str) -> str:
    return module.split(".")[1]


@pytest.mark.parametrize("package", PACKAGES)
def test_a_stage_imports_only_itself_and_common_and_common_imports_no_stage(
    package: str,
) -> None:
    allowed = {"common"} if package == "common" else {"common", package}
    wrong = {
        f"{path.relative_to(REPO)} imports {module}"
        for path in sorted((REPO / package).rglob("*.py"))
        for module in imported_modules(path)
        if package_of(module) not in allowed
    }
    assert not wrong, sorted(wrong)


def test_the_layout_check_sees_an_import_inside_a_function(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from alertik.ingest.stage import Ingest\n")
    assert "alertik.ingest.stage" in imported_modules(sample)
