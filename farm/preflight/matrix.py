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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: statuses of a cell; "portable" is a --static-only cell that passed every static check
CELL_STATUSES = ("runs", "portable", "does-not-fit", "not-portable", "faulted", "hung", "failed", "error")
GOOD = ("runs", "portable")

#: models with more multiply-accumulates get no soft-float call count (the trace would take minutes)
SOFTFLOAT_TRACE_MAX_MACS = 1_000_000


@dataclass
class PortabilityCell:
    model: str
    variant: str
    device: str
    status: str = "error"
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


def portability_cell(device: Any, model: str, variant: str, state: Path, *, run: bool = True,
                     progress: Callable[[str], None] = lambda _: None) -> PortabilityCell:
    """One cell of the matrix; never raises for a build, a check or a board problem."""
    from farm import codegen
    from farm.board.registry import open_board
    from farm.board.qemu import EmulatorError
    from farm.build.firmware import FirmwareBuildError
    from farm.models import build_variant
    from farm.models.native_output import native_output_to
    from farm.measure.job import DoesNotFit, check_fits, fault_status, prepare_firmware
    from farm.preflight.portability import PortabilityError, check_device, count_softfloat_calls
    from farm.board.session import DeviceFault, DeviceHung, DeviceRefused

    cell = PortabilityCell(model, variant, device.name, device_flash_bytes=device.flash_bytes,
                           device_ram_bytes=device.ram_bytes)
    elf: Path | None = None
    try:
        progress(f"{device.name}: {model}/{variant}: model")
        with native_output_to(state / "logs" / "tensorflow.log"):
            art = build_variant(model, variant, state / "models")
        progress(f"{device.name}: {model}/{variant}: firmware")
        fw = prepare_firmware(art.tflite_path, model, variant, device, state)
        elf = fw.build.elf
        cell.elf, cell.float_abi, cell.compiler_flags = str(elf), fw.build.float_abi, fw.build.compiler_flags
        cell.flash_bytes, cell.ram_bytes = fw.flash_bytes, fw.ram_bytes
        cell.macs = fw.generated.macs
        check_fits(device, fw)
        progress(f"{device.name}: {model}/{variant}: static checks")
        report = check_device(elf, device, variant)
        cell.float_kind = report.float_kind
        cell.softfloat_call_sites, cell.softfloat_helpers = report.softfloat_call_sites, report.softfloat_helpers
        cell.violations = [asdict(v) | {"sentence": v.sentence} for v in report.violations]
        if not report.portable:
            cell.status, cell.reason = "not-portable", report.summary()
            return cell
        cell.status, cell.reason = "portable", report.summary()
        if not run:
            return cell
        sample = np.ascontiguousarray(art.test_inputs[0])
        progress(f"{device.name}: {model}/{variant}: one inference on the board")
        try:
            connection = open_board(device, elf, state / "logs")
        except NotImplementedError as exc:  # no driver for how this board is reached (yet)
            cell.reason += f" (static checks only: {exc})"
            return cell
        cell.checked = "static+board"
        with connection as board:
            session = board.session
            session.load_input(sample.tobytes())
            session.run(1, timeout=30.0)
            ref = np.ascontiguousarray(art.ref_outputs[0])
            got = np.frombuffer(session.read_output(ref.nbytes), dtype=ref.dtype).reshape(ref.shape)
        not_counted = ""
        if report.softfloat_calls and getattr(device, "emulator", None) is not None:
            if cell.macs > SOFTFLOAT_TRACE_MAX_MACS:
                not_counted = (f"; soft-float calls per inference not counted ({cell.macs:,} MACs > the trace "
                               f"budget of {SOFTFLOAT_TRACE_MAX_MACS:,}: the execution trace would take minutes)")
            else:
                progress(f"{device.name}: {model}/{variant}: counting soft-float calls")
                try:
                    report.softfloat_calls_measured = count_softfloat_calls(device, elf, sample.tobytes())
                    cell.softfloat_calls_per_inference = report.softfloat_calls_per_inference
                    cell.softfloat_calls_by_helper = report.softfloat_calls_measured
                except DeviceHung as exc:  # the execution trace of a big soft-float model is too slow
                    not_counted = f"; soft-float calls per inference not counted (trace did not finish: {exc})"
        cell.status, cell.reason = "runs", report.summary() + not_counted
        if not _output_matches(got, ref):
            cell.status = "failed"
            cell.reason = f"runs, but its output {got.ravel()[:4].tolist()} differs from the host reference " \
                          f"{ref.ravel()[:4].tolist()}; {report.summary()}"
    except DoesNotFit as exc:
        cell.status, cell.reason = "does-not-fit", str(exc)
    except DeviceFault as exc:
        status, message = fault_status(exc, device, elf)
        cell.status, cell.reason = "not-portable" if status == "not-portable" else "faulted", message
    except DeviceHung as exc:
        cell.status, cell.reason = "hung", f"{device.name} stopped answering: {exc}"
    except (DeviceRefused, FirmwareBuildError, EmulatorError, PortabilityError, codegen.CodegenError) as exc:
        cell.status, cell.reason = "error", str(exc)
    return cell


def _output_matches(got: np.ndarray, ref: np.ndarray) -> bool:
    from farm.measure.job import FLOAT_TOLERANCE

    if np.issubdtype(ref.dtype, np.integer):
        return bool(np.array_equal(got, ref))
    return bool(np.all(np.abs(got.astype(np.float64) - ref.astype(np.float64)) <= FLOAT_TOLERANCE))
