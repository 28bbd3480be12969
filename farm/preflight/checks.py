"""The verdicts of preflight on one build for one device, before and after it is flashed.

* does it fit: flash and RAM of the ELF against the device's (:func:`check_fits`),
  or the linker's own refusal in a build log (:func:`linker_overflow`);
* is it portable: the static scan for the device's core (:func:`check_portable`);
* what a fault the board reported means (:func:`fault_status`): "not-portable"
  when it shows the build uses what the core lacks, "faulted" otherwise.

A refusal is an exception carrying the sentence (:class:`DoesNotFit`,
:class:`NotPortable`), which the job turns into the result's status.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Protocol

from farm.board.faults import decode_fault
from farm.board.session import DeviceFault
from farm.preflight.portability import PortabilityReport, check_device, lacking_instruction_at
from farm.store.status import Status


class DoesNotFit(RuntimeError):
    """The ELF needs more flash or RAM than the device has."""


class NotPortable(DoesNotFit):
    """The ELF uses what the device's core lacks (FPU, DSP, ...) or breaks a
    variant's rule (an int8 build that is not float-free). Like DoesNotFit, the
    build is refused before flashing (callers that catch DoesNotFit refuse it too)."""

    def __init__(self, message: str, report: PortabilityReport | None = None) -> None:
        super().__init__(message)
        self.report = report


class FirmwareSizes(Protocol):
    """Flash and RAM a build needs (farm.build.prepare.PreparedFirmware has them)."""

    @property
    def flash_bytes(self) -> int: ...

    @property
    def ram_bytes(self) -> int: ...


def check_fits(device: Any, fw: FirmwareSizes) -> None:
    """Raises DoesNotFit naming the bytes needed and available of each region that is too small."""
    problems = []
    if fw.flash_bytes > device.flash_bytes:
        problems.append(f"flash: needs {fw.flash_bytes} bytes, {device.name} has {device.flash_bytes}")
    if fw.ram_bytes > device.ram_bytes:
        problems.append(f"RAM: needs {fw.ram_bytes} bytes, {device.name} has {device.ram_bytes}")
    if problems:
        raise DoesNotFit("; ".join(problems))


_OVERFLOW = re.compile(r"region `(\w+)' overflowed by (\d+) bytes")


def linker_overflow(log: str, device: Any) -> str | None:
    """The linker's "region `RAM' overflowed by N bytes" as a does-not-fit sentence."""
    found = {name: int(n) for name, n in _OVERFLOW.findall(log)}
    if not found:
        return None
    sizes = {"FLASH": ("flash", device.flash_bytes), "RAM": ("RAM", device.ram_bytes)}
    parts = []
    for region, over in found.items():
        what, have = sizes.get(region, (region, None))
        if have is not None:
            parts.append(f"{what}: needs {have + over} bytes, {device.name} has {have} (refused by the linker)")
        else:
            parts.append(f"{what}: {over} bytes too many (refused by the linker)")
    return "; ".join(parts)


def check_portable(device: Any, elf: Path, variant: str) -> PortabilityReport:
    """The static portability scan of the ELF for the device's core; raises NotPortable
    (carrying the report)."""
    report = check_device(elf, device, variant)
    if not report.portable:
        raise NotPortable(report.summary(), report)
    return report


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
