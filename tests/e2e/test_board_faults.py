"""Faults at run time, end to end through farm.measure.job.measure_one on QEMU.

* A float32 build made hard-float (the flags of a Cortex-M4 with FPU) and put on
  the FPU-less qemu-m3 on purpose (preflight skipped): the board reports a
  UsageFault NOCP, the farm decodes it into a sentence naming the kernel and
  classifies the result not portable — no hang — and the next device still runs.
  The static check refuses that same ELF before flashing.
* A board that stops answering (its QEMU frozen, or killed) mid-measurement is
  reported as hung after the timeout, and the next device still measures.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from farm.board import qemu_driver as boards
from farm.build.firmware import BuildTarget
from farm.config.inventory import load_inventory
from farm.config.machine_flags import machine_flags
from farm.measure.timing import MeasurePlan
from farm.measure.job import measure_one
from farm.preflight.portability import check_elf


REPO = Path(__file__).resolve().parents[2]
QUICK = MeasurePlan(warmup=1, windows=2, inferences_per_window=8, request_timeout=2.0, inference_timeout=5.0)


@pytest.fixture(scope="module")
def inventory() -> Any:
    return load_inventory(REPO / "devices.yaml")


@pytest.fixture(autouse=True)
def own_leases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's boards are leased in its own database (open_board takes a lease): the
    time bounds below are the fault's, not a wait for a board another test run holds."""
    monkeypatch.setenv("FARM_DB_URL", f"sqlite:///{tmp_path / 'leases.db'}")


def test_hard_float_build_on_fpu_less_m3_faults_nocp_and_is_not_portable(inventory, state_dir: Path):
    m3 = inventory.device("qemu-m3")
    hard = BuildTarget(m3.board, machine_flags("cortex-m4", "sp", True))  # what a Cortex-M4F would get
    record = measure_one(m3, "sine", "float32", state=state_dir, plan=QUICK, target=hard, preflight=False)
    # reported, not waited on: a board that went silent would be "hung" after QUICK's 2 s / 5 s
    # timeouts; the decoded NOCP fault below is what the board itself reported
    assert record.status == "not-portable", record.message
    assert "-mfloat-abi=hard" in record.compiler_flags
    match = re.fullmatch(r"faulted on the board: UsageFault NOCP \(coprocessor/FPU instruction\) "
                         r"at 0x([0-9a-f]{8}) in (\w+) on a core without an FPU", record.message)
    assert match, record.message
    pc, function = int(match.group(1), 16), match.group(2)

    # the static checker flags the same ELF, at that very instruction
    from farm.build.prepare import prepare_firmware
    from farm.models import build_variant

    art = build_variant("sine", "float32", state_dir / "models")
    elf = prepare_firmware(art.tflite_path, "sine", "float32", m3, state_dir, hard).build.elf
    report = check_elf(elf, core="cortex-m3", fpu="none", dsp=False, variant="float32")
    assert not report.portable
    assert report.violations[0].function == function and function in report.reachable
    assert pc in {v.address for v in report.violations}
    assert all(v.reason == "FPU instruction on a core without an FPU" for v in report.violations)

    # the next device still runs
    assert measure_one(inventory.device("qemu-rv32"), "sine", "int8", state=state_dir, plan=QUICK).status == "ok"


def test_static_check_refuses_the_hard_float_build_before_flashing(inventory, state_dir: Path, monkeypatch):
    m3 = inventory.device("qemu-m3")
    hard = BuildTarget(m3.board, machine_flags("cortex-m4", "sp", True))

    def no_flashing(*args: object, **kwargs: object) -> None:
        raise AssertionError("a build that is not portable must not be flashed")

    monkeypatch.setattr("farm.measure.job.open_board", no_flashing)
    record = measure_one(m3, "sine", "float32", state=state_dir, plan=QUICK, target=hard)
    assert record.status == "not-portable"
    assert record.message.startswith("not portable to cortex-m3 (fpu none, no DSP): v")
    assert "FPU instruction on a core without an FPU" in record.message


class _StoppableQemu(boards.QemuBoard):
    """The real QEMU launcher; the test freezes or kills the process when the host
    sends LOAD_INPUT (see _SabotagedTransport)."""

    last: _StoppableQemu | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        type(self).last = self

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)  # a frozen process would ignore SIGTERM
        super().stop()


def _sabotage(monkeypatch: pytest.MonkeyPatch, sig: signal.Signals) -> None:
    real_open = boards.open_transport

    class _SabotagedTransport:
        def __init__(self, url: str) -> None:
            self._inner = real_open(url)
            self.url = url

        def write(self, data: bytes) -> None:
            if len(data) > 4 and data[4] == 0x02:  # a LOAD_INPUT frame: the board stops here
                board = _StoppableQemu.last
                assert board is not None
                os.kill(board.process.pid, sig)
                if sig == signal.SIGKILL:
                    board.process.wait()
            self._inner.write(data)

        def read_some(self, timeout: float) -> bytes:
            return self._inner.read_some(timeout)

        def close(self) -> None:
            self._inner.close()

    monkeypatch.setattr(boards, "QemuBoard", _StoppableQemu)
    monkeypatch.setattr(boards, "open_transport", _SabotagedTransport)


@pytest.mark.parametrize("sig", [signal.SIGSTOP, signal.SIGKILL], ids=["frozen", "killed"])
def test_board_that_stops_answering_is_hung_and_the_next_board_measures(inventory, state_dir: Path, monkeypatch,
                                                                        sig: signal.Signals):
    m3 = inventory.device("qemu-m3")
    with monkeypatch.context() as patch:
        _sabotage(patch, sig)
        started = time.monotonic()
        record = measure_one(m3, "sine", "int8", state=state_dir, plan=QUICK)
        elapsed = time.monotonic() - started
    assert record.status == "hung", record.message
    assert record.message.startswith("qemu-m3 stopped answering: ")
    if sig == signal.SIGSTOP:
        assert "no answer to LOAD_INPUT within 2.0 s" in record.message
    else:
        assert "lost the connection" in record.message
    assert elapsed < 15
    assert _StoppableQemu.last is not None and _StoppableQemu.last.process.poll() is not None  # cleaned up
    nxt = measure_one(inventory.device("qemu-rv32"), "sine", "int8", state=state_dir, plan=QUICK)
    assert nxt.status == "ok" and nxt.bit_exact_fraction == 1.0
