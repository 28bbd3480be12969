"""What a fault the board reported means for the build: "not-portable" when it shows the
build uses what the core lacks (an FPU instruction on a core without one: NOCP; an
undefined instruction the static scan knows the core lacks), "faulted" otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from farm.board.faults import decode_fault
from farm.board.session import DeviceFault
from farm.preflight.portability import lacking_instruction_at
from farm.store.status import Status


def fault_status(exc: DeviceFault, device: Any, elf: Path | None) -> tuple[Status, str]:
    """(status, message) for a fault the board reported: "not-portable" when it
    shows that the build uses what the core lacks (NOCP: an FPU instruction; an
    undefined/illegal instruction that the static check knows the core lacks),
    "faulted" otherwise (a deliberate udf, a bad pointer, ...)."""
    report = decode_fault(exc.words, elf, device.fpu != "none")
    if "NOCP" in report.kind or report.kind == "trap 2 FPU":
        return Status.NOT_PORTABLE, f"faulted on the board: {report.sentence}"
    if elf is not None and ("UNDEFINSTR" in report.kind or report.kind == "trap 2"):
        why = lacking_instruction_at(elf, report.pc, core=str(device.core), fpu=str(device.fpu),
                                     dsp=bool(device.dsp))
        if why:
            return Status.NOT_PORTABLE, f"faulted on the board: {report.sentence} ({why})"
    return Status.FAULTED, report.sentence
