"""mypy checks every Python file of the repository; none can be left out.

The stage folders are installed as ``alertik.<stage>`` (pyproject's
package-dir mapping), which mypy cannot follow; ``.typecheck/alertik`` is a
tree of symlinks with the installed layout that mypy checks instead: one link
per file of ``alertik/`` and one per mapped folder. A file with no link, a
mapped folder with no link, or a Python file that no entry of mypy's
``files`` reaches would be checked by nobody: these tests fail, saying what
to run.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from tests.support import REPO

TREE = REPO / ".typecheck" / "alertik"


def pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def mapped_folders() -> dict[str, Path]:
    """Subpackage name -> the folder pyproject installs as alertik.<name>."""
    mapping = pyproject()["tool"]["setuptools"]["package-dir"]
    return {
        key.split(".", 1)[1]: REPO / folder
        for key, folder in mapping.items()
        if key.startswith("alertik.")
    }


def wanted_links(package: Path, folders: dict[str, Path]) -> dict[str, Path]:
    """Name in the link tree -> the path the link there must lead to: each
    module, subpackage and py.typed of package, and each mapped folder."""
    wanted = {
        path.name: path
        for path in package.iterdir()
        if path.suffix == ".py"
        or path.name == "py.typed"
        or (path.is_dir() and (path / "__init__.py").exists())
    }
    wanted.update(folders)
    return wanted


def missing_links(root: Path, tree: Path, wanted: dict[str, Path]) -> list[str]:
    """The commands (run in root) that give each wanted name its link in tree."""
    commands = []
    for name, target in sorted(wanted.items()):
        link = tree / name
        if not (link.is_symlink() and link.resolve() == target.resolve()):
            relative = os.path.relpath(target, tree)
            commands.append(f"ln -sfn {relative} {link.relative_to(root)}")
    return commands


def stale_links(root: Path, tree: Path, wanted: dict[str, Path]) -> list[str]:
    """The commands (run in root) that remove what tree holds beyond wanted."""
    return [
        f"rm {link.relative_to(root)}"
        for link in sorted(tree.iterdir())
        if not link.exists() or link.name not in wanted
    ]


def python_files(top: Path) -> list[Path]:
    """Every .py file under top, leaving out hidden folders, caches, builds and
    virtual environments."""
    found = []
    for folder, dirs, files in os.walk(top):
        dirs[:] = [
            d
            for d in dirs
            if not d.startswith(".")
            and d not in ("__pycache__", "build", "dist")
            and not d.endswith(".egg-info")
            and not (Path(folder) / d / "pyvenv.cfg").exists()
        ]
        found += [Path(folder) / f for f in files if f.endswith(".py")]
    return sorted(found)


def test_every_file_of_the_package_and_every_stage_folder_has_its_link() -> None:
    wanted = wanted_links(REPO / "alertik", mapped_folders())
    missing = missing_links(REPO, TREE, wanted)
    assert not missing, "mypy would not see these; run:\n" + "\n".join(missing)


def test_no_link_is_left_over_from_a_file_that_is_gone() -> None:
    wanted = wanted_links(REPO / "alertik", mapped_folders())
    stale = stale_links(REPO, TREE, wanted)
    assert not stale, "links to nothing of the package; run:\n" + "\n".join(stale)


def test_mypy_reaches_every_python_file_of_the_repository() -> None:
    checked = [REPO / entry for entry in pyproject()["tool"]["mypy"]["files"]]
    assert TREE in checked
    through_links = [REPO / "alertik", *mapped_folders().values()]
    unchecked = [
        str(path.relative_to(REPO))
        for path in python_files(REPO)
        if not any(path.is_relative_to(root) for root in checked + through_links)
    ]
    assert not unchecked, (
        f"no entry of [tool.mypy] files in pyproject.toml reaches these: {unchecked}"
    )


def test_a_new_module_a_new_stage_and_a_removed_file_are_each_named(
    tmp_path: Path,
) -> None:
    package, stage, tree = tmp_path / "alertik", tmp_path / "web", tmp_path / "tree"
    for folder in (package, stage, tree):
        folder.mkdir()
    for name in ("__init__.py", "old.py", "new.py", "py.typed", "notes.txt"):
        (package / name).write_text("")
    (tree / "__init__.py").symlink_to("../alertik/__init__.py")
    (tree / "old.py").symlink_to("../alertik/old.py")
    (tree / "py.typed").symlink_to("../alertik/py.typed")
    (tree / "gone.py").symlink_to("../alertik/gone.py")
    wanted = wanted_links(package, {"web": stage})
    assert missing_links(tmp_path, tree, wanted) == [
        "ln -sfn ../alertik/new.py tree/new.py",
        "ln -sfn ../web tree/web",
    ]
    assert stale_links(tmp_path, tree, wanted) == ["rm tree/gone.py"]


def test_the_walk_finds_a_new_file_and_skips_virtual_environments(
    tmp_path: Path,
) -> None:
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "new.py").write_text("")
    (tmp_path / "venv").mkdir()
    (tmp_path / "venv" / "pyvenv.cfg").write_text("")
    (tmp_path / "venv" / "skipped.py").write_text("")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "skipped.py").write_text("")
    assert python_files(tmp_path) == [tmp_path / "tools" / "new.py"]
