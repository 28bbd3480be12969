"""open_board: the registry finds the device's driver and runs it under the device's lease.

A stand-in driver (registered for a made-up emulator kind) records whether it was
started; the leases are real, in a SQLite database, and the other run holding a
device is a real other process. The same with QEMU: tests/e2e/test_board_leases.py.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from farm.board import driver as board_driver_module
from farm.board.driver import BoardConnection
from farm.board.leases import DeviceBusy, DeviceQuarantined, LeaseManager, LeasePolicy
from farm.board.registry import driver_kind, open_board


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'results.db'}"


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Devices the stand-in driver was started for (it yields no session)."""
    calls: list[str] = []

    @contextmanager
    def fake(device: Any, elf: Path, log_dir: Path) -> Iterator[BoardConnection]:
        calls.append(device.name)
        yield BoardConnection(None, {"model": "fake"}, "instructions", lambda t, i: 0.0, "fake://")  # type: ignore[arg-type]

    monkeypatch.setitem(board_driver_module._DRIVERS, "emulator:fake", fake)
    return calls


DEVICE = SimpleNamespace(name="fake-m3", emulator=SimpleNamespace(kind="fake"), serial=None)


def _holder_process(url: str, device: str) -> subprocess.Popen:
    code = (f"import sys; from farm.board.leases import LeaseManager; m = LeaseManager({url!r}, "
            f"purpose='nightly run 9'); m.acquire({device!r}); print('held', flush=True); sys.stdin.readline(); "
            f"m.release({device!r}); print('released', flush=True); sys.stdin.readline()")
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def _release(holder: subprocess.Popen) -> None:
    holder.stdin.write("\n")
    holder.stdin.flush()


def test_open_board_takes_the_lease_and_gives_it_back(url: str, started: list[str], tmp_path: Path):
    assert driver_kind(DEVICE) == "emulator:fake"
    watcher = LeaseManager(url)
    with open_board(DEVICE, tmp_path / "x.elf", tmp_path, lease=LeasePolicy(url, wait=0, purpose="farm infer")) as board:
        assert board.identity == {"model": "fake"} and started == ["fake-m3"]
        state = watcher.state("fake-m3")
        assert state.state == "leased" and state.owner.startswith("farm infer (pid")
    assert watcher.state("fake-m3").state == "free"
    (entry,) = watcher.log("fake-m3")
    assert entry["ended"] == "released"


def test_a_busy_device_is_not_touched(url: str, started: list[str], tmp_path: Path):
    holder = _holder_process(url, "fake-m3")
    try:
        board = open_board(DEVICE, tmp_path / "x.elf", tmp_path, lease=LeasePolicy(url, wait=0))
        with pytest.raises(DeviceBusy) as err, board:
            raise AssertionError("a busy device must not be opened")
        assert "fake-m3 is busy: leased by nightly run 9" in str(err.value)
        assert started == []
        threading.Timer(0.5, _release, args=(holder,)).start()
        begun = time.monotonic()
        with open_board(DEVICE, tmp_path / "x.elf", tmp_path, lease=LeasePolicy(url, wait=2)):
            assert time.monotonic() - begun >= 0.4 and started == ["fake-m3"]
    finally:
        holder.kill()
        holder.wait()


def test_a_quarantined_device_is_not_touched(url: str, started: list[str], tmp_path: Path):
    LeaseManager(url).quarantine("fake-m3", "fake-m3 did not identify on /dev/ttyACM0 after 3 attempts")
    with pytest.raises(DeviceQuarantined), open_board(DEVICE, tmp_path / "x.elf", tmp_path,
                                                      lease=LeasePolicy(url, wait=0)):
        pass
    assert started == []


def test_open_board_inside_a_held_lease_keeps_it(url: str, started: list[str], tmp_path: Path):
    run = LeaseManager(url, purpose="farm run 4")  # what farm run and the pytest device fixture hold
    run.acquire("fake-m3")
    try:
        for _ in range(2):
            with open_board(DEVICE, tmp_path / "x.elf", tmp_path, lease=LeasePolicy(url, wait=0)):
                pass
        assert started == ["fake-m3", "fake-m3"]
        assert run.holds("fake-m3") and LeaseManager(url).state("fake-m3").owner.startswith("farm run 4")
        assert len(run.log("fake-m3")) == 1
    finally:
        run.close()


def test_the_lease_is_given_back_when_the_board_fails(url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    @contextmanager
    def broken(device: Any, elf: Path, log_dir: Path) -> Iterator[BoardConnection]:
        raise RuntimeError("QEMU did not start")
        yield

    monkeypatch.setitem(board_driver_module._DRIVERS, "emulator:fake", broken)
    with pytest.raises(RuntimeError, match="QEMU did not start"), open_board(
            DEVICE, tmp_path / "x.elf", tmp_path, lease=LeasePolicy(url, wait=0)):
        pass
    assert LeaseManager(url).state("fake-m3").state == "free"


def test_no_driver_is_said_at_once_naming_the_kinds(url: str):
    device = SimpleNamespace(name="sim-1", emulator=SimpleNamespace(kind="renode"), serial=None)
    with pytest.raises(NotImplementedError) as err:
        open_board(device, Path("x.elf"), Path("."), lease=LeasePolicy(url, wait=0))
    assert "device sim-1: no board driver for 'emulator:renode'" in str(err.value)
    assert "emulator:qemu" in str(err.value) and "serial" in str(err.value) and "ssh" in str(err.value)
    assert LeaseManager(url).log() == []


def test_the_default_policy_is_the_state_folders_results_database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("FARM_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FARM_DB_URL", raising=False)
    policy = LeasePolicy.default("farm profile")
    assert policy == LeasePolicy(f"sqlite:///{tmp_path / 'home' / 'results.db'}", 900.0, "farm profile")
    monkeypatch.setenv("FARM_DB_URL", "postgresql://farm@db/farm")
    assert LeasePolicy.default().db_url == "postgresql://farm@db/farm"
