"""The verdicts of preflight on one build for one device, before it is flashed.

* does it fit: flash and RAM of the ELF against the device's (farm.build.fits:
  :func:`check_fits`, the linker's own refusal :func:`linker_overflow`; re-exported here);
* is it portable: the static scan for the device's core (:func:`check_portable`).

A refusal is an exception carrying the sentence (:class:`DoesNotFit`,
:class:`NotPortable`), which the job (farm.measure.job) turns into the result's status.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from farm.build.fits import DoesNotFit, FirmwareSizes, check_fits, linker_overflow
from farm.preflight.portability import PortabilityReport, check_device

__all__ = ["DoesNotFit", "FirmwareSizes", "NotPortable", "check_fits", "check_portable", "linker_overflow"]


class NotPortable(DoesNotFit):
    """The ELF uses what the device's core lacks (FPU, DSP, ...) or breaks a
    variant's rule (an int8 build that is not float-free). Like DoesNotFit, the
    build is refused before flashing (callers that catch DoesNotFit refuse it too)."""

    def __init__(self, message: str, report: PortabilityReport | None = None) -> None:
        super().__init__(message)
        self.report = report


def check_portable(device: Any, elf: Path, variant: str) -> PortabilityReport:
    """The static portability scan of the ELF for the device's core; raises NotPortable
    (carrying the report)."""
    report = check_device(elf, device, variant)
    if not report.portable:
        raise NotPortable(report.summary(), report)
    return report
