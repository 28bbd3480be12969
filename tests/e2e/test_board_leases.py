"""open_board takes the device's lease, on a real emulated board (qemu-m3 of devices.yaml).

The other run is a real other process holding the lease in a SQLite database; QEMU
must not even start while the device is busy.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from farm.board import qemu_driver
from farm.board.leases import DeviceBusy, LeaseManager, LeasePolicy
from farm.board.registry import open_board
from farm.config.inventory import load_inventory

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def m3_elf(state_dir: Path) -> Path:
    from farm.build.prepare import prepare_firmware
    from farm.models import build_variant

    device = load_inventory(REPO / "devices.yaml").device("qemu-m3")
    art = build_variant("sine", "int8", state_dir / "models")
    return prepare_firmware(art.tflite_path, "sine", "int8", device, state_dir).build.elf


@pytest.fixture
def qemu_started(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every QEMU the driver starts."""
    started: list[Any] = []

    class _Counted(qemu_driver.QemuBoard):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            started.append(args)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(qemu_driver, "QemuBoard", _Counted)
    return started


def _holder_process(url: str, device: str) -> subprocess.Popen:
    code = (f"import sys; from farm.board.leases import LeaseManager; m = LeaseManager({url!r}, "
            f"purpose='another run'); m.acquire({device!r}); print('held', flush=True); sys.stdin.readline(); "
            f"m.release({device!r}); print('released', flush=True); sys.stdin.readline()")
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def _release(holder: subprocess.Popen) -> None:
    holder.stdin.write("\n")
    holder.stdin.flush()


def test_a_busy_board_is_skipped_or_waited_for(tmp_path: Path, m3_elf: Path, qemu_started: list[Any]):
    url = f"sqlite:///{tmp_path / 'results.db'}"
    device = load_inventory(REPO / "devices.yaml").device("qemu-m3")
    holder = _holder_process(url, "qemu-m3")
    try:
        with pytest.raises(DeviceBusy) as err, open_board(device, m3_elf, tmp_path, lease=LeasePolicy(url, wait=0)):
            raise AssertionError("a busy board must not be opened")
        assert "qemu-m3 is busy: leased by another run" in str(err.value)
        assert qemu_started == []  # refused before QEMU was started
        threading.Timer(0.5, _release, args=(holder,)).start()
        begun = time.monotonic()
        policy = LeasePolicy(url, wait=2, purpose="farm infer")
        with open_board(device, m3_elf, tmp_path, lease=policy) as board:
            assert time.monotonic() - begun >= 0.4 and len(qemu_started) == 1
            assert board.identity["model"] == "sine" and board.session.ping(b"leased") == b"leased"
            assert LeaseManager(url).state("qemu-m3").owner.startswith("farm infer (pid")
        assert LeaseManager(url).state("qemu-m3").state == "free"
        assert [e["ended"] for e in LeaseManager(url).log("qemu-m3")] == ["released", "released"]
    finally:
        holder.kill()
        holder.wait()


def test_open_board_in_a_process_that_holds_the_lease(tmp_path: Path, m3_elf: Path, qemu_started: list[Any]):
    url = f"sqlite:///{tmp_path / 'results.db'}"
    device = load_inventory(REPO / "devices.yaml").device("qemu-m3")
    run = LeaseManager(url, purpose="farm run 5")
    run.acquire("qemu-m3")
    try:
        with open_board(device, m3_elf, tmp_path, lease=LeasePolicy(url, wait=0)) as board:
            assert board.session.ping(b"mine") == b"mine"
        assert len(qemu_started) == 1
        assert run.holds("qemu-m3") and LeaseManager(url).state("qemu-m3").owner.startswith("farm run 5")
        (entry,) = LeaseManager(url).log("qemu-m3")
        assert entry["ended"] is None  # still held: open_board did not give it back
    finally:
        run.close()
