"""The job's one map from failures to statuses (farm.measure.job.status_of), through the
one sequence (run_job) as `farm run` / the nightly (measure_one), `farm portability`
(portability_cell) and `farm infer` see it.

The stages are replaced by fakes (no model build, no compiler, no board), so each
failure can be raised where it happens for real: the board stage, or earlier.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from farm import codegen
from farm.board.infra import BenchHostError, BoardUnavailable, ConnectionLost, FlashError, HostKeyError, InfraError
from farm.board.leases import DeviceBusy, DeviceQuarantined
from farm.board.qemu import EmulatorError
from farm.board.session import DeviceFault, DeviceHung, DeviceRefused
from farm.build.firmware import FirmwareBuildError
from farm.measure import job as job_module
from farm.measure.job import Board, infer, measure_one, run_job, status_of
from farm.power.energy import EnergyError, PowerMonitorNotImplementedError
from farm.preflight.checks import DoesNotFit, NotPortable
from farm.preflight.disassembly import PortabilityError
from farm.measure.portability_matrix import CELL_STATUSES, measure_and_cell, portability_cell
from farm.preflight.portability import PortabilityReport
from farm.store.status import CellStatus, Status, Unit

DEVICE = SimpleNamespace(name="dev", core="cortex-m3", fpu="none", dsp=False, flash_bytes=1 << 20,
                         ram_bytes=1 << 16, clock_hz=25_000_000, unit=Unit.INSTRUCTIONS, serial=None, emulator=None)
NOCP = (1, 6, 1 << 19, 0, 0, 0, 0x1234, 0x5679, 0x01000000)  # UsageFault NOCP
BUS_FAULT = (2, 5, 0x100, 0x40)  # a RISC-V load access fault

#: every failure the job reports -> (status, message)
FAILURES: list[tuple[Exception, Status, str]] = [
    (BoardUnavailable("dev: cannot open serial port /dev/x"), Status.INFRA_ERROR, "dev: cannot open serial port /dev/x"),
    (BenchHostError("bench host down"), Status.INFRA_ERROR, "bench host down"),
    (HostKeyError("host key changed"), Status.INFRA_ERROR, "host key changed"),
    (ConnectionLost("ssh dropped"), Status.INFRA_ERROR, "ssh dropped"),
    (FlashError("flashing failed"), Status.INFRA_ERROR, "flashing failed"),
    (InfraError("infra"), Status.INFRA_ERROR, "infra"),
    (NotPortable("not portable to cortex-m3"), Status.NOT_PORTABLE, "not portable to cortex-m3"),
    (DoesNotFit("RAM: needs 9 bytes, dev has 8"), Status.DOES_NOT_FIT, "RAM: needs 9 bytes, dev has 8"),
    (DeviceFault(NOCP), Status.NOT_PORTABLE,
     "faulted on the board: UsageFault NOCP (coprocessor/FPU instruction) at 0x00001234 on a core without an FPU"),
    (DeviceFault(BUS_FAULT), Status.FAULTED, "trap: load access fault at 0x00000100 (mtval 0x00000040)"),
    (DeviceHung("no answer in 2 s"), Status.HUNG, "dev stopped answering: no answer in 2 s"),
    (DeviceRefused("refused"), Status.ERROR, "refused"),
    (FirmwareBuildError("build failed"), Status.ERROR, "build failed"),
    (EmulatorError("qemu missing"), Status.ERROR, "qemu missing"),
    (codegen.CodegenError("op FOO"), Status.ERROR, "op FOO"),
    (PowerMonitorNotImplementedError("no such monitor"), Status.ERROR, "no such monitor"),
    (EnergyError("no energy"), Status.ERROR, "no energy"),
    (PortabilityError("no objdump"), Status.ERROR, "no objdump"),
]
#: what the job does not report: a busy or quarantined device (the caller skips it), a bug
PROPAGATED: list[Exception] = [
    DeviceBusy("dev", "farm run 3", 0.0, 0.0),
    DeviceQuarantined("dev", "did not identify", None),
    KeyError("a bug"),
]


def _ids(cases: list[Any]) -> list[str]:
    return [type(c[0] if isinstance(c, tuple) else c).__name__ for c in cases]


@pytest.mark.parametrize(("exc", "status", "message"), FAILURES, ids=_ids(FAILURES))
def test_status_of_every_failure(exc: Exception, status: Status, message: str):
    assert status_of(exc, DEVICE, None) == (status, message)


@pytest.mark.parametrize("exc", PROPAGATED, ids=_ids(PROPAGATED))
def test_status_of_is_none_for_what_propagates(exc: Exception):
    assert status_of(exc, DEVICE, None) is None


def test_every_failure_status_is_a_cell_status():
    assert {s for _, s, _ in FAILURES} <= set(CELL_STATUSES)
    assert "infra-error" in CELL_STATUSES


# --------------------------------------------------------------------------- the stages, faked


@pytest.fixture
def fake_stages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Replace model build, firmware, checks and the board; ``raise_at[stage]`` makes a stage fail."""
    elf = tmp_path / "firmware.elf"
    elf.write_bytes(b"\x7fELF fake")
    raise_at: dict[str, Exception] = {}
    opened: list[Any] = []
    inputs = np.zeros((2, 1), dtype=np.int8)
    art = SimpleNamespace(tflite_path=tmp_path / "m.tflite", size_bytes=100, sha256="ab", metric="mae",
                          host_metric=0.1, measure_plan={}, test_inputs=inputs, ref_outputs=np.zeros((2, 1), np.int8))
    build = SimpleNamespace(elf=elf, float_abi="soft", compiler_flags="-mcpu=cortex-m3", compiler="gcc",
                            cached=True, build_seconds=0.0)
    fw = SimpleNamespace(build=build, flash_bytes=1000, ram_bytes=100,
                         generated=SimpleNamespace(macs=10, input_shape=(1, 1), input_dtype="int8",
                                                   output_shape=(1, 1), output_dtype="int8"))
    report = PortabilityReport(elf=elf, arch="arm", core="cortex-m3", fpu="none", dsp=False, variant="int8",
                               entry="model_invoke", elf_float_abi="soft", reachable=["model_invoke"],
                               fpu_instructions=[], softfloat_calls=[], indirect_calls=[])

    def stage(name: str, value: Any) -> Any:
        if name in raise_at:
            raise raise_at[name]
        return value

    def fake_open_board(device: Any, elf: Path, log_dir: Path, *, lease: Any = None) -> Any:
        opened.append(lease)
        if "open" in raise_at:
            raise raise_at["open"]

        @contextmanager
        def up() -> Iterator[Any]:
            stage("board", None)  # a driver fails on entering the block (flash, open the port, identify)
            yield SimpleNamespace(session=None, unit=Unit.INSTRUCTIONS, identity={})

        return up()

    monkeypatch.setattr(job_module, "build_variant", lambda *a, **k: stage("model", art))
    monkeypatch.setattr(job_module, "prepare_firmware", lambda *a, **k: stage("firmware", fw))
    monkeypatch.setattr(job_module, "check_fits", lambda *a, **k: stage("fits", None))
    monkeypatch.setattr(job_module, "check_portable", lambda *a, **k: stage("portable", report))
    monkeypatch.setattr(job_module, "open_board", fake_open_board)
    monkeypatch.setattr(codegen, "check_supported", lambda *a, **k: None)
    # the fake ELF has no symbols: a decoded fault names no function, no lacking instruction
    monkeypatch.setattr("farm.board.faults.symbol_at", lambda *a: None)
    monkeypatch.setattr("farm.measure.fault_verdict.lacking_instruction_at", lambda *a, **k: None)
    return {"raise_at": raise_at, "opened": opened, "elf": elf, "fw": fw, "report": report}


@pytest.mark.parametrize(("exc", "status", "message"), FAILURES, ids=_ids(FAILURES))
def test_measure_one_records_every_failure_at_the_board(fake_stages, tmp_path: Path, exc, status, message):
    fake_stages["raise_at"]["board"] = exc
    record = measure_one(DEVICE, "sine", "int8", state=tmp_path)
    assert (record.status, record.message) == (status, message)
    assert record.unit == "instructions" and record.flash_bytes == 1000  # what the stages before made is kept
    assert record.details["float_abi"] == "soft" and record.details["float_kind"] == "float-free"
    if status is Status.INFRA_ERROR:
        assert record.details["infra"] == type(exc).__name__
        assert record.details["quarantine"] is exc.quarantine
    else:
        assert "infra" not in record.details


@pytest.mark.parametrize(("exc", "status", "message"), FAILURES, ids=_ids(FAILURES))
def test_portability_cell_reports_every_failure_at_the_board(fake_stages, tmp_path: Path, exc, status, message):
    """The cell's map is the record's: a board the farm cannot reach is an infra-error cell,
    not a traceback."""
    fake_stages["raise_at"]["board"] = exc
    cell = portability_cell(DEVICE, "sine", "int8", tmp_path)
    assert (cell.status, cell.reason) == (CellStatus(status.value), message)
    assert cell.checked == "static+board" and cell.float_kind == "float-free" and cell.flash_bytes == 1000


@pytest.mark.parametrize("stage", ["model", "firmware", "fits", "portable"])
def test_a_failure_before_the_board_never_opens_it(fake_stages, tmp_path: Path, stage: str):
    fake_stages["raise_at"][stage] = DoesNotFit("too big") if stage == "fits" else codegen.CodegenError("nope")
    record = measure_one(DEVICE, "sine", "int8", state=tmp_path)
    cell = portability_cell(DEVICE, "sine", "int8", tmp_path)
    expected = Status.DOES_NOT_FIT if stage == "fits" else Status.ERROR
    assert record.status == expected and cell.status == expected
    assert cell.checked == "static" and not fake_stages["opened"]


@pytest.mark.parametrize(("exc", "status", "message"), FAILURES, ids=_ids(FAILURES))
def test_a_measurement_that_fails_on_the_board_leaves_the_cell_to_its_own_job(fake_stages, tmp_path: Path,
                                                                               exc, status, message):
    """measure_and_cell: the record says what happened; no cell is made from a job whose test
    samples never ran (the cell's own job may still run its one inference)."""
    fake_stages["raise_at"]["board"] = exc
    record, cell = measure_and_cell(DEVICE, "sine", "int8", tmp_path)
    assert (record.status, record.message) == (status, message)
    assert cell is None


@pytest.mark.parametrize("stage", ["model", "firmware", "fits", "portable"])
def test_a_measurement_that_stops_before_the_board_gives_the_cell_its_verdict(fake_stages, tmp_path: Path,
                                                                             stage: str):
    fake_stages["raise_at"][stage] = (DoesNotFit("too big") if stage == "fits"
                                      else NotPortable("uses the FPU") if stage == "portable"
                                      else codegen.CodegenError("nope"))
    record, cell = measure_and_cell(DEVICE, "sine", "int8", tmp_path)
    own = portability_cell(DEVICE, "sine", "int8", tmp_path)
    assert cell is not None and cell.shared_job and not own.shared_job
    assert (cell.status, cell.reason, cell.checked) == (own.status, own.reason, own.checked)
    assert record.status == cell.status and not fake_stages["opened"]


@pytest.mark.parametrize("exc", PROPAGATED, ids=_ids(PROPAGATED))
def test_busy_quarantined_and_unknown_propagate_from_every_caller(fake_stages, tmp_path: Path, exc: Exception):
    fake_stages["raise_at"]["board"] = exc
    with pytest.raises(type(exc)):
        measure_one(DEVICE, "sine", "int8", state=tmp_path)
    with pytest.raises(type(exc)):
        portability_cell(DEVICE, "sine", "int8", tmp_path)
    with pytest.raises(type(exc)):
        infer(tmp_path / "m.tflite", DEVICE, np.zeros((2, 1), np.int8), state=tmp_path)


def test_the_lease_policy_reaches_open_board(fake_stages, tmp_path: Path):
    policy = object()
    fake_stages["raise_at"]["board"] = DeviceHung("x")
    measure_one(DEVICE, "sine", "int8", state=tmp_path, lease=policy)  # type: ignore[arg-type]
    portability_cell(DEVICE, "sine", "int8", tmp_path, lease=policy)  # type: ignore[arg-type]
    assert fake_stages["opened"] == [policy, policy]


def test_static_only_and_no_driver_cells_are_portable(fake_stages, tmp_path: Path):
    cell = portability_cell(DEVICE, "sine", "int8", tmp_path, run=False)
    assert (cell.status, cell.checked) == ("portable", "static") and not fake_stages["opened"]
    fake_stages["raise_at"]["open"] = NotImplementedError("no board driver for 'x'")
    cell = portability_cell(DEVICE, "sine", "int8", tmp_path)
    assert cell.status == "portable" and cell.reason.endswith("(static checks only: no board driver for 'x')")
    with pytest.raises(NotImplementedError):  # farm run has no static-only fallback
        measure_one(DEVICE, "sine", "int8", state=tmp_path)


def test_not_portable_keeps_the_report_for_the_cell(fake_stages, tmp_path: Path):
    report = fake_stages["report"]
    fake_stages["raise_at"]["portable"] = NotPortable("not portable to cortex-m3: vmul.f32", report)
    cell = portability_cell(DEVICE, "sine", "int8", tmp_path)
    assert (cell.status, cell.reason) == ("not-portable", "not portable to cortex-m3: vmul.f32")
    assert cell.float_kind == "float-free" and not fake_stages["opened"]


def test_infer_raises_the_failure_and_a_fault_as_refused(fake_stages, tmp_path: Path):
    samples = np.zeros((2, 1), np.int8)
    fake_stages["raise_at"]["fits"] = DoesNotFit("flash: needs 2 bytes, dev has 1")
    with pytest.raises(DoesNotFit, match="needs 2 bytes"):
        infer(tmp_path / "m.tflite", DEVICE, samples, state=tmp_path)
    del fake_stages["raise_at"]["fits"]
    fake_stages["raise_at"]["board"] = DeviceFault(NOCP)
    with pytest.raises(DeviceRefused, match="^faulted on the board: UsageFault NOCP"):
        infer(tmp_path / "m.tflite", DEVICE, samples, state=tmp_path)
    with pytest.raises(ValueError, match="input dtype is float32"):  # refused before the board
        infer(tmp_path / "m.tflite", DEVICE, samples.astype(np.float32), state=tmp_path)


def test_run_job_lease_only_holds_the_lease_around_the_work(fake_stages, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch):
    held: list[str] = []

    @contextmanager
    def fake_hold(device: str, policy: Any) -> Iterator[None]:
        held.append(f"take {device}")
        yield
        held.append(f"give {device}")

    monkeypatch.setattr(job_module, "hold", fake_hold)
    job = run_job(DEVICE, "sine", "int8", state=tmp_path, board=Board.LEASE, portable=False, lease=object(),  # type: ignore[arg-type]
                  work=lambda job, board: held.append(f"work on {board}"))
    assert job.ok and job.on_board and held == ["take dev", "work on None", "give dev"]
    assert not fake_stages["opened"]
