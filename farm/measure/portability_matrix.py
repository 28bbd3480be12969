"""The portability matrix: one cell per (model, variant, device).

A cell builds the variant for the device with the flags of its capability model
(cached), checks flash/RAM, runs the static portability scan (farm.preflight.portability)
and, unless asked not to, runs one inference on the board — so a fault or a hang
is seen and decoded — and, on emulated boards, measures the soft-float calls of
that inference (for models up to SOFTFLOAT_TRACE_MAX_MACS: the execution trace
disables QEMU's block chaining, so it runs ~10x slower — kws float32 on the
Cortex-M3 takes about 3 minutes, ic and vww about 10; bigger models are reported
"not counted" with the reason). ``farm portability`` prints the matrix
(farm/cli/portability.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from farm.store.status import CellStatus

if TYPE_CHECKING:
    from farm.board.driver import BoardConnection
    from farm.board.leases import LeasePolicy
    from farm.measure.job import Job
    from farm.store.records import ResultRecord

#: statuses of a cell (farm.store.status.CellStatus); "portable" is a cell that passed every
#: static check and was not run (--static-only, or no driver reaches its board)
CELL_STATUSES = tuple(CellStatus)
GOOD = (CellStatus.RUNS, CellStatus.PORTABLE)

#: models with more multiply-accumulates get no soft-float call count (the trace would take minutes)
SOFTFLOAT_TRACE_MAX_MACS = 1_000_000


@dataclass
class PortabilityCell:
    model: str
    variant: str
    device: str
    status: CellStatus = CellStatus.ERROR
    reason: str = ""
    checked: str = "static"  # "static" | "static+board"
    float_kind: str | None = None  # float-free | soft-float | hard-float (of the inference path)
    float_abi: str | None = None  # of the build: hard | soft
    softfloat_call_sites: int | None = None  # static, reachable from model_invoke
    softfloat_helpers: list[str] = field(default_factory=list)
    softfloat_calls_per_inference: float | None = None  # measured on the board (emulators), else None
    softfloat_calls_by_helper: dict[str, float] | None = None  # the same, per helper
    macs: int | None = None  # multiply-accumulates of one inference (the code generator's count)
    flash_bytes: int | None = None
    ram_bytes: int | None = None
    device_flash_bytes: int | None = None
    device_ram_bytes: int | None = None
    compiler_flags: str | None = None
    elf: str | None = None
    violations: list[dict[str, Any]] = field(default_factory=list)
    #: made from the measurement's job (its first test sample's inference: measure_and_cell),
    #: not from a job of its own
    shared_job: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def short(self) -> str:
        """The matrix cell's text."""
        if self.status in GOOD:
            detail = self.float_kind or ""
            if self.softfloat_calls_per_inference is not None:
                detail += f", {self.softfloat_calls_per_inference:.0f} sf calls/inf"
            elif self.softfloat_call_sites:
                detail += f", {self.softfloat_call_sites} sf call sites"
            return f"{self.status} ({detail})" if detail else self.status
        return self.status


def lost_cell(device: Any, model: str, variant: str, reason: str) -> PortabilityCell:
    """The cell of a job the farm lost before it said anything (its cluster worker died, it
    timed out): ``infra-error`` with the sentence, no verdict on the firmware."""
    return PortabilityCell(model, variant, device.name, status=CellStatus.INFRA_ERROR, reason=reason,
                           device_flash_bytes=device.flash_bytes, device_ram_bytes=device.ram_bytes)


def portability_cell(device: Any, model: str, variant: str, state: Path, *, run: bool = True,
                     progress: Callable[[str], None] = lambda _: None,
                     lease: LeasePolicy | None = None) -> PortabilityCell:
    """One cell of the matrix: the job (farm.measure.job.run_job) with one inference as its
    board work. Never raises for a build, a check or a board problem (a board the farm
    cannot reach is an infra-error cell); DeviceBusy / DeviceQuarantined propagate (the
    caller reports the device skipped). ``lease``: the policy the board is leased under."""
    from farm.measure.job import Board, run_job

    ran: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (sample, output, reference)
    not_counted: list[str] = []

    def one_inference(job: Job, board: BoardConnection | None) -> None:
        assert board is not None and job.art is not None
        sample = np.ascontiguousarray(job.art.test_inputs[0])
        session = board.session
        session.load_input(sample.tobytes())
        session.run(1, timeout=30.0)
        ref = np.ascontiguousarray(job.art.ref_outputs[0])
        got = np.frombuffer(session.read_output(ref.nbytes), dtype=ref.dtype).reshape(ref.shape)
        ran.append((sample, got, ref))

    def count_softfloat(job: Job) -> None:
        not_counted.append(_count_softfloat(job, ran[0][0].tobytes(), progress))

    job = run_job(device, model, variant, state=state, work=one_inference, after_board=count_softfloat,
                  board=Board.IF_DRIVER if run else Board.NONE, doing="one inference on the board of",
                  lease=lease, progress=progress)
    return _cell_of(job, ran[0] if ran else None, "".join(not_counted))


def measure_and_cell(device: Any, model: str, variant: str, state: Path, *, kernels: str = "optimized",
                     progress: Callable[[str], None] = lambda _: None, lease: LeasePolicy | None = None,
                     artifacts: Any = None, with_cell: bool = True) -> tuple[ResultRecord, PortabilityCell | None]:
    """The measurement (farm.measure.job.measure_one; ``artifacts`` as there) and, from the same
    job, the matrix cell: the first test sample's inference of the measurement stands for the
    cell's one inference (the same ELF, flashed once, the same input), so a nightly that asks
    for both flashes and loads the board once. The cell is None when the measurement did not
    get as far as the test samples' outputs on the board (a hang, a fault, a board the farm
    could not use part-way): the caller then makes the cell on its own (portability_cell), whose
    one inference may still run. A job that stopped before the board (does not fit, not
    portable, a build error) gives the cell that verdict, as portability_cell would.
    ``with_cell=False``: the measurement alone (cell None)."""
    from farm.measure.job import cell_status, measure_one, status_of

    seen: list[tuple[Job, np.ndarray | None]] = []
    record = measure_one(device, model, variant, state=state, kernels=kernels, lease=lease, progress=progress,
                         artifacts=artifacts, observe=(lambda job, out: seen.append((job, out))) if with_cell else None)
    if not with_cell:
        return record, None
    job, outputs = seen[0]  # observe runs whenever measure_one returns
    if outputs is None:  # stopped before the board: the cell's own job's verdict; on it: its own job
        return record, (replace(_cell_of(job, None, ""), shared_job=True) if not job.ok and not job.on_board
                        else None)
    assert job.art is not None
    sample = np.ascontiguousarray(job.art.test_inputs[0])
    ref = np.ascontiguousarray(job.art.ref_outputs[0])
    ran = (sample, np.ascontiguousarray(outputs[0]).reshape(ref.shape), ref)
    try:
        not_counted, failed = _count_softfloat(job, sample.tobytes(), progress), None
    except Exception as exc:  # the one map, as in the cell's own job; the measurement stands
        failed = status_of(exc, job.device, job.elf)
        if failed is None:
            raise
        not_counted = ""
    cell = replace(_cell_of(job, ran, not_counted), shared_job=True)
    if failed is not None:  # the soft-float count's own failure is the cell's, as in its own job
        cell.status, cell.reason = cell_status(failed[0]), failed[1]
    return record, cell


def _count_softfloat(job: Job, sample: bytes, progress: Callable[[str], None]) -> str:
    """Count the soft-float calls of one inference of ``sample`` on an emulated board (into
    ``job.portability.softfloat_calls_measured``); what was not counted and why, as the suffix
    of the cell's reason ("" when counted or when the build makes no soft-float calls)."""
    from farm.board.session import DeviceHung
    from farm.measure.softfloat_calls import count_softfloat_calls

    device, model, variant = job.device, job.model, job.variant
    report, elf = job.portability, job.elf
    assert report is not None and elf is not None and job.firmware is not None
    if not report.softfloat_calls or getattr(device, "emulator", None) is None:
        return ""
    if str(device.emulator.kind) != "qemu":  # the count comes from QEMU's execution trace
        return (f"; soft-float calls per inference not counted (no execution trace on "
                f"{device.emulator.kind}: the static call sites are counted)")
    macs = job.firmware.generated.macs
    if macs > SOFTFLOAT_TRACE_MAX_MACS:
        return (f"; soft-float calls per inference not counted ({macs:,} MACs > the trace "
                f"budget of {SOFTFLOAT_TRACE_MAX_MACS:,}: the execution trace would take minutes)")
    progress(f"{device.name}: {model}/{variant}: counting soft-float calls")
    try:
        report.softfloat_calls_measured = count_softfloat_calls(device, elf, sample)
    except DeviceHung as exc:  # the execution trace of a big soft-float model is too slow
        return f"; soft-float calls per inference not counted (trace did not finish: {exc})"
    return ""


def _cell_of(job: Job, ran: tuple[np.ndarray, np.ndarray, np.ndarray] | None, not_counted: str) -> PortabilityCell:
    """The cell of a finished job: its build, its scan, and the inference ``ran`` on the board
    (sample, output, reference; None: not run)."""
    from farm.measure.job import cell_status

    device, model, variant = job.device, job.model, job.variant
    cell = PortabilityCell(model, variant, device.name, device_flash_bytes=device.flash_bytes,
                           device_ram_bytes=device.ram_bytes)
    fw, report = job.firmware, job.portability
    if fw is not None:
        cell.elf, cell.float_abi, cell.compiler_flags = str(fw.build.elf), fw.build.float_abi, fw.build.compiler_flags
        cell.flash_bytes, cell.ram_bytes = fw.flash_bytes, fw.ram_bytes
        cell.macs = fw.generated.macs
    if report is not None:
        cell.float_kind = report.float_kind
        cell.softfloat_call_sites, cell.softfloat_helpers = report.softfloat_call_sites, report.softfloat_helpers
        cell.violations = [asdict(v) | {"sentence": v.sentence} for v in report.violations]
        if report.softfloat_calls_measured is not None:
            cell.softfloat_calls_per_inference = report.softfloat_calls_per_inference
            cell.softfloat_calls_by_helper = report.softfloat_calls_measured
    if job.on_board:
        cell.checked = "static+board"
    if not job.ok:
        cell.status, cell.reason = cell_status(job.status), job.message or ""
        return cell
    assert report is not None
    if ran is None:  # static checks only: --static-only, or no driver reaches the board
        cell.status, cell.reason = CellStatus.PORTABLE, report.summary()
        if job.no_driver is not None:
            cell.reason += f" (static checks only: {job.no_driver})"
        return cell
    _, got, ref = ran
    cell.status, cell.reason = CellStatus.RUNS, report.summary() + not_counted
    if not _output_matches(got, ref, variant):
        cell.status = CellStatus.FAILED
        cell.reason = f"runs, but its output {got.ravel()[:4].tolist()} differs from the host reference " \
                      f"{ref.ravel()[:4].tolist()}; {report.summary()}"
    return cell


def _output_matches(got: np.ndarray, ref: np.ndarray, variant: str) -> bool:
    from farm.measure.job import FLOAT_TOLERANCE, OUTPUT_TOLERANCE

    if np.issubdtype(ref.dtype, np.integer):
        return bool(np.array_equal(got, ref))
    tolerance = OUTPUT_TOLERANCE.get(variant, FLOAT_TOLERANCE)
    return bool(np.all(np.abs(got.astype(np.float64) - ref.astype(np.float64)) <= tolerance))
