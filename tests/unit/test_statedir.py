"""The state directory's lock: one holder at a time, named when refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from alertik.common import statedir
from alertik.common.config import ConfigError


def test_a_second_holder_is_refused_naming_the_variable_until_the_first_lets_go(
    tmp_path: Path,
) -> None:
    first = statedir.lock(str(tmp_path), "x.lock", "matcher")
    try:
        with pytest.raises(ConfigError) as refused:
            statedir.lock(str(tmp_path), "x.lock", "matcher")
        assert str(refused.value).startswith("ALERTIK_STATE_DIR: ")
        assert "in use by another matcher" in str(refused.value)
        # Another lock file in the same directory is another holder's.
        os.close(statedir.lock(str(tmp_path), "y.lock", "notify"))
    finally:
        os.close(first)
    os.close(statedir.lock(str(tmp_path), "x.lock", "matcher"))
    assert (tmp_path / "x.lock").stat().st_mode & 0o777 == 0o600
