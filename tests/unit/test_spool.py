"""The matcher's spool: alerts notify could not take wait here, in order."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from alertik.common.config import ConfigError
from alertik.matcher.spool import Send, Spool


def taker(accept: int) -> tuple[list[bytes], Send]:
    """A send function that takes `accept` alerts, then refuses."""
    got: list[bytes] = []

    def send(payload: bytes) -> bool:
        if len(got) >= accept:
            return False
        got.append(payload)
        return True

    return got, send


def test_waiting_alerts_come_out_in_order_and_only_as_fast_as_notify_takes_them(
    tmp_path: Path,
) -> None:
    spool = Spool(str(tmp_path), 10_000)
    spool.add([b"a%d" % i for i in range(1200)])
    got, send = taker(700)
    assert spool.send_head(send) == 700
    assert got == [b"a%d" % i for i in range(700)]
    assert len(spool) == 500
    got, send = taker(10_000)
    assert spool.send_head(send) == 500
    assert got == [b"a%d" % i for i in range(700, 1200)]
    assert len(spool) == 0
    spool.close()


def test_alerts_waiting_on_disk_survive_the_matcher(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path), 100)
    assert spool.durable
    spool.add([b"one", b"two"])
    spool.close_db()  # what kill -9 leaves: the file, no clean close
    again = Spool(str(tmp_path), 100)
    got, send = taker(10)
    again.send_head(send)
    assert got == [b"one", b"two"]
    again.close()


def test_past_the_bound_the_oldest_are_dropped_and_counted(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path), 100)
    spool.add([b"%d" % i for i in range(150)])
    assert len(spool) == 100
    assert spool.dropped.total == 50
    got, send = taker(1000)
    spool.send_head(send)
    assert got[0] == b"50" and got[-1] == b"149"
    spool.close()


def test_two_matchers_cannot_share_a_spool(tmp_path: Path) -> None:
    first = Spool(str(tmp_path), 100)
    with pytest.raises(ConfigError) as info:
        Spool(str(tmp_path), 100)
    assert info.value.variable == "ALERTIK_STATE_DIR"
    first.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only directories")
def test_an_unwritable_state_dir_keeps_alerts_in_memory(tmp_path: Path) -> None:
    locked = tmp_path / "ro"
    locked.mkdir(mode=0o500)
    spool = Spool(str(locked / "state"), 100)
    assert not spool.durable
    spool.add([b"x", b"y"])
    got, send = taker(10)
    spool.send_head(send)
    assert got == [b"x", b"y"]
    spool.close()


def test_a_spool_in_memory_goes_back_to_disk_once_the_disk_works(
    tmp_path: Path,
) -> None:
    """1. the state dir is a file, so the spool starts in memory; 2. alerts
    wait and are sent; 3. the state dir becomes usable.
    Result: once nothing waits in memory, the next look moves it to disk."""
    blocker = tmp_path / "state"
    blocker.write_text("not a directory")
    spool = Spool(str(blocker), 100)
    assert not spool.durable
    spool.add([b"x"])
    got, send = taker(10)
    spool.send_head(send)
    blocker.unlink()
    spool._retry_at = 0.0  # the retry is due
    spool.send_head(send)
    assert spool.durable
    spool.add([b"z"])
    spool.close_db()
    reopened = Spool(str(blocker), 100)
    assert reopened.send_head(send) == 1
    assert got == [b"x", b"z"]
    reopened.close()
